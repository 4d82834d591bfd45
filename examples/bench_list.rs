//! Listing N keys (default 10,000) from PyKMIP: the keyring's listing (partitioned Locate,
//! Get Attributes for many objects per request) against one Get Attributes request per
//! object, measured in the same run on the same server, alternating, median of the rounds.
//!
//!     cargo run --release --example bench_list [N] [ROUNDS]
//!
//! It uses its own PyKMIP instance ("bench", its own database, started if needed), so the
//! test server is not slowed by N extra objects; the keys are made once (Create and Activate
//! sent 100 per request) and kept for later runs. `bash scripts/pykmip.sh` with
//! KEYRING_OKV_PYKMIP_NAME=bench stops or resets it. Run it on an idle machine.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use okv_core::config::load_conf_dir;
use okv_core::connector::{KmipClient, Retry};
use okv_core::keyring::{Keyring, object_name, parse_object_name};
use okv_core::kmip::{LocateFilter, ops, tags};

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

fn make_keys(client: &KmipClient, have: usize, want: usize) {
    let started = Instant::now();
    let mut next = have;
    while next < want {
        let end = (next + 100).min(want);
        let creates: Vec<_> = (next..end)
            .map(|i| ops::create_aes(256, &object_name(&format!("bench-list-{i:05}"), "")))
            .collect();
        let answer = client
            .request_batch(&creates, Retry::Never)
            .expect("create");
        let activates: Vec<_> = answer
            .items
            .into_iter()
            .map(|item| {
                let payload = item.expect("answered").expect("created");
                ops::activate(&ops::parse_create(&payload).expect("uid"))
            })
            .collect();
        client
            .request_batch(&activates, Retry::Never)
            .expect("activate");
        next = end;
    }
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

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    script(&["start"]);
    let conf_dir = PathBuf::from(script(&["confdir"]));
    let conf = load_conf_dir(&conf_dir).expect("bench conf dir");
    let keyring = Keyring::new(KmipClient::from_conf_dir(&conf).expect("client"));
    let have = keyring
        .list(false)
        .expect("list")
        .iter()
        .filter(|e| e.key_id.starts_with("bench-list-"))
        .count();
    make_keys(keyring.client(), have, n);

    let (mut batched, mut single) = (Vec::new(), Vec::new());
    let mut counts = (0, 0);
    for _ in 0..rounds {
        let started = Instant::now();
        counts.0 = keyring.list(true).expect("list").len();
        batched.push(started.elapsed());
        let started = Instant::now();
        counts.1 = one_request_per_object(keyring.client());
        single.push(started.elapsed());
    }
    let (b, s) = (median(batched), median(single));
    println!(
        "listing {} keys from PyKMIP 0.11 on loopback, median of {rounds} rounds:",
        counts.0
    );
    println!(
        "  keyring listing (batched Get Attributes)  {:8.2} s",
        b.as_secs_f64()
    );
    println!(
        "  one Get Attributes request per object     {:8.2} s  ({} keys)",
        s.as_secs_f64(),
        counts.1
    );
    println!(
        "  ratio                                     {:8.2}x",
        s.as_secs_f64() / b.as_secs_f64()
    );
}
