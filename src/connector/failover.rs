//! Connecting to the first usable server of SERVER + STANDBY_SERVERs.
//!
//! The documented plugin waits the full timeout on every dead server in turn, so 64 dead
//! standbys cost 21 minutes of startup. Here attempts overlap (Happy Eyeballs, RFC 8305) in
//! geometrically widening waves: one server at once, two more after one stagger, four after the
//! next, then eight, and so on. A failed attempt starts the next server at once. So the number
//! of servers tried grows as 2^waves, and 64 dead servers before a live one cost 6 staggers
//! (1.5 s at the defaults) instead of 64. Everything runs under one overall deadline (at most
//! 1.5 x the per-attempt timeout, and never past the caller's own deadline).
//! Among the attempts that completed, the one earliest in the list wins: after the first
//! success we wait one more stagger for an earlier server still in its handshake.
//!
//! Within one server, the addresses its name resolves to are tried the same way (a new address
//! every stagger, the first TCP connection wins), so one silently dropped address does not cost
//! the others their turn.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::error::{Stage, TransportError};
use super::session::Session;
use crate::config::{Host, Options, ServerAddr};

/// Number of waves needed to start `servers` attempts when wave k starts 2^k of them.
pub fn waves(servers: usize) -> u32 {
    let mut started = 0usize;
    let mut wave = 0u32;
    while started < servers {
        started += 1usize << wave.min(62);
        wave += 1;
    }
    wave.max(1)
}

/// How long to wait on the pending attempts before starting the next, twice as wide, wave: the
/// configured stagger, but short enough that every server of the list has been tried within
/// half the per-attempt timeout (and never more than a tenth of it). So the time to reach a
/// live server is bounded by the timeout, however many dead ones stand before it.
pub fn effective_stagger(options: &Options, servers: usize) -> Duration {
    let spread = options.connect_timeout / 2 / (waves(servers).max(2) - 1);
    options
        .failover_stagger
        .min(options.connect_timeout / 10)
        .min(spread)
}

/// When the last server of a round of `servers` is started at the latest (all before it dead
/// and silent).
pub fn last_start(options: &Options, servers: usize) -> Duration {
    effective_stagger(options, servers) * (waves(servers) - 1)
}

/// The bound on one whole failover round: one attempt's timeout after the last attempt
/// started, i.e. at most 1.5 x the per-attempt timeout, whatever the number of servers.
pub fn overall_deadline(options: &Options, servers: usize) -> Duration {
    options.connect_timeout + last_start(options, servers)
}

type Attempt = (usize, Result<TlsStream<TcpStream>, TransportError>);

pub async fn connect_any(
    servers: &[ServerAddr],
    tls: Arc<rustls::ClientConfig>,
    options: &Options,
) -> Result<Session, TransportError> {
    connect_avoiding(servers, None, tls, options).await
}

/// Like `connect_any`, but tries the server at index `avoid` last: after a server broke a
/// request, the immediate retry should not land on it again while others may work.
pub async fn connect_avoiding(
    servers: &[ServerAddr],
    avoid: Option<usize>,
    tls: Arc<rustls::ClientConfig>,
    options: &Options,
) -> Result<Session, TransportError> {
    connect_until(servers, avoid, tls, options, None).await
}

/// Like `connect_avoiding`, ending by `deadline` at the latest (the deadline of the call the
/// connection is made for).
pub async fn connect_until(
    servers: &[ServerAddr],
    avoid: Option<usize>,
    tls: Arc<rustls::ClientConfig>,
    options: &Options,
    deadline: Option<Instant>,
) -> Result<Session, TransportError> {
    let mut order: Vec<usize> = (0..servers.len()).filter(|&i| Some(i) != avoid).collect();
    order.extend(avoid.filter(|&i| i < servers.len()));
    let servers: Vec<(usize, &ServerAddr)> = order.iter().map(|&i| (i, &servers[i])).collect();
    connect_ordered(&servers, tls, options, deadline).await
}

/// Connects to the first of `servers[..before]` that answers (failback probes): the same
/// widening waves, one round, no fallback to later servers.
pub async fn connect_prefix(
    servers: &[ServerAddr],
    before: usize,
    tls: Arc<rustls::ClientConfig>,
    options: &Options,
) -> Result<Session, TransportError> {
    let servers: Vec<(usize, &ServerAddr)> = servers.iter().take(before).enumerate().collect();
    connect_ordered(&servers, tls, options, None).await
}

