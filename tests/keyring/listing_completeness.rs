//! Listings are complete on every KMIP server, or fail loudly: against in-process servers that
//! cap Locate at 1000 identifiers whatever Maximum Items says, with every combination of
//! "Initial Date ranges honoured or ignored" and "Offset Items absent (KMIP 1.1), honoured
//! (1.3+) or accepted and ignored", with 1100 and 10,000 keys, through every product's listing:
//! the core, `keyring-okv list` and `check`, `keyring-okv mariadb list`, the plugin's key
//! iterator, the component's keys iterator and `mysql_migrate_keyring` from
//! component_keyring_okv to component_keyring_file in the real mysqld 9.7. Also: objects made
//! and removed between pages, a server shown to ignore a filter is never trusted with it again,
//! and PyKMIP (KMIP 1.4) is paged. And through the same products: listings in storage order,
//! date ranges with an exclusive end or sub-second dates, an object moving before the pages
//! read, caps under 64, a server holding exactly its cap that grows, Located Items right and
//! wrong (`BEHAVIOURS`), and mysql_migrate_keyring under each.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::component;
use common::fault_server::FaultServer;
use common::host::{results, run_host};
use common::kmip_quirks::{Change, DateBounds, LocatedItems, Object, Offset, Quirks, QuirkyKmip};
use common::mysql;
use common::pykmip::{lab, unique};
use okv_core::config::{Host, Options, ServerAddr, load_conf_dir};
use okv_core::connector::KmipClient;
use okv_core::health::Health;
use okv_core::keyring::{Keyring, KeyringError, object_name};

const CAP: usize = 1000;
const SIZES: [usize; 2] = [1100, 10_000];
const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

#[derive(Clone, Copy, Debug)]
struct Combo {
    dates_ignored: bool,
    offset: Offset,
}

const COMBOS: [Combo; 6] = [
    Combo {
        dates_ignored: false,
        offset: Offset::Absent,
    },
    Combo {
        dates_ignored: false,
        offset: Offset::Honoured,
    },
    Combo {
        dates_ignored: false,
        offset: Offset::Ignored,
    },
    Combo {
        dates_ignored: true,
        offset: Offset::Absent,
    },
    Combo {
        dates_ignored: true,
        offset: Offset::Honoured,
    },
    Combo {
        dates_ignored: true,
        offset: Offset::Ignored,
    },
];

impl Combo {
    fn name(self) -> String {
        format!(
            "cap {CAP}, Initial Date {}, Offset Items {}",
            if self.dates_ignored {
                "ignored"
            } else {
                "honoured"
            },
            match self.offset {
                Offset::Absent => "absent (KMIP 1.1)",
                Offset::Honoured => "honoured (KMIP 1.4)",
                Offset::Ignored => "ignored",
            }
        )
    }

    fn quirks(self) -> Quirks {
        Quirks {
            locate_cap: Some(CAP),
            ignore_initial_date: self.dates_ignored,
            offset: self.offset,
            ..Quirks::default()
        }
    }

    /// The listing method the status shows, when the server can be listed.
    fn method(self) -> Option<&'static str> {
        match (self.offset, self.dates_ignored) {
            (Offset::Honoured, _) => Some("Offset Items paging (KMIP 1.4)"),
            (_, false) => Some("Initial Date partitioning"),
            (_, true) => None,
        }
    }

    /// What the one error line must say of the server.
    fn refusal(self) -> &'static str {
        match self.offset {
            Offset::Ignored => "ignores Initial Date ranges and ignores Offset Items",
            _ => "ignores Initial Date ranges and offers no KMIP 1.3 Offset Items",
        }
    }
}

struct Server {
    kmip: Arc<QuirkyKmip>,
    fault: FaultServer,
}

impl Server {
    fn start(quirks: Quirks) -> Server {
        let (kmip, fault) = common::kmip_quirks::serve("u", quirks);
        Server { kmip, fault }
    }

    /// A server with `count` Active keys of ours, 7 made a second.
    fn with_keys(quirks: Quirks, count: usize) -> Server {
        let s = Server::start(quirks);
        for i in 0..count {
            s.kmip.plant(key_object(i));
        }
        s
    }

    fn addr(&self) -> ServerAddr {
        ServerAddr {
            host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port: self.fault.port(),
        }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.fault.port())
    }

    fn keyring(&self) -> (Keyring, Arc<Health>) {
        let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
        let options = Options {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            ..conf.options.clone()
        };
        let client = KmipClient::new(vec![self.addr()], conf.tls, options).expect("client");
        let health = client.health();
        (Keyring::new(client), health)
    }

    /// A copy of the lab's configuration directory whose okvclient.ora names this server.
    fn conf_dir(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("conf");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&lab().conf_dir)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(copy.join("okvclient.ora"), self.ora()).unwrap();
        dir
    }

    fn ora(&self) -> String {
        format!("SERVER={}\n", self.endpoint())
    }

    fn locates(&self) -> usize {
        self.kmip.locates.load(Ordering::SeqCst)
    }
}

