//! Connecting to the first usable server of SERVER + STANDBY_SERVERs.
//!
//! The documented plugin waits the full timeout on every dead server in turn, so 64 dead
//! standbys cost 21 minutes of startup. Here, while an attempt is pending, the next one starts
//! after a short stagger (Happy Eyeballs, RFC 8305), a failed attempt starts the next one at
//! once, and everything runs under one overall deadline (1.5 x the per-attempt timeout) that
//! does not grow with the list.
//! Among the attempts that completed, the one earliest in the list wins: after the first
//! success we wait one more stagger for an earlier server still in its handshake.

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

/// How long to wait on a pending attempt before also starting the next server: the configured
/// stagger, but short enough that every server of the list has been tried within half the
/// per-attempt timeout (and never more than a tenth of it). So the time to reach a live server
/// is bounded by the timeout, however many dead ones stand before it.
pub fn effective_stagger(options: &Options, servers: usize) -> Duration {
    let spread =
        options.connect_timeout / 2 / u32::try_from(servers.max(2) - 1).unwrap_or(u32::MAX);
    options
        .failover_stagger
        .min(options.connect_timeout / 10)
        .min(spread)
}

/// The bound on one whole failover round: one attempt's timeout after the last attempt
/// started, i.e. at most 1.5 x the per-attempt timeout, whatever the number of servers.
pub fn overall_deadline(options: &Options, servers: usize) -> Duration {
    let last_start = effective_stagger(options, servers)
        .saturating_mul(u32::try_from(servers.saturating_sub(1)).unwrap_or(u32::MAX));
    options.connect_timeout + last_start
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
    let mut order: Vec<usize> = (0..servers.len()).filter(|&i| Some(i) != avoid).collect();
    order.extend(avoid.filter(|&i| i < servers.len()));
    let servers: Vec<(usize, &ServerAddr)> = order.iter().map(|&i| (i, &servers[i])).collect();
    connect_ordered(&servers, tls, options).await
}

async fn connect_ordered(
    servers: &[(usize, &ServerAddr)],
    tls: Arc<rustls::ClientConfig>,
    options: &Options,
) -> Result<Session, TransportError> {
    let connector = TlsConnector::from(tls);
    let n = servers.len();
    let stagger = effective_stagger(options, n);
    let started = Instant::now();
    let overall = started + overall_deadline(options, n);

    let mut attempts: JoinSet<Attempt> = JoinSet::new();
    let mut failures: Vec<Option<TransportError>> = (0..n).map(|_| None).collect();
    let mut best: Option<(usize, TlsStream<TcpStream>)> = None;
    let mut decide_by: Option<Instant> = None;
    let mut next = 0usize;
    let mut next_start = started;
    let mut running = 0usize;

    loop {
        let now = Instant::now();
        if best.is_none() && next < n && (running == 0 || now >= next_start) {
            let server = servers[next].1.clone();
            let connector = connector.clone();
            let attempt_deadline = (now + options.connect_timeout).min(overall);
            let index = next;
            let timeout = options.connect_timeout;
            attempts.spawn(async move {
                let result = attempt(&server, &connector, attempt_deadline, timeout).await;
                (index, result)
            });
            next += 1;
            running += 1;
            next_start = now + stagger;
            continue;
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
            break;
        }

        let mut wake = overall;
        if best.is_none() && next < n {
            wake = wake.min(next_start);
        }
        if let Some(t) = decide_by {
            wake = wake.min(t);
        }
        tokio::select! {
            joined = attempts.join_next() => {
                running -= 1;
                match joined {
                    Some(Ok((i, Ok(stream)))) => {
                        if best.as_ref().is_none_or(|(b, _)| i < *b) {
                            best = Some((i, stream));
                        }
                        decide_by.get_or_insert(Instant::now() + stagger);
                    }
                    Some(Ok((i, Err(e)))) => {
                        failures[i] = Some(e);
                        // A refused or failed attempt moves on at once.
                        next_start = Instant::now();
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
) -> Result<TlsStream<TcpStream>, TransportError> {
    let name = server.to_string();
    let timed_out = |stage| TransportError::Timeout {
        server: name.clone(),
        stage,
        timeout,
    };
    let addrs: Vec<SocketAddr> = match &server.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, server.port)],
        Host::Dns(host) => timeout_at(
            deadline,
            tokio::net::lookup_host((host.as_str(), server.port)),
        )
        .await
        .map_err(|_| timed_out(Stage::Resolve))?
        .map_err(|source| TransportError::Io {
            server: name.clone(),
            stage: Stage::Resolve,
            source,
        })?
        .collect(),
    };

    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timed_out(Stage::Connect)),
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = Some(e),
        }
    }
    let tcp = match (tcp, last) {
        (Some(s), _) => s,
        (None, Some(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(TransportError::Refused { server: name });
        }
        (None, Some(source)) => {
            return Err(TransportError::Io {
                server: name,
                stage: Stage::Connect,
                source,
            });
        }
        (None, None) => {
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
                let last_start = effective_stagger(&o, n) * (n as u32 - 1);
                assert!(
                    last_start <= o.connect_timeout / 2,
                    "{n} servers, {timeout} s"
                );
                assert!(overall_deadline(&o, n) <= o.connect_timeout * 3 / 2);
            }
        }
    }
}
