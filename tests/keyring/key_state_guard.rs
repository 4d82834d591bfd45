//! The key-state guard (src/guard) against in-process KMIP servers: each rule of what counts as
//! a revocation (revoked, destroyed, not found, replaced) and what counts as an outage
//! (unreachable, a timeout, a TLS failure, a KMIP error not about the object), the `refuse`
//! action, and the polling thread. No PyKMIP needed: the servers use the test PKI.

#[path = "../common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fault_server::{Fault, FaultServer, Reply, serve_refusing};
use common::fixtures::{Layout, make_conf_dir, pki, rustls_server_config};
use common::kmip_quirks::{Object, Quirks, QuirkyKmip, serve_own_pki};
use okv_core::config::{Host, Options, ServerAddr, load_conf_dir};
use okv_core::connector::KmipClient;
use okv_core::guard::{
    Action, Guard, Poller, Revocation, Settings, Verdict, WatchedKey, mysql_next_step, poll,
};
use okv_core::keyring::{Keyring, object_name};
use okv_core::kmip::tags::{operation, result_reason, state};

fn local(port: u16) -> ServerAddr {
    ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port,
    }
}

fn client(port: u16, timeout: Duration) -> KmipClient {
    let dir = make_conf_dir(&Layout {
        ora: Some(format!("SERVER=127.0.0.1:{port}\n")),
        ..pki().layout()
    });
    let conf = load_conf_dir(&dir.dir).expect("conf dir");
    let options = Options {
        connect_timeout: timeout,
        request_timeout: timeout,
        ..conf.options.clone()
    };
    KmipClient::new(vec![local(port)], conf.tls, options).expect("client")
}

fn settings(action: Action) -> Settings {
    Settings {
        poll: Duration::from_secs(300),
        action,
    }
}

fn guard(action: Action) -> Guard {
    Guard::new("keyring_okv", settings(action), |_| {})
}

/// A quirky server holding the Active InnoDB master key `key_id`, a keyring that fetched it,
/// and the key as the product would watch it.
struct Served {
    kmip: Arc<QuirkyKmip>,
    _server: FaultServer,
    keyring: Keyring,
    key: WatchedKey,
}

fn served(key_id: &str, quirks: Quirks) -> Served {
    let (kmip, server) = serve_own_pki("u", quirks);
    served_by(kmip, server, key_id)
}

fn served_by(kmip: Arc<QuirkyKmip>, server: FaultServer, key_id: &str) -> Served {
    let name = object_name(key_id, "");
    let uid = kmip.fresh_uid();
    kmip.plant(Object::aes(&uid, &name, vec![7; 32], 1_700_000_000));
    let keyring = Keyring::new(client(server.port(), Duration::from_secs(5)));
    let fetched = keyring.fetch(key_id, "").expect("fetch");
    assert!(fetched.is_some());
    let (known_uid, known_server) = keyring.known(key_id, "").expect("known");
    assert_eq!(known_uid, uid);
    let key = WatchedKey {
        uid,
        server: known_server,
        name,
        key: key_id.to_string(),
        next_step: mysql_next_step(key_id),
    };
    Served {
        kmip,
        _server: server,
        keyring,
        key,
    }
}

fn verdict(s: &Served) -> Verdict {
    let client = s.keyring.client();
    poll::ask(
        client,
        std::slice::from_ref(&s.key),
        Instant::now() + client.call_budget(),
    )
    .remove(0)
}

const INNODB: &str = "INNODBKey-00000000-0000-0000-0000-000000000000-1";

#[test]
fn an_active_key_is_in_force() {
    let s = served(INNODB, Quirks::default());
    assert_eq!(verdict(&s), Verdict::InForce);
    let g = guard(Action::Warn);
    g.watch(s.key.clone());
    g.poll(s.keyring.client(), Instant::now() + Duration::from_secs(10));
    let status = g.status();
    assert_eq!(status.keys_watched, 1);
    assert_eq!(status.revoked_in_use, 0);
    assert_eq!(status.last_result, "ok");
    assert!(status.last_poll.is_some());
}