fn key_object(i: usize) -> Object {
    Object::aes(
        &format!("p{i}"),
        &object_name(&format!("key-{i}"), "o"),
        vec![u8::try_from(i % 251).unwrap(); 32],
        1_700_000_000 + i64::try_from(i / 7).unwrap(),
    )
}

fn conf_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("conf")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that a listing error is the one line the combination calls for.
/// `keyring-okv --conf-dir DIR ARGS`.
fn keyring_okv(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    Command::new(KEYRING_OKV)
        .arg("--conf-dir")
        .arg(conf_path(dir))
        .args(args)
        .output()
        .unwrap()
}

/// The key ids of a `keyring-okv --json list` answer.
fn listed_ids(out: &Output) -> BTreeSet<String> {
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["key_id"].as_str().unwrap().to_string())
        .collect()
}

/// The error of a `keyring-okv --json` command that refused to list: it failed, and its
/// message starts with `prefix`.
fn refusal(out: &Output, name: impl std::fmt::Display, prefix: &str) -> String {
    assert!(!out.status.success(), "{name}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = answer["error"].as_str().unwrap().to_string();
    assert!(message.starts_with(prefix), "{message}");
    message
}

/// component_host loading the component for `s` and walking its keys iterator: its report
/// (the host must itself succeed; what the component did is in the RESULT lines).
fn component_keys(s: &Server) -> String {
    let dir = s.conf_dir();
    std::fs::write(
        dir.path().join("component_keyring_okv.cnf"),
        format!(
            "{{\"kmip_configuration_directory\": \"{}\"}}",
            conf_path(&dir).display()
        ),
    )
    .unwrap();
    let out = Command::new(component::host_program())
        .arg(component::component_library())
        .arg(dir.path())
        .arg("-")
        .args(["load", "keys"])
        .output()
        .expect("run component_host");
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    report
}

/// The RESULT lines of a C host's report.
fn host_results(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .collect()
}

fn assert_refusal(combo: Combo, server: &Server, message: &str) {
    assert!(
        message.contains(&format!("KMIP server {}", server.endpoint())),
        "{}: {message}",
        combo.name()
    );
    assert!(
        message.contains(combo.refusal()),
        "{}: {message}",
        combo.name()
    );
    assert!(
        message.contains("raise the server's limit on Locate answers"),
        "{}: {message}",
        combo.name()
    );
}

/// Asserts that `report` (a program's output or a log) has the one error line the combination
/// calls for.
fn assert_logged_refusal(combo: Combo, server: &Server, report: &str) {
    let line = report
        .lines()
        .find(|l| l.contains("the key list is incomplete"))
        .unwrap_or_else(|| panic!("no error line:\n{report}"));
    assert_refusal(combo, server, line);
}

#[test]
fn the_core_lists_every_key_or_fails_loudly_on_every_combination() {
    for count in SIZES {
        for combo in COMBOS {
            let s = Server::with_keys(combo.quirks(), count);
            let (k, health) = s.keyring();
            let started = Instant::now();
            let listed = k.list(false);
            let took = started.elapsed();
            let method = health.snapshot().listing_method;
            match (combo.method(), listed) {
                (Some(expected), Ok(entries)) => {
                    let ids: BTreeSet<&str> = entries.iter().map(|e| e.key_id.as_str()).collect();
                    assert_eq!(entries.len(), count, "{}", combo.name());
                    assert_eq!(ids.len(), count, "{}: an entry twice", combo.name());
                    assert_eq!(method, expected, "{}", combo.name());
                    let cost = k.last_listing().unwrap();
                    println!(
                        "LISTING {count} keys | {} | {method} | {} requests ({} Locate) | {:.2} s",
                        combo.name(),
                        cost.requests,
                        cost.locates,
                        took.as_secs_f64()
                    );
                }
                (None, Err(KeyringError::ListIncomplete(message))) => {
                    assert_refusal(combo, &s, &message);
                    assert!(method.starts_with("none: "), "{method}");
                    println!(
                        "LISTING {count} keys | {} | refused after {} Locate | {:.2} s",
                        combo.name(),
                        s.locates(),
                        took.as_secs_f64()
                    );
                    // The server is never probed with that method again: one Locate, refused.
                    let before = s.locates();
                    assert!(matches!(
                        k.list(false),
                        Err(KeyringError::ListIncomplete(_))
                    ));
                    assert_eq!(s.locates() - before, 1, "{}", combo.name());
                    // Only listings fail: fetches and writes keep working.
                    let fetched = k.fetch("key-5", "o").unwrap().expect("key-5");
                    assert_eq!(&fetched.material[..], &[5u8; 32][..]);
                    k.generate("new-key", "o", "AES", 32).unwrap();
                    assert!(k.fetch("new-key", "o").unwrap().is_some());
                }
                (expected, got) => panic!(
                    "{} with {count} keys: expected {expected:?}, got {:?}",
                    combo.name(),
                    got.map(|e| e.len())
                ),
            }
        }
    }
}

#[test]
fn keyring_okv_list_and_check_say_the_same() {
    for count in SIZES {
        for combo in COMBOS {
            let s = Server::with_keys(combo.quirks(), count);
            let dir = s.conf_dir();
            let out = keyring_okv(&dir, &["--json", "list"]);
            match combo.method() {
                Some(_) => {
                    assert!(out.status.success(), "{}: {}", combo.name(), text(&out));
                    assert_eq!(listed_ids(&out).len(), count, "{}", combo.name());
                }
                None => {
                    let message = refusal(
                        &out,
                        combo.name(),
                        "the key list is incomplete, so none is given",
                    );
                    let message = message.as_str();
                    assert_refusal(combo, &s, message);
                }
            }
            if count == SIZES[0] {
                // check names the method a listing of the server gets, or fails saying why.
                let out = Command::new(KEYRING_OKV)
                    .arg("--conf-dir")
                    .arg(conf_path(&dir))
                    .arg("check")
                    .output()
                    .unwrap();
                let report = text(&out);
                let line = report
                    .lines()
                    .find(|l| l.contains(&format!("SERVER {} listing", s.endpoint())))
                    .unwrap_or_else(|| panic!("no listing line:\n{report}"));
                match combo.method() {
                    Some(method) => {
                        assert!(out.status.success(), "{report}");
                        assert!(line.starts_with("[ OK ]"), "{line}");
                        assert!(
                            line.contains(&format!("{count} keys of {count} objects by {method}")),
                            "{line}"
                        );
                    }
                    None => {
                        assert_eq!(out.status.code(), Some(3), "{report}");
                        assert!(line.starts_with("[FAIL]"), "{line}");
                        assert!(line.contains(combo.refusal()), "{line}");
                    }
                }
            }
        }
    }
}

#[test]
fn keyring_okv_mariadb_list_is_complete_or_fails() {
    for combo in COMBOS {
        let s = Server::start(combo.quirks());
        let count = SIZES[0];
        for i in 0..count {
            let key_id = i / 10 + 1;
            let version = i % 10 + 1;
            s.kmip.plant(Object::aes(
                &format!("m{i}"),
                &format!("mdb/{key_id}/{version}"),
                vec![1; 32],
                1_700_000_000 + i64::try_from(i / 7).unwrap(),
            ));
        }
        let dir = s.conf_dir();
        let out = keyring_okv(&dir, &["--json", "mariadb", "list", "--namespace", "mdb"]);
        match combo.method() {
            Some(_) => {
                assert!(out.status.success(), "{}: {}", combo.name(), text(&out));
                let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(rows.as_array().unwrap().len(), count, "{}", combo.name());
            }
            None => {
                let message = refusal(
                    &out,
                    combo.name(),
                    "the key list of namespace mdb is incomplete",
                );
                let message = message.as_str();
                assert_refusal(combo, &s, message);
            }
        }
    }
}

#[test]
fn the_plugin_key_iterator_lists_every_key_or_none() {
    for count in SIZES {
        for combo in COMBOS {
            let s = Server::with_keys(combo.quirks(), count);
            let dir = s.conf_dir();
            let out = run_host(conf_path(&dir).to_str().unwrap(), &["list"]);
            let got = results(&out);
            let keys = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("KEY "))
                .count();
            match combo.method() {
                Some(_) => {
                    assert!(
                        got.contains(&format!("list {count}")),
                        "{}: {got:?}",
                        combo.name()
                    );
                    assert_eq!(keys, count);
                }
                None => {
                    // mysqld gets no iterator, and its error log one line saying why.
                    assert!(got.contains(&"list error".to_string()), "{got:?}");
                    assert_eq!(keys, 0);
                    let log = text(&out);
                    assert_logged_refusal(combo, &s, &log);
                }
            }
        }
    }
}

