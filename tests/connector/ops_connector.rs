//! Operations of the connector: one deadline per call however many callers queue on a hung
//! server, failover time that does not grow with the number of dead servers, failback to
//! SERVER between requests, and calls abandoned at unload. PyKMIP is the live server; the
//! in-process fault servers play the hung and black-holed ones. Bounds are ratios of the
//! configured timeouts.

#[path = "../common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fault_server::{CutProxy, Fault, FaultServer, Reply};
use common::fixtures::rustls_server_config;
use common::pykmip::lab;
use okv_core::config::{ConfDir, Host, Options, ServerAddr, load_conf_dir};
use okv_core::connector::{ClientError, KmipClient, Retry, TransportError};
use okv_core::health::Health;
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

fn client_with(servers: Vec<ServerAddr>, options: Options, health: Arc<Health>) -> KmipClient {
    let conf = conf();
    KmipClient::with_health(servers, conf.tls, options, health).expect("client")
}

fn options(connect: f64, request: f64) -> Options {
    Options {
        connect_timeout: Duration::from_secs_f64(connect),
        request_timeout: Duration::from_secs_f64(request),
        ..conf().options
    }
}

/// Accepts, completes the TLS handshake with the lab's real server identity, reads the request
/// and never answers.
fn hung_server() -> FaultServer {
    let certs = &lab().certs;
    FaultServer::start(Fault::AfterHandshake {
        tls: rustls_server_config(
            &certs.join("server.crt"),
            &certs.join("server.key"),
            &certs.join("ca.crt"),
        ),
        reply: Reply::Never,
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

#[test]
fn sixteen_callers_on_a_hung_server_each_return_within_one_call_deadline() {
    let hung = hung_server();
    let client = Arc::new(client_with(
        vec![local(hung.port())],
        options(2.0, 2.0),
        Arc::new(Health::new()),
    ));
    let budget = client.call_budget();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let outcome = client.call(&locate(), Retry::Idempotent);
                (started.elapsed(), outcome)
            })
        })
        .collect();
    let results: Vec<(Duration, Result<_, ClientError>)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let slowest = results.iter().map(|(d, _)| *d).max().unwrap();
    println!(
        "slowest of 16 calls on a hung server: {:.2} s (call deadline {:.1} s = connect + request timeout; {:.2} x)",
        slowest.as_secs_f64(),
        budget.as_secs_f64(),
        slowest.as_secs_f64() / budget.as_secs_f64()
    );
    for (elapsed, outcome) in &results {
        assert!(outcome.is_err(), "a hung server answers nothing");
        // Never a multiple of the deadline: before, 16 queued callers took up to 16 x the
        // request timeout.
        assert!(
            elapsed.as_secs_f64() <= budget.as_secs_f64() * 1.15,
            "a call took {elapsed:?} with a deadline of {budget:?}: {:?}",
            outcome.as_ref().err()
        );
    }
    // The first timeout opened the fail-fast window for the callers queued behind it.
    let fast_fails = results
        .iter()
        .filter(|(_, r)| {
            matches!(
                r,
                Err(ClientError::Transport(
                    TransportError::RecentlyFailed { .. }
                ))
            )
        })
        .count();
    assert_eq!(fast_fails, 15, "all but the first failed fast");

    // A timed-out request counts like a failed connect: the next call fails at once without
    // touching the server.
    let accepted = hung.accepted();
    let err = client.call(&locate(), Retry::Idempotent).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Transport(TransportError::RecentlyFailed { .. })
        ),
        "{err}"
    );
    assert_eq!(hung.accepted(), accepted);
}

