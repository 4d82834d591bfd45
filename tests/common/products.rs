//! The four products' key paths behind one interface, so that a scenario runs unchanged against
//! each (tests/conformance/conformance.rs): the MySQL plugin through tests/c/plugin_host.c, the MySQL
//! component through tests/c/component_host.c, MariaDB's kmip_key_management through
//! tests/c/mariadb_host.c (its `script` mode) and the admin tool `keyring-okv`.
//!
//! A session is one process of a host (one mysqld or mariadbd lifetime: load, the steps,
//! unload), so that what a product remembers between two steps (identifiers, caches) is
//! exercised. For the admin tool every step is a process of its own, as its users run it.
//! A `Pause` stops a host between two steps until the test has changed the KMIP server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    Plugin,
    Component,
    MariaDb,
    Cli,
}

pub const ALL: [Product; 4] = [
    Product::Plugin,
    Product::Component,
    Product::MariaDb,
    Product::Cli,
];

/// The key every scenario works on: a server key (empty owner) of the MySQL products and the
/// admin tool, and key 3 of MariaDB in `NAMESPACE`. Not key 1: MariaDB's init reads key 1 (and
/// 2), and a key read at init is then served from memory, so the scenarios would only ever
/// reach its init; key 3 is read when a table first uses it. Key 1 must exist for init:
/// `MARIADB_INIT_KEY` names it.
pub const KEY_ID: &str = "cf_key";
pub const NAMESPACE: &str = "cf";
pub const MARIADB_KEY: u32 = 3;
pub const MARIADB_INIT_KEY: &str = "cf/1/1";

/// How long a host may take for everything it was asked, on a loaded machine.
const HOST_DEADLINE: Duration = Duration::from_secs(240);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Generate (MySQL products, admin tool) or rotate (MariaDB: SET GLOBAL
    /// kmip_key_management_rotate_key) the key.
    Generate,
    /// Read the key (MariaDB: its latest version) and its bytes.
    Fetch,
    /// Wait until `Session::resume`.
    Pause,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The key's bytes, lower-case hex.
    Key(String),
    /// "No such key" (a fetch that succeeded without a key).
    Absent,
    /// Generated (or rotated).
    Made,
    /// An error; the text is what the product said about it, if it says it per call.
    Failed(String),
}

impl Product {
    /// The KMIP Name of the key's object; `version` is MariaDB's (ignored by the others).
    pub fn object_name(self, version: u32) -> String {
        match self {
            // The documented naming of server keys: "mysql-keyring:" owner ":" key id.
            Product::Plugin | Product::Component | Product::Cli => {
                format!("mysql-keyring::{KEY_ID}")
            }
            Product::MariaDb => format!("{NAMESPACE}/{MARIADB_KEY}/{version}"),
        }
    }

    /// The Name of another key of the same product, for objects that must never be served as
    /// the scenario's key.
    pub fn other_name(self) -> String {
        match self {
            Product::Plugin | Product::Component | Product::Cli => {
                "mysql-keyring::cf_other".to_string()
            }
            Product::MariaDb => format!("{NAMESPACE}/{}/1", MARIADB_KEY + 1),
        }
    }
}

/// tests/c/mariadb_host.c, compiled once per test binary.
pub fn mariadb_host_program() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let out = std::env::temp_dir().join(format!(
            "kmip_mariadb_conformance_host_{}",
            std::process::id()
        ));
        let status = Command::new("cc")
            .args(["-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&out)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/c/mariadb_host.c"
            ))
            .arg("-ldl")
            .status()
            .expect("run cc");
        assert!(status.success(), "compiling tests/c/mariadb_host.c failed");
        out
    })
}

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

/// Runs one admin tool command against `conf`.
fn cli_step(conf: &Path, step: Step) -> (Outcome, String) {
    let args: &[&str] = match step {
        Step::Generate => &["generate", KEY_ID, "AES", "32"],
        Step::Fetch => &["fetch", KEY_ID, "--show-material", "hex"],
        Step::Pause => return (Outcome::Made, String::new()),
    };
    let out = Command::new(KEYRING_OKV)
        .arg("--conf-dir")
        .arg(conf)
        .args(args)
        .output()
        .expect("run keyring-okv");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let outcome = match (step, out.status.code()) {
        (Step::Generate, Some(0)) => Outcome::Made,
        (Step::Fetch, Some(0)) => stdout
            .lines()
            .find_map(|l| l.strip_prefix("material: "))
            .map(|hex| Outcome::Key(hex.trim().to_lowercase()))
            .unwrap_or_else(|| Outcome::Failed(format!("no material in {stdout:?}"))),
        (Step::Fetch, Some(4)) => Outcome::Absent,
        (_, code) => Outcome::Failed(format!("exit {code:?}: {}", stderr.trim())),
    };
    (outcome, format!("{stdout}{stderr}"))
}