#[test]
fn the_component_keys_iterator_lists_every_key_or_none() {
    for count in SIZES {
        for combo in COMBOS {
            let s = Server::with_keys(combo.quirks(), count);
            let report = component_keys(&s);
            let results = host_results(&report);
            let keys = results.iter().filter(|r| r.starts_with("key ")).count();
            match combo.method() {
                Some(_) => {
                    assert!(results.contains(&"load 0"), "{results:?}");
                    assert!(results.contains(&"keys_init 0"), "{results:?}");
                    assert_eq!(keys, count, "{}", combo.name());
                }
                None => {
                    assert!(!results.contains(&"keys_init 0"), "{results:?}");
                    assert_eq!(keys, 0);
                    assert_logged_refusal(combo, &s, &report);
                }
            }
        }
    }
}

/// mysql_migrate_keyring from component_keyring_okv to component_keyring_file in the chroot:
/// every key arrives, or the migration fails and says why.
#[test]
fn mysql_migrate_keyring_moves_every_key_or_fails() {
    component::plugin_dir();
    // The combinations run side by side: each has its own server and directories, and most of
    // a migration's time is component_keyring_file rewriting its file once per key.
    std::thread::scope(|scope| {
        for count in SIZES {
            for (n, combo) in COMBOS.into_iter().enumerate() {
                scope.spawn(move || migrate_one(count, n, combo));
            }
        }
    });
}

