//! Cold work as the KMIP server fills up: fetching a key this process has not read yet (every
//! key after a restart) and storing a new key, with SMALL and then LARGE objects on the server
//! (default 100 and 2,000), in the same run, next to a warm fetch (a key already read: one
//! request, whatever the server holds) as the baseline.
//!
//!     cargo run --release --example bench_cold [SMALL] [LARGE] [FETCHES] [STORES]
//!
//! It uses a PyKMIP instance of its own (KEYRING_OKV_PYKMIP_NAME, default "bench_cold"), which
//! it empties first so that the object counts are exact; the objects are Active AES keys made
//! 100 per request. A store includes the wait of the create race rule (about a second, see
//! `keyring::race`), which does not depend on the server's size. Run it on an idle machine and
//! compare the ratios, which move less with the machine's load than the times.
//!
//! It also times a Locate by Name alone, with and without a State attribute after the Name (what
//! a lookup sent before), on the same server: what PyKMIP spends per stored object on a name.

#[path = "support/make_keys.rs"]
mod make_keys;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use okv_core::config::load_conf_dir;
use okv_core::connector::{KmipClient, Retry};
use okv_core::keyring::{Keyring, object_name};
use okv_core::kmip::{LocateFilter, ops, tags};

fn instance() -> String {
    std::env::var("KEYRING_OKV_PYKMIP_NAME").unwrap_or_else(|_| "bench_cold".into())
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

/// Makes Active AES keys `fill-{have}` .. `fill-{want - 1}`.
fn fill(client: &KmipClient, have: usize, want: usize) {
    let started = Instant::now();
    make_keys::make_keys(client, "fill-", have, want);
    println!(
        "  made {} objects in {:.1} s",
        want - have,
        started.elapsed().as_secs_f64()
    );
}

struct Measured {
    objects: usize,
    cold: Duration,
    cold_requests: f64,
    warm: Duration,
    store: Duration,
    store_requests: f64,
    locate_name: Duration,
    locate_name_state: Duration,
}

fn requests(keyring: &Keyring) -> u64 {
    keyring.client().health().snapshot().requests
}

/// Per operation: `fetches` cold fetches of distinct keys on a keyring that has read none, the
/// same keys again (warm), and `stores` stores of new keys.
fn measure(
    conf_dir: &std::path::Path,
    objects: usize,
    fetches: usize,
    stores: usize,
    round: usize,
) -> Measured {
    let conf = load_conf_dir(conf_dir).expect("bench conf dir");
    let keyring = Keyring::new(KmipClient::from_conf_dir(&conf).expect("client"));
    keyring.client().connect().expect("connect");
    let ids: Vec<String> = (0..fetches).map(|i| format!("fill-{i:05}")).collect();
    let before = requests(&keyring);
    let started = Instant::now();
    for id in &ids {
        keyring.fetch(id, "").expect("fetch").expect("present");
    }
    let cold = started.elapsed() / fetches as u32;
    let cold_requests = (requests(&keyring) - before) as f64 / fetches as f64;
    let started = Instant::now();
    for id in &ids {
        keyring.fetch(id, "").expect("fetch").expect("present");
    }
    let warm = started.elapsed() / fetches as u32;
    let before = requests(&keyring);
    let started = Instant::now();
    for i in 0..stores {
        let id = format!("stored-{objects}-{round}-{i}");
        keyring.store(&id, "", "AES", &[7u8; 32]).expect("store");
    }
    let store = started.elapsed() / stores as u32;
    let store_requests = (requests(&keyring) - before) as f64 / stores as f64;
    let name = object_name("fill-00000", "");
    let filter = LocateFilter {
        name: Some(&name),
        object_type: None,
    };
    let (mut locate_name, mut locate_name_state) = (Duration::ZERO, Duration::ZERO);
    // Alternating, so that a change of the machine's load hits both alike.
    for _ in 0..stores {
        for (state, total) in [
            (None, &mut locate_name),
            (Some(tags::state::ACTIVE), &mut locate_name_state),
        ] {
            let started = Instant::now();
            let found = keyring
                .client()
                .request(
                    &ops::locate_where(&filter, state, None, None),
                    Retry::Idempotent,
                    ops::parse_locate,
                )
                .expect("locate");
            *total += started.elapsed();
            assert_eq!(found.len(), 1);
        }
    }
    Measured {
        objects,
        cold,
        cold_requests,
        warm,
        store,
        store_requests,
        locate_name: locate_name / stores as u32,
        locate_name_state: locate_name_state / stores as u32,
    }
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|s| {
            s.parse()
                .expect("usage: bench_cold [SMALL] [LARGE] [FETCHES] [STORES]")
        })
        .unwrap_or(default)
}

fn main() {
    let (small, large, fetches, stores) = (arg(1, 100), arg(2, 2000), arg(3, 20), arg(4, 5));
    assert!(
        fetches <= small && small < large,
        "FETCHES <= SMALL < LARGE"
    );
    println!(
        "PyKMIP 0.11 instance '{}' on loopback, emptied first",
        instance()
    );
    script(&["stop"]);
    script(&["reset"]);
    script(&["start"]);
    let conf_dir = PathBuf::from(script(&["confdir"]));
    let conf = load_conf_dir(&conf_dir).expect("bench conf dir");
    let filler = KmipClient::from_conf_dir(&conf).expect("client");
    let mut results = Vec::new();
    let mut have = 0;
    for (round, size) in [small, large].into_iter().enumerate() {
        fill(&filler, have, size);
        // The stores of the round before added objects of their own.
        have = size;
        results.push(measure(
            &conf_dir,
            size + round * stores,
            fetches,
            stores,
            round,
        ));
    }
    println!(
        "{fetches} cold fetches, the same keys warm, {stores} stores; per operation (KMIP requests per operation):"
    );
    println!(
        "  objects   cold fetch          warm fetch   store                Locate Name   Locate Name+State"
    );
    for m in &results {
        println!(
            "  {:>7}   {:>7.1} ms ({:.1})   {:>7.2} ms   {:>7.1} ms ({:.1})   {:>8.1} ms   {:>8.1} ms",
            m.objects,
            m.cold.as_secs_f64() * 1e3,
            m.cold_requests,
            m.warm.as_secs_f64() * 1e3,
            m.store.as_secs_f64() * 1e3,
            m.store_requests,
            m.locate_name.as_secs_f64() * 1e3,
            m.locate_name_state.as_secs_f64() * 1e3
        );
    }
    let (a, b) = (&results[0], &results[1]);
    let ratio = |x: Duration, y: Duration| y.as_secs_f64() / x.as_secs_f64();
    println!(
        "  ratio {} / {} objects: cold fetch {:.2}, warm fetch {:.2}, store {:.2}",
        b.objects,
        a.objects,
        ratio(a.cold, b.cold),
        ratio(a.warm, b.warm),
        ratio(a.store, b.store)
    );
    println!(
        "  Locate Name+State / Name: {:.2} with {} objects, {:.2} with {}",
        ratio(a.locate_name, a.locate_name_state),
        a.objects,
        ratio(b.locate_name, b.locate_name_state),
        b.objects
    );
    println!(
        "  cold / warm fetch: {:.2} with {} objects, {:.2} with {}",
        ratio(a.warm, a.cold),
        a.objects,
        ratio(b.warm, b.cold),
        b.objects
    );
    script(&["stop"]);
}