async fn connect_ordered(
    servers: &[(usize, &ServerAddr)],
    tls: Arc<rustls::ClientConfig>,
    options: &Options,
    deadline: Option<Instant>,
) -> Result<Session, TransportError> {
    let connector = TlsConnector::from(tls);
    let n = servers.len();
    let stagger = effective_stagger(options, n);
    let started = Instant::now();
    let mut overall = started + overall_deadline(options, n);
    if let Some(d) = deadline {
        overall = overall.min(d);
    }

    let mut attempts: JoinSet<Attempt> = JoinSet::new();
    let mut failures: Vec<Option<TransportError>> = (0..n).map(|_| None).collect();
    let mut best: Option<(usize, TlsStream<TcpStream>)> = None;
    let mut decide_by: Option<Instant> = None;
    let mut next = 0usize;
    // The next wave starts at `next_wave` with `wave` attempts; each failure adds one start now.
    let mut next_wave = started;
    let mut wave = 1usize;
    let mut due = 0usize;
    let mut running = 0usize;

    loop {
        let now = Instant::now();
        if best.is_none() && next < n {
            if now >= next_wave {
                due += wave;
                wave = wave.saturating_mul(2);
                next_wave = now + stagger;
            }
            while due > 0 && next < n {
                let server = servers[next].1.clone();
                let connector = connector.clone();
                let attempt_deadline = (now + options.connect_timeout).min(overall);
                let index = next;
                let timeout = options.connect_timeout;
                attempts.spawn(async move {
                    let result =
                        attempt(&server, &connector, attempt_deadline, timeout, stagger).await;
                    (index, result)
                });
                next += 1;
                due -= 1;
                running += 1;
            }
        }

        if let Some((b, _)) = &best {
            let earlier_pending = (0..*b).any(|i| failures[i].is_none());
            if !earlier_pending || decide_by.is_some_and(|t| now >= t) {
                break;
            }
        }
        // Every attempt ends by its own deadline (never later than `overall`), reporting the
        // step it was stuck in; so the round ends when the last attempt has reported.
        if running == 0 {
            if best.is_none() && next < n {
                // All started attempts failed: the next wave starts now.
                due = due.max(1);
                continue;
            }
            break;
        }
        if now >= overall {
            break;
        }

        let mut wake = overall;
        if best.is_none() && next < n {
            wake = wake.min(next_wave);
        }
        if let Some(t) = decide_by {
            wake = wake.min(t);
        }
        tokio::select! {
            joined = attempts.join_next() => {
                running = running.saturating_sub(1);
                match joined {
                    Some(Ok((i, Ok(stream)))) => {
                        if best.as_ref().is_none_or(|(b, _)| i < *b) {
                            best = Some((i, stream));
                        }
                        decide_by.get_or_insert(Instant::now() + stagger);
                    }
                    Some(Ok((i, Err(e)))) => {
                        failures[i] = Some(e);
                        // A refused or failed attempt hands its place to the next server at once.
                        due += 1;
                    }
                    Some(Err(join_error)) => {
                        tracing::debug!("connection attempt task ended abnormally: {join_error}");
                    }
                    None => running = 0,
                }
            }
            _ = sleep_until(wake), if wake > now => {}
        }
    }
    attempts.abort_all();
    if let Some((index, stream)) = best {
        for (i, f) in failures.iter().enumerate().take(index) {
            if let Some(e) = f {
                tracing::warn!("skipped {}: {e}", servers[i].1);
            }
        }
        let (list_index, server) = servers[index];
        if list_index > 0 {
            tracing::warn!(
                "connected to STANDBY_SERVER {server} because SERVER or the standbys before it failed"
            );
        }
        return Ok(Session::new(stream, server.clone(), list_index));
    }

    let timeout = options.connect_timeout;
    let errors = failures
        .into_iter()
        .enumerate()
        .take(next)
        .map(|(i, f)| {
            // Only an attempt whose task ended abnormally has no outcome of its own.
            f.unwrap_or_else(|| TransportError::Timeout {
                server: servers[i].1.to_string(),
                stage: Stage::Handshake,
                timeout,
            })
        })
        .collect();
    Err(TransportError::AllFailed(errors))
}

