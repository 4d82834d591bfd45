//! The failover connector and client against faults a real server will not produce on demand,
//! with the local PyKMIP server as the live standby. Timing bounds are ratios of the configured
//! timeouts, never tight absolute times.

#[path = "../common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use common::fault_server::{Fault, FaultServer, Reply};
use common::fixtures::{Layout, make_conf_dir, pki, rustls_server_config};
use common::kmip_quirks::{Quirks, serve_own_pki};
use common::pykmip::lab;
use okv_core::config::{ConfDir, Host, Options, ServerAddr, load_conf_dir};
use okv_core::connector::{ClientError, KmipClient, Retry, Stage, TransportError};
use okv_core::kmip::tags::operation;
use okv_core::kmip::{LocateFilter, ops};

fn conf() -> ConfDir {
    load_conf_dir(&lab().conf_dir).expect("lab conf dir")
}

fn local(port: u16) -> ServerAddr {
    ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port,
    }
}

fn live() -> ServerAddr {
    local(lab().port)
}

fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client(servers: Vec<ServerAddr>, connect: Duration, request: Duration) -> KmipClient {
    let conf = conf();
    let options = Options {
        connect_timeout: connect,
        request_timeout: request,
        ..conf.options.clone()
    };
    KmipClient::new(servers, conf.tls, options).expect("client")
}

/// A fault server presenting the lab's real server certificate (trusted by our CA.pem).
fn trusted(reply: Reply) -> FaultServer {
    let certs = &lab().certs;
    FaultServer::start(Fault::AfterHandshake {
        tls: rustls_server_config(
            &certs.join("server.crt"),
            &certs.join("server.key"),
            &certs.join("ca.crt"),
        ),
        reply,
    })
}

fn locate() -> okv_core::kmip::Request {
    ops::locate(
        &LocateFilter {
            name: Some("mysql-keyring::no-such-key"),
            object_type: None,
        },
        None,
    )
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn refused_server_moves_on_to_the_standby_at_once() {
    let timeout = secs(5.0);
    let c = client(vec![local(dead_port()), live()], timeout, timeout);
    let start = Instant::now();
    let connected = c.connect().expect("standby answers");
    assert_eq!(connected.index, 1);
    assert!(
        start.elapsed() < timeout / 5,
        "refused costs no timeout: {:?}",
        start.elapsed()
    );
}

#[test]
fn reset_at_accept_moves_on_to_the_standby() {
    let reset = FaultServer::start(Fault::Reset);
    let timeout = secs(5.0);
    let c = client(vec![local(reset.port()), live()], timeout, timeout);
    assert_eq!(c.connect().expect("standby answers").index, 1);
}

#[test]
fn black_holed_server_does_not_cost_its_timeout() {
    let hole = FaultServer::start(Fault::Silent);
    let timeout = secs(2.0);
    let c = client(vec![local(hole.port()), live()], timeout, timeout);
    let start = Instant::now();
    assert_eq!(c.connect().unwrap().index, 1);
    assert!(start.elapsed() < timeout / 2, "{:?}", start.elapsed());
    assert_eq!(hole.accepted(), 1);
}

/// `count` black-holed servers, then the live one: it is used, within one `timeout`.
fn live_standby_after_black_holes(count: usize, timeout: Duration) {
    let holes: Vec<FaultServer> = (0..count)
        .map(|_| FaultServer::start(Fault::Silent))
        .collect();
    let mut servers: Vec<ServerAddr> = holes.iter().map(|h| local(h.port())).collect();
    servers.push(live());
    let c = client(servers, timeout, timeout);
    let start = Instant::now();
    assert_eq!(c.connect().unwrap().index, count);
    assert!(start.elapsed() < timeout, "{:?}", start.elapsed());
}

#[test]
fn eight_black_holed_standbys_before_a_live_one_take_less_than_one_timeout() {
    live_standby_after_black_holes(8, secs(1.0));
}

#[test]
fn sixty_four_black_holed_standbys_before_a_live_one_take_less_than_one_timeout() {
    live_standby_after_black_holes(64, secs(2.0));
}

#[test]
fn all_servers_black_holed_fails_within_the_overall_deadline() {
    let holes: Vec<FaultServer> = (0..3).map(|_| FaultServer::start(Fault::Silent)).collect();
    let timeout = secs(0.5);
    let c = client(
        holes.iter().map(|h| local(h.port())).collect(),
        timeout,
        timeout,
    );
    let start = Instant::now();
    let err = c.connect().unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout * 2, "{elapsed:?}");
    match err {
        ClientError::Transport(TransportError::AllFailed(errors)) => {
            assert_eq!(errors.len(), 3);
            assert!(
                errors.iter().all(|e| matches!(
                    e,
                    TransportError::Timeout {
                        stage: Stage::Handshake,
                        ..
                    }
                )),
                "{errors:?}"
            );
        }
        other => panic!("{other}"),
    }
    // Callers right behind a failed round fail at once.
    let start = Instant::now();
    assert!(matches!(
        c.connect(),
        Err(ClientError::Transport(
            TransportError::RecentlyFailed { .. }
        ))
    ));
    assert!(start.elapsed() < timeout / 5);
}

