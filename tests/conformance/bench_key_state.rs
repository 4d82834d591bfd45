//! The key-state guard's detection time and its silence during outages, in each product's core
//! (keyring_okv.so, component_keyring_okv.so and kmip_key_management.so, through the entry
//! points their C boundaries call), against an in-process KMIP server (the tests' quirk server,
//! test PKI) behind a relay that can cut every connection. A benchmark, not a test: a test
//! target without the test harness and with `test = false`, so `cargo test` and CI do not run
//! it (it reuses tests/common, which needs the variables cargo sets for test targets).
//!
//! Detection: each trial plants a new key, has the product serve it, then revokes a random key
//! in use on the server's side (behind the product's back) and measures the time until the
//! product's status counts it. Every revocation must be seen within the poll interval + 1 s.
//!
//! Outages: each trial makes the server unusable for 10 poll intervals, in turn by cutting every
//! connection (refused), by black-holing it (connections accepted and never answered: every
//! poll runs into its deadline) and by failing every state question with a General Failure (a
//! KMS fail-over), then restores it; no revocation may be counted and no key refused.
//!
//!     cargo test --release --test bench_key_state -- [TRIALS [POLL_SECONDS [OUTAGE_TRIALS [PRODUCT]]]]
//!
//! Defaults: 200 trials, 2 s, 200 outage trials (each 10 poll intervals: ~70 min per product;
//! pass fewer outage trials for a quick run), every product; PRODUCT (`plugin`, `component` or
//! `mariadb`) runs one, so that the three can run side by side as three processes.

#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fault_server::{CutProxy, Refusal, serve_refusing};
use common::fixtures::{Layout, TestConfDir, make_conf_dir, pki};
use common::kmip_quirks::{Object, QuirkyKmip};
use okv_core::guard::{Action, Settings, Status};
use okv_core::keyring::object_name;
use okv_core::kmip::tags::{operation, result_reason, state};
use okv_core::products::{mariadb, mysql_component, mysql_plugin};

struct Lab {
    kmip: Arc<QuirkyKmip>,
    _server: common::fault_server::FaultServer,
    refuse: Refusal,
    proxy: CutProxy,
    conf: TestConfDir,
}

fn lab(prefix: &str) -> Lab {
    let (kmip, server, refuse) = serve_refusing(prefix);
    let proxy = CutProxy::start(server.addr);
    let conf = make_conf_dir(&Layout {
        ora: Some(format!("SERVER=127.0.0.1:{}\n", proxy.port())),
        ..pki().layout()
    });
    Lab {
        kmip,
        _server: server,
        refuse,
        proxy,
        conf,
    }
}

/// One product: how it serves key number `i` (planting its object first), and its status.
struct Product {
    name: &'static str,
    /// The object name of key `i`.
    object: Box<dyn Fn(u32) -> String>,
    serve: Box<dyn Fn(u32) -> bool>,
    status: fn() -> Status,
    stop: fn(),
}

/// xorshift: a random key without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn plant(lab: &Lab, name: &str) -> String {
    let uid = lab.kmip.fresh_uid();
    lab.kmip
        .plant(Object::aes(&uid, name, vec![7; 32], 1_700_000_000));
    uid
}

