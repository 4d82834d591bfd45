//! The KMIP side of the key store: find, fetch and create the object of one (key id, version).
//! Every call goes through the core's client, so each has the client's deadlines and failover.
//!
//! The rules are the MySQL keyring's (see the README, "Which object is the key"): only an
//! Active object is a version's key, two Active objects under one name are a fault reported
//! with both identifiers, every request about an identifier goes to the server that gave it
//! (`request_on`: nothing is sent after a failover in between) and every Get answer is checked
//! (`keyring::checks`) before MariaDB sees its bytes. Versions made by several servers at the
//! same moment settle on one object per version (`keyring::race`): the others destroy theirs
//! unread and take the winner's as that version, so versions stay 1..N without holes.

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::error::KeyStoreError;
use super::naming::{object_name, parse_object_name};
use crate::connector::{ClientError, KmipClient, Retry};
use crate::keyring::LIST_DEADLINE;
use crate::keyring::race::{self, RaceError, uid_order};
use crate::keyring::survey::{ObjectInfo, SurveyError, Surveyor};
use crate::keyring::{FetchedKey, KeyType, KeyringError, KnownRead, checks, read_objects};
use crate::kmip::ops::{self, LocateFilter};
use crate::kmip::{self, tags};

/// Key length generated for new versions (AES-256).
pub const NEW_KEY_BITS: i32 = 256;

/// A version's object: its identifier and the server that has it.
pub type Located = (String, String);

/// The bound on finding or making one version.
const VERSION_DEADLINE: Duration = Duration::from_secs(60);

fn race_error(name: &str) -> impl FnOnce(RaceError) -> KeyStoreError + '_ {
    move |e| match e {
        RaceError::Client(source) => KeyStoreError::Backend {
            name: name.to_string(),
            source,
        },
        RaceError::Other(why) => KeyStoreError::Race {
            name: name.to_string(),
            why,
        },
    }
}

/// The Active object of the version, or None when there is none.
pub fn find_version(
    client: &KmipClient,
    namespace: &str,
    key_id: u32,
    version: u32,
) -> Result<Option<Located>, KeyStoreError> {
    let name = object_name(namespace, key_id, version);
    let seen = race::look(
        client,
        &name,
        Some(tags::object_type::SYMMETRIC_KEY),
        None,
        Instant::now() + VERSION_DEADLINE,
    )
    .map_err(race_error(&name))?;
    active_of(&seen, name)
}

/// Reads the key material of `uid` from `server` (nothing is sent if the connection has moved
/// to another server) and checks it as the MySQL keyring does: the identifier echoed, an AES
/// Symmetric Key of 16, 24 or 32 bytes matching its Cryptographic Length (MariaDB passes a
/// 32-byte buffer and aborts on anything else).
pub fn fetch_material(
    client: &KmipClient,
    uid: &str,
    server: &str,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    let object = client
        .request_on(server, &ops::get(uid), Retry::Idempotent, ops::parse_get)
        .map_err(KeyStoreError::backend(name))?;
    checked_material(uid, name, object)
}

/// A Get's object checked as [`fetch_material`] checks it.
fn checked_material(
    uid: &str,
    name: &str,
    object: ops::ManagedObject,
) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    let unusable = |why: String| KeyStoreError::Unusable {
        uid: uid.to_string(),
        name: name.to_string(),
        why,
    };
    match checks::checked_key(name, uid, object) {
        Ok((KeyType::Aes, material)) => Ok(material),
        Ok((other, _)) => Err(unusable(format!(
            "it is {}, not an AES Symmetric Key",
            other.name()
        ))),
        Err(KeyringError::BadKey { why, .. }) => Err(unusable(why)),
        Err(e) => Err(unusable(e.to_string())),
    }
}

