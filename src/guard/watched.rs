//! The keys a product has served, each tied to the object and the server that named it:
//! identifiers differ between servers, so a key is only ever asked about where it was named.

/// One key in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedKey {
    /// The KMIP Unique Identifier of the object served.
    pub uid: String,
    /// The server that named it, as the connector names servers in errors.
    pub server: String,
    /// The object's Name on the server.
    pub name: String,
    /// The key as the DBA knows it (a MySQL key id, a MariaDB key id and version).
    pub key: String,
    /// The statement the DBA runs once the key is revoked.
    pub next_step: String,
}

/// The statement to run next for a MySQL key id: InnoDB's and the binary log's master keys
/// have their own rotation statement; any other key (keyring_udf, a component's) is the
/// application's to replace.
pub fn mysql_next_step(key_id: &str) -> String {
    if key_id.starts_with("INNODBKey-") {
        "ALTER INSTANCE ROTATE INNODB MASTER KEY".into()
    } else if key_id.starts_with("MySQLReplicationKey_") {
        "ALTER INSTANCE ROTATE BINLOG MASTER KEY".into()
    } else {
        format!("replace key '{key_id}' (remove it and generate or store a new one)")
    }
}

/// The statement to run next for a MariaDB key id.
pub fn mariadb_next_step(key_id: u32) -> String {
    format!("SET GLOBAL kmip_key_management_rotate_key = {key_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_keys_name_their_rotation() {
        assert_eq!(
            mysql_next_step("INNODBKey-8e0c1ec4-3a4b-11ef-9a7c-0242ac110002-1"),
            "ALTER INSTANCE ROTATE INNODB MASTER KEY"
        );
        assert_eq!(
            mysql_next_step("MySQLReplicationKey_8e0c1ec4_1"),
            "ALTER INSTANCE ROTATE BINLOG MASTER KEY"
        );
        assert!(mysql_next_step("udf_key").contains("'udf_key'"));
        assert_eq!(
            mariadb_next_step(7),
            "SET GLOBAL kmip_key_management_rotate_key = 7"
        );
    }
}
