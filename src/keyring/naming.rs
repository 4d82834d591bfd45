//! How a MySQL key (key_id, owner) is named on the KMIP server.
//!
//! Name = `mysql-keyring:` + owner + `:` + key_id, where `%`, control characters and every byte
//! of a non-ASCII character are written `%XX` (upper-case hex), and so is `:` in the owner.
//! ASCII key ids (InnoDB's `INNODBKey-…`, the binlog's `MySQLReplicationKey_…`, most SQL ids)
//! stay verbatim, so a KMS administrator reads them as they are; the first `:` after the prefix
//! always ends the owner, so every pair maps to one name and back. Names are plain ASCII
//! because some KMIP servers (PyKMIP 0.11) cannot read multi-byte UTF-8 text strings.
//! Server keys (InnoDB, binlog) have the empty owner: `mysql-keyring::INNODBKey-…`.

use std::fmt::Write as _;

pub const PREFIX: &str = "mysql-keyring:";

/// Whether (key_id, owner) is an InnoDB master key of the current naming,
/// `INNODBKey-<server UUID>-<number>` with no owner. InnoDB asks for one only when a
/// tablespace header names it, so its absence on the KMIP server is always a lost key (the
/// older `INNODBKey-<server id>-<number>` is asked for as a fallback and may well be absent).
pub fn is_innodb_master_key(key_id: &str, owner: &str) -> bool {
    let Some(rest) = key_id.strip_prefix("INNODBKey-") else {
        return false;
    };
    let Some((uuid, number)) = rest.rsplit_once('-') else {
        return false;
    };
    owner.is_empty()
        && is_uuid(uuid)
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Whether (key_id, owner) is one of the binary log's keys, `MySQLReplicationKey_<server
/// UUID>` (its key index) or that followed by `_<suffix>` (its master keys, and the `_old` and
/// `_new` of a rotation in progress), with no owner.
pub fn is_binlog_key(key_id: &str, owner: &str) -> bool {
    let Some(rest) = key_id.strip_prefix("MySQLReplicationKey_") else {
        return false;
    };
    let (uuid, suffix) = rest.split_at_checked(36).unwrap_or((rest, ""));
    owner.is_empty()
        && is_uuid(uuid)
        && (suffix.is_empty() || suffix.len() > 1 && suffix.starts_with('_'))
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        })
}

fn must_escape(byte: u8, in_owner: bool) -> bool {
    byte == b'%' || !(0x20..0x7f).contains(&byte) || (in_owner && byte == b':')
}

fn escape_into(out: &mut String, text: &str, in_owner: bool) {
    for byte in text.bytes() {
        if must_escape(byte, in_owner) {
            let _ = write!(out, "%{byte:02X}");
        } else {
            out.push(char::from(byte));
        }
    }
}

