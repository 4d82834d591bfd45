//! The component's key cache (`cache_keys`) end to end, through the core's component API as
//! component_keyring_okv.so calls it, against a PyKMIP server of its own behind a relay that
//! can be cut: absence is remembered only from an answer, a write always wins over a read that
//! raced it, and writes see their own result while other threads keep reading.
//!
//! One test function: the component's state is process-wide, as in mysqld.

#[path = "../common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::fault_server::CutProxy;
use common::pykmip::{Named, unique};
use okv_core::products::mysql_component as component;

const OWNER: &str = "cache@localhost";

fn row(key: &str) -> String {
    component::status_rows()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no status row {key}"))
}

fn requests() -> u64 {
    row("Requests").parse().unwrap()
}

fn fetch(key_id: &str) -> Option<Vec<u8>> {
    component::fetch(key_id, OWNER)
        .unwrap_or_else(|e| panic!("fetch of {key_id}: {e}"))
        .map(|k| k.material.to_vec())
}

/// Fetches until the KMIP server answers: after the relay is restored, calls fail at once for
/// a moment (the fail-fast window of the last failure).
fn fetch_once_reachable(key_id: &str) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match component::fetch(key_id, OWNER) {
            Ok(key) => return key.map(|k| k.material.to_vec()),
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("the KMIP server did not answer again: {e}"),
        }
    }
}

#[test]
fn absence_is_remembered_only_from_an_answer_and_writes_always_win() {
    let kmip = Named::start("ca_cache", "p256");
    let proxy = CutProxy::start(SocketAddr::from(([127, 0, 0, 1], kmip.port())));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("component_keyring_okv.cnf"),
        format!(
            "{{\"kmip_configuration_directory\": \"{}\", \"server\": \"127.0.0.1:{}\", \"cache_keys\": true, \"cache_ttl_seconds\": 300}}",
            kmip.conf_dir().display(),
            proxy.port()
        ),
    )
    .unwrap();
    component::load(dir.path().to_str().unwrap(), None).expect("load");

    // A lookup that found nothing is remembered: the second read asks nobody.
    let key = unique("absent");
    assert_eq!(fetch(&key), None);
    let before = requests();
    assert_eq!(fetch(&key), None);
    assert_eq!(requests(), before, "the absent key was asked for again");
    assert_eq!(row("Cached_absent_keys"), "1");

    // A store after the absence was recorded wins, and is served from memory.
    component::store(&key, OWNER, "SECRET", b"fresh").unwrap();
    let before = requests();
    assert_eq!(fetch(&key).as_deref(), Some(&b"fresh"[..]));
    assert_eq!(
        requests(),
        before,
        "the stored key was fetched from the server"
    );
    assert_eq!(
        (
            row("Cached_keys").as_str(),
            row("Cached_absent_keys").as_str()
        ),
        ("1", "0")
    );

    // A remove is remembered as absence.
    component::remove(&key, OWNER).unwrap();
    let before = requests();
    assert_eq!(fetch(&key), None);
    assert_eq!(requests(), before);

    // A read that failed says nothing about the key: it is asked for again once the server
    // answers, and only that answer is remembered.
    let unseen = unique("unseen");
    proxy.cut();
    assert!(
        component::fetch(&unseen, OWNER).is_err(),
        "a fetch through a cut relay succeeded"
    );
    assert_eq!(row("Cached_absent_keys"), "1", "an error was remembered");
    proxy.restore();
    assert_eq!(fetch_once_reachable(&unseen), None);
    assert_eq!(row("Cached_absent_keys"), "2");

    // Writes race reads of the same key: after each write returns, every read sees what it
    // wrote, never what a read that started before it saw.
    let hot = unique("hot");
    component::store(&hot, OWNER, "SECRET", b"v0").unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    component::fetch(&hot, OWNER).expect("a reader's fetch");
                }
            });
        }
        let outcome = std::panic::catch_unwind(|| {
            for round in 1..=10 {
                component::remove(&hot, OWNER).unwrap();
                assert_eq!(
                    fetch(&hot),
                    None,
                    "round {round}: the removed key came back"
                );
                let value = format!("v{round}");
                component::store(&hot, OWNER, "SECRET", value.as_bytes()).unwrap();
                assert_eq!(
                    fetch(&hot).as_deref(),
                    Some(value.as_bytes()),
                    "round {round}: an older value came back"
                );
            }
        });
        stop.store(true, Ordering::SeqCst);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
    // What the cache holds is what the server holds.
    component::load(dir.path().to_str().unwrap(), None).expect("reload");
    assert_eq!(fetch(&hot).as_deref(), Some(&b"v10"[..]));
    component::remove(&hot, OWNER).unwrap();
    component::shutdown();
}
