//! `keyring-okv verify`: the one command a DBA runs when in doubt. The configuration loads;
//! each server answers; every key the databases use exists on the server that named it, is
//! Active, can be fetched, and is the same object and the same bytes as the copy a running
//! server keeps in its sealed key cache file. Material is read only to be compared, never
//! shown.
//!
//! The keys a database uses are those the KMIP server lists (what mysqld's key iterator and
//! MariaDB see), the key ids named with `--key` (an InnoDB master key an error log names),
//! MariaDB's key versions with `--mariadb`, and what the sealed files of `--sealed-dir` hold.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use okv_core::config::{self, ConfDir};
use okv_core::connector::KmipClient;
use okv_core::guard::{Revocation, Verdict, WatchedKey, mariadb_next_step, poll};
use okv_core::keyring::{KeyType, Keyring, KeyringError, object_name};
use okv_core::kmip::tags;
use okv_core::products::mariadb::{KeyStore, Settings, parse_object_name, remote};

use super::key_state::{self, SealedCopy, Source};
use super::{Cli, Failure, date, keyring, one_call};

/// What verify was asked to look at besides the server's listing.
pub struct Scope<'a> {
    pub sealed_dir: Option<&'a Path>,
    pub keys: &'a [String],
    pub mariadb_namespace: Option<&'a str>,
}

/// A check's outcome: a failure carries the exit code it leads to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Warn,
    Fail(u8),
}

/// Which exit code wins when several checks fail: a revoked or replaced key first (the
/// database may be using a key the security team withdrew), then a missing key, a sealed file
/// that cannot be read, a key that cannot be fetched, and last a server that does not answer.
fn rank(code: u8) -> u8 {
    match code {
        key_state::EXIT_REVOKED => 5,
        4 => 4,
        6 => 3,
        5 => 2,
        _ => 1,
    }
}

struct Report {
    json: bool,
    checks: Vec<Value>,
    worst: Option<u8>,
    failures: usize,
    warnings: usize,
}

impl Report {
    fn say(&mut self, item: &str, outcome: Outcome, detail: impl Into<String>) {
        let detail = detail.into();
        let (tag, ok) = match outcome {
            Outcome::Ok => (" OK ", true),
            Outcome::Warn => {
                self.warnings += 1;
                ("WARN", true)
            }
            Outcome::Fail(code) => {
                self.failures += 1;
                if self.worst.is_none_or(|w| rank(code) > rank(w)) {
                    self.worst = Some(code);
                }
                ("FAIL", false)
            }
        };
        if !self.json {
            outln!("[{tag}] {item}: {detail}");
        }
        let mut row = json!({"check": item, "ok": ok, "detail": detail});
        if outcome == Outcome::Warn {
            row["warning"] = json!(true);
        }
        self.checks.push(row);
    }

    fn finish(self, keys: usize) -> Result<(), Failure> {
        let summary = match self.worst {
            None => format!(
                "verified: {keys} key(s) in force{}",
                if self.warnings > 0 {
                    format!(", {} warning(s)", self.warnings)
                } else {
                    String::new()
                }
            ),
            Some(_) => format!(
                "{} check(s) failed; the lines marked FAIL name the key or server and what to do",
                self.failures
            ),
        };
        if self.json {
            outln!(
                "{}",
                json!({
                    "checks": self.checks,
                    "ok": self.worst.is_none(),
                    "keys": keys,
                    "exit_code": self.worst.unwrap_or(0),
                    "summary": summary,
                })
            );
        } else {
            outln!("{summary}");
        }
        match self.worst {
            None => Ok(()),
            Some(code) => Err(Failure::reported(code, summary)),
        }
    }
}