/// A product loaded once (a host process) or, for the admin tool, a series of runs.
pub struct Session {
    pub product: Product,
    conf: PathBuf,
    steps: Vec<Step>,
    tmp: tempfile::TempDir,
    /// Pause k waits for the file `resume-k` in `tmp`.
    resumed: usize,
    child: Option<Child>,
    lines: Option<Receiver<(Instant, String)>>,
    stderr: Option<JoinHandle<String>>,
    /// stdout lines read so far, with the moment each arrived.
    seen: Vec<(Instant, String)>,
    /// The admin tool: steps run so far and their outcomes.
    cli_next: usize,
    cli_outcomes: Vec<Outcome>,
    cli_log: String,
}

/// What a finished session did.
#[derive(Debug)]
pub struct Finished {
    pub product: Product,
    /// One per Generate and Fetch step, in order.
    pub outcomes: Vec<Outcome>,
    /// Everything the product logged (host LOG lines and stderr, admin tool output).
    pub log: String,
    /// When the process ended (hosts: after unloading the library).
    pub ended: Instant,
    /// The host's RESULT lines.
    pub results: Vec<String>,
}

impl Session {
    /// Starts `product` on the KMIP configuration directory `conf`. `component_extra`: more
    /// members of the component's JSON configuration (such as `"cache_keys": false`).
    pub fn start(product: Product, conf: &Path, component_extra: &str, steps: &[Step]) -> Session {
        Session::start_with(product, conf, component_extra, &[], steps)
    }

    /// MariaDB looking for new versions every `refresh_ms` (its background thread's requests).
    pub fn start_mariadb_refreshing(conf: &Path, refresh_ms: u64, steps: &[Step]) -> Session {
        let options = ["refresh_ms".to_string(), refresh_ms.to_string()];
        Session::start_with(Product::MariaDb, conf, "", &options, steps)
    }

    fn start_with(
        product: Product,
        conf: &Path,
        component_extra: &str,
        mariadb_options: &[String],
        steps: &[Step],
    ) -> Session {
        let tmp = tempfile::tempdir().unwrap();
        let mut session = Session {
            product,
            conf: conf.to_path_buf(),
            steps: steps.to_vec(),
            resumed: 0,
            child: None,
            lines: None,
            stderr: None,
            seen: Vec::new(),
            cli_next: 0,
            cli_outcomes: Vec::new(),
            cli_log: String::new(),
            tmp,
        };
        let mut pauses = 0;
        let mut commands: Vec<String> = Vec::new();
        let mut command = match product {
            Product::Cli => return session,
            Product::Plugin => {
                let mut c = Command::new(super::host::host_program());
                c.arg(super::host::plugin_library()).arg("run").arg(conf);
                c
            }
            Product::Component => {
                let dir = session.tmp.path().join("component");
                std::fs::create_dir(&dir).unwrap();
                let mut cnf = format!("{{\"kmip_configuration_directory\": \"{}\"", conf.display());
                if !component_extra.is_empty() {
                    cnf.push_str(", ");
                    cnf.push_str(component_extra);
                }
                cnf.push('}');
                std::fs::write(dir.join("component_keyring_okv.cnf"), cnf).unwrap();
                let mut c = Command::new(super::component::host_program());
                c.arg(super::component::component_library())
                    .arg(&dir)
                    .arg("-");
                commands.push("load".into());
                c
            }
            Product::MariaDb => {
                let mut c = Command::new(mariadb_host_program());
                c.arg(super::mariadb::plugin_library())
                    .arg("script")
                    .arg(conf)
                    .arg(NAMESPACE);
                commands.extend_from_slice(mariadb_options);
                c
            }
        };
        for step in steps {
            let words: Vec<String> = match (product, step) {
                (_, Step::Pause) => {
                    pauses += 1;
                    vec!["waitfile".into(), session.flag(pauses - 1)]
                }
                (Product::MariaDb, Step::Generate) => {
                    vec!["rotate".into(), MARIADB_KEY.to_string()]
                }
                (Product::MariaDb, Step::Fetch) => vec!["fetch".into(), MARIADB_KEY.to_string()],
                (_, Step::Generate) => ["generate", KEY_ID, "-", "AES", "32"]
                    .map(String::from)
                    .to_vec(),
                (_, Step::Fetch) => ["fetch", KEY_ID, "-"].map(String::from).to_vec(),
            };
            commands.extend(words);
        }
        let mut child = command
            .args(&commands)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start the {product:?} host: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (send, receive) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        session.stderr = Some(std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        }));
        session.lines = Some(receive);
        session.child = Some(child);
        session
    }

    /// Waits until the product stands at its next `Pause` (the admin tool: runs the steps
    /// before it).
    pub fn paused(&mut self) {
        if self.product == Product::Cli {
            while self.cli_next < self.steps.len() {
                let step = self.steps[self.cli_next];
                self.cli_next += 1;
                if step == Step::Pause {
                    return;
                }
                self.run_cli(step);
            }
            panic!("no pause left in {:?}", self.steps);
        }
        let deadline = Instant::now() + HOST_DEADLINE;
        let pauses_before = self
            .seen
            .iter()
            .filter(|(_, l)| l.starts_with("RESULT waiting "))
            .count();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.as_ref().unwrap().recv_timeout(left) {
                Ok((at, line)) => {
                    let pause = line.starts_with("RESULT waiting ");
                    self.seen.push((at, line));
                    if pause {
                        let pauses = self
                            .seen
                            .iter()
                            .filter(|(_, l)| l.starts_with("RESULT waiting "))
                            .count();
                        if pauses > pauses_before {
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{:?} never paused:\n{}", self.product, self.stdout())
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{:?} ended before pausing:\n{}\n{}",
                    self.product,
                    self.stdout(),
                    self.stderr
                        .take()
                        .map(|t| t.join().unwrap())
                        .unwrap_or_default()
                ),
            }
        }
    }

    /// Lets the product go on from its pause; returns the moment it was let go.
    pub fn resume(&mut self) -> Instant {
        std::fs::write(self.flag(self.resumed), b"").unwrap();
        self.resumed += 1;
        Instant::now()
    }

    fn flag(&self, pause: usize) -> String {
        let path = self.tmp.path().join(format!("resume-{pause}"));
        path.to_str().unwrap().to_string()
    }

    fn run_cli(&mut self, step: Step) {
        let (outcome, log) = cli_step(&self.conf, step);
        self.cli_outcomes.push(outcome);
        self.cli_log.push_str(&log);
    }

    fn stdout(&self) -> String {
        self.seen
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs the remaining steps and unloads the product.
    pub fn finish(mut self) -> Finished {
        if self.product == Product::Cli {
            while self.cli_next < self.steps.len() {
                let step = self.steps[self.cli_next];
                self.cli_next += 1;
                if step != Step::Pause {
                    self.run_cli(step);
                }
            }
            return Finished {
                product: self.product,
                outcomes: std::mem::take(&mut self.cli_outcomes),
                log: std::mem::take(&mut self.cli_log),
                ended: Instant::now(),
                results: Vec::new(),
            };
        }
        let deadline = Instant::now() + HOST_DEADLINE;
        let lines = self.lines.take().unwrap();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let mut child = self.child.take().unwrap();
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{:?} did not end within {HOST_DEADLINE:?}:\n{}",
                        self.product,
                        self.stdout()
                    );
                }
            }
        }
        let status = self.child.take().unwrap().wait().expect("host ran");
        let ended = self.seen.last().map_or_else(Instant::now, |(at, _)| *at);
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let stdout = self.stdout();
        assert!(
            status.success(),
            "{:?} host failed ({status:?}):\n{stdout}\n{stderr}",
            self.product
        );
        let results: Vec<String> = self
            .seen
            .iter()
            .filter_map(|(_, l)| l.strip_prefix("RESULT ").map(str::to_string))
            .collect();
        let mut log: String = self
            .seen
            .iter()
            .filter_map(|(_, l)| l.strip_prefix("LOG "))
            .collect::<Vec<_>>()
            .join("\n");
        log.push('\n');
        log.push_str(&stderr);
        let mut outcomes: Vec<Outcome> = results
            .iter()
            .filter_map(|r| parse(self.product, r))
            .collect();
        let wanted = self.steps.iter().filter(|s| **s != Step::Pause).count();
        // A MariaDB host whose init failed runs nothing: every step failed with it.
        let init = results
            .iter()
            .find(|r| r.starts_with("init "))
            .cloned()
            .unwrap_or_default();
        while outcomes.len() < wanted {
            outcomes.push(Outcome::Failed(format!("not run ({init})")));
        }
        Finished {
            product: self.product,
            outcomes,
            log,
            ended,
            results,
        }
    }
}