/// Reverses `escape_into`, accepting only what it produces, so that parsing and naming are
/// exact inverses and no two names denote one key.
fn unescape(text: &str, in_owner: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            // Exactly two upper-case hex digits: `from_str_radix` also takes a sign ("%+1"
            // would decode as "%01" does) and lower case.
            if !hex.bytes().all(|h| matches!(h, b'0'..=b'9' | b'A'..=b'F')) {
                return None;
            }
            let decoded = u8::from_str_radix(hex, 16).ok()?;
            if !must_escape(decoded, in_owner) {
                return None;
            }
            out.push(decoded);
            i += 3;
        } else if must_escape(b, in_owner) {
            return None;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn object_name(key_id: &str, owner: &str) -> String {
    let mut name = String::with_capacity(PREFIX.len() + owner.len() + key_id.len() + 1);
    name.push_str(PREFIX);
    escape_into(&mut name, owner, true);
    name.push(':');
    escape_into(&mut name, key_id, false);
    name
}

/// The (key_id, owner) of one of our names; None for any other object's name.
pub fn parse_object_name(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (owner, key_id) = rest.split_once(':')?;
    if key_id.is_empty() {
        return None;
    }
    Some((unescape(key_id, false)?, unescape(owner, true)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(
            object_name("MyKey", "root@localhost"),
            "mysql-keyring:root@localhost:MyKey"
        );
        assert_eq!(object_name("INNODBKey-1", ""), "mysql-keyring::INNODBKey-1");
        assert_eq!(
            object_name("a:b c", "u:1%@h"),
            "mysql-keyring:u%3A1%25@h:a:b c"
        );
        assert_eq!(object_name("kéy", ""), "mysql-keyring::k%C3%A9y");
        assert_eq!(
            parse_object_name("mysql-keyring:u%3A1%25@h:a:b c"),
            Some(("a:b c".into(), "u:1%@h".into()))
        );
        assert_eq!(
            parse_object_name("mysql-keyring::k%C3%A9y"),
            Some(("kéy".into(), String::new()))
        );
    }

    #[test]
    fn rejects_foreign_and_non_canonical_names() {
        for name in [
            "other",
            "mysql-keyring:owner:",
            "mysql-keyring:bad%zz:k",
            "mysql-keyring::k%c3%a9y",
            "mysql-keyring::%41",
            "mysql-keyring::k%C3",
            "mysql-keyring:o:k%",
            "mysql-keyring::%+1",
            "mysql-keyring:%+A:k",
            "mysql-keyring::k%-1",
            "mysql-keyring::k% 1",
        ] {
            assert_eq!(parse_object_name(name), None, "{name}");
        }
    }

    #[test]
    fn only_the_canonical_escape_of_a_byte_is_accepted() {
        // Every `%` and two printable characters, in the owner and in the key id: whatever
        // decodes must name itself back, so no two names denote one key.
        for a in b' '..=b'~' {
            for b in b' '..=b'~' {
                let escape = format!("%{}{}", char::from(a), char::from(b));
                for name in [
                    format!("{PREFIX}:k{escape}"),
                    format!("{PREFIX}o{escape}:k"),
                ] {
                    if let Some((id, owner)) = parse_object_name(&name) {
                        assert_eq!(object_name(&id, &owner), name);
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn round_trips(key_id in "\\PC{1,64}", owner in "\\PC{0,32}") {
            let name = object_name(&key_id, &owner);
            prop_assert!(name.is_ascii());
            prop_assert_eq!(parse_object_name(&name), Some((key_id, owner)));
        }

        #[test]
        fn parsing_never_panics_and_is_exact(name in "mysql-keyring:[ -~]{0,40}") {
            if let Some((id, owner)) = parse_object_name(&name) {
                prop_assert_eq!(object_name(&id, &owner), name);
            }
        }
    }

    #[test]
    fn binlog_keys_of_a_server_uuid_only() {
        let uuid = "41ce96aa-f209-11f1-a74c-02fc00000001";
        assert!(is_binlog_key(&format!("MySQLReplicationKey_{uuid}"), ""));
        assert!(is_binlog_key(&format!("MySQLReplicationKey_{uuid}_1"), ""));
        assert!(is_binlog_key(
            &format!("MySQLReplicationKey_{uuid}_new"),
            ""
        ));
        assert!(!is_binlog_key(
            &format!("MySQLReplicationKey_{uuid}_1"),
            "u@h"
        ));
        assert!(!is_binlog_key(&format!("MySQLReplicationKey_{uuid}_"), ""));
        assert!(!is_binlog_key(&format!("MySQLReplicationKey_{uuid}x"), ""));
        assert!(!is_binlog_key("MySQLReplicationKey_u_1", ""));
        assert!(!is_binlog_key("MySQLReplicationKey_é", ""));
        assert!(!is_binlog_key(&format!("INNODBKey-{uuid}-1"), ""));
    }

    #[test]
    fn innodb_master_keys_of_the_uuid_naming_only() {
        let uuid = "41ce96aa-f209-11f1-a74c-02fc00000001";
        assert!(is_innodb_master_key(&format!("INNODBKey-{uuid}-2"), ""));
        assert!(is_innodb_master_key(&format!("INNODBKey-{uuid}-12"), ""));
        assert!(!is_innodb_master_key(
            &format!("INNODBKey-{uuid}-2"),
            "root@localhost"
        ));
        assert!(!is_innodb_master_key("INNODBKey-71-1", ""));
        assert!(!is_innodb_master_key(&format!("INNODBKey-{uuid}-"), ""));
        assert!(!is_innodb_master_key(&format!("INNODBKey-{uuid}-x"), ""));
        assert!(!is_innodb_master_key(
            &format!("MySQLReplicationKey_{uuid}_1"),
            ""
        ));
        assert!(!is_innodb_master_key(
            "INNODBKey-41ce96aa+f209-11f1-a74c-02fc00000001-2",
            ""
        ));
    }
}