/// Reads the known objects of several versions of `server` (name, unique identifier) in one
/// message, as the MySQL keyring reads the keys it knows (`keyring::read_objects`: the Name and
/// State of each object and its key, checked as a fetch checks them). One answer per version,
/// in order: its key when the object is still the version's Active AES key, None when the
/// version must be looked up by name ([`find_version`]) to know what it is now.
pub fn read_versions(
    client: &KmipClient,
    server: &str,
    namespace: &str,
    versions: &[(&str, &str)],
) -> Result<Vec<Option<FetchedKey>>, KeyStoreError> {
    let objects: Vec<KnownRead<'_>> = versions
        .iter()
        .map(|&(name, uid)| KnownRead {
            label: name,
            name,
            uid,
        })
        .collect();
    let read = read_objects(client, server, &objects)
        .map_err(KeyStoreError::backend(&format!("{namespace}/*")))?;
    // A Secret Data under a version's name is not a MariaDB key: its own look-up says so.
    Ok(read
        .into_iter()
        .map(|key| key.filter(|k| k.key_type == KeyType::Aes))
        .collect())
}

/// The highest version a key may have: `u32::MAX` is MariaDB's "invalid version".
const TOP_VERSION: u32 = u32::MAX - 1;

/// The Active object among those a look found under the version's name, if any.
fn active_of(seen: &race::Look, name: String) -> Result<Option<Located>, KeyStoreError> {
    let active = seen.active();
    match active.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((one.uid.clone(), seen.server.clone()))),
        more => Err(KeyStoreError::Duplicate {
            name,
            uids: more.iter().map(|o| o.uid.clone()).collect(),
        }),
    }
}

/// A version found by [`probe_latest`]: its number, its object and, when the object was read in
/// the message that described it, its checked material.
pub type Probed = (u32, Located, Option<Zeroizing<Vec<u8>>>);

/// The latest version of `key_id` above `from` (the highest version already known, 0 for
/// none), with its object; None when there is none above `from`.
///
/// Versions are only ever made one above the latest, and a made version's name stays (a
/// creation race leaves one object per version, `create_version`), so the names of a key are
/// 1..N without holes. That makes "a name exists" monotonic, and the search costs
/// O(log versions) Locates instead of a look-up per version: names `from`+1, +2, +4, ... until
/// one is missing, then a binary search between the last found and the first missing. Only the
/// objects of the version found are then described (their states), from the Locate that found
/// them. The first two names (`from`+1 and `from`+2) are located in one message
/// ([`first_steps`], several keys' at once at start): a key never seen with 200 versions costs
/// 16 requests (then one Get), a refresh that finds nothing new one, and a key with one version
/// one round trip less than the walk one version at a time.
///
/// The version found must have an Active object. When it has none (another client is making it
/// right now, it is a leftover of a failed creation, or it was destroyed and the server keeps
/// it) the one below is the latest, as a walk would say. When that one is not Active either,
/// the names have a hole the search cannot see around: the versions are walked one by one from
/// `from`, the answer of before, whatever it costs.
pub fn probe_latest(
    client: &KmipClient,
    namespace: &str,
    key_id: u32,
    from: u32,
    mut first: FirstStep,
) -> Result<Option<Probed>, KeyStoreError> {
    let symmetric = Some(tags::object_type::SYMMETRIC_KEY);
    // The objects under the version's name, when there are any: from the first step's answers
    // when it asked for that name, otherwise asked now.
    let mut named = |version| {
        if let Some(found) = first.take(version) {
            return Ok((!found.uids.is_empty()).then_some(found));
        }
        let name = object_name(namespace, key_id, version);
        race::locate(client, &name, symmetric, None)
            .map(|found| (!found.uids.is_empty()).then_some(found))
            .map_err(race_error(&name))
    };
    // `found` exists (or is `from`), with what its Locate answered; `missing` does not
    // (u32::MAX: never a version).
    let mut found = (from, None);
    let mut missing = u32::MAX;
    let mut step = 1u32;
    loop {
        let probe = from.saturating_add(step).min(TOP_VERSION);
        if probe <= found.0 {
            break;
        }
        match named(probe)? {
            Some(answer) => found = (probe, Some(answer)),
            None => {
                missing = probe;
                break;
            }
        }
        step = step.saturating_mul(2);
    }
    while missing - found.0 > 1 {
        let middle = found.0 + (missing - found.0) / 2;
        match named(middle)? {
            Some(answer) => found = (middle, Some(answer)),
            None => missing = middle,
        }
    }
    let (version, Some(answer)) = found else {
        return Ok(None);
    };
    let name = object_name(namespace, key_id, version);
    let deadline = Instant::now() + VERSION_DEADLINE;
    // The version's object is described and, when it is the only one, read in one message.
    let (seen, got) = race::describe_and_get(client, &name, symmetric, answer, deadline)
        .map_err(race_error(&name))?;
    let got = got.map(|item| {
        item.and_then(|mut payload| {
            let parsed = ops::parse_get(&payload);
            payload.zeroize();
            parsed
        })
    });
    if let Some(located) = active_of(&seen, name.clone())? {
        let material = match got {
            Some(Ok(object)) => Some(checked_material(&located.0, &name, object)?),
            // Read again on its own, as before the batch (an error is reported from there).
            _ => None,
        };
        return Ok(Some((version, located, material)));
    }
    let below = version - 1;
    if below == from {
        return Ok(None);
    }
    if let Some(located) = find_version(client, namespace, key_id, below)? {
        return Ok(Some((below, located, None)));
    }
    // Said once per version name: the refresh meets the same state every round.
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let top = object_name(namespace, key_id, version);
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !warned.contains(&top) {
        tracing::warn!(
            "key {key_id}: neither {top} nor the version below it has an Active object on the KMIP server; looking at every version above {from} one by one"
        );
        warned.push(top);
    }
    drop(warned);
    Ok(walk_latest(client, namespace, key_id, from)?
        .map(|(version, located)| (version, located, None)))
}