#[test]
fn many_keys_go_in_one_message() {
    let (kmip, server) = serve_own_pki("u", Quirks::default());
    let first = served_by(kmip.clone(), server, "k0");
    let mut keys = vec![first.key.clone()];
    for i in 1..20 {
        let name = object_name(&format!("k{i}"), "");
        let uid = kmip.fresh_uid();
        kmip.plant(Object::aes(&uid, &name, vec![7; 32], 1_700_000_000));
        keys.push(WatchedKey {
            uid,
            name,
            key: format!("k{i}"),
            ..first.key.clone()
        });
    }
    let before = kmip.messages.load(Ordering::SeqCst);
    let client = first.keyring.client();
    let verdicts = poll::ask(client, &keys, Instant::now() + client.call_budget());
    assert!(
        verdicts.iter().all(|v| *v == Verdict::InForce),
        "{verdicts:?}"
    );
    assert_eq!(kmip.messages.load(Ordering::SeqCst) - before, 1);
}

#[test]
fn deactivated_and_compromised_keys_are_revoked() {
    for s_new in [state::DEACTIVATED, state::COMPROMISED] {
        let s = served(INNODB, Quirks::default());
        s.kmip.edit(&s.key.uid, |o| o.state = s_new);
        assert_eq!(verdict(&s), Verdict::Revoked(Revocation::State(s_new)));
    }
}

#[test]
fn a_destroyed_key_is_revoked_whether_kept_or_forgotten() {
    let kept = served(
        INNODB,
        Quirks {
            keep_destroyed: true,
            ..Quirks::default()
        },
    );
    kept.kmip
        .edit(&kept.key.uid, |o| o.state = state::DESTROYED);
    assert_eq!(
        verdict(&kept),
        Verdict::Revoked(Revocation::State(state::DESTROYED))
    );
    let forgotten = served(INNODB, Quirks::default());
    forgotten.kmip.remove(&forgotten.key.uid);
    assert_eq!(verdict(&forgotten), Verdict::Revoked(Revocation::NotFound));
    // The newer result reasons for "not there" say the same.
    let newer = served(
        INNODB,
        Quirks {
            newer_reasons: true,
            ..Quirks::default()
        },
    );
    newer.kmip.remove(&newer.key.uid);
    assert_eq!(verdict(&newer), Verdict::Revoked(Revocation::NotFound));
}

#[test]
fn a_name_held_by_another_object_is_a_revocation() {
    let s = served(INNODB, Quirks::default());
    s.kmip
        .edit(&s.key.uid, |o| o.names = vec!["elsewhere".into()]);
    let other = s.kmip.fresh_uid();
    s.kmip
        .plant(Object::aes(&other, &s.key.name, vec![9; 32], 1_700_000_100));
    assert_eq!(
        verdict(&s),
        Verdict::Revoked(Revocation::Replaced(Some(other)))
    );
}

fn outage_key(port: u16) -> WatchedKey {
    WatchedKey {
        uid: "u1".into(),
        server: local(port).to_string(),
        name: object_name(INNODB, ""),
        key: INNODB.into(),
        next_step: mysql_next_step(INNODB),
    }
}

/// Polls `key` through `client` with a guard and checks that nothing was taken for a
/// revocation and the outage was counted.
fn assert_outage(client: &KmipClient, key: WatchedKey) {
    let refused = Arc::new(AtomicUsize::new(0));
    let r = refused.clone();
    let g = Guard::new("keyring_okv", settings(Action::Refuse), move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    g.watch(key.clone());
    for _ in 0..2 {
        g.poll(client, Instant::now() + client.call_budget());
    }
    let status = g.status();
    assert_eq!(status.revoked_in_use, 0, "{status:?}");
    assert_eq!(status.outages, 2, "{status:?}");
    assert!(status.last_result.starts_with("outage: "), "{status:?}");
    assert_eq!(refused.load(Ordering::SeqCst), 0);
    assert!(!g.refuses(&key.server, &key.uid));
}

#[test]
fn an_unreachable_server_is_an_outage() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_outage(&client(port, Duration::from_secs(2)), outage_key(port));
}

