//! Unloading the MySQL plugin and the keyring component (the core's deinit entry points) while
//! a keyring call waits on a hung KMIP server: the call is abandoned at once and deinit returns
//! long before the request timeout. (kmip_key_management's shutdown is checked in a real
//! mariadbd: tests/mariadb/mariadb_shutdown.rs.)

#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::fault_server::FaultServer;
use common::fixtures::TestConfDir;
use common::kmip_quirks::serve_in_process;
use common::tcp_proxy::TcpProxy;

/// The connect and request timeouts of the configuration: long, so that an unload that waits
/// for them cannot pass for one that does not.
const TIMEOUT: Duration = Duration::from_secs(60);

/// An in-process KMIP server behind a proxy that can hang, and a configuration directory that
/// names the proxy.
struct Hangable {
    _server: FaultServer,
    conf: TestConfDir,
    proxy: TcpProxy,
}

fn hangable(prefix: &str) -> Hangable {
    let (_kmip, server, conf) = serve_in_process(prefix, "127.0.0.1");
    let proxy = TcpProxy::start(server.addr);
    let secs = TIMEOUT.as_secs();
    std::fs::write(
        conf.dir.join("okvclient.ora"),
        format!(
            "SERVER={}\nKEYRING_OKV_CONNECT_TIMEOUT={secs}\nKEYRING_OKV_REQUEST_TIMEOUT={secs}\n",
            proxy.addr
        ),
    )
    .unwrap();
    Hangable {
        _server: server,
        conf,
        proxy,
    }
}

/// Hangs the server, runs `call` on a thread of its own until its request is stuck in the
/// proxy, then `unload`; returns how long the unload took, whether the call failed and how
/// long it ran.
fn unload_during_a_hung_call(
    kmip: &Hangable,
    call: impl FnOnce() -> bool + Send + 'static,
    unload: impl FnOnce(),
) -> (Duration, bool, Duration) {
    kmip.proxy.set_hang(true);
    let calling = std::thread::spawn(move || {
        let started = Instant::now();
        let failed = call();
        (failed, started.elapsed())
    });
    let deadline = Instant::now() + TIMEOUT / 3;
    while kmip.proxy.held() == 0 {
        assert!(
            Instant::now() < deadline && !calling.is_finished(),
            "the call's request never reached the hung server"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    unload();
    let took = started.elapsed();
    let (failed, ran) = calling.join().unwrap();
    (took, failed, ran)
}

/// One test: the plugin and the component share the process's I/O runtime, which each unload
/// stops.
#[test]
fn unload_abandons_a_call_waiting_on_a_hung_kmip_server() {
    // The MySQL plugin: UNINSTALL PLUGIN or shutdown.
    let kmip = hangable("sd-unload-plugin-");
    let dir = kmip.conf.dir.to_str().unwrap().to_string();
    okv_core::products::mysql_plugin::start();
    okv_core::products::mysql_plugin::install(
        okv_core::products::mysql_plugin::prepare(&dir, true).expect("configuration"),
    );
    let (took, failed, ran) = unload_during_a_hung_call(
        &kmip,
        || okv_core::products::mysql_plugin::fetch("sd_key", "").is_err(),
        okv_core::products::mysql_plugin::shutdown,
    );
    eprintln!("plugin: deinit took {took:?}, the call {ran:?} ({TIMEOUT:?} timeouts)");
    assert!(failed, "the call waiting on the hung server failed");
    assert!(took < TIMEOUT / 3, "plugin deinit took {took:?}");
    assert!(ran < TIMEOUT / 3, "the call returned after {ran:?}");

    // The component: UNINSTALL COMPONENT or shutdown.
    let kmip = hangable("sd-unload-component-");
    let component_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        component_dir.path().join("component_keyring_okv.cnf"),
        format!(
            "{{\"kmip_configuration_directory\": \"{}\"}}",
            kmip.conf.dir.display()
        ),
    )
    .unwrap();
    okv_core::products::mysql_component::load(component_dir.path().to_str().unwrap(), None)
        .expect("configuration");
    let (took, failed, ran) = unload_during_a_hung_call(
        &kmip,
        || okv_core::products::mysql_component::fetch("sd_key", "").is_err(),
        okv_core::products::mysql_component::shutdown,
    );
    eprintln!("component: deinit took {took:?}, the call {ran:?} ({TIMEOUT:?} timeouts)");
    assert!(failed, "the call waiting on the hung server failed");
    assert!(took < TIMEOUT / 3, "component deinit took {took:?}");
    assert!(ran < TIMEOUT / 3, "the call returned after {ran:?}");
}