fn migrate_one(count: usize, n: usize, combo: Combo) {
    let s = Server::with_keys(combo.quirks(), count);
    let started = Instant::now();
    let (out, report, keys) = migrate(&s, &format!("listmig-{count}-{n}"));
    let migrated = keys.matches("\"data_id\":\"key-").count();
    match combo.method() {
        Some(_) => {
            assert!(out.status.success(), "{}:\n{report}", combo.name());
            assert_eq!(migrated, count, "{}", combo.name());
            println!(
                "MIGRATION {count} keys | {} | {:.1} s",
                combo.name(),
                started.elapsed().as_secs_f64()
            );
        }
        None => {
            assert!(!out.status.success(), "{}:\n{report}", combo.name());
            assert_eq!(migrated, 0, "{}: {migrated} keys moved", combo.name());
            assert_logged_refusal(combo, &s, &report);
        }
    }
}

/// Runs mysql_migrate_keyring in the chroot from component_keyring_okv (on `s`) to
/// component_keyring_file, in directories named for `name`: its output, its output as text,
/// and component_keyring_file's file afterwards.
fn migrate(s: &Server, name: &str) -> (Output, String, String) {
    let conf = component::conf_dir_in_chroot(&lab().conf_dir, name, Some(s.ora()));
    let cfg = format!("/srv/{name}-cfg");
    let cfg_host = mysql::root().join(cfg.trim_start_matches('/'));
    let _ = std::fs::remove_dir_all(&cfg_host);
    std::fs::create_dir_all(&cfg_host).unwrap();
    std::fs::write(
        cfg_host.join("component_keyring_okv.cnf"),
        format!("{{\"kmip_configuration_directory\": \"{conf}\"}}\n"),
    )
    .unwrap();
    std::fs::write(
        cfg_host.join("component_keyring_file.cnf"),
        format!("{{\"path\": \"{cfg}/keys\", \"read_only\": false}}\n"),
    )
    .unwrap();
    let out = Command::new("chroot")
        .arg(mysql::root())
        .args([
            "/usr/bin/mysql_migrate_keyring",
            "--component-dir=/usr/lib/mysql/plugin",
            "--source-keyring=component_keyring_okv",
            &format!("--source-keyring-configuration-dir={cfg}"),
            "--destination-keyring=component_keyring_file",
            &format!("--destination-keyring-configuration-dir={cfg}"),
        ])
        .output()
        .expect("run mysql_migrate_keyring");
    let report = text(&out);
    let keys = std::fs::read_to_string(cfg_host.join("keys")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&cfg_host);
    let _ = std::fs::remove_dir_all(mysql::root().join(conf.trim_start_matches('/')));
    (out, report, keys)
}

/// The objects of a listing that must be there whatever happened between its pages.
fn survivors(total: usize, removed: &[usize]) -> BTreeSet<String> {
    (0..total)
        .filter(|i| !removed.contains(i))
        .map(|i| format!("key-{i}"))
        .collect()
}

#[test]
fn objects_made_and_removed_between_pages_do_not_make_a_listing_wrong() {
    for oldest_first in [false, true] {
        let total = 3500;
        let s = Server::with_keys(
            Quirks {
                oldest_first,
                ..Combo {
                    dates_ignored: true,
                    offset: Offset::Honoured,
                }
                .quirks()
            },
            total,
        );
        // Locate 0 is the first answer; 1, 2… are pages. New objects land before the pages
        // already read (newest first) or after them; removed ones shift every later page.
        let mut changes = Vec::new();
        for j in 0..5 {
            changes.push((
                2,
                Change::Plant(Object::aes(
                    &format!("n{j}"),
                    &object_name(&format!("new-{j}"), "o"),
                    vec![9; 32],
                    1_800_000_000,
                )),
            ));
        }
        let removed = [3, 1500, 2600];
        for i in removed {
            changes.push((3, Change::Remove(format!("p{i}"))));
        }
        *s.kmip.between_locates.lock().unwrap() = changes;
        let (k, health) = s.keyring();
        let entries = k.list(false).unwrap();
        let listed: Vec<&str> = entries.iter().map(|e| e.key_id.as_str()).collect();
        let unique: BTreeSet<String> = listed.iter().map(|s| s.to_string()).collect();
        assert_eq!(unique.len(), listed.len(), "an object listed twice");
        let missing: Vec<String> = survivors(total, &removed)
            .into_iter()
            .filter(|id| !unique.contains(id))
            .collect();
        assert!(
            missing.is_empty(),
            "oldest_first {oldest_first}: {missing:?}"
        );
        assert_eq!(
            health.snapshot().listing_method,
            "Offset Items paging (KMIP 1.4)"
        );
    }
}

#[test]
fn a_server_that_ignores_offset_items_is_listed_by_date_and_never_paged_again() {
    let s = Server::with_keys(
        Combo {
            dates_ignored: false,
            offset: Offset::Ignored,
        }
        .quirks(),
        2500,
    );
    let (k, health) = s.keyring();
    assert_eq!(k.list(false).unwrap().len(), 2500);
    assert_eq!(
        health.snapshot().listing_method,
        "Initial Date partitioning"
    );
    let first = k.last_listing().unwrap();
    assert_eq!(k.list(false).unwrap().len(), 2500);
    let second = k.last_listing().unwrap();
    // The first listing tried one page; the second goes straight to date ranges.
    assert!(second.locates < first.locates, "{first:?} then {second:?}");
}