async fn attempt(
    server: &ServerAddr,
    connector: &TlsConnector,
    deadline: Instant,
    timeout: Duration,
    stagger: Duration,
) -> Result<TlsStream<TcpStream>, TransportError> {
    let name = server.to_string();
    let timed_out = |stage| TransportError::Timeout {
        server: name.clone(),
        stage,
        timeout,
    };
    let addrs: Vec<SocketAddr> = match &server.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, server.port)],
        Host::Dns(host) => timeout_at(deadline, super::lookup::resolve(host.clone(), server.port))
            .await
            .map_err(|_| timed_out(Stage::Resolve))?
            .map_err(|source| TransportError::Io {
                server: name.clone(),
                stage: Stage::Resolve,
                source,
            })?,
    };

    let tcp = match timeout_at(deadline, connect_addrs(&addrs, stagger)).await {
        Err(_) => return Err(timed_out(Stage::Connect)),
        Ok(Ok(s)) => s,
        Ok(Err(Some(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(TransportError::Refused { server: name });
        }
        Ok(Err(Some(source))) => {
            return Err(TransportError::Io {
                server: name,
                stage: Stage::Connect,
                source,
            });
        }
        Ok(Err(None)) => {
            return Err(TransportError::Io {
                server: name,
                stage: Stage::Resolve,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"),
            });
        }
    };
    // Requests are small and answered one at a time: Nagle would only add latency.
    let _ = tcp.set_nodelay(true);
    match timeout_at(deadline, connector.connect(server.server_name(), tcp)).await {
        Err(_) => Err(timed_out(Stage::Handshake)),
        Ok(Err(e)) => Err(TransportError::from_handshake(name, e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// TCP to the first of `addrs` that accepts: a new address every `stagger` while the earlier
/// ones are pending, at once when one fails (RFC 8305). Err(None) when `addrs` is empty,
/// otherwise the last address's error.
pub async fn connect_addrs(
    addrs: &[SocketAddr],
    stagger: Duration,
) -> Result<TcpStream, Option<std::io::Error>> {
    let mut pending: JoinSet<std::io::Result<TcpStream>> = JoinSet::new();
    let mut next = 0usize;
    let mut last_error = None;
    let mut next_start = Instant::now();
    loop {
        let now = Instant::now();
        if next < addrs.len() && (pending.is_empty() || now >= next_start) {
            pending.spawn(TcpStream::connect(addrs[next]));
            next += 1;
            next_start = now + stagger;
            continue;
        }
        if pending.is_empty() {
            return Err(last_error);
        }
        tokio::select! {
            joined = pending.join_next() => match joined {
                Some(Ok(Ok(stream))) => return Ok(stream),
                Some(Ok(Err(e))) => {
                    last_error = Some(e);
                    next_start = Instant::now();
                }
                Some(Err(join_error)) => last_error = Some(std::io::Error::other(join_error)),
                None => {}
            },
            _ = sleep_until(next_start), if next < addrs.len() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(timeout: f64, stagger: f64) -> Options {
        Options {
            connect_timeout: Duration::from_secs_f64(timeout),
            failover_stagger: Duration::from_secs_f64(stagger),
            ..Options::default()
        }
    }

    #[test]
    fn stagger_is_the_configured_one_for_short_lists() {
        assert_eq!(
            effective_stagger(&options(20.0, 0.25), 2),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn every_server_starts_within_half_the_timeout() {
        for n in [2usize, 9, 65] {
            for timeout in [0.5, 1.0, 20.0] {
                let o = options(timeout, 0.25);
                assert!(
                    last_start(&o, n) <= o.connect_timeout / 2,
                    "{n} servers, {timeout} s"
                );
                assert!(overall_deadline(&o, n) <= o.connect_timeout * 3 / 2);
            }
        }
    }

    #[test]
    fn waves_double() {
        assert_eq!(
            [1, 2, 3, 4, 7, 8, 9, 63, 64, 65].map(waves),
            [1, 2, 2, 3, 3, 4, 4, 6, 7, 7]
        );
    }

    #[test]
    fn sixty_five_servers_start_within_seven_staggers_at_the_defaults() {
        let o = Options::default();
        assert_eq!(effective_stagger(&o, 65), o.failover_stagger);
        assert_eq!(last_start(&o, 65), o.failover_stagger * 6);
        // The linear stagger of before started the 65th server after 10 s.
        assert!(last_start(&o, 65) < o.connect_timeout / 10);
    }

    /// A listener whose accept queue is full: the kernel drops further SYNs, as a firewall
    /// that silently drops packets does.
    fn dropping_listener() -> (std::net::TcpListener, std::net::TcpStream, SocketAddr) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let listener = socket.listen(0).unwrap().into_std().unwrap();
        let filler = std::net::TcpStream::connect(addr).unwrap();
        (listener, filler, addr)
    }

    #[test]
    fn a_silently_dropped_address_does_not_cost_the_next_its_turn() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_hole, _filler, dropped) = dropping_listener();
            // The dropping listener really drops: a connect to it is still pending after a
            // second (the baseline of this test).
            let probe = timeout_at(
                Instant::now() + Duration::from_millis(300),
                TcpStream::connect(dropped),
            )
            .await;
            assert!(probe.is_err(), "the queue-full listener should not answer");

            let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let live_addr = live.local_addr().unwrap();
            let stagger = Duration::from_millis(100);
            let started = Instant::now();
            let stream = timeout_at(
                started + Duration::from_secs(10),
                connect_addrs(&[dropped, live_addr], stagger),
            )
            .await
            .expect("the second address answers long before the SYN retries end")
            .expect("connected");
            // Tried one after the other, the dropped address alone would take the kernel's
            // whole SYN retry schedule (about two minutes).
            assert_eq!(stream.peer_addr().unwrap(), live_addr);
        });
    }
}
