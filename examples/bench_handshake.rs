//! Mutual-TLS handshakes with the lab's PyKMIP server, in one process: the first (which pays
//! for any one-time set-up of the crypto library) and the median of the rest.
//!
//!     cargo run --release --example bench_handshake [ROUNDS] [CONF_DIR]
//!
//! `scripts/bench-handshake.sh` runs it for two builds in turns (before and after a change).

use std::path::PathBuf;
use std::time::Instant;

use okv_core::config::load_conf_dir;
use okv_core::connector::connect_any;

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(50, |a| a.parse().expect("ROUNDS"));
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let out = std::process::Command::new("bash")
            .args(["scripts/pykmip.sh", "confdir"])
            .output()
            .expect("scripts/pykmip.sh confdir");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    });
    let conf = load_conf_dir(&dir).expect("configuration directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let session = runtime
            .block_on(connect_any(&conf.servers, conf.tls.clone(), &conf.options))
            .expect("handshake");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(session);
    }
    let first = times[0];
    let mut rest = times[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    let median = rest.get(rest.len() / 2).copied().unwrap_or(first);
    println!(
        "first {first:.2} ms, median of the next {} {median:.2} ms",
        rest.len()
    );
}