pub fn run(cli: &Cli, scope: &Scope) -> Result<(), Failure> {
    let mut report = Report {
        json: cli.json,
        checks: Vec::new(),
        worst: None,
        failures: 0,
        warnings: 0,
    };
    let conf = match config::load_conf_dir(&cli.conf_dir) {
        Ok(conf) => conf,
        Err(e) => {
            report.say("configuration", Outcome::Fail(2), e.to_string());
            let _ = report.finish(0);
            return Err(Failure::reported(2, e));
        }
    };
    report.say(
        "configuration",
        Outcome::Ok,
        format!(
            "{} loads: {} server(s), client certificate '{}' valid until {}",
            cli.conf_dir.display(),
            conf.servers.len(),
            conf.identity.subject,
            date(conf.identity.not_after)
        ),
    );
    for w in &conf.warnings {
        report.say("configuration", Outcome::Warn, w.to_string());
    }
    if conf.identity.not_after < SystemTime::now() {
        report.say(
            "configuration",
            Outcome::Fail(2),
            "the client certificate ssl/cert.pem has expired; renew it",
        );
    }

    if servers(&conf, &mut report) == 0 {
        report.say(
            "keys",
            Outcome::Fail(3),
            "not checked: no KMIP server answers; start one or fix the lines above",
        );
        return report.finish(0);
    }

    let keyring = keyring(&conf)?;
    let mut sources = mysql_keys(&keyring, scope.keys, &mut report);
    let mut problems = Vec::new();
    if let Some(dir) = scope.sealed_dir {
        sources.extend(
            key_state::sealed_sources(&conf, dir, &mut problems)
                .into_iter()
                .map(|s| {
                    let owner = s
                        .sealed
                        .as_ref()
                        .map(|c| c.owner.clone())
                        .unwrap_or_default();
                    (s, owner)
                }),
        );
    }
    for problem in problems {
        report.say("sealed key cache", Outcome::Fail(6), problem);
    }
    let watched: Vec<WatchedKey> = sources.iter().map(|(s, _)| s.key.clone()).collect();
    let client = keyring.client();
    let verdicts = poll::ask(client, &watched, Instant::now() + client.call_budget());
    let mut stores = HashMap::new();
    let mut checked = 0;
    for ((source, owner), verdict) in sources.iter().zip(&verdicts) {
        checked += 1;
        check_key(
            &keyring,
            &conf,
            &mut stores,
            source,
            owner,
            verdict,
            &mut report,
        );
    }
    if let Some(namespace) = scope.mariadb_namespace {
        checked += mariadb_keys(&conf, &mut stores, namespace, &mut report);
    }
    report.finish(checked)
}

/// Each server of okvclient.ora, in order: TCP, TLS and KMIP. Returns how many answered.
fn servers(conf: &ConfDir, report: &mut Report) -> usize {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report.say("servers", Outcome::Fail(3), e.to_string());
            return 0;
        }
    };
    let mut answered = 0;
    for (i, server) in conf.servers.iter().enumerate() {
        let role = if i == 0 {
            "SERVER".to_string()
        } else {
            format!("STANDBY_SERVER {i}")
        };
        match runtime.block_on(super::check_server(conf, server)) {
            Ok(lines) => {
                answered += 1;
                let detail = lines
                    .iter()
                    .map(|(item, detail)| format!("{item} {detail}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                report.say(&format!("{role} {server}"), Outcome::Ok, detail);
            }
            Err((item, detail)) => report.say(
                &format!("{role} {server}"),
                Outcome::Fail(3),
                format!("{item}: {detail}"),
            ),
        }
    }
    answered
}

/// The MySQL keys the server lists, and the `--key` ids, each with its object and server.
fn mysql_keys(keyring: &Keyring, wanted: &[String], report: &mut Report) -> Vec<(Source, String)> {
    let mut sources = Vec::new();
    let listed = match keyring.list(false) {
        Ok(entries) => entries,
        Err(e) => {
            let message = e.to_string();
            let code = match &e {
                // Two Active objects under one name: a reader may get either key.
                KeyringError::Duplicate { .. } => key_state::EXIT_REVOKED,
                _ => Failure::from(e).code,
            };
            report.say("listing", Outcome::Fail(code), message);
            Vec::new()
        }
    };
    for entry in &listed {
        if let Some(source) = key_state::listed_source(keyring, entry) {
            sources.push((source, entry.owner.clone()));
        }
    }
    for key_id in wanted {
        if listed
            .iter()
            .any(|e| &e.key_id == key_id && e.owner.is_empty())
        {
            continue;
        }
        report.say(
            &format!("key {key_id}"),
            Outcome::Fail(4),
            format!(
                "no Active object named '{}' on the KMIP server: a database that needs it cannot open what it encrypted; the KMIP server's audit log says whether it was revoked or destroyed, and the runbooks of the manual (runbooks.md) how to restore it from a backup",
                object_name(key_id, "")
            ),
        );
    }
    sources
}

/// One key: its state on the server that named it, then a fetch (and, for a sealed file's
/// copy, the comparison with the server's bytes).
fn check_key(
    keyring: &Keyring,
    conf: &ConfDir,
    stores: &mut HashMap<String, Option<KeyStore>>,
    source: &Source,
    owner: &str,
    verdict: &Verdict,
    report: &mut Report,
) {
    let k = &source.key;
    let item = match &source.sealed {
        None => format!("key {}", k.key),
        Some(_) => format!("sealed copy of {} in {}", k.key, source.from),
    };
    match verdict {
        Verdict::InForce => {}
        Verdict::Revoked(why) => {
            let detail = match (why, &source.sealed) {
                (Revocation::Replaced(_), Some(_)) => format!(
                    "the file holds object {} but the KMIP server {}: during an outage the database would be given a key the server no longer gives; run {} and remove the file (`keyring-okv sealed-cache remove`) once the server is back",
                    k.uid,
                    why.describe(),
                    k.next_step
                ),
                _ => format!(
                    "object {} on {} is {}; run {}",
                    k.uid,
                    k.server,
                    why.describe(),
                    k.next_step
                ),
            };
            report.say(&item, Outcome::Fail(key_state::EXIT_REVOKED), detail);
            return;
        }
        Verdict::Unknown(why) => {
            report.say(
                &item,
                Outcome::Fail(3),
                format!(
                    "{} could not be asked about object {}: {why}",
                    k.server, k.uid
                ),
            );
            return;
        }
    }
    let fetched = match &source.sealed {
        Some(copy) if copy.mariadb => fetch_mariadb(conf, stores, copy),
        _ => fetch_mysql(keyring, source, owner),
    };
    match fetched {
        Ok(detail) => report.say(
            &item,
            Outcome::Ok,
            format!("Active, object {} on {}, {detail}", k.uid, k.server),
        ),
        Err((code, detail)) => report.say(&item, Outcome::Fail(code), detail),
    }
}

/// Reads a MySQL key as mysqld would; a sealed copy must hold the same type and bytes.
fn fetch_mysql(keyring: &Keyring, source: &Source, owner: &str) -> Result<String, (u8, String)> {
    let key_id = source.key.key.as_str();
    let key = match one_call(keyring, |k| k.fetch(key_id, owner)) {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Err((
                4,
                format!(
                    "listed but not found when read: it was removed meanwhile, or the server lists what it does not give; run verify again, then {}",
                    source.key.next_step
                ),
            ));
        }
        Err(e) => {
            let message = e.to_string();
            return Err((Failure::from(e).code, format!("cannot be read: {message}")));
        }
    };
    let shape = shape_problem(key.key_type, key.material.len());
    if let Some(problem) = shape {
        return Err((5, problem));
    }
    let fetched_uid = keyring.known_uid(key_id, owner);
    if let Some(copy) = &source.sealed {
        if fetched_uid.as_deref() != Some(source.key.uid.as_str()) {
            return Err((
                key_state::EXIT_REVOKED,
                format!(
                    "the file holds object {} but the key read now is object {}; run {}",
                    source.key.uid,
                    fetched_uid.unwrap_or_default(),
                    source.key.next_step
                ),
            ));
        }
        if !same_bytes(&copy.material, &key.material) {
            return Err((
                key_state::EXIT_REVOKED,
                format!(
                    "the file's copy of object {} differs from the bytes the KMIP server gives for it: the file is from another key; remove it (`keyring-okv sealed-cache remove`) while the server answers",
                    source.key.uid
                ),
            ));
        }
        return Ok(format!(
            "{} key of {} bytes, the same bytes as on the server",
            key.key_type.name(),
            key.material.len()
        ));
    }
    Ok(format!(
        "{} key of {} bytes, read",
        key.key_type.name(),
        key.material.len()
    ))
}

