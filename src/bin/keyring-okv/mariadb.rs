//! `keyring-okv mariadb ...`: the keys of MariaDB's kmip_key_management plugin (numbered key
//! ids with versions, named `<namespace>/<key id>/<version>` on the KMIP server).

use clap::Subcommand;
use serde_json::json;

use okv_core::connector::{ClientError, KmipClient};
use okv_core::products::mariadb::{
    KeyStore, KeyStoreError, Settings, key_file, object_name, remote,
};

use super::{Cli, Failure, load, report};

#[derive(Subcommand)]
pub enum MariadbCommand {
    /// List every key version of the namespace: key id, version, state, length, KMIP identifier.
    List {
        /// The value of kmip_key_management_key_namespace.
        #[arg(long, default_value = "mariadb")]
        namespace: String,
    },
    /// Create version 1 of a key (key 1 before a new installation starts; other ids before
    /// tables use them). Refuses if the key exists.
    CreateKey {
        key_id: u32,
        #[arg(long, default_value = "mariadb")]
        namespace: String,
    },
    /// Register the keys of a file_key_management key file as version 1 of their key ids, so
    /// that data encrypted under that plugin is read under kmip_key_management as it is.
    /// Refuses, importing nothing, if a key id has versions already.
    Import {
        /// The value of file_key_management_filename.
        key_file: std::path::PathBuf,
        /// The value of file_key_management_filekey, when the file is encrypted: the password,
        /// or FILE:<path> of a file holding it.
        #[arg(long, env = "KEYRING_OKV_FILEKEY", hide_env_values = true)]
        filekey: Option<String>,
        #[arg(long, default_value = "mariadb")]
        namespace: String,
    },
    /// Make the next version of a key (as SET GLOBAL kmip_key_management_rotate_key does).
    Rotate {
        key_id: u32,
        #[arg(long, default_value = "mariadb")]
        namespace: String,
    },
}

impl From<KeyStoreError> for Failure {
    fn from(e: KeyStoreError) -> Self {
        let code = match &e {
            KeyStoreError::Missing { .. } => 4,
            KeyStoreError::Backend {
                source: ClientError::Transport(_) | ClientError::Ambiguous(_),
                ..
            } => 3,
            _ => 5,
        };
        Failure::new(code, e)
    }
}

fn store(cli: &Cli, namespace: &str) -> Result<KeyStore, Failure> {
    let conf = load(cli)?;
    let client = KmipClient::from_conf_dir(&conf).map_err(|e| Failure::new(3, e))?;
    let settings = Settings {
        namespace: namespace.to_string(),
        ..Settings::default()
    };
    Ok(KeyStore::new(client, settings)?)
}

fn state_name(state: Option<u32>) -> &'static str {
    match state {
        Some(1) => "Pre-Active",
        Some(2) => "Active",
        Some(3) => "Deactivated",
        Some(4) => "Compromised",
        Some(5) => "Destroyed",
        Some(6) => "Destroyed Compromised",
        _ => "unknown",
    }
}

pub fn run(cli: &Cli, command: &MariadbCommand) -> Result<(), Failure> {
    match command {
        MariadbCommand::List { namespace } => {
            let store = store(cli, namespace)?;
            let entries = remote::list_versions(store.client(), namespace)?;
            let rows: Vec<_> = entries
                .iter()
                .map(|e| {
                    json!({
                        "key_id": e.key_id,
                        "version": e.version,
                        "name": object_name(namespace, e.key_id, e.version),
                        "uid": e.uid,
                        "state": state_name(e.state),
                        "length_bits": e.length_bits,
                    })
                })
                .collect();
            report(cli, json!(rows), || {
                if entries.is_empty() {
                    return format!("no keys in namespace '{namespace}'");
                }
                let mut text = format!(
                    "{:>10} {:>8}  {:<12} {:>6}  UID",
                    "KEY ID", "VERSION", "STATE", "BITS"
                );
                for e in &entries {
                    text.push_str(&format!(
                        "\n{:>10} {:>8}  {:<12} {:>6}  {}",
                        e.key_id,
                        e.version,
                        state_name(e.state),
                        e.length_bits.map_or("?".to_string(), |b| b.to_string()),
                        e.uid
                    ));
                }
                text
            });
            Ok(())
        }
        MariadbCommand::CreateKey { key_id, namespace } => {
            let made = store(cli, namespace)?.create_first(*key_id)?;
            print_made(cli, namespace, &[made]);
            Ok(())
        }
        MariadbCommand::Import {
            key_file,
            filekey,
            namespace,
        } => import(cli, key_file, filekey.as_deref(), namespace),
        MariadbCommand::Rotate { key_id, namespace } => {
            let made = store(cli, namespace)?.rotate(Some(*key_id))?;
            print_made(cli, namespace, &made);
            Ok(())
        }
    }
}

fn import(
    cli: &Cli,
    key_file: &std::path::Path,
    filekey: Option<&str>,
    namespace: &str,
) -> Result<(), Failure> {
    let keys = key_file::read_key_file(key_file, filekey.filter(|f| !f.is_empty()))
        .map_err(|e| Failure::new(5, e))?;
    let store = store(cli, namespace)?;
    let pairs: Vec<(u32, &[u8])> = keys.iter().map(|k| (k.id, &k.material[..])).collect();
    let done = store.import(&pairs)?;
    for (key_id, now) in &done {
        let name = object_name(namespace, *key_id, 1);
        report(
            cli,
            json!({"key_id": key_id, "version": 1, "name": name, "imported": now}),
            || match now {
                true => format!("imported key {key_id} as version 1 ({name})"),
                false => format!("key {key_id}: version 1 ({name}) holds the file's key already"),
            },
        );
    }
    if !cli.json {
        outln!(
            "the keys of {} must be treated as exposed for as long as that file existed: once the server runs on kmip_key_management, rotate every key id (keyring-okv mariadb rotate <id>), let InnoDB re-encrypt under the new versions (innodb_encryption_threads > 0), then delete the key file and its copies",
            key_file.display()
        );
    }
    Ok(())
}

fn print_made(cli: &Cli, namespace: &str, made: &[(u32, u32)]) {
    for (key_id, version) in made {
        let name = object_name(namespace, *key_id, *version);
        report(
            cli,
            json!({"key_id": key_id, "version": version, "name": name}),
            || format!("created key {key_id} version {version} ({name})"),
        );
    }
}