/// The Locate answers of a probe's first two names (`from`+1 and `from`+2), asked in one
/// message: the latest version of a key with one version, or a refresh that finds nothing new,
/// is then known after one round trip.
#[derive(Default)]
pub struct FirstStep(Vec<(u32, race::Found)>);

impl FirstStep {
    fn take(&mut self, version: u32) -> Option<race::Found> {
        let i = self.0.iter().position(|(v, _)| *v == version)?;
        Some(self.0.swap_remove(i).1)
    }
}

/// The first steps of the probes of several keys (key id, latest version known) in one
/// message: keys needed together (MariaDB's keys 1 and 2 at start) cost one round trip more
/// than one key, not one per key.
pub fn first_steps(
    client: &KmipClient,
    namespace: &str,
    keys: &[(u32, u32)],
) -> Result<Vec<FirstStep>, KeyStoreError> {
    let mut asked = Vec::new();
    for (i, &(key_id, from)) in keys.iter().enumerate() {
        for step in 1..=2u32 {
            let version = from.saturating_add(step);
            if version <= TOP_VERSION {
                asked.push((i, version, object_name(namespace, key_id, version)));
            }
        }
    }
    let mut steps: Vec<FirstStep> = keys.iter().map(|_| FirstStep::default()).collect();
    if asked.is_empty() {
        return Ok(steps);
    }
    let names: Vec<String> = asked.iter().map(|(_, _, n)| n.clone()).collect();
    let found = race::locate_many(client, &names, Some(tags::object_type::SYMMETRIC_KEY))
        .map_err(race_error(&names[0]))?;
    for ((i, version, _), found) in asked.into_iter().zip(found) {
        steps[i].0.push((version, found));
    }
    Ok(steps)
}