#[test]
fn a_later_smaller_listing_of_a_paging_server_needs_no_probe() {
    // Below the cap: the first listing shows its answer whole (one empty page). The next
    // answer as large may be capped (the server may cap at 500 and hold more now): it is
    // paged again. A smaller one is taken as it is.
    let s = Server::with_keys(
        Quirks {
            offset: Offset::Honoured,
            ..Quirks::default()
        },
        500,
    );
    let (k, health) = s.keyring();
    assert_eq!(k.list(false).unwrap().len(), 500);
    assert_eq!(
        health.snapshot().listing_method,
        "Offset Items paging (KMIP 1.4)"
    );
    // Symmetric keys: the answer and a page after it; secret data: one empty answer.
    assert_eq!(k.last_listing().unwrap().locates, 3);
    assert_eq!(k.list(false).unwrap().len(), 500);
    assert_eq!(k.last_listing().unwrap().locates, 3);
    s.kmip.remove("p7");
    assert_eq!(k.list(false).unwrap().len(), 499);
    assert_eq!(k.last_listing().unwrap().locates, 2);
    assert_eq!(health.snapshot().listing_method, "single Locate answer");
}

#[test]
fn pykmip_is_paged_with_offset_items() {
    let (keyring, health) = {
        let conf = load_conf_dir(&lab().conf_dir).expect("lab conf dir");
        let client = KmipClient::from_conf_dir(&conf).expect("client");
        let health = client.health();
        (Keyring::new(client), health)
    };
    let prefix = unique("paged");
    let ids: Vec<String> = (0..70).map(|i| format!("{prefix}-{i}")).collect();
    for id in &ids {
        keyring.generate(id, "", "AES", 16).unwrap();
    }
    let listed = keyring.list(false);
    let method = health.snapshot().listing_method;
    for id in &ids {
        keyring.remove(id, "").unwrap();
    }
    let listed: BTreeSet<String> = listed.unwrap().into_iter().map(|e| e.key_id).collect();
    for id in &ids {
        assert!(listed.contains(id), "{id} missing");
    }
    assert_eq!(method, "Offset Items paging (KMIP 1.4)");
}

// Issue 28's behaviours: each through the core, `keyring-okv list`, `keyring-okv mariadb list`,
// the plugin's key iterator and the component's keys iterator. Each must end with a complete
// listing or a loud error.

/// The cap the behaviours below use when they cap (small, so that many runs stay quick).
const SMALL_CAP: usize = 100;

