//! Time to the first usable connection, and to the first answer on it, when SERVER and many
//! STANDBY_SERVERs are black-holed (they accept TCP and never answer the TLS handshake) and the
//! last standby is a live PyKMIP. 1, 8 and 64 black-holed servers, 1 s and 20 s connect timeouts,
//! the default stagger. The baseline, measured in the same run, is a direct connection to the
//! live server; the documented plugin would need (dead servers x timeout).
//!
//!     bash scripts/pykmip.sh setup && bash scripts/pykmip.sh start
//!     cargo run --release --example bench_failover

#[path = "../tests/common/pykmip.rs"]
mod pykmip;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use okv_core::config::{Host, Options, ServerAddr, load_conf_dir};
use okv_core::connector::{KmipClient, Retry};
use okv_core::kmip::{LocateFilter, ops};

fn main() {
    let lab = pykmip::lab();
    let conf = load_conf_dir(&lab.conf_dir).expect("lab conf dir");
    let live = ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: lab.port,
    };

    let time_connect = |servers: Vec<ServerAddr>, timeout: Duration| {
        let options = Options {
            connect_timeout: timeout,
            ..conf.options.clone()
        };
        let client = KmipClient::new(servers, conf.tls.clone(), options).expect("client");
        let start = Instant::now();
        let connected = client.connect().expect("connects");
        let connect = start.elapsed();
        let locate = ops::locate(
            &LocateFilter {
                name: Some("mysql-keyring::bench-no-such-key"),
                object_type: None,
            },
            None,
        );
        client.call(&locate, Retry::Idempotent).expect("answers");
        (connect, start.elapsed(), connected.index)
    };

    let (direct, direct_answer, _) = time_connect(vec![live.clone()], Duration::from_secs(20));
    println!(
        "baseline: direct connection to the live server: {:.1} ms (first answer {:.1} ms)",
        direct.as_secs_f64() * 1e3,
        direct_answer.as_secs_f64() * 1e3
    );
    for dead in [1usize, 8, 64] {
        // Listening sockets that are never accepted: the kernel completes TCP, nobody speaks TLS.
        let holes: Vec<TcpListener> = (0..dead)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let mut servers: Vec<ServerAddr> = holes
            .iter()
            .map(|l| ServerAddr {
                host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port: l.local_addr().unwrap().port(),
            })
            .collect();
        servers.push(live.clone());
        for timeout in [Duration::from_secs(1), Duration::from_secs(20)] {
            let (elapsed, answer, index) = time_connect(servers.clone(), timeout);
            assert_eq!(index, dead, "the live standby is used");
            println!(
                "{dead:2} black-holed servers, {:2} s timeout: connected in {:6.1} ms, first answer {:6.1} ms ({:.2} x timeout, {:.0} x direct); the documented plugin: {} s",
                timeout.as_secs(),
                elapsed.as_secs_f64() * 1e3,
                answer.as_secs_f64() * 1e3,
                elapsed.as_secs_f64() / timeout.as_secs_f64(),
                elapsed.as_secs_f64() / direct.as_secs_f64(),
                dead as u64 * timeout.as_secs(),
            );
        }
    }
}
