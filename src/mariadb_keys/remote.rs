//! The KMIP side of the key store: find, fetch and create the object of one (key id, version).
//! Every call goes through the core's client, so each has the client's deadlines and failover.

use std::time::Instant;

use zeroize::Zeroizing;

use super::error::KeyStoreError;
use super::naming::{object_name, parse_object_name, uid_order};
use crate::connector::{ClientError, KmipClient, Retry};
use crate::keyring::LIST_DEADLINE;
use crate::keyring::survey::{SurveyError, Surveyor};
use crate::kmip::ops::{self, LocateFilter};
use crate::kmip::tags;

/// Key length generated for new versions (AES-256).
pub const NEW_KEY_BITS: i32 = 256;

/// The KMIP objects named `name` (symmetric keys only), in the order every server agrees on.
fn locate_named(client: &KmipClient, name: &str) -> Result<Vec<String>, KeyStoreError> {
    let filter = LocateFilter {
        name: Some(name),
        object_type: Some(tags::object_type::SYMMETRIC_KEY),
    };
    let mut uids = client
        .request(
            &ops::locate(&filter, None),
            Retry::Idempotent,
            ops::parse_locate,
        )
        .map_err(KeyStoreError::backend(name))?;
    uids.sort_by(|a, b| uid_order(a, b));
    if uids.len() > 1 {
        tracing::warn!(
            "the KMIP server holds {} objects named {name}; using the oldest ({}) as every server does",
            uids.len(),
            uids[0]
        );
    }
    Ok(uids)
}

/// The unique identifier of the version's object, or None when there is none.
pub fn find_version(
    client: &KmipClient,
    namespace: &str,
    key_id: u32,
    version: u32,
) -> Result<Option<String>, KeyStoreError> {
    let name = object_name(namespace, key_id, version);
    Ok(locate_named(client, &name)?.into_iter().next())
}

/// Reads the key material of `uid` and checks that it is an AES key MariaDB can use
/// (16, 24 or 32 bytes: the server passes a 32-byte buffer and aborts on anything else).
pub fn fetch_material(
    client: &KmipClient,
    uid: &str,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    let object = client
        .request(&ops::get(uid), Retry::Idempotent, ops::parse_get)
        .map_err(KeyStoreError::backend(name))?;
    let unusable = |why: String| KeyStoreError::Unusable {
        uid: uid.to_string(),
        name: name.to_string(),
        why,
    };
    if object.object_type != tags::object_type::SYMMETRIC_KEY {
        return Err(unusable(format!(
            "it is a {}, not a Symmetric Key",
            tags::name_of_object_type(object.object_type)
        )));
    }
    if let Some(algorithm) = object.algorithm {
        if algorithm != tags::cryptographic_algorithm::AES {
            return Err(unusable(format!(
                "its algorithm is {}, not AES",
                tags::name_of_cryptographic_algorithm(algorithm)
            )));
        }
    }
    if ![16, 24, 32].contains(&object.material.len()) {
        return Err(unusable(format!(
            "it is {} bytes long; MariaDB keys are 16, 24 or 32 bytes",
            object.material.len()
        )));
    }
    Ok(object.material.clone())
}

/// The highest version of `key_id` at or above `from + 1` that exists, probing upwards one name
/// at a time (versions are only ever added one above the latest), with its object identifier.
/// `from` is the highest version already known (0 for none).
pub fn probe_latest(
    client: &KmipClient,
    namespace: &str,
    key_id: u32,
    from: u32,
) -> Result<Option<(u32, String)>, KeyStoreError> {
    let mut found = None;
    let mut version = from;
    while version < u32::MAX - 1 {
        match find_version(client, namespace, key_id, version + 1)? {
            Some(uid) => {
                version += 1;
                found = Some((version, uid));
            }
            None => break,
        }
    }
    Ok(found)
}

/// Makes the KMIP server generate the key of `version` (AES-256) under its name and activates
/// it. If a Create's answer is lost, or another server made the same version meanwhile, the
/// object that exists is used instead of making a second one.
pub fn create_version(
    client: &KmipClient,
    namespace: &str,
    key_id: u32,
    version: u32,
) -> Result<String, KeyStoreError> {
    let name = object_name(namespace, key_id, version);
    if let Some(uid) = locate_named(client, &name)?.into_iter().next() {
        return Ok(uid);
    }
    let uid = match client.request(
        &ops::create_aes(NEW_KEY_BITS, &name),
        Retry::Never,
        ops::parse_create,
    ) {
        Ok(uid) => uid,
        Err(e @ ClientError::Ambiguous(_)) => match locate_named(client, &name)?.into_iter().next()
        {
            Some(uid) => uid,
            None => return Err(KeyStoreError::backend(&name)(e)),
        },
        Err(e) => return Err(KeyStoreError::backend(&name)(e)),
    };
    match client.request(&ops::activate(&uid), Retry::Never, |p| {
        Ok(ops::parse_uid_echo(p))
    }) {
        Ok(_) => {}
        // Readers accept any state; a key left Pre-Active still decrypts. Say so and go on.
        Err(e) => tracing::warn!("created {name} ({uid}) but could not activate it: {e}"),
    }
    Ok(uid)
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