/// The highest version above `from` reached one name at a time while each has an Active
/// object, with its object.
fn walk_latest(
    client: &KmipClient,
    namespace: &str,
    key_id: u32,
    from: u32,
) -> Result<Option<(u32, Located)>, KeyStoreError> {
    let mut found = None;
    let mut version = from;
    while version < TOP_VERSION {
        match find_version(client, namespace, key_id, version + 1)? {
            Some(located) => {
                version += 1;
                found = Some((version, located));
            }
            None => break,
        }
    }
    Ok(found)
}

/// Makes the KMIP server generate the key of `version` (AES-256) under its name and activates
/// it, and returns the version's object. When the version exists already (another server
/// rotated meanwhile), or another client makes it at the same moment and its object wins
/// (`keyring::race`), that object is returned instead: a version is never skipped and never
/// made twice.
pub fn create_version(
    client: &KmipClient,
    namespace: &str,
    key_id: u32,
    version: u32,
) -> Result<Located, KeyStoreError> {
    let name = object_name(namespace, key_id, version);
    let deadline = Instant::now() + VERSION_DEADLINE;
    let symmetric = Some(tags::object_type::SYMMETRIC_KEY);
    for _ in 0..3 {
        let seen =
            race::look(client, &name, symmetric, None, deadline).map_err(race_error(&name))?;
        let active = seen.active();
        if active.len() > 1 {
            return Err(KeyStoreError::Duplicate {
                name,
                uids: active.iter().map(|o| o.uid.clone()).collect(),
            });
        }
        if let Some(winner) = seen.winner() {
            // Made already, or being made by another client right now.
            if winner.is_active()
                || race::wait_active(client, &winner.uid, &seen.server, deadline)
                    .map_err(race_error(&name))?
            {
                return Ok((winner.uid.clone(), seen.server.clone()));
            }
            continue;
        }
        let (uid, server) = match make(
            client,
            &name,
            &ops::create_aes(NEW_KEY_BITS, &name),
            deadline,
        ) {
            // Another client's object holds the name now: the next look finds it.
            Err(e) if e.is_name_in_use() => continue,
            made => made?,
        };
        let made_at = Instant::now();
        match race::settle(client, &name, symmetric, &uid, &server, made_at, deadline) {
            Ok(race::Settled::Won { activate_by }) => {
                return activate(client, &name, &uid, &server, activate_by).map(|()| (uid, server));
            }
            Ok(race::Settled::Lost { winner }) => {
                race::discard(
                    client,
                    &uid,
                    &server,
                    "another client made the version first",
                );
                if winner.is_active()
                    || race::wait_active(client, &winner.uid, &server, deadline)
                        .map_err(race_error(&name))?
                {
                    return Ok((winner.uid, server));
                }
            }
            Err(e) => {
                race::discard(client, &uid, &server, "the race could not be settled");
                return Err(race_error(&name)(e));
            }
        }
    }
    Err(KeyStoreError::Race {
        name,
        why: "other clients kept making and abandoning this version; try again".into(),
    })
}

