//! Get latency on a warm connection against the local PyKMIP server, next to PyKMIP's own
//! client (ProxyKmipClient) on the same server and object, measured in the same run.
//!
//!     bash scripts/pykmip.sh setup && bash scripts/pykmip.sh start
//!     cargo run --release --example bench_get [N]
//!
//! Run it on an idle machine: a parallel build skews both sides.

#[path = "../tests/common/pykmip.rs"]
mod pykmip;

use std::time::Instant;

use okv_core::config::load_conf_dir;
use okv_core::connector::{KmipClient, Retry};
use okv_core::keyring::{Keyring, object_name};
use okv_core::kmip::ops;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let lab = pykmip::lab();
    let conf = load_conf_dir(&lab.conf_dir).expect("lab conf dir");
    let keyring = Keyring::new(KmipClient::from_conf_dir(&conf).expect("client"));
    let id = pykmip::unique("bench");
    keyring.store(&id, "", "AES", &[7u8; 32]).expect("store");
    let found = pykmip::tool(&["find", &object_name(&id, "")]);
    let uid = found[0]["uid"].as_str().expect("uid").to_string();

    // Warm up: connection, TLS session, identifier cache.
    for _ in 0..20 {
        keyring.fetch(&id, "").expect("fetch").expect("present");
    }
    let start = Instant::now();
    for _ in 0..n {
        keyring
            .client()
            .request(&ops::get(&uid), Retry::Idempotent, ops::parse_get)
            .expect("get");
    }
    let raw = start.elapsed().as_secs_f64() / n as f64;
    let start = Instant::now();
    for _ in 0..n {
        keyring.fetch(&id, "").expect("fetch").expect("present");
    }
    let fetch = start.elapsed().as_secs_f64() / n as f64;

    let py = pykmip::tool(&["bench-get", &uid, &n.to_string()]);
    let py_ms = py["ms_per_op"].as_f64().expect("ms_per_op");
    println!(
        "Get on a warm connection, {n} requests, one 32-byte AES key, PyKMIP 0.11 on loopback:"
    );
    println!(
        "  keyring_okv KMIP Get        {:7.3} ms/op  {:7.0} ops/s",
        raw * 1e3,
        1.0 / raw
    );
    println!(
        "  keyring_okv Keyring::fetch  {:7.3} ms/op  {:7.0} ops/s",
        fetch * 1e3,
        1.0 / fetch
    );
    println!(
        "  PyKMIP ProxyKmipClient Get  {:7.3} ms/op  {:7.0} ops/s",
        py_ms,
        1e3 / py_ms
    );
    println!(
        "  ratio PyKMIP client / keyring_okv Get: {:.2}",
        py_ms / (raw * 1e3)
    );
    keyring.remove(&id, "").expect("remove");
}