/// How a behaviour must end.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// Every key, by this method.
    Complete(&'static str),
    /// The one error line, which says this of the server.
    Refused(&'static str),
}

const PAGED: Outcome = Outcome::Complete("Offset Items paging (KMIP 1.4)");
const DATES: Outcome = Outcome::Complete("Initial Date partitioning");

#[derive(Clone, Copy)]
struct Behaviour {
    name: &'static str,
    quirks: fn() -> Quirks,
    /// Symmetric keys, 7 made a second.
    keys: usize,
    /// Secret data objects as well (listed after the keys, as every MySQL listing does).
    secrets: usize,
    /// Planted in a shuffled order (with `storage_order`, the order Locate lists them in).
    shuffled: bool,
    /// An object another client updates before this paged Locate (counted from 0).
    touched_before_page: Option<(usize, usize)>,
    outcome: Outcome,
}

fn capped(cap: usize, dates_ignored: bool, offset: Offset) -> Quirks {
    Quirks {
        locate_cap: Some(cap),
        ignore_initial_date: dates_ignored,
        offset,
        ..Quirks::default()
    }
}

const BEHAVIOURS: [Behaviour; 17] = [
    Behaviour {
        name: "storage order (not by date), KMIP 1.1",
        quirks: || Quirks {
            storage_order: true,
            ..capped(SMALL_CAP, false, Offset::Absent)
        },
        keys: 350,
        secrets: 0,
        shuffled: true,
        touched_before_page: None,
        outcome: DATES,
    },
    Behaviour {
        name: "storage order (not by date), Offset Items",
        quirks: || Quirks {
            storage_order: true,
            ..capped(SMALL_CAP, true, Offset::Honoured)
        },
        keys: 350,
        secrets: 0,
        shuffled: true,
        touched_before_page: None,
        outcome: PAGED,
    },
    Behaviour {
        name: "exclusive end of date ranges, storage order, KMIP 1.1",
        quirks: || Quirks {
            date_bounds: DateBounds::ExclusiveEnd,
            storage_order: true,
            ..capped(SMALL_CAP, false, Offset::Absent)
        },
        keys: 350,
        secrets: 0,
        shuffled: true,
        touched_before_page: None,
        outcome: Outcome::Refused(
            "leaves objects out of Initial Date ranges and offers no KMIP 1.3 Offset Items",
        ),
    },
    Behaviour {
        name: "exclusive end of date ranges, no cap, 30 keys, KMIP 1.1",
        quirks: || Quirks {
            date_bounds: DateBounds::ExclusiveEnd,
            ..Quirks::default()
        },
        keys: 30,
        secrets: 0,
        shuffled: false,
        touched_before_page: None,
        outcome: Outcome::Refused(
            "leaves objects out of Initial Date ranges and offers no KMIP 1.3 Offset Items",
        ),
    },
    Behaviour {
        name: "exclusive end of date ranges, storage order, Offset Items",
        quirks: || Quirks {
            date_bounds: DateBounds::ExclusiveEnd,
            storage_order: true,
            ..capped(SMALL_CAP, false, Offset::Honoured)
        },
        keys: 350,
        secrets: 0,
        shuffled: true,
        touched_before_page: None,
        outcome: PAGED,
    },
    Behaviour {
        name: "sub-second dates, storage order, KMIP 1.1",
        quirks: || Quirks {
            date_bounds: DateBounds::SubSecond,
            storage_order: true,
            ..capped(SMALL_CAP, false, Offset::Absent)
        },
        keys: 350,
        secrets: 0,
        shuffled: true,
        touched_before_page: None,
        outcome: Outcome::Refused(
            "leaves objects out of Initial Date ranges and offers no KMIP 1.3 Offset Items",
        ),
    },
    Behaviour {
        name: "sub-second dates, storage order, Offset Items",
        quirks: || Quirks {
            date_bounds: DateBounds::SubSecond,
            storage_order: true,
            ..capped(SMALL_CAP, false, Offset::Honoured)
        },
        keys: 350,
        secrets: 0,
        shuffled: true,
        touched_before_page: None,
        outcome: PAGED,
    },
    Behaviour {
        name: "an unlisted object moves before the pages read (update, storage order)",
        quirks: || Quirks {
            storage_order: true,
            ..capped(SMALL_CAP, true, Offset::Honoured)
        },
        keys: 350,
        secrets: 0,
        shuffled: false,
        // Planted in order p0…p349; the first answer is p0…p99, page 0 p99…p198: p300 moves
        // to the front before page 1 is read.
        touched_before_page: Some((1, 300)),
        outcome: PAGED,
    },
    Behaviour {
        name: "cap 10, KMIP 1.1",
        quirks: || capped(10, false, Offset::Absent),
        keys: 25,
        secrets: 0,
        shuffled: false,
        touched_before_page: None,
        outcome: DATES,
    },
    Behaviour {
        name: "cap 10, Offset Items",
        quirks: || capped(10, true, Offset::Honoured),
        keys: 25,
        secrets: 0,
        shuffled: false,
        touched_before_page: None,
        outcome: PAGED,
    },
    Behaviour {
        name: "cap 10, Initial Date ignored, KMIP 1.1",
        quirks: || capped(10, true, Offset::Absent),
        keys: 25,
        secrets: 0,
        shuffled: false,
        touched_before_page: None,
        outcome: Outcome::Refused(
            "ignores Initial Date ranges and offers no KMIP 1.3 Offset Items",
        ),
    },
    Behaviour {
        name: "cap 5, below the 7 keys made a second, KMIP 1.1",
        quirks: || capped(5, false, Offset::Absent),
        keys: 25,
        secrets: 0,
        shuffled: false,
        touched_before_page: None,
        outcome: Outcome::Refused("more objects than that were made in the same second"),
    },
    Behaviour {
        name: "exactly at the cap, then more (keys 100, secrets 150), KMIP 1.1",
        quirks: || capped(SMALL_CAP, false, Offset::Absent),
        keys: SMALL_CAP,
        secrets: SMALL_CAP + 50,
        shuffled: false,
        touched_before_page: None,
        outcome: DATES,
    },
    Behaviour {
        name: "exactly at the cap, then more (keys 100, secrets 150), Offset Items",
        quirks: || capped(SMALL_CAP, true, Offset::Honoured),
        keys: SMALL_CAP,
        secrets: SMALL_CAP + 50,
        shuffled: false,
        touched_before_page: None,
        outcome: PAGED,
    },
    Behaviour {
        name: "Located Items right",
        quirks: || Quirks {
            located_items: LocatedItems::Right,
            ..capped(SMALL_CAP, true, Offset::Honoured)
        },
        keys: 350,
        secrets: 0,
        shuffled: false,
        touched_before_page: None,
        outcome: PAGED,
    },
    Behaviour {
        name: "Located Items wrong, Initial Date honoured",
        quirks: || Quirks {
            located_items: LocatedItems::Wrong,
            ..capped(SMALL_CAP, false, Offset::Honoured)
        },
        keys: 350,
        secrets: 0,
        shuffled: false,
        touched_before_page: None,
        outcome: DATES,
    },
    Behaviour {
        name: "Located Items wrong, Initial Date ignored",
        quirks: || Quirks {
            located_items: LocatedItems::Wrong,
            ..capped(SMALL_CAP, true, Offset::Honoured)
        },
        keys: 350,
        secrets: 0,
        shuffled: false,
        touched_before_page: None,
        outcome: Outcome::Refused(
            "ignores Initial Date ranges and pages Locate answers inconsistently (its Located Items counted",
        ),
    },
];

/// Which listing the objects are planted for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    /// MySQL keys `key-N` and `secret-N` of owner `o`.
    Mysql,
    /// MariaDB versions `mdb/K/V` (symmetric keys only: the secrets are more versions).
    Mariadb,
}