/// Registers `material` as `version` of `key_id` (`keyring-okv mariadb import`) and activates
/// it, under the same rules as a made version: the Register is sent once, and when another
/// client makes an object under the name at the same moment only one may become the version
/// (`keyring::race`). Unlike `create_version`, an existing or winning object is never taken
/// instead: its bytes are not the ones to import, so the import of that key id is refused.
pub fn register_version(
    client: &KmipClient,
    namespace: &str,
    key_id: u32,
    version: u32,
    material: &[u8],
) -> Result<Located, KeyStoreError> {
    let name = object_name(namespace, key_id, version);
    let deadline = Instant::now() + VERSION_DEADLINE;
    let symmetric = Some(tags::object_type::SYMMETRIC_KEY);
    let taken = |uid: &str, server: &str| KeyStoreError::Taken {
        name: name.clone(),
        uid: uid.to_string(),
        server: server.to_string(),
    };
    let seen = race::look(client, &name, symmetric, None, deadline).map_err(race_error(&name))?;
    // Any object under the name but a Pre-Active leftover of a failed creation, which every
    // reader ignores.
    let leftover = |o: &ObjectInfo| {
        o.state == Some(tags::state::PRE_ACTIVE)
            && race::contenders(std::slice::from_ref(o), seen.now)
                .next()
                .is_none()
    };
    if let Some(other) = seen.objects.iter().find(|o| !leftover(o)) {
        // Another import being made right now: let it finish, so that the caller can tell
        // whether it holds the same key.
        if !other.is_active() && seen.winner().is_some_and(|w| w.uid == other.uid) {
            let _ = race::wait_active(client, &other.uid, &seen.server, deadline);
        }
        return Err(taken(&other.uid, &seen.server));
    }
    let mut request = ops::register_aes(material, &name);
    let made = send_once(client, &name, &request);
    request.zeroize();
    let (uid, server) = match made {
        Err(e) if e.is_name_in_use() => {
            // Another client's object holds the name now; the caller is told which.
            let seen =
                race::look(client, &name, symmetric, None, deadline).map_err(race_error(&name))?;
            return Err(
                match seen
                    .objects
                    .iter()
                    .find(|o| o.is_active())
                    .or(seen.winner())
                {
                    Some(other) => taken(&other.uid, &seen.server),
                    None => e,
                },
            );
        }
        made => made?,
    };
    let made_at = Instant::now();
    match race::settle(client, &name, symmetric, &uid, &server, made_at, deadline) {
        Ok(race::Settled::Won { activate_by }) => {
            activate(client, &name, &uid, &server, activate_by).map(|()| (uid, server))
        }
        Ok(race::Settled::Lost { winner }) => {
            race::discard(
                client,
                &uid,
                &server,
                "another client made the version first",
            );
            if !winner.is_active() {
                let _ = race::wait_active(client, &winner.uid, &server, deadline);
            }
            Err(taken(&winner.uid, &server))
        }
        Err(e) => {
            race::discard(client, &uid, &server, "the race could not be settled");
            Err(race_error(&name)(e))
        }
    }
}

/// Sends a Register once. A lost answer is reported, not looked into: a Pre-Active object it
/// may have left under the name is ignored by every reader and by the race once two minutes
/// old, so the import can simply be run again then.
fn send_once(
    client: &KmipClient,
    name: &str,
    request: &kmip::Request,
) -> Result<Located, KeyStoreError> {
    let answer = client
        .request_batch(std::slice::from_ref(request), Retry::Never)
        .map_err(|e| match e {
            ClientError::Ambiguous(e) => KeyStoreError::Race {
                name: name.to_string(),
                why: format!(
                    "the Register's answer was lost ({e}); whether it made the object is unknown. Run the import again in two minutes, when an object it may have left is ignored, and check with `mariadb list`"
                ),
            },
            e => KeyStoreError::backend(name)(e),
        })?;
    let server = answer.server;
    let parsed = match answer.items.into_iter().next().flatten() {
        Some(Ok(payload)) => ops::parse_register(&payload),
        Some(Err(e)) => Err(e),
        None => Err(kmip::KmipError::Malformed(
            "the request went unanswered".into(),
        )),
    };
    parsed
        .map(|uid| (uid, server.clone()))
        .map_err(|source| KeyStoreError::backend(name)(ClientError::Server { server, source }))
}

