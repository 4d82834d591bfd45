//! How a MySQL key (key_id, owner) is named on the KMIP server.
//!
//! Name = `mysql-keyring:` + owner + `:` + key_id, with `%` and `:` in the owner written as
//! `%25` and `%3A`. The key id is kept verbatim at the end, so a KMS administrator reads it as
//! it is, and the first `:` after the prefix always ends the owner: every pair maps to one name
//! and back. Server keys (InnoDB, binlog) have the empty owner: `mysql-keyring::INNODBKey-…`.

pub const PREFIX: &str = "mysql-keyring:";

pub fn object_name(key_id: &str, owner: &str) -> String {
    let mut name = String::with_capacity(PREFIX.len() + owner.len() + key_id.len() + 1);
    name.push_str(PREFIX);
    for c in owner.chars() {
        match c {
            '%' => name.push_str("%25"),
            ':' => name.push_str("%3A"),
            c => name.push(c),
        }
    }
    name.push(':');
    name.push_str(key_id);
    name
}

/// The (key_id, owner) of one of our names; None for any other object's name.
pub fn parse_object_name(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (owner_escaped, key_id) = rest.split_once(':')?;
    let mut owner = String::with_capacity(owner_escaped.len());
    let mut chars = owner_escaped.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let code: String = chars.by_ref().take(2).collect();
            match code.as_str() {
                "25" => owner.push('%'),
                "3A" | "3a" => owner.push(':'),
                _ => return None,
            }
        } else {
            owner.push(c);
        }
    }
    if key_id.is_empty() {
        return None;
    }
    Some((key_id.to_string(), owner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(object_name("MyKey", "root@localhost"), "mysql-keyring:root@localhost:MyKey");
        assert_eq!(object_name("INNODBKey-1", ""), "mysql-keyring::INNODBKey-1");
        assert_eq!(object_name("a:b", "u:1%@h"), "mysql-keyring:u%3A1%25@h:a:b");
        assert_eq!(parse_object_name("mysql-keyring:u%3A1%25@h:a:b"), Some(("a:b".into(), "u:1%@h".into())));
        assert_eq!(parse_object_name("other"), None);
        assert_eq!(parse_object_name("mysql-keyring:bad%zz:k"), None);
        assert_eq!(parse_object_name("mysql-keyring:owner:"), None);
    }

    proptest! {
        #[test]
        fn round_trips(key_id in "\\PC{1,64}", owner in "\\PC{0,32}") {
            let name = object_name(&key_id, &owner);
            prop_assert_eq!(parse_object_name(&name), Some((key_id, owner)));
        }
    }
}