impl Behaviour {
    /// Every object, in planting order.
    fn objects(&self, names: Names) -> Vec<Object> {
        let total = self.keys + self.secrets;
        let mut out: Vec<Object> = (0..total)
            .map(|i| {
                let date = 1_700_000_000 + i64::try_from(i / 7).unwrap();
                let name = match names {
                    Names::Mariadb => format!("mdb/{}/{}", i / 10 + 1, i % 10 + 1),
                    Names::Mysql if i < self.keys => object_name(&format!("key-{i}"), "o"),
                    Names::Mysql => object_name(&format!("secret-{i}"), "o"),
                };
                let mut o = Object::aes(&format!("p{i}"), &name, vec![1; 32], date);
                if names == Names::Mysql && i >= self.keys {
                    o.object_type = okv_core::kmip::tags::object_type::SECRET_DATA;
                    o.algorithm = None;
                }
                o
            })
            .collect();
        if self.shuffled {
            out.sort_by_key(|o| {
                let n: u64 = o.uid[1..].parse().unwrap();
                n.wrapping_mul(2_654_435_761) % 4_294_967_291
            });
        }
        out
    }

    fn server(&self, names: Names) -> Server {
        let s = Server::start((self.quirks)());
        for o in self.objects(names) {
            s.kmip.plant(o);
        }
        if let Some((page, i)) = self.touched_before_page {
            *s.kmip.between_pages.lock().unwrap() = vec![(page, Change::Touch(format!("p{i}")))];
        }
        s
    }

    fn total(&self) -> usize {
        self.keys + self.secrets
    }
}

/// Asserts that `line` is the loud error `b` calls for, naming `server`.
fn assert_behaviour_refusal(b: &Behaviour, server: &Server, line: &str) {
    let Outcome::Refused(what) = b.outcome else {
        panic!("{}: refused: {line}", b.name);
    };
    assert!(line.contains(what), "{}: {line}", b.name);
    assert!(
        line.contains(&format!("KMIP server {}", server.endpoint())),
        "{}: {line}",
        b.name
    );
}

#[test]
fn every_behaviour_through_the_core() {
    for b in BEHAVIOURS {
        let s = b.server(Names::Mysql);
        let (k, health) = s.keyring();
        let listed = k.list(false);
        let method = health.snapshot().listing_method;
        match (b.outcome, listed) {
            (Outcome::Complete(expected), Ok(entries)) => {
                let ids: BTreeSet<&str> = entries.iter().map(|e| e.key_id.as_str()).collect();
                assert_eq!(ids.len(), b.total(), "{}", b.name);
                assert_eq!(entries.len(), b.total(), "{}", b.name);
                assert_eq!(method, expected, "{}", b.name);
                println!("BEHAVIOUR core | {} | complete: {method}", b.name);
            }
            (Outcome::Refused(_), Err(KeyringError::ListIncomplete(message))) => {
                assert_behaviour_refusal(&b, &s, &message);
                println!("BEHAVIOUR core | {} | refused: {message}", b.name);
            }
            (expected, got) => panic!(
                "{}: expected {expected:?}, got {:?}",
                b.name,
                got.map(|e| e.len())
            ),
        }
    }
}

#[test]
fn every_behaviour_through_keyring_okv_list() {
    for b in BEHAVIOURS {
        let s = b.server(Names::Mysql);
        let dir = s.conf_dir();
        let out = keyring_okv(&dir, &["--json", "list"]);
        match b.outcome {
            Outcome::Complete(_) => {
                assert!(out.status.success(), "{}: {}", b.name, text(&out));
                assert_eq!(listed_ids(&out).len(), b.total(), "{}", b.name);
            }
            Outcome::Refused(_) => {
                let message = refusal(&out, b.name, "the key list is incomplete, so none is given");
                let message = message.as_str();
                assert_behaviour_refusal(&b, &s, message);
            }
        }
    }
}

#[test]
fn every_behaviour_through_keyring_okv_mariadb_list() {
    for b in BEHAVIOURS {
        let s = b.server(Names::Mariadb);
        let dir = s.conf_dir();
        let out = keyring_okv(&dir, &["--json", "mariadb", "list", "--namespace", "mdb"]);
        match b.outcome {
            Outcome::Complete(_) => {
                assert!(out.status.success(), "{}: {}", b.name, text(&out));
                let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(rows.as_array().unwrap().len(), b.total(), "{}", b.name);
            }
            Outcome::Refused(_) => {
                let message = refusal(&out, b.name, "the key list of namespace mdb is incomplete");
                let message = message.as_str();
                assert_behaviour_refusal(&b, &s, message);
            }
        }
    }
}