/// Sends the Create once. If its answer is lost, asks the server it was sent to whether it
/// made the object (one fresh Pre-Active object under the name), rather than making a second.
fn make(
    client: &KmipClient,
    name: &str,
    request: &kmip::Request,
    deadline: Instant,
) -> Result<Located, KeyStoreError> {
    let e = match client.request_batch(std::slice::from_ref(request), Retry::Never) {
        Ok(answer) => {
            let server = answer.server;
            let parsed = match answer.items.into_iter().next().flatten() {
                Some(Ok(payload)) => ops::parse_create(&payload),
                Some(Err(e)) => Err(e),
                None => Err(kmip::KmipError::Malformed(
                    "the request went unanswered".into(),
                )),
            };
            return parsed.map(|uid| (uid, server.clone())).map_err(|source| {
                KeyStoreError::backend(name)(ClientError::Server { server, source })
            });
        }
        Err(ClientError::Ambiguous(e)) => e,
        Err(e) => return Err(KeyStoreError::backend(name)(e)),
    };
    let unknown = |why: String| KeyStoreError::Race {
        name: name.to_string(),
        why: format!(
            "the Create's answer was lost ({e}) and whether it made the object is unknown: {why}; check the KMIP server and try again"
        ),
    };
    let Some(sent) = e.sent_to() else {
        return Err(unknown("the server it went to is not known".into()));
    };
    let seen = race::look(
        client,
        name,
        Some(tags::object_type::SYMMETRIC_KEY),
        Some(sent),
        deadline,
    )
    .map_err(|e| unknown(e.to_string()))?;
    let fresh: Vec<&ObjectInfo> = race::contenders(&seen.objects, seen.now)
        .filter(|o| o.state == Some(tags::state::PRE_ACTIVE))
        .collect();
    match fresh.as_slice() {
        [one] => Ok((one.uid.clone(), seen.server.clone())),
        [] => Err(unknown("it did not".into())),
        _ => Err(unknown(
            "several new objects carry the name, made by other clients too".into(),
        )),
    }
}

/// Activates our winning object (`race::activate_or_discard`: an object that turns out Active
/// is kept, one that may be Active is revoked before it is destroyed).
fn activate(
    client: &KmipClient,
    name: &str,
    uid: &str,
    server: &str,
    activate_by: Instant,
) -> Result<(), KeyStoreError> {
    if Instant::now() > activate_by {
        race::discard(client, uid, server, "checked too slowly");
        return Err(KeyStoreError::Race {
            name: name.to_string(),
            why: format!(
                "the new object {uid} was checked against others too slowly to be activated safely; it was destroyed, try again"
            ),
        });
    }
    race::activate_or_discard(client, uid, server).map_err(KeyStoreError::backend(name))
}

/// One version of one key as listed by the admin tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    pub key_id: u32,
    pub version: u32,
    pub uid: String,
    pub state: Option<u32>,
    pub length_bits: Option<i32>,
}

/// Every key version of `namespace` on the server, ordered by key id and version: complete
/// (the core's listing rules, `keyring::survey`) or an error, never partial.
pub fn list_versions(
    client: &KmipClient,
    namespace: &str,
) -> Result<Vec<VersionEntry>, KeyStoreError> {
    let filter = LocateFilter {
        name: None,
        object_type: Some(tags::object_type::SYMMETRIC_KEY),
    };
    let mut surveyor = Surveyor::new(client, Instant::now() + LIST_DEADLINE);
    let found = surveyor.search(&filter, None);
    if let Some(method) = surveyor.method() {
        client.health().set_listing_method(&method.to_string());
    }
    let objects = found.map_err(|e| match e {
        SurveyError::Client(e) => KeyStoreError::backend(&format!("{namespace}/*"))(e),
        e => KeyStoreError::ListIncomplete {
            namespace: namespace.to_string(),
            why: e.why(LIST_DEADLINE),
        },
    })?;
    let mut entries = Vec::new();
    for object in objects {
        let Some((key_id, version)) = object
            .names
            .iter()
            .find_map(|n| parse_object_name(namespace, n))
        else {
            continue;
        };
        entries.push(VersionEntry {
            key_id,
            version,
            state: object.state,
            length_bits: object.length_bits,
            uid: object.uid,
        });
    }
    entries.sort_by(|a, b| {
        (a.key_id, a.version)
            .cmp(&(b.key_id, b.version))
            .then_with(|| uid_order(&a.uid, &b.uid))
    });
    Ok(entries)
}