#[test]
fn close_abandons_a_call_waiting_on_a_hung_server() {
    let hung = hung_server();
    let client = Arc::new(client_with(
        vec![local(hung.port())],
        options(20.0, 20.0),
        Arc::new(Health::new()),
    ));
    let caller = {
        let client = client.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            (client.call(&locate(), Retry::Idempotent), started.elapsed())
        })
    };
    // Close once the request is on the wire (the server has accepted the connection).
    while hung.accepted() == 0 {
        std::thread::yield_now();
    }
    client.close();
    let (outcome, elapsed) = caller.join().unwrap();
    assert!(
        matches!(
            outcome,
            Err(ClientError::Transport(TransportError::ShuttingDown))
        ),
        "{outcome:?}"
    );
    assert!(elapsed < client.call_budget() / 4, "{elapsed:?}");
    // Calls after close fail at once too.
    assert!(matches!(
        client.call(&locate(), Retry::Idempotent),
        Err(ClientError::Transport(TransportError::ShuttingDown))
    ));
}

#[test]
fn sixty_four_black_holed_servers_cost_a_small_fraction_of_the_timeout() {
    // Listening sockets that are never accepted: TCP completes, nobody speaks TLS.
    let holes: Vec<TcpListener> = (0..64)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut servers: Vec<ServerAddr> = holes
        .iter()
        .map(|l| local(l.local_addr().unwrap().port()))
        .collect();
    servers.push(local(lab().port));
    // The defaults: 20 s timeouts, 0.25 s stagger.
    let defaults = conf().options;
    let client = client_with(servers, defaults.clone(), Arc::new(Health::new()));
    let started = Instant::now();
    let connected = client.connect().expect("the live standby answers");
    let elapsed = started.elapsed();
    assert_eq!(connected.index, 64);
    // Geometric waves start the 65th server after 6 staggers (1.5 s); a linear stagger spread
    // over half the timeout needed 10 s (0.5 x the timeout).
    assert!(
        elapsed.as_secs_f64() < defaults.connect_timeout.as_secs_f64() * 0.15,
        "{elapsed:?}"
    );
}

#[test]
fn failback_returns_to_server_between_requests_once_it_answers_again() {
    let proxy = CutProxy::start(std::net::SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        lab().port,
    )));
    let health = Arc::new(Health::new());
    let mut o = options(5.0, 5.0);
    o.failback_interval = Duration::from_millis(200);
    let client = client_with(
        vec![local(proxy.port()), local(lab().port)],
        o,
        health.clone(),
    );
    assert_eq!(client.connect().unwrap().index, 0);
    proxy.cut();
    // The cut connection breaks the first request; it is repeated on the standby.
    client
        .call(&locate(), Retry::Idempotent)
        .expect("standby answers");
    let s = health.snapshot();
    assert_eq!((s.server_index, s.failovers), (Some(1), 1));

    proxy.restore();
    // Calls keep working while the probe runs; one of them, between requests, moves back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while health.snapshot().server_index != Some(0) {
        assert!(
            Instant::now() < deadline,
            "no failback: {:?}",
            health.snapshot()
        );
        client
            .call(&locate(), Retry::Idempotent)
            .expect("calls keep working");
    }
    let s = health.snapshot();
    assert_eq!((s.failovers, s.failbacks), (1, 1), "{s:?}");
    assert_eq!(s.server_in_use, format!("127.0.0.1:{}", proxy.port()));
    client
        .call(&locate(), Retry::Idempotent)
        .expect("SERVER answers");
}

#[test]
fn the_earliest_live_server_is_preferred_among_those_started_in_the_same_wave() {
    // Wave 1 starts the black hole; wave 2 starts both live servers at once. The proxy, earlier
    // in the list, wins even if PyKMIP itself answers first.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = CutProxy::start(std::net::SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        lab().port,
    )));
    let servers = vec![
        local(hole.local_addr().unwrap().port()),
        local(proxy.port()),
        local(lab().port),
    ];
    for _ in 0..3 {
        let client = client_with(servers.clone(), options(5.0, 5.0), Arc::new(Health::new()));
        assert_eq!(client.connect().expect("connects").index, 1);
    }
}