#[test]
fn wrong_ca_is_a_tls_error_naming_ca_pem_and_the_standby_is_used() {
    // A server certificate for 127.0.0.1 from a CA that CA.pem does not hold.
    let other = pki();
    let impostor = FaultServer::start(Fault::AfterHandshake {
        tls: rustls_server_config(
            &other.other_server_cert,
            &other.other_server_key,
            &lab().certs.join("ca.crt"),
        ),
        reply: Reply::Never,
    });
    let timeout = secs(5.0);

    let alone = client(vec![local(impostor.port())], timeout, timeout);
    match alone.connect().unwrap_err() {
        ClientError::Transport(TransportError::AllFailed(errors)) => {
            let text = errors[0].to_string();
            assert!(matches!(errors[0], TransportError::Tls { .. }), "{text}");
            assert!(text.contains("CA.pem"), "{text}");
        }
        other => panic!("{other}"),
    }
    let with_standby = client(vec![local(impostor.port()), live()], timeout, timeout);
    assert_eq!(with_standby.connect().unwrap().index, 1);
}

#[test]
fn reset_mid_response_repeats_an_idempotent_request_on_another_server() {
    let broken = trusted(Reply::HalfThenClose);
    let timeout = secs(5.0);
    let c = client(vec![local(broken.port()), live()], timeout, timeout);
    assert_eq!(
        c.connect().unwrap().index,
        0,
        "the broken server completes TLS, so it is used first"
    );
    let found = c
        .request(&locate(), Retry::Idempotent, ops::parse_locate)
        .expect("Locate is repeated on the standby");
    assert!(found.is_empty());
    assert_eq!(
        c.connect().unwrap().index,
        1,
        "the client stays on the standby"
    );
}

#[test]
fn reset_mid_response_of_a_create_is_ambiguous_and_not_repeated() {
    let broken = trusted(Reply::HalfThenClose);
    let timeout = secs(5.0);
    let c = client(vec![local(broken.port())], timeout, timeout);
    let err = c
        .call(
            &ops::create_aes(256, "mysql-keyring::never-made"),
            Retry::Never,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Ambiguous(
                TransportError::Closed {
                    stage: Stage::Read,
                    ..
                } | TransportError::Io {
                    stage: Stage::Read,
                    ..
                }
            )
        ),
        "{err}"
    );
    assert_eq!(broken.accepted(), 1, "not sent again");
}