fn wait(
    status: fn() -> Status,
    done: impl Fn(&Status) -> bool,
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if done(&status()) {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

fn run(lab: &Lab, p: &Product, trials: usize, poll: Duration, outage_trials: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<(u32, String)> = Vec::new();
    let mut times = Vec::new();
    let mut next = 1;
    for _ in 0..2 {
        let uid = plant(lab, &(p.object)(next));
        assert!((p.serve)(next), "{}: key {next} not served", p.name);
        live.push((next, uid));
        next += 1;
    }
    for _ in 0..trials {
        let uid = plant(lab, &(p.object)(next));
        assert!((p.serve)(next), "{}: key {next} not served", p.name);
        live.push((next, uid));
        next += 1;
        let (_, uid) = live.swap_remove(rng.below(live.len()));
        // At a random moment of the poll cycle: right after a detection, the next revocation
        // would otherwise always wait one whole interval.
        std::thread::sleep(poll.mul_f64(rng.below(1000) as f64 / 1000.0));
        let before = (p.status)().revoked_in_use;
        lab.kmip.edit(&uid, |o| o.state = state::DEACTIVATED);
        let took = wait(
            p.status,
            |s| s.revoked_in_use > before,
            poll * 3 + Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("{}: revocation of {uid} never seen", p.name));
        times.push(took);
    }
    times.sort();
    let measured = times.len();
    if times.is_empty() {
        times.push(Duration::ZERO);
    }
    let quartile = |q: usize| times[(times.len() - 1) * q / 4].as_secs_f64();
    let late = times
        .iter()
        .filter(|t| **t > poll + Duration::from_secs(1))
        .count();
    println!(
        "{}: {} revocations, detection min {:.2} s, quartiles {:.2} / {:.2} / {:.2} s, max {:.2} s, later than poll + 1 s: {late}",
        p.name,
        measured,
        quartile(0),
        quartile(1),
        quartile(2),
        quartile(3),
        quartile(4),
    );

    let revoked = (p.status)().revoked_in_use;
    let outages_before = (p.status)().outages;
    for t in 0..outage_trials {
        match t % 3 {
            0 => lab.proxy.cut(),
            1 => lab.proxy.black_hole(),
            _ => {
                *lab.refuse.lock().unwrap() =
                    Some((operation::GET_ATTRIBUTES, result_reason::GENERAL_FAILURE))
            }
        }
        std::thread::sleep(poll * 10);
        lab.proxy.restore();
        *lab.refuse.lock().unwrap() = None;
        assert_eq!(
            (p.status)().revoked_in_use,
            revoked,
            "{}: an outage counted as a revocation",
            p.name
        );
        // Back to normal before the next trial.
        let polls = (p.status)().polls;
        wait(
            p.status,
            |s| s.polls >= polls + 2 && !s.last_result.starts_with("outage"),
            poll * 20 + Duration::from_secs(30),
        )
        .unwrap_or_else(|| panic!("{}: the server never answered again", p.name));
    }
    let s = (p.status)();
    println!(
        "{}: {outage_trials} outages of 10 poll intervals: {} polls counted as outages, revocations taken: {}",
        p.name,
        s.outages - outages_before,
        s.revoked_in_use - revoked
    );
    (p.stop)();
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let only = (args.len() > 3).then(|| args.remove(3));
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let args: Vec<u64> = args.iter().map(|a| a.parse().expect("a number")).collect();
    let trials = args.first().copied().unwrap_or(200) as usize;
    let poll_seconds = args.get(1).copied().unwrap_or(2);
    let outage_trials = args.get(2).copied().unwrap_or(200) as usize;

    if wanted("plugin") {
        plugin(trials, poll_seconds, outage_trials);
    }
    if wanted("component") {
        component(trials, poll_seconds, outage_trials);
    }
    if wanted("mariadb") {
        mariadb(trials, poll_seconds, outage_trials);
    }
}

fn plugin(trials: usize, poll_seconds: u64, outage_trials: usize) {
    let poll = Duration::from_secs(poll_seconds);
    let plugin_lab = lab("bench-plugin-");
    mysql_plugin::start();
    mysql_plugin::set_key_state_guard(poll_seconds, Some("warn"));
    mysql_plugin::install(
        mysql_plugin::prepare(plugin_lab.conf.dir.to_str().unwrap(), true).expect("configuration"),
    );
    run(
        &plugin_lab,
        &Product {
            name: "plugin",
            object: Box::new(|i| object_name(&format!("INNODBKey-bench-{i}"), "")),
            serve: Box::new(|i| {
                matches!(
                    mysql_plugin::fetch(&format!("INNODBKey-bench-{i}"), ""),
                    Ok(Some(_))
                )
            }),
            status: mysql_plugin::key_state_status,
            stop: mysql_plugin::shutdown,
        },
        trials,
        poll,
        outage_trials,
    );
}

fn component(trials: usize, poll_seconds: u64, outage_trials: usize) {
    let poll = Duration::from_secs(poll_seconds);
    let component_lab = lab("bench-component-");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("component_keyring_okv.cnf"),
        format!(
            "{{\"kmip_configuration_directory\": \"{}\", \"key_state_poll_seconds\": {poll_seconds}}}",
            component_lab.conf.dir.display()
        ),
    )
    .unwrap();
    mysql_component::load(dir.path().to_str().unwrap(), None).expect("configuration");
    run(
        &component_lab,
        &Product {
            name: "component",
            object: Box::new(|i| object_name(&format!("INNODBKey-bench-{i}"), "")),
            serve: Box::new(|i| {
                matches!(
                    mysql_component::fetch(&format!("INNODBKey-bench-{i}"), ""),
                    Ok(Some(_))
                )
            }),
            status: mysql_component::key_state_status,
            stop: mysql_component::shutdown,
        },
        trials,
        poll,
        outage_trials,
    );
}

/// kmip_key_management.so: key ids 1, 2, … version 1 (key 1 must exist at start).
fn mariadb(trials: usize, poll_seconds: u64, outage_trials: usize) {
    let poll = Duration::from_secs(poll_seconds);
    let mariadb_lab = lab("bench-mariadb-");
    let namespace = "bench";
    plant(&mariadb_lab, &mariadb::object_name(namespace, 1, 1));
    mariadb::host::start(
        mariadb_lab.conf.dir.to_str().unwrap(),
        mariadb::Settings {
            namespace: namespace.into(),
            key_state: Settings {
                poll,
                action: Action::Warn,
            },
            ..mariadb::Settings::default()
        },
    )
    .expect("start");
    run(
        &mariadb_lab,
        &Product {
            name: "mariadb",
            // Key 1 was planted before the start; keys 2, 3, … by the trials.
            object: Box::new(move |i| mariadb::object_name(namespace, i + 1, 1)),
            serve: Box::new(|i| mariadb::host::with_key(i + 1, 1, <[u8]>::len) == Some(32)),
            status: mariadb::host::key_state_status,
            stop: mariadb::host::stop,
        },
        trials,
        poll,
        outage_trials,
    );
}
