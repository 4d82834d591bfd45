//! A real MariaDB (10.11 and 11.8) shuts down while its KMIP server hangs: kmip_key_management abandons
//! the request in flight before it waits for its threads, so mariadbd does not wait for the
//! request timeout.

#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::mariadb::{Instance, Target, admin, plugin_args};
use common::pykmip::unique;
use common::tcp_proxy::TcpProxy;

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

/// The connect and request timeouts of the configuration: long, so that a shutdown that waits
/// for them cannot pass for one that does not.
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn shutdown_does_not_wait_for_a_hung_kmip_server_10_11() {
    shutdown_does_not_wait_for_a_hung_kmip_server(Target::Host, "sd_hang_host");
}

#[test]
fn shutdown_does_not_wait_for_a_hung_kmip_server_11_8() {
    shutdown_does_not_wait_for_a_hung_kmip_server(Target::Chroot, "sd_hang_chroot");
}

fn shutdown_does_not_wait_for_a_hung_kmip_server(target: Target, instance: &str) {
    let (_kmip, server, conf) = common::kmip_quirks::serve_in_process("sd-hang-", "127.0.0.1");
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
    let namespace = unique("sd-hang");
    let out = admin(
        KEYRING_OKV,
        &conf.dir,
        &["create-key", "1", "--namespace", &namespace],
    );
    assert!(
        out.status.success(),
        "create-key 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let db = Instance::new(target, instance);
    let inner_conf = db.conf(&conf.dir);
    let mut args = plugin_args(&inner_conf, &namespace);
    // A refresh round every second, so that one is waiting on the KMIP server at shutdown.
    args.push("--kmip-key-management-cache-version-timeout=1000".into());
    db.must_start(&args);
    assert_eq!(db.status("refresh_errors"), 0);

    // Hung: connections stay open, no byte passes either way.
    proxy.set_hang(true);
    let before = db.status("refreshes");
    // A refresh round is then stuck in the proxy: one that starts after the hang (its request
    // is held), or the one in flight when the hang began (its answer is held), which starts no
    // new round, so the round counter alone cannot tell.
    let deadline = Instant::now() + TIMEOUT / 2;
    while proxy.held() == 0 {
        assert!(
            Instant::now() < deadline,
            "no refresh round reached the hung KMIP server (refreshes before the hang {before}, now {})",
            db.status("refreshes")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // That round cannot get past the proxy: it waits for the request timeout.

    let started = Instant::now();
    db.stop();
    let took = started.elapsed();
    eprintln!(
        "{target:?}: mariadbd shut down in {took:?} with the KMIP server hung ({secs} s timeouts)"
    );
    assert!(
        took < TIMEOUT / 3,
        "mariadbd took {took:?} to shut down: it waited for the hung KMIP server\n{}",
        db.log_tail(30)
    );
    let log = db.last_start_log();
    assert!(log.contains("Shutdown complete"), "{log}");
    assert_eq!(db.plugin_errors(), Vec::<String>::new(), "{log}");
    assert!(
        !log.contains("looking for new key versions failed"),
        "the abandoned round is not a failure to report: {log}"
    );
    // The hang lasted the whole shutdown.
    drop(proxy);
    let _ = common::mariadb::script(target, &["reset", &db.name]);
}
