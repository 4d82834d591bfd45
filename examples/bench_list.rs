//! Listing the keys of a PyKMIP server (N made, default 10,000): the keyring's listing
//! (partitioned Locate, Get Attributes for many objects per request) against one Get
//! Attributes request per object, measured in the same run on the same server, alternating,
//! median of the rounds, at each simulated round-trip time.
//!
//!     cargo run --release --example bench_list [N] [ROUNDS] [--rtt-ms 0,1,2,5]
//!
//! RTT 0 talks to PyKMIP directly on loopback; any other RTT goes through an in-process relay
//! on 127.0.0.1 that delays every chunk by RTT/2 each way (examples/support/latency_relay.rs),
//! as a server across a network would. Both methods list every key on the server, so the time
//! depends on how many keys the instance holds, not on N once they are made.
//!
//! It uses its own PyKMIP instance ("bench", its own database, started if needed), so the
//! test server is not slowed by N extra objects; the keys are made once (Create and Activate
//! sent 100 per request) and kept for later runs. `bash scripts/pykmip.sh` with
//! KEYRING_OKV_PYKMIP_NAME=bench stops or resets it. Run it on an idle machine.

#[path = "support/latency_relay.rs"]
mod latency_relay;
#[path = "support/make_keys.rs"]
mod make_keys;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use okv_core::config::{load_conf_dir, load_conf_dir_with, read_okvclient_ora};
use okv_core::connector::{KmipClient, Retry};
use okv_core::keyring::{Keyring, parse_object_name};
use okv_core::kmip::{LocateFilter, ops, tags};

use latency_relay::LatencyRelay;

const INSTANCE: &str = "bench";

fn script(args: &[&str]) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/pykmip.sh"))
        .args(args)
        .env("KEYRING_OKV_PYKMIP_NAME", INSTANCE)
        .output()
        .expect("run scripts/pykmip.sh");
    assert!(
        out.status.success(),
        "scripts/pykmip.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The old way: Locate everything, then one Get Attributes request per object.
fn one_request_per_object(client: &KmipClient) -> usize {
    let mut listed = 0;
    for object_type in [
        tags::object_type::SYMMETRIC_KEY,
        tags::object_type::SECRET_DATA,
    ] {
        let filter = LocateFilter {
            name: None,
            object_type: Some(object_type),
        };
        let uids = client
            .request(
                &ops::locate(&filter, Some(100_000)),
                Retry::Idempotent,
                ops::parse_locate,
            )
            .expect("locate");
        for uid in uids {
            let attributes = client
                .request(
                    &ops::get_attributes(&uid, &["Name", "State", "Cryptographic Length"]),
                    Retry::Idempotent,
                    ops::parse_get_attributes,
                )
                .expect("get attributes");
            if ops::attr_state(&attributes) == Some(tags::state::ACTIVE) {
                listed += ops::attr_names(&attributes)
                    .into_iter()
                    .filter(|n| parse_object_name(n).is_some())
                    .count();
            }
        }
    }
    listed
}

fn fill(client: &KmipClient, have: usize, want: usize) {
    let started = Instant::now();
    make_keys::make_keys(client, "bench-list-", have, want);
    if want > have {
        let took = started.elapsed();
        println!(
            "made {} keys (Create + Activate, 100 per request) in {:.1} s ({:.2} ms per key)",
            want - have,
            took.as_secs_f64(),
            took.as_secs_f64() * 1e3 / (want - have) as f64
        );
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Args {
    n: usize,
    rounds: usize,
    rtts_ms: Vec<f64>,
}

fn parse_args() -> Args {
    let usage = "usage: bench_list [N] [ROUNDS] [--rtt-ms MS[,MS...]]";
    let mut positional = Vec::new();
    let mut rtts_ms = vec![0.0, 1.0, 2.0, 5.0];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--rtt-ms" {
            let list = args.next().expect(usage);
            rtts_ms = list
                .split(',')
                .map(|ms| {
                    ms.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| (0.0..=1000.0).contains(v))
                })
                .collect::<Option<Vec<_>>>()
                .expect("--rtt-ms: milliseconds from 0 to 1000, comma-separated");
        } else {
            positional.push(arg.parse::<usize>().ok().filter(|&v| v > 0).expect(usage));
        }
    }
    Args {
        n: positional.first().copied().unwrap_or(10_000),
        rounds: positional.get(1).copied().unwrap_or(3),
        rtts_ms,
    }
}