impl Drop for Session {
    /// A test that fails while a host waits at a pause must not leave it waiting.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One host RESULT line as the outcome of a step, if it is one.
fn parse(product: Product, line: &str) -> Option<Outcome> {
    let words: Vec<&str> = line.split(' ').collect();
    let failed = || Some(Outcome::Failed(line.to_string()));
    match (product, words.as_slice()) {
        (Product::Plugin, ["generate", _, "ok"]) => Some(Outcome::Made),
        (Product::Plugin, ["generate", _, _]) => failed(),
        (Product::Plugin, ["fetch", _, "absent"]) => Some(Outcome::Absent),
        (Product::Plugin, ["fetch", _, _, _, hex]) => Some(Outcome::Key(hex.to_lowercase())),
        (Product::Plugin, ["fetch", ..]) => failed(),
        (Product::Component, ["generate", "0"]) => Some(Outcome::Made),
        (Product::Component, ["generate", _]) => failed(),
        (Product::Component, ["fetch", "absent"]) => Some(Outcome::Absent),
        (Product::Component, ["fetch", _, _, hex]) => Some(Outcome::Key(hex.to_lowercase())),
        (Product::Component, ["fetch", ..]) => failed(),
        (Product::MariaDb, ["rotate", _, "ok"]) => Some(Outcome::Made),
        (Product::MariaDb, ["rotate", ..]) => failed(),
        (Product::MariaDb, ["fetch", _, "absent"]) => Some(Outcome::Absent),
        (Product::MariaDb, ["fetch", _, version, hex]) if *version != "error" => {
            Some(Outcome::Key(hex.to_lowercase()))
        }
        (Product::MariaDb, ["fetch", ..]) => failed(),
        _ => None,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
