//! `SET GLOBAL keyring_okv_conf_dir` with the sealed key cache on, through the core's check and
//! update steps (`prepare`, `install`) as the plugin's system variable calls them: the update
//! runs under mysqld's global variable lock, so it only swaps. Stopping the old cache's thread,
//! which may be waiting on a hung KMIP server, happens in the new cache's thread, and the new
//! cache writes the shared file only once the old one has stopped.

#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pykmip::lab;
use common::tcp_proxy::TcpProxy;
use okv_core::config::load_conf_dir;
use okv_core::keyring::KeyType;
use okv_core::products::mysql_plugin as plugin;
use okv_core::sealed::{self, Binding, Entries, Entry, file};
use zeroize::Zeroizing;

fn until(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !done() {
        assert!(Instant::now() < end, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The entries of the plugin's sealed file for the configuration `conf`, if it opens with it.
fn sealed_for(conf: &Path, sealed_dir: &Path) -> Option<Entries> {
    let conf = load_conf_dir(conf).unwrap();
    let path = sealed::path_in(sealed_dir, &sealed::PLUGIN);
    let bytes = file::read(&path).ok()??;
    let key = conf.seal_root.key_for(sealed::PLUGIN.name.as_bytes());
    let c = file::open(&path, &key, &bytes).ok()?;
    let servers: Vec<String> = conf.servers.iter().map(ToString::to_string).collect();
    (c.binding.servers == servers).then_some(c.entries)
}

#[test]
fn set_global_does_not_wait_for_the_old_caches_thread_and_the_new_cache_writes_after_it() {
    let work = tempfile::tempdir().unwrap();
    let sealed_dir = work.path().join("sealed");
    std::fs::create_dir(&sealed_dir).unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], lab().port).into());
    // The old configuration reaches PyKMIP through a proxy that will hang; the new one directly.
    let old_dir = work.path().join("old");
    common::mariadb::conf_through(
        &lab().conf_dir,
        &old_dir,
        proxy.addr,
        "KEYRING_OKV_REQUEST_TIMEOUT=120\n",
    );
    let new_dir = work.path().join("new");
    common::mariadb::conf_through(
        &lab().conf_dir,
        &new_dir,
        ([127, 0, 0, 1], lab().port).into(),
        "",
    );

    // The old configuration's file holds a key last confirmed an hour ago: its thread asks
    // the KMIP server about it as soon as it starts.
    let old_conf = load_conf_dir(&old_dir).unwrap();
    let hour_ago = sealed::now_unix() - 3600;
    let mut entries = Entries::new();
    entries.insert(
        ("reload_stale_key".into(), String::new()),
        Entry {
            key_type: KeyType::Aes,
            material: Zeroizing::new(vec![7; 32]),
            uid: "no-such-object".into(),
            server: proxy.addr.to_string(),
            kept_at: hour_ago,
            confirmed_at: hour_ago,
        },
    );
    let binding = Binding {
        product: sealed::PLUGIN.name.into(),
        identity: old_conf.identity.subject.clone(),
        servers: old_conf.servers.iter().map(ToString::to_string).collect(),
    };
    let bytes = file::seal(
        &old_conf.seal_root.key_for(sealed::PLUGIN.name.as_bytes()),
        &binding,
        hour_ago,
        &entries,
        &sealed::Absent::new(),
    )
    .unwrap();
    file::write_atomically(&sealed::path_in(&sealed_dir, &sealed::PLUGIN), &bytes).unwrap();

    plugin::start();
    plugin::set_sealed_cache(24, false, Some(sealed_dir.display().to_string()));
    let old = plugin::prepare(old_dir.to_str().unwrap(), true).expect("old configuration");
    // From now on the proxy holds every request: the old cache's first confirmation hangs.
    proxy.set_hang(true);
    plugin::install(old);
    until(
        "the old cache's confirmation to reach the hung proxy",
        Duration::from_secs(60),
        || proxy.held() >= 1,
    );

    // SET GLOBAL keyring_okv_conf_dir = new: check, then update (under mysqld's lock).
    let new = plugin::prepare(new_dir.to_str().unwrap(), true).expect("new configuration");
    plugin::install(new);
    // The update returned while the old cache's thread still waits on the hung server.
    assert!(proxy.held() >= 1);

    // A key made now goes to the new configuration's server at once, and is kept in memory by
    // the new cache; the file is not written while the old cache may still write it.
    let key_id = common::pykmip::unique("reload_new_key");
    plugin::generate(&key_id, "", "AES", 32).expect("generate through the new configuration");
    assert!(plugin::fetch(&key_id, "").unwrap().is_some());
    assert!(
        sealed_for(&new_dir, &sealed_dir).is_none(),
        "the new cache wrote the file before the old one stopped"
    );
    assert!(sealed_for(&old_dir, &sealed_dir).is_some());

    // The hung server answers again: the old thread ends, is joined by the new cache's thread,
    // and the new cache writes what it holds.
    proxy.set_hang(false);
    until(
        "the new cache to write the file once the old one stopped",
        Duration::from_secs(120),
        || {
            sealed_for(&new_dir, &sealed_dir)
                .is_some_and(|e| e.contains_key(&(key_id.clone(), String::new())))
        },
    );
    assert_eq!(
        plugin::sealed_status().map(|s| s.file.code().to_string()),
        Some("ok".to_string())
    );

    plugin::remove(&key_id, "").unwrap();
    plugin::shutdown();
}