#[test]
fn every_behaviour_through_the_plugin_key_iterator() {
    for b in BEHAVIOURS {
        let s = b.server(Names::Mysql);
        let dir = s.conf_dir();
        let out = run_host(conf_path(&dir).to_str().unwrap(), &["list"]);
        let got = results(&out);
        let keys = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("KEY "))
            .count();
        match b.outcome {
            Outcome::Complete(_) => {
                assert!(
                    got.contains(&format!("list {}", b.total())),
                    "{}: {got:?}",
                    b.name
                );
                assert_eq!(keys, b.total(), "{}", b.name);
            }
            Outcome::Refused(_) => {
                assert!(got.contains(&"list error".to_string()), "{got:?}");
                assert_eq!(keys, 0, "{}", b.name);
                let log = text(&out);
                let line = log
                    .lines()
                    .find(|l| l.contains("the key list is incomplete"))
                    .unwrap_or_else(|| panic!("{}: no error line:\n{log}", b.name));
                assert_behaviour_refusal(&b, &s, line);
            }
        }
    }
}

#[test]
fn every_behaviour_through_the_component_keys_iterator() {
    for b in BEHAVIOURS {
        let s = b.server(Names::Mysql);
        let report = component_keys(&s);
        let results = host_results(&report);
        let keys = results.iter().filter(|r| r.starts_with("key ")).count();
        match b.outcome {
            Outcome::Complete(_) => {
                assert!(results.contains(&"keys_init 0"), "{}: {results:?}", b.name);
                assert_eq!(keys, b.total(), "{}", b.name);
            }
            Outcome::Refused(_) => {
                assert!(!results.contains(&"keys_init 0"), "{results:?}");
                assert_eq!(keys, 0, "{}", b.name);
                let line = report
                    .lines()
                    .find(|l| l.contains("the key list is incomplete"))
                    .unwrap_or_else(|| panic!("{}: no error line:\n{report}", b.name));
                assert_behaviour_refusal(&b, &s, line);
            }
        }
    }
}

/// mysql_migrate_keyring in the real mysqld 9.7 under each behaviour (side by side): every key
/// arrives, or the migration fails, moves nothing and says why.
#[test]
fn every_behaviour_through_mysql_migrate_keyring() {
    component::plugin_dir();
    std::thread::scope(|scope| {
        for (n, b) in BEHAVIOURS.into_iter().enumerate() {
            scope.spawn(move || {
                let s = b.server(Names::Mysql);
                let (out, report, keys) = migrate(&s, &format!("listbeh-{n}"));
                let migrated = keys.matches("\"data_id\":\"key-").count()
                    + keys.matches("\"data_id\":\"secret-").count();
                match b.outcome {
                    Outcome::Complete(_) => {
                        assert!(out.status.success(), "{}:\n{report}", b.name);
                        assert_eq!(migrated, b.total(), "{}", b.name);
                    }
                    Outcome::Refused(_) => {
                        assert!(!out.status.success(), "{}:\n{report}", b.name);
                        assert_eq!(migrated, 0, "{}: {migrated} keys moved", b.name);
                        let line = report
                            .lines()
                            .find(|l| l.contains("the key list is incomplete"))
                            .unwrap_or_else(|| panic!("{}: no error line:\n{report}", b.name));
                        assert_behaviour_refusal(&b, &s, line);
                    }
                }
            });
        }
    });
}

/// Exactly-at-cap growth on one connection: a server capping at 100 that holds exactly 100
/// keys shows a whole answer of 100; once it holds 150, an answer of 100 is not taken as whole.
#[test]
fn a_server_holding_exactly_its_cap_is_probed_again_when_it_grows() {
    for (offset, method) in [
        (Offset::Absent, "Initial Date partitioning"),
        (Offset::Honoured, "Offset Items paging (KMIP 1.4)"),
    ] {
        let s = Server::with_keys(capped(SMALL_CAP, false, offset), SMALL_CAP);
        let (k, health) = s.keyring();
        assert_eq!(k.list(false).unwrap().len(), SMALL_CAP);
        for i in SMALL_CAP..SMALL_CAP + 50 {
            s.kmip.plant(key_object(i));
        }
        assert_eq!(k.list(false).unwrap().len(), SMALL_CAP + 50, "{offset:?}");
        assert_eq!(health.snapshot().listing_method, method);
    }
}

/// A lookup of one name is not a listing: on a server no method can check (a cap, Initial Date
/// ignored, no Offset Items), a key with a leftover object under its name is still read, with
/// no warning about the server, while a listing of it fails.
#[test]
fn a_lookup_of_a_name_with_a_leftover_is_not_probed() {
    let s = Server::start(Quirks {
        keep_destroyed: true,
        ..capped(SMALL_CAP, true, Offset::Absent)
    });
    s.kmip.plant(key_object(5));
    let mut leftover = key_object(5);
    leftover.uid = "old5".into();
    leftover.state = okv_core::kmip::tags::state::DESTROYED;
    s.kmip.plant(leftover);
    let (k, _) = s.keyring();
    let before = s.locates();
    let fetched = k.fetch("key-5", "o").unwrap().expect("key-5");
    assert_eq!(&fetched.material[..], &[5u8; 32][..]);
    // The read's own Locate (which found two objects), then the lookup of the name: no probe.
    assert_eq!(s.locates() - before, 2);
    for i in 0..SMALL_CAP + 10 {
        s.kmip.plant(key_object(100 + i));
    }
    assert!(matches!(
        k.list(false),
        Err(KeyringError::ListIncomplete(_))
    ));
}
