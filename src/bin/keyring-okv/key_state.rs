//! `keyring-okv key-state`: the keys of a configuration and their state on the KMIP server, as
//! the servers' key-state guard asks for it (`okv_core::guard`): every key listed on the
//! server, and every key a running server holds in its sealed key cache file (with
//! `--sealed-dir`), each asked about at the server that named it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use zeroize::Zeroizing;

use serde_json::{Value, json};

use okv_core::config::ConfDir;
use okv_core::guard::{Revocation, Verdict, WatchedKey, mariadb_next_step, mysql_next_step, poll};
use okv_core::keyring::{KeyEntry, Keyring, object_name};
use okv_core::sealed::{self, file};

use super::{Cli, Failure, keyring, load};

/// The exit code when a key is revoked, destroyed or replaced on the KMIP server.
pub const EXIT_REVOKED: u8 = 7;

/// Where a key to ask about came from.
pub struct Source {
    pub key: WatchedKey,
    pub from: String,
    /// What a sealed key cache file holds for it (for `verify`, which compares it with the
    /// server's copy without showing either).
    pub sealed: Option<SealedCopy>,
}

/// One entry of a sealed key cache file.
pub struct SealedCopy {
    /// The entry's key id: a MySQL key id, or MariaDB's `<namespace>/<key id>/<version>`.
    pub key_id: String,
    pub owner: String,
    pub mariadb: bool,
    pub material: Zeroizing<Vec<u8>>,
}

/// A key of the server's listing, at the object and server the listing found it (None if the
/// keyring did not learn them, which a complete listing always teaches).
pub fn listed_source(keyring: &Keyring, entry: &KeyEntry) -> Option<Source> {
    let (uid, server) = keyring.known(&entry.key_id, &entry.owner)?;
    Some(Source {
        key: WatchedKey {
            uid,
            server,
            name: object_name(&entry.key_id, &entry.owner),
            key: entry.key_id.clone(),
            next_step: mysql_next_step(&entry.key_id),
        },
        from: "server".into(),
        sealed: None,
    })
}

/// The keys held by the sealed key cache files of `dir` (every product's), each with the file
/// it came from; a file that cannot be read or opened is described in `problems`.
pub fn sealed_sources(conf: &ConfDir, dir: &Path, problems: &mut Vec<String>) -> Vec<Source> {
    let mut keys = Vec::new();
    for product in [sealed::PLUGIN, sealed::COMPONENT, sealed::MARIADB] {
        let path = sealed::path_in(dir, &product);
        let bytes = match file::read_checked(&path, file::Owner::Any) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let key = conf.seal_root.key_for(product.name.as_bytes());
        let contents = match file::open(&path, &key, &bytes) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let mariadb = product.name == sealed::MARIADB.name;
        for ((key_id, owner), e) in &contents.entries {
            let (name, next_step) = if mariadb {
                let id = key_id
                    .split('/')
                    .nth(1)
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                (key_id.clone(), mariadb_next_step(id))
            } else {
                (object_name(key_id, owner), mysql_next_step(key_id))
            };
            keys.push(Source {
                key: WatchedKey {
                    uid: e.uid.clone(),
                    server: e.server.clone(),
                    name,
                    key: key_id.clone(),
                    next_step,
                },
                from: path.display().to_string(),
                sealed: Some(SealedCopy {
                    key_id: key_id.clone(),
                    owner: owner.clone(),
                    mariadb,
                    material: e.material.clone(),
                }),
            });
        }
    }
    keys
}

pub fn run(cli: &Cli, sealed_dir: Option<&PathBuf>) -> Result<(), Failure> {
    let conf = load(cli)?;
    let keyring = keyring(&conf)?;
    let mut keys = Vec::new();
    for entry in keyring.list(false)? {
        keys.extend(listed_source(&keyring, &entry));
    }
    let mut problems = Vec::new();
    if let Some(dir) = sealed_dir {
        keys.extend(sealed_sources(&conf, dir, &mut problems));
    }
    let watched: Vec<WatchedKey> = keys.iter().map(|s| s.key.clone()).collect();
    let client = keyring.client();
    let verdicts = poll::ask(client, &watched, Instant::now() + client.call_budget());
    let (mut revoked, mut unknown) = (0, 0);
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (source, verdict) in keys.iter().zip(&verdicts) {
        let k = &source.key;
        let (state, detail) = match verdict {
            Verdict::InForce => ("in force".to_string(), String::new()),
            Verdict::Revoked(why) => {
                revoked += 1;
                (
                    match why {
                        Revocation::State(_) => "revoked".to_string(),
                        Revocation::NotFound => "not found".to_string(),
                        Revocation::Replaced(_) => "replaced".to_string(),
                    },
                    format!("{}; run {}", why.describe(), k.next_step),
                )
            }
            Verdict::Unknown(why) => {
                unknown += 1;
                ("not asked".to_string(), why.clone())
            }
        };
        lines.push(format!(
            "{:<40} {:<38} {:<22} {:<10} {}",
            k.key, k.uid, k.server, state, detail
        ));
        rows.push(json!({
            "key": k.key, "name": k.name, "unique_id": k.uid, "server": k.server,
            "from": source.from, "state": state, "detail": detail,
        }));
    }
    if cli.json {
        outln!(
            "{}",
            json!({"keys": Value::Array(rows), "revoked": revoked, "not_asked": unknown, "problems": problems})
        );
    } else {
        if keys.is_empty() {
            outln!("no keys found");
        } else {
            outln!(
                "{:<40} {:<38} {:<22} {:<10} DETAIL",
                "KEY",
                "UNIQUE ID",
                "SERVER",
                "STATE"
            );
            for line in lines {
                outln!("{line}");
            }
        }
        for problem in &problems {
            outln!("sealed key cache: {problem}");
        }
    }
    if revoked > 0 {
        return Err(Failure::reported(
            EXIT_REVOKED,
            format!("{revoked} key(s) revoked, destroyed or replaced on the KMIP server"),
        ));
    }
    if unknown > 0 {
        return Err(Failure::reported(
            3,
            format!("{unknown} key(s) could not be asked about"),
        ));
    }
    Ok(())
}
