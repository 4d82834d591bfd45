//! Write latency and throughput: `generate` and `store` of new keys through the keyring API
//! with 1, 8 and 32 sessions (threads sharing one keyring, as mysqld's sessions share the
//! plugin's), next to the baseline measured in the same run: the KMIP server's own Create +
//! Activate of a named AES key, sent by the same client on the same connection.
//!
//!     cargo run --release --example bench_write [SECONDS] [SESSIONS...]
//!
//! Each (operation, sessions) pair runs for SECONDS (default 10) on a PyKMIP instance of its own
//! (KEYRING_OKV_PYKMIP_NAME, default "bench_write"), emptied before every row: PyKMIP's Locate
//! by Name takes longer the more objects it holds, so rows and runs compare only from the same
//! start. Every
//! key is new (a write of an existing key fails at once and would flatter the numbers). The
//! table gives operations per second, the median and p99 latency of one operation, the
//! throughput relative to one session, and the median's excess over the baseline.
//! Run it on an idle machine and compare the ratios, which move less with load than the times.
//!
//! With KEYRING_OKV_PYKMIP_UNIQUE_NAMES=1 the instance refuses a second object under a Name in
//! use (scripts/pykmip_serve.py), as key managers that keep names unique do: the create race
//! rule's wait is then not needed, and the rows measure the keyring's writes without it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use okv_core::config::load_conf_dir;
use okv_core::connector::{KmipClient, Retry};
use okv_core::keyring::{Keyring, object_name};
use okv_core::kmip::ops;

fn instance() -> String {
    std::env::var("KEYRING_OKV_PYKMIP_NAME").unwrap_or_else(|_| "bench_write".into())
}

fn script(args: &[&str]) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/pykmip.sh"))
        .args(args)
        .env("KEYRING_OKV_PYKMIP_NAME", instance())
        .output()
        .expect("run scripts/pykmip.sh");
    assert!(
        out.status.success(),
        "scripts/pykmip.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Create + Activate sent as they are: what the server itself takes.
    Baseline,
    Generate,
    Store,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Baseline => "Create+Activate",
            Op::Generate => "generate",
            Op::Store => "store",
        }
    }

    fn run(self, keyring: &Keyring, id: &str) {
        match self {
            Op::Baseline => {
                let client = keyring.client();
                let uid = client
                    .request(
                        &ops::create_aes(256, &object_name(id, "")),
                        Retry::Never,
                        ops::parse_create,
                    )
                    .expect("create");
                client
                    .request(&ops::activate(&uid), Retry::Never, |_| Ok(()))
                    .expect("activate");
            }
            Op::Generate => keyring.generate(id, "", "AES", 32).expect("generate"),
            Op::Store => keyring.store(id, "", "AES", &[7u8; 32]).expect("store"),
        }
    }
}

struct Row {
    op: Op,
    sessions: usize,
    done: usize,
    per_second: f64,
    median: Duration,
    p99: Duration,
    /// KMIP requests per operation.
    requests: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `sessions` threads doing `op` on new keys until `length` has passed; each finishes the
/// operation it started.
fn measure(keyring: &Arc<Keyring>, op: Op, sessions: usize, length: Duration, round: usize) -> Row {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..sessions)
        .map(|s| {
            let (keyring, stop) = (keyring.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut times = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("{}-{round}-{sessions}-{s}-{i}", op.label());
                    let one = Instant::now();
                    op.run(&keyring, &id);
                    times.push(one.elapsed());
                    i += 1;
                }
                times
            })
        })
        .collect();
    std::thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    let mut times: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("session"))
        .collect();
    let elapsed = started.elapsed();
    times.sort();
    Row {
        op,
        sessions,
        done: times.len(),
        per_second: times.len() as f64 / elapsed.as_secs_f64(),
        median: percentile(&times, 0.5),
        p99: percentile(&times, 0.99),
        requests: 0.0,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut levels: Vec<usize> = args.filter_map(|s| s.parse().ok()).collect();
    if levels.is_empty() {
        levels = vec![1, 8, 32];
    }
    let length = Duration::from_secs(seconds);

    let mut rows = Vec::new();
    for (round, op) in [Op::Baseline, Op::Generate, Op::Store]
        .into_iter()
        .enumerate()
    {
        for &sessions in &levels {
            // An empty server for every row: PyKMIP's Locate by Name costs time per object it
            // holds, so a row after a busy one would measure the rows before it.
            script(&["stop"]);
            script(&["reset"]);
            script(&["start"]);
            let conf_dir = PathBuf::from(script(&["confdir"]));
            let conf = load_conf_dir(&conf_dir).expect("bench conf dir");
            let keyring = Arc::new(Keyring::new(
                KmipClient::from_conf_dir(&conf).expect("client"),
            ));
            keyring.client().connect().expect("connect");
            // Warm up: the connection, its TLS session and the server's first writes.
            for i in 0..5 {
                Op::Baseline.run(&keyring, &format!("warm-{i}"));
            }
            // And whether the server keeps names unique, which the first write asks once.
            if !matches!(op, Op::Baseline) {
                op.run(&keyring, "warm-write");
            }
            let before = keyring.client().health().snapshot().requests;
            let mut row = measure(&keyring, op, sessions, length, round);
            let requests = keyring.client().health().snapshot().requests - before;
            row.requests = requests as f64 / row.done.max(1) as f64;
            eprintln!(
                "  {} x{}: {} done, {:.2}/s",
                op.label(),
                sessions,
                row.done,
                row.per_second
            );
            rows.push(row);
            // Its connection closes before the server stops.
            drop(keyring);
        }
    }
    script(&["stop"]);

    let baseline = rows
        .iter()
        .find(|r| matches!(r.op, Op::Baseline) && r.sessions == 1)
        .map_or(Duration::ZERO, |r| r.median);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let unique = std::env::var("KEYRING_OKV_PYKMIP_UNIQUE_NAMES").is_ok_and(|v| v == "1");
    println!(
        "New AES-256 keys, {seconds} s per row, one keyring (one KMIP connection), PyKMIP on loopback{};",
        if unique {
            " keeping names unique (no create race wait)"
        } else {
            ""
        }
    );
    println!(
        "baseline: the server's own Create+Activate, median {:.1} ms (1 session)",
        ms(baseline)
    );
    println!();
    println!(
        "| operation | sessions | done | per second | × 1 session | median ms | p99 ms | median − baseline ms | requests per op |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let single = rows
            .iter()
            .find(|r| r.sessions == 1 && r.op.label() == row.op.label())
            .map_or(f64::NAN, |r| r.per_second);
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:+.1} | {:.1} |",
            row.op.label(),
            row.sessions,
            row.done,
            row.per_second,
            row.per_second / single,
            ms(row.median),
            ms(row.p99),
            ms(row.median) - ms(baseline),
            row.requests
        );
    }
}
