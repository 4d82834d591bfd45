//! Whether a KMIP server refuses to make a second object under a Name that an object of its
//! already carries (some key managers keep names unique; PyKMIP does not). On such a server
//! the create race of `race` cannot happen: while our new object exists, nobody else can make
//! one under its name, so the one-second wait of the race rule is not needed (see the proof in
//! `race`).
//!
//! Learned by asking, once per server and client and again after [`RELEARN_AFTER`] (the
//! server behind an address may be upgraded while a database runs; asking at every new
//! connection would cost more than the wait it saves, since servers close idle connections
//! within seconds, and leave more probe objects behind where destroying is not allowed): under
//! a fresh name that none of our
//! products uses, a Create, then a second Create and a Register of secret data under the same
//! name while the first is still Pre-Active, and a third Create once it is Active. The server
//! refuses names only if all three are refused, the name is then still carried by one object,
//! and a Create under another fresh name is accepted (so the refusals were about the name, not
//! the moment). The objects made are never read and are destroyed at once (the first is
//! Active for a moment, under a name no product reads). Anything unclear counts as "does not
//! refuse": the wait stays.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::connector::{ClientError, KmipClient, Retry};
use crate::kmip::{LocateFilter, ops};

/// (server, the asking client's counters) -> whether it refuses, and when that was learned.
type Key = (String, usize);

static LEARNED: LazyLock<Mutex<HashMap<Key, (bool, Instant)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// What a probe taught is asked again after this long.
pub const RELEARN_AFTER: Duration = Duration::from_secs(3600);

/// The prefix of the probe's names: no product's names start so (MySQL names start with
/// `mysql-keyring:`, MariaDB names are `<namespace>/<id>/<version>` and the namespace has no
/// `-probe-` part followed by a slash-free tail).
pub const PROBE_PREFIX: &str = "keyring_okv-unique-name-probe-";

/// Whether `server` refuses a second object under a Name in use, asking it once per
/// [`RELEARN_AFTER`].
pub fn refuses(client: &KmipClient, server: &str) -> bool {
    let health = client.health();
    let key: Key = (server.to_string(), std::sync::Arc::as_ptr(&health) as usize);
    let known = LEARNED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .copied();
    if let Some((refuses, at)) = known
        && at.elapsed() < RELEARN_AFTER
    {
        return refuses;
    }
    let refuses = match probe(client, server) {
        Ok(refuses) => refuses,
        Err(e) => {
            tracing::debug!("could not learn whether KMIP server {server} keeps names unique: {e}");
            false
        }
    };
    if refuses {
        tracing::info!(
            "KMIP server {server} refuses a second object under a name in use: new keys are activated without the one-second wait of the create race rule"
        );
    }
    LEARNED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, (refuses, Instant::now()));
    refuses
}

/// What a probe of `server` by this client taught, without asking: false when it has not been
/// asked yet or the answer is older than [`RELEARN_AFTER`].
pub fn known(client: &KmipClient, server: &str) -> bool {
    let health = client.health();
    let key: Key = (server.to_string(), std::sync::Arc::as_ptr(&health) as usize);
    LEARNED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .is_some_and(|(refuses, at)| *refuses && at.elapsed() < RELEARN_AFTER)
}

fn fresh_name() -> Result<String, String> {
    let mut bytes = [0u8; 12];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random generator failed".to_string())?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{PROBE_PREFIX}{hex}"))
}

fn probe(client: &KmipClient, server: &str) -> Result<bool, String> {
    let name = fresh_name()?;
    let create = |name: &str| {
        client.request_on(
            server,
            &ops::create_aes(128, name),
            Retry::Never,
            ops::parse_create,
        )
    };
    let first = create(&name).map_err(|e| e.to_string())?;
    let mut made = vec![first.clone()];
    let mut activated = false;
    let outcome = (|| {
        let refused = |answer: &Result<String, ClientError>| matches!(answer, Err(ClientError::Server { source, .. }) if !source.is_absent());
        let again = create(&name);
        if let Ok(uid) = &again {
            made.push(uid.clone());
        }
        if !refused(&again) {
            return Ok(false);
        }
        let mut secret = zeroize::Zeroizing::new(vec![0u8; 16]);
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| "the system random generator failed".to_string())?;
        let mut register = ops::register_secret(&secret, &name);
        let registered = client.request_on(server, &register, Retry::Never, ops::parse_register);
        register.zeroize();
        if let Ok(uid) = &registered {
            made.push(uid.clone());
        }
        if !refused(&registered) {
            return Ok(false);
        }
        let filter = LocateFilter {
            name: Some(&name),
            object_type: None,
        };
        let carried = client
            .request_on(
                server,
                &ops::locate(&filter, None),
                Retry::Idempotent,
                ops::parse_locate,
            )
            .map_err(|e| e.to_string())?;
        if carried != [first.clone()] {
            return Ok(false);
        }
        // And once the first is Active, as a key is.
        client
            .request_on(server, &ops::activate(&first), Retry::Never, |_| Ok(()))
            .map_err(|e| e.to_string())?;
        activated = true;
        let after = create(&name);
        if let Ok(uid) = &after {
            made.push(uid.clone());
        }
        if !refused(&after) {
            return Ok(false);
        }
        let control = create(&fresh_name()?).map_err(|e| e.to_string())?;
        made.push(control);
        Ok(true)
    })();
    if activated {
        let revoke = ops::revoke(&first, ops::DEFAULT_REVOCATION_REASON);
        if let Err(e) = client.request_on(server, &revoke, Retry::Never, |_| Ok(())) {
            tracing::debug!("revoking the probe {first} of {server}: {e}");
        }
    }
    for uid in &made {
        if let Err(e) = client.request_on(server, &ops::destroy(uid), Retry::Never, |_| Ok(())) {
            tracing::warn!(
                "could not destroy the KMIP object {uid} of {server} (made to learn whether the server keeps names unique, never read): {e}; destroy it on the KMIP server"
            );
        }
    }
    outcome
}