#[test]
fn garbage_reply_is_a_protocol_error() {
    let garbage = trusted(Reply::Garbage(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()));
    let timeout = secs(5.0);
    let c = client(vec![local(garbage.port())], timeout, timeout);
    // Locate may be repeated: once more on a new connection, then the error.
    let err = c.call(&locate(), Retry::Idempotent).unwrap_err();
    assert!(
        matches!(err, ClientError::Transport(TransportError::Garbage { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains(&garbage.port().to_string()),
        "names the server: {err}"
    );
    assert_eq!(garbage.accepted(), 2);
}

#[test]
fn oversized_length_field_is_refused_without_reading_it() {
    let big = trusted(Reply::OversizedLength);
    let timeout = secs(5.0);
    let c = client(vec![local(big.port())], timeout, timeout);
    let start = Instant::now();
    let err = c.call(&locate(), Retry::Never).unwrap_err();
    assert!(
        matches!(err, ClientError::Ambiguous(TransportError::Garbage { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("exceeds"), "{err}");
    assert!(start.elapsed() < timeout / 5);
}

#[test]
fn reply_slower_than_the_request_timeout_is_a_read_timeout() {
    let slow = trusted(Reply::Never);
    let request_timeout = secs(0.4);
    let c = client(vec![local(slow.port())], secs(5.0), request_timeout);
    c.connect().unwrap();
    let start = Instant::now();
    let err = c.call(&locate(), Retry::Never).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(
            err,
            ClientError::Ambiguous(TransportError::Timeout {
                stage: Stage::Read,
                ..
            })
        ),
        "{err}"
    );
    assert!(
        elapsed >= request_timeout && elapsed < request_timeout * 2,
        "{elapsed:?}"
    );
}

#[test]
fn a_create_whose_answer_is_lost_is_looked_up_not_repeated() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use common::fault_server::Swallow;
    use okv_core::keyring::{Keyring, object_name};

    let certs = &lab().certs;
    let swallowed = Arc::new(AtomicUsize::new(1));
    let proxy = FaultServer::start(Fault::Proxy {
        tls: rustls_server_config(
            &certs.join("server.crt"),
            &certs.join("server.key"),
            &certs.join("ca.crt"),
        ),
        swallow: Swallow {
            upstream: std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), lab().port),
            upstream_tls: conf().tls,
            operation: okv_core::kmip::tags::operation::CREATE,
            times: swallowed.clone(),
        },
    });
    let keyring = Keyring::new(client(vec![local(proxy.port())], secs(5.0), secs(5.0)));
    let id = common::pykmip::unique("lost-answer");
    keyring
        .generate(&id, "", "AES", 32)
        .expect("the key made by the lost Create is found and used");
    assert_eq!(
        swallowed.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the answer was swallowed"
    );
    let found = common::pykmip::tool(&["find", &object_name(&id, "")]);
    let objects = found.as_array().unwrap();
    assert_eq!(objects.len(), 1, "exactly one key on the server: {found}");
    assert_eq!(objects[0]["state"], "ACTIVE");
    assert_eq!(keyring.fetch(&id, "").unwrap().unwrap().material.len(), 32);
    keyring.remove(&id, "").unwrap();
}

/// A fault server with the test PKI's server identity (no PyKMIP needed) that speaks only
/// `version`.
fn own_pki_server(version: &'static rustls::SupportedProtocolVersion, reply: Reply) -> FaultServer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pki = pki();
    let provider = okv_core::config::provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&pki.ca_cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&pki.server_key).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    FaultServer::start(Fault::AfterHandshake {
        tls: std::sync::Arc::new(tls),
        reply,
    })
}

/// A client of the test PKI's identity for one server.
fn own_pki_client(port: u16) -> KmipClient {
    let dir = make_conf_dir(&Layout {
        ora: Some(format!("SERVER=127.0.0.1:{port}\n")),
        ..pki().layout()
    });
    let conf = load_conf_dir(&dir.dir).expect("conf dir");
    let options = Options {
        connect_timeout: secs(5.0),
        request_timeout: secs(5.0),
        ..conf.options.clone()
    };
    KmipClient::new(vec![local(port)], conf.tls, options).expect("client")
}

fn closed_after_handshake(e: &ClientError) -> bool {
    let t = match e {
        ClientError::Transport(t) | ClientError::Ambiguous(t) => t,
        _ => return false,
    };
    let one = |t: &TransportError| matches!(t, TransportError::ClosedAfterHandshake { .. });
    match t {
        TransportError::AllFailed(all) => all.iter().any(one),
        t => one(t),
    }
}

/// A KMS or TLS proxy that refuses a revoked client certificate may complete the handshake
/// (with TLS 1.3 the client's certificate is checked after the client is done) and then close
/// or reset the connection without a word: that is a refusal, not an outage, so the sealed key
/// cache must not stand in for it.
#[test]
fn a_close_right_after_the_handshake_before_any_answer_is_a_refusal() {
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        for reply in [Reply::CloseUnanswered, Reply::ResetUnanswered] {
            let what = format!(
                "{:?}, {}",
                version.version,
                match reply {
                    Reply::CloseUnanswered => "close",
                    _ => "reset",
                }
            );
            let server = own_pki_server(version, reply);
            let c = own_pki_client(server.port());
            let err = c
                .request(&locate(), Retry::Idempotent, ops::parse_locate)
                .unwrap_err();
            assert!(closed_after_handshake(&err), "{what}: {err:?}");
            assert!(!err.is_unreachable(), "{what}: {err}");
            let text = err.to_string();
            assert!(
                text.contains(
                    "closed the connection right after the TLS handshake without answering"
                ) && text.contains("it may refuse this client certificate")
                    && text.contains("check the server's log"),
                "{what}: {text}"
            );
            // A request that must not be repeated: ambiguous, and still a refusal.
            let err = c
                .call(
                    &ops::create_aes(256, "mysql-keyring::never-made"),
                    Retry::Never,
                )
                .unwrap_err();
            assert!(
                matches!(err, ClientError::Ambiguous(_)) && closed_after_handshake(&err),
                "{what}: {err:?}"
            );
            assert!(!err.is_unreachable(), "{what}: {err}");
        }
    }
}

/// A close during the handshake without a TLS alert is what a load balancer with nothing
/// behind it does: unreachable.
#[test]
fn a_close_during_the_handshake_stays_unreachable() {
    let reset = FaultServer::start(Fault::Reset);
    let c = own_pki_client(reset.port());
    let err = c
        .request(&locate(), Retry::Idempotent, ops::parse_locate)
        .unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(!closed_after_handshake(&err), "{err:?}");
}

/// A connection that answered before and is then closed is the ordinary end of a reused
/// connection: an idempotent request is repeated on a new one, and one that must not be
/// repeated is ambiguous and unreachable (no server answered it).
#[test]
fn a_close_of_a_connection_that_answered_before_is_the_ordinary_retry() {
    let (kmip, server) = serve_own_pki("u", Quirks::default());
    let c = own_pki_client(server.port());
    c.request(&locate(), Retry::Idempotent, ops::parse_locate)
        .expect("first answer");
    kmip.set(Quirks {
        swallow_once: Some(operation::LOCATE),
        ..Quirks::default()
    });
    let found = c
        .request(&locate(), Retry::Idempotent, ops::parse_locate)
        .expect("repeated on a new connection");
    assert!(found.is_empty());
    assert_eq!(server.accepted(), 2);
    kmip.set(Quirks {
        swallow_once: Some(operation::LOCATE),
        ..Quirks::default()
    });
    let err = c.call(&locate(), Retry::Never).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Ambiguous(TransportError::Closed {
                stage: Stage::Read,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.is_unreachable(), "{err}");
}