#[test]
fn a_server_that_never_answers_is_an_outage() {
    for fault in [
        Fault::Silent,
        Fault::AfterHandshake {
            tls: rustls_server_config(&pki().server_cert, &pki().server_key, &pki().ca_cert),
            reply: Reply::Never,
        },
    ] {
        let server = FaultServer::start(fault);
        let c = client(server.port(), Duration::from_millis(500));
        assert_outage(&c, outage_key(server.port()));
    }
}

#[test]
fn a_tls_failure_is_an_outage() {
    let p = pki();
    let impostor = FaultServer::start(Fault::AfterHandshake {
        tls: rustls_server_config(&p.other_server_cert, &p.other_server_key, &p.ca_cert),
        reply: Reply::Never,
    });
    let c = client(impostor.port(), Duration::from_secs(2));
    assert_outage(&c, outage_key(impostor.port()));
}

#[test]
fn a_kmip_error_not_about_the_object_is_an_outage() {
    let (kmip, server, refuse) = serve_refusing("u");
    let s = served_by(kmip, server, INNODB);
    for reason in [
        result_reason::GENERAL_FAILURE,
        result_reason::PERMISSION_DENIED,
    ] {
        *refuse.lock().unwrap() = Some((operation::GET_ATTRIBUTES, reason));
        assert!(matches!(verdict(&s), Verdict::Unknown(_)), "{reason}");
        assert_outage(s.keyring.client(), s.key.clone());
    }
}

#[test]
fn refuse_drops_the_key_once_and_keeps_refusing_it() {
    let s = served(INNODB, Quirks::default());
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let d = dropped.clone();
    let g = Guard::new("keyring_okv", settings(Action::Refuse), move |k| {
        d.lock().unwrap().push(k.key.clone());
    });
    g.watch(s.key.clone());
    g.poll(s.keyring.client(), Instant::now() + Duration::from_secs(10));
    assert!(!g.refuses_any());
    s.kmip.edit(&s.key.uid, |o| o.state = state::COMPROMISED);
    for _ in 0..2 {
        g.poll(s.keyring.client(), Instant::now() + Duration::from_secs(10));
    }
    assert_eq!(*dropped.lock().unwrap(), vec![INNODB.to_string()]);
    assert!(g.refuses(&s.key.server, &s.key.uid));
    let status = g.status();
    assert_eq!(status.revoked_in_use, 1);
    // Asked about again, still revoked, logged and dropped once.
    assert_eq!(
        status.last_result,
        format!("revoked: {INNODB}"),
        "{status:?}"
    );
}

#[test]
fn warn_refuses_nothing() {
    let s = served(INNODB, Quirks::default());
    let g = guard(Action::Warn);
    g.watch(s.key.clone());
    s.kmip.edit(&s.key.uid, |o| o.state = state::DEACTIVATED);
    g.poll(s.keyring.client(), Instant::now() + Duration::from_secs(10));
    assert!(!g.refuses(&s.key.server, &s.key.uid));
    let status = g.status();
    assert_eq!(status.revoked_in_use, 1);
    assert_eq!(status.last_result, format!("revoked: {INNODB}"));
}

#[test]
fn the_poller_finds_a_revocation_and_stops_when_asked() {
    let s = Arc::new(served(INNODB, Quirks::default()));
    let g = Arc::new(Guard::new(
        "keyring_okv",
        Settings {
            poll: Duration::from_millis(50),
            action: Action::Warn,
        },
        |_| {},
    ));
    g.watch(s.key.clone());
    let (mine, served) = (g.clone(), s.clone());
    let poller = Poller::start(g.settings().poll, move || {
        let client = served.keyring.client();
        mine.poll(client, Instant::now() + client.call_budget());
    })
    .expect("poller");
    s.kmip.edit(&s.key.uid, |o| o.state = state::DEACTIVATED);
    let deadline = Instant::now() + Duration::from_secs(30);
    while g.status().revoked_in_use == 0 {
        assert!(Instant::now() < deadline, "{:?}", g.status());
        std::thread::park_timeout(Duration::from_millis(20));
    }
    assert!(poller.stop(Instant::now() + Duration::from_secs(10)));
}

