//! How a MariaDB key version is named on the KMIP server: `<namespace>/<key id>/<version>`.
//!
//! One KMIP object per (key id, version), because KMIP 1.1 has no notion of a key version and
//! many servers (PyKMIP among them) have no Re-key or custom attributes. The namespace keeps the
//! keys of one data set apart from other data sets on the same KMIP server; every server that
//! may open the same data (replicas, restored backups) must use the same namespace.

/// Longest namespace accepted; KMIP servers limit name lengths, and ours stay short.
pub const MAX_NAMESPACE_LEN: usize = 128;

/// The namespace is printable ASCII without `/`, so that a name splits back unambiguously.
pub fn valid_namespace(namespace: &str) -> bool {
    !namespace.is_empty()
        && namespace.len() <= MAX_NAMESPACE_LEN
        && namespace
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'/')
}

pub fn object_name(namespace: &str, key_id: u32, version: u32) -> String {
    format!("{namespace}/{key_id}/{version}")
}

/// The (key id, version) an object name denotes in `namespace`, or None when it is not one of
/// ours. Only the canonical decimal form is accepted, so one pair has exactly one name.
pub fn parse_object_name(namespace: &str, name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(namespace)?.strip_prefix('/')?;
    let (id, version) = rest.split_once('/')?;
    let id = canonical_u32(id)?;
    let version = canonical_u32(version)?;
    (1..u32::MAX).contains(&version).then_some((id, version))
}

/// The namespace of a key version's object name, whichever namespace it is.
pub fn namespace_of(name: &str) -> Option<&str> {
    let (namespace, _) = name.split_once('/')?;
    (valid_namespace(namespace) && parse_object_name(namespace, name).is_some())
        .then_some(namespace)
}

fn canonical_u32(text: &str) -> Option<u32> {
    let value: u32 = text.parse().ok()?;
    (value.to_string() == text).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = object_name("mariadb", 5, 12);
        assert_eq!(name, "mariadb/5/12");
        assert_eq!(parse_object_name("mariadb", &name), Some((5, 12)));
    }

    #[test]
    fn foreign_and_non_canonical_names_are_not_ours() {
        for name in [
            "mariadb/5",
            "mariadb/05/1",
            "mariadb/5/01",
            "mariadb/5/0",
            "mariadb/+5/1",
            "mariadb/5/1/x",
            "other/5/1",
            "mariadbx/5/1",
            "mysql-keyring::INNODBKey-1",
        ] {
            assert_eq!(parse_object_name("mariadb", name), None, "{name}");
        }
    }

    #[test]
    fn the_namespace_of_any_version_name() {
        assert_eq!(namespace_of("mariadb/5/12"), Some("mariadb"));
        assert_eq!(namespace_of("prod-eu/1/1"), Some("prod-eu"));
        for name in [
            "mariadb/5",
            "mariadb/05/1",
            "/5/1",
            "mysql-keyring::INNODBKey-1",
        ] {
            assert_eq!(namespace_of(name), None, "{name}");
        }
    }

    #[test]
    fn namespaces() {
        assert!(valid_namespace("mariadb"));
        assert!(valid_namespace("prod-eu.db_1"));
        for bad in ["", "a/b", "a b", "é"] {
            assert!(!valid_namespace(bad), "{bad}");
        }
        assert!(!valid_namespace(&"x".repeat(MAX_NAMESPACE_LEN + 1)));
    }
}