/// What is wrong with a key of this type and length, for what the databases accept.
fn shape_problem(key_type: KeyType, len: usize) -> Option<String> {
    match key_type {
        KeyType::Aes if ![16, 24, 32].contains(&len) => Some(format!(
            "the server gives an AES key of {len} bytes; InnoDB and the binary log need 16, 24 or 32"
        )),
        _ if len == 0 => Some("the server gives an empty key".into()),
        _ => None,
    }
}

/// Compares without stopping at the first difference: how far two keys agree is not told.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A MariaDB version from a sealed file, read through MariaDB's key store of its namespace.
fn fetch_mariadb(
    conf: &ConfDir,
    stores: &mut HashMap<String, Option<KeyStore>>,
    copy: &SealedCopy,
) -> Result<String, (u8, String)> {
    let Some(namespace) = okv_core::products::mariadb::naming::namespace_of(&copy.key_id) else {
        return Err((5, format!("'{}' is not a MariaDB key name", copy.key_id)));
    };
    let Some((key_id, version)) = parse_object_name(namespace, &copy.key_id) else {
        return Err((5, format!("'{}' is not a MariaDB key name", copy.key_id)));
    };
    let store = stores
        .entry(namespace.to_string())
        .or_insert_with(|| mariadb_store(conf, namespace));
    let Some(store) = store else {
        return Err((3, "cannot make a KMIP client for MariaDB's keys".into()));
    };
    match store.with_key(key_id, version, |bytes| {
        (bytes.len(), same_bytes(bytes, &copy.material))
    }) {
        Some((len, true)) => Ok(format!(
            "key {key_id} version {version}, {len} bytes, the same bytes as on the server"
        )),
        Some((_, false)) => Err((
            key_state::EXIT_REVOKED,
            format!(
                "the file's copy of key {key_id} version {version} differs from the bytes the KMIP server gives: remove the file (`keyring-okv sealed-cache remove`) while the server answers"
            ),
        )),
        None => Err((
            5,
            format!(
                "key {key_id} version {version} cannot be read from the KMIP server; `keyring-okv --log info mariadb list` shows its state"
            ),
        )),
    }
}

