//! Checks on every Get answer before its bytes go to mysqld: InnoDB trusts what the keyring
//! hands it, so a wrong object or a short key would make tablespaces unreadable.

use zeroize::Zeroizing;

use super::error::KeyringError;
use super::key_type::{KeyType, MAX_SECRET_LEN};
use crate::kmip::{ManagedObject, tags};

/// The key in a Get answer for `uid`, or an error naming the object (never its material).
pub(crate) fn checked_key(
    key_id: &str,
    uid: &str,
    mut object: ManagedObject,
) -> Result<(KeyType, Zeroizing<Vec<u8>>), KeyringError> {
    let bad = |why: String| KeyringError::BadKey {
        key_id: key_id.to_string(),
        uid: uid.to_string(),
        why,
    };
    if object.uid != uid {
        return Err(bad(format!(
            "the server answered with object {:?} instead",
            object.uid
        )));
    }
    let len = object.material.len();
    let kind = match object.object_type {
        tags::object_type::SYMMETRIC_KEY => {
            if object.algorithm != Some(tags::cryptographic_algorithm::AES) {
                return Err(bad(format!(
                    "it is a symmetric key of algorithm {}, not AES",
                    object
                        .algorithm
                        .map_or("(none given)".into(), tags::name_of_cryptographic_algorithm)
                )));
            }
            if !matches!(len, 16 | 24 | 32) {
                return Err(bad(format!(
                    "its AES key is {len} bytes long; AES keys are 16, 24 or 32 bytes"
                )));
            }
            let bits = i32::try_from(len * 8).unwrap_or(i32::MAX);
            if object.length_bits != Some(bits) {
                return Err(bad(format!(
                    "its Cryptographic Length ({}) does not match its {len}-byte key",
                    object
                        .length_bits
                        .map_or("none given".to_string(), |b| format!("{b} bits"))
                )));
            }
            KeyType::Aes
        }
        tags::object_type::SECRET_DATA => {
            if !(1..=MAX_SECRET_LEN).contains(&len) {
                return Err(bad(format!(
                    "its secret is {len} bytes long; secrets are 1 to {MAX_SECRET_LEN} bytes"
                )));
            }
            KeyType::Secret
        }
        other => {
            return Err(KeyringError::UnexpectedObject {
                key_id: key_id.to_string(),
                uid: uid.to_string(),
                found: format!("KMIP object of type {}", tags::name_of_object_type(other)),
            });
        }
    };
    Ok((kind, std::mem::take(&mut object.material)))
}