/// A keyring that reaches the bench instance through `relay` (None: directly).
fn keyring_via(conf_dir: &Path, relay: Option<&LatencyRelay>) -> Keyring {
    let conf = match relay {
        None => load_conf_dir(conf_dir).expect("bench conf dir"),
        Some(relay) => {
            let mut ora = read_okvclient_ora(conf_dir).expect("bench okvclient.ora");
            ora.server = relay.addr().to_string().parse().expect("relay address");
            ora.standby.clear();
            load_conf_dir_with(conf_dir, ora).expect("bench conf dir")
        }
    };
    Keyring::new(KmipClient::from_conf_dir(&conf).expect("client"))
}

struct Setting {
    rtt_ms: f64,
    _relay: Option<LatencyRelay>,
    keyring: Keyring,
    batched: Vec<Duration>,
    single: Vec<Duration>,
}

fn main() {
    let args = parse_args();
    script(&["start"]);
    let conf_dir = PathBuf::from(script(&["confdir"]));
    let port: u16 = script(&["port"]).parse().expect("bench port");
    let upstream = SocketAddr::from(([127, 0, 0, 1], port));
    let direct = keyring_via(&conf_dir, None);
    let have = direct
        .list(false)
        .expect("list")
        .iter()
        .filter(|e| e.key_id.starts_with("bench-list-"))
        .count();
    fill(direct.client(), have, args.n);
    drop(direct);

    let mut settings: Vec<Setting> = args
        .rtts_ms
        .iter()
        .map(|&rtt_ms| {
            let relay = (rtt_ms > 0.0).then(|| {
                LatencyRelay::start(upstream, Duration::from_secs_f64(rtt_ms / 1e3))
                    .expect("start the relay")
            });
            Setting {
                rtt_ms,
                keyring: keyring_via(&conf_dir, relay.as_ref()),
                _relay: relay,
                batched: Vec::new(),
                single: Vec::new(),
            }
        })
        .collect();

    let mut counts = (0, 0);
    let mut costs = Vec::new();
    for _ in 0..args.rounds {
        for setting in &mut settings {
            let started = Instant::now();
            counts.0 = setting.keyring.list(true).expect("list").len();
            setting.batched.push(started.elapsed());
            costs.push(setting.keyring.last_listing().expect("a listing was made"));
            let started = Instant::now();
            counts.1 = one_request_per_object(setting.keyring.client());
            setting.single.push(started.elapsed());
        }
    }
    println!(
        "listing {} keys ({} by one request per object) from PyKMIP 0.11 on loopback, median of {} rounds:",
        counts.0, counts.1, args.rounds
    );
    // The first listing of each keyring also learns whether the server caps Locate answers
    // (two more Locate); later listings of the same server skip that.
    let first = costs.first().expect("a round");
    let last = costs.last().expect("a round");
    println!(
        "  requests per listing: first {} ({} Locate), later {} ({} Locate), for {} objects",
        first.requests, first.locates, last.requests, last.locates, last.objects
    );
    println!(
        "  added RTT   keyring listing (batched)   first listing   one request per object   ratio"
    );
    for setting in settings {
        let cold = setting.batched[0];
        let (b, s) = (median(setting.batched), median(setting.single));
        let rtt = if setting.rtt_ms > 0.0 {
            format!("{} ms", setting.rtt_ms)
        } else {
            "none".to_string()
        };
        println!(
            "  {rtt:>9}   {:>23.2} s   {:>11.2} s   {:>20.2} s   {:>4.2}x",
            b.as_secs_f64(),
            cold.as_secs_f64(),
            s.as_secs_f64(),
            s.as_secs_f64() / b.as_secs_f64()
        );
    }
}