fn mariadb_store(conf: &ConfDir, namespace: &str) -> Option<KeyStore> {
    let client = KmipClient::from_conf_dir(conf).ok()?;
    KeyStore::new(
        client,
        Settings {
            namespace: namespace.to_string(),
            ..Settings::default()
        },
    )
    .ok()
}

/// MariaDB's key versions of `namespace`: key 1 must exist; each key id's latest version must
/// be Active and readable; an older version that is not Active is a warning (pages still
/// encrypted with it cannot be read). Returns how many versions were looked at.
fn mariadb_keys(
    conf: &ConfDir,
    stores: &mut HashMap<String, Option<KeyStore>>,
    namespace: &str,
    report: &mut Report,
) -> usize {
    let item = format!("MariaDB namespace '{namespace}'");
    // The sealed copies' checks may have made this namespace's store (and its connection).
    let store = stores
        .entry(namespace.to_string())
        .or_insert_with(|| mariadb_store(conf, namespace));
    let Some(store) = store else {
        report.say(
            &item,
            Outcome::Fail(3),
            "cannot make a KMIP client for MariaDB's keys",
        );
        return 0;
    };
    let versions = match remote::list_versions(store.client(), namespace) {
        Ok(v) => v,
        Err(e) => {
            let message = e.to_string();
            report.say(&item, Outcome::Fail(Failure::from(e).code), message);
            return 0;
        }
    };
    let mut by_key: BTreeMap<u32, Vec<&remote::VersionEntry>> = BTreeMap::new();
    for v in &versions {
        by_key.entry(v.key_id).or_default().push(v);
    }
    if !by_key.contains_key(&1) {
        report.say(
            &item,
            Outcome::Fail(4),
            format!(
                "key 1 has no version: MariaDB needs it for every encrypted table and the redo log; create it with `keyring-okv mariadb create-key 1 --namespace {namespace}` before the server starts"
            ),
        );
    }
    for (key_id, entries) in &by_key {
        let key_item = format!("MariaDB key {key_id}");
        let latest = entries.iter().map(|e| e.version).max().unwrap_or(0);
        let mut per_version: BTreeMap<u32, Vec<&remote::VersionEntry>> = BTreeMap::new();
        for e in entries {
            per_version.entry(e.version).or_default().push(e);
        }
        let mut in_force = Vec::new();
        for (version, objects) in &per_version {
            let active: Vec<_> = objects
                .iter()
                .filter(|o| o.state == Some(tags::state::ACTIVE))
                .collect();
            if active.len() > 1 {
                report.say(
                    &key_item,
                    Outcome::Fail(key_state::EXIT_REVOKED),
                    format!(
                        "version {version} is held by {} Active objects ({}); a reader may get either key: revoke all but the one the data was encrypted with",
                        active.len(),
                        active.iter().map(|o| o.uid.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            }
            let Some(object) = active.first() else {
                let state = objects
                    .first()
                    .and_then(|o| o.state)
                    .map_or("in no known state".into(), tags::name_of_state);
                if *version == latest {
                    report.say(
                        &key_item,
                        Outcome::Fail(key_state::EXIT_REVOKED),
                        format!(
                            "the latest version {version} is {state}: new pages cannot be written with it; run {}",
                            mariadb_next_step(*key_id)
                        ),
                    );
                } else {
                    report.say(
                        &key_item,
                        Outcome::Warn,
                        format!(
                            "version {version} is {state}: pages still encrypted with it cannot be read; information_schema.INNODB_TABLESPACES_ENCRYPTION's MIN_KEY_VERSION says whether any are"
                        ),
                    );
                }
                continue;
            };
            match store.with_key(*key_id, *version, |bytes| bytes.len()) {
                Some(len) if [16, 24, 32].contains(&len) => in_force.push(*version),
                Some(len) => report.say(
                    &key_item,
                    Outcome::Fail(5),
                    format!(
                        "version {version} (object {}) is {len} bytes; MariaDB needs 16, 24 or 32",
                        object.uid
                    ),
                ),
                None => report.say(
                    &key_item,
                    Outcome::Fail(5),
                    format!(
                        "version {version} (object {}) is Active but cannot be read; `keyring-okv --log info mariadb list --namespace {namespace}` and the error above say why",
                        object.uid
                    ),
                ),
            }
        }
        if !in_force.is_empty() {
            report.say(
                &key_item,
                Outcome::Ok,
                format!(
                    "latest version {latest}; version(s) {} Active and read",
                    in_force
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    versions.len()
}