#[test]
fn an_off_guard_watches_nothing() {
    let g = Guard::new(
        "keyring_okv",
        Settings {
            poll: Duration::ZERO,
            action: Action::Warn,
        },
        |_| {},
    );
    g.watch(outage_key(1));
    assert_eq!(g.status().keys_watched, 0);
    assert_eq!(g.status().last_result, "off");
}

/// `keyring-okv key-state`: the keys listed on the server are in force; a key a running server
/// holds in its sealed file and that was revoked since is reported, with exit code 7.
#[test]
fn the_admin_tool_lists_the_state_of_the_keys_in_use() {
    use okv_core::keyring::KeyType;
    use okv_core::sealed::{self, Binding, Entries, Entry, file};
    use std::process::Command;

    let (kmip, server, conf) = common::kmip_quirks::serve_in_process("cli-", "127.0.0.1");
    let in_force = kmip.fresh_uid();
    kmip.plant(Object::aes(
        &in_force,
        &object_name("INNODBKey-a-1", ""),
        vec![1; 32],
        1_700_000_000,
    ));
    let revoked = kmip.fresh_uid();
    kmip.plant(Object::aes(
        &revoked,
        &object_name("INNODBKey-b-1", ""),
        vec![2; 32],
        1_700_000_000,
    ));
    kmip.edit(&revoked, |o| o.state = state::COMPROMISED);
    let server_name = local(server.port()).to_string();

    let cache = tempfile::tempdir().unwrap();
    let loaded = load_conf_dir(&conf.dir).expect("conf dir");
    let mut entries = Entries::new();
    for (key_id, uid) in [("INNODBKey-a-1", &in_force), ("INNODBKey-b-1", &revoked)] {
        entries.insert(
            (key_id.into(), String::new()),
            Entry {
                key_type: KeyType::Aes,
                material: zeroize::Zeroizing::new(vec![0; 32]),
                uid: uid.clone(),
                server: server_name.clone(),
                kept_at: sealed::now_unix(),
                confirmed_at: sealed::now_unix(),
            },
        );
    }
    let binding = Binding {
        product: sealed::PLUGIN.name.to_string(),
        identity: loaded.identity.subject.clone(),
        servers: vec![server_name.clone()],
    };
    let key = loaded.seal_root.key_for(sealed::PLUGIN.name.as_bytes());
    let bytes = file::seal(
        &key,
        &binding,
        sealed::now_unix(),
        &entries,
        &Default::default(),
    )
    .unwrap();
    file::write_atomically(&sealed::path_in(cache.path(), &sealed::PLUGIN), &bytes).unwrap();

    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
            .arg("--conf-dir")
            .arg(&conf.dir)
            .arg("--json")
            .arg("key-state")
            .args(extra)
            .output()
            .expect("run keyring-okv")
    };
    let listed = run(&[]);
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let out: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(out["keys"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["keys"][0]["unique_id"], in_force.as_str());
    assert_eq!(out["keys"][0]["state"], "in force");

    let with_cache = run(&["--sealed-dir", cache.path().to_str().unwrap()]);
    assert_eq!(with_cache.status.code(), Some(7), "{with_cache:?}");
    let out: serde_json::Value = serde_json::from_slice(&with_cache.stdout).unwrap();
    assert_eq!(out["revoked"], 1, "{out}");
    let row = out["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["unique_id"] == revoked.as_str())
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(row["state"], "revoked");
    assert!(
        row["detail"]
            .as_str()
            .unwrap()
            .contains("Compromised; run ALTER INSTANCE ROTATE INNODB MASTER KEY"),
        "{row}"
    );
    // Never key material.
    assert!(!String::from_utf8_lossy(&with_cache.stdout).contains("0202020202"));
}
