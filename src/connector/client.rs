//! The KMIP client the keyring layer calls: blocking methods, safe to call from many mysqld
//! threads at once.
//!
//! Concurrency: one shared connection behind a fair async mutex. Keyring traffic is a handful
//! of requests per table open or key rotation, PyKMIP and most KMIP servers serve one request
//! at a time per connection, and each extra connection costs a handshake and a server-side
//! session; so requests queue on one warm connection instead of a pool.
//!
//! Threads: the process-wide runtime (`runtime.rs`) drives the sockets; callers wait on their
//! own thread with `block_on`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use super::error::{ClientError, TransportError};
use super::failover::connect_avoiding;
use super::session::Session;
use crate::config::{ConfDir, Options, ServerAddr};
use crate::health::Health;
use crate::kmip::{self, Request, Ttlv};

/// Largest response accepted. Keys are at most 16 KiB; Locate answers list identifiers. PyKMIP
/// itself caps messages at 1 MiB.
pub const RESPONSE_CAP: usize = 1 << 20;

/// After a connection round in which no server answered, calls fail at once for this long
/// (at most the connect timeout) instead of each waiting for the timeouts again.
const FAILURE_HOLD: Duration = Duration::from_secs(2);

/// Whether a request may be sent again after the connection failed with the request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Get, Locate, GetAttributes, DiscoverVersions, Query: repeating changes nothing.
    Idempotent,
    /// Create, Register, Activate, Revoke, Destroy: the caller looks before acting again.
    Never,
}

struct Shared {
    servers: Vec<ServerAddr>,
    tls: Arc<rustls::ClientConfig>,
    options: Options,
    conn: Mutex<Option<Session>>,
    last_failure: std::sync::Mutex<Option<(tokio::time::Instant, String)>>,
    health: Arc<Health>,
}

pub struct KmipClient {
    runtime: Handle,
    shared: Arc<Shared>,
}

/// Where the client is connected, for diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connected {
    pub server: ServerAddr,
    /// 0 for SERVER, 1.. for the STANDBY_SERVERs in okvclient.ora order.
    pub index: usize,
}

impl KmipClient {
    pub fn new(
        servers: Vec<ServerAddr>,
        tls: Arc<rustls::ClientConfig>,
        options: Options,
    ) -> std::io::Result<Self> {
        Self::with_health(servers, tls, options, Arc::new(Health::new()))
    }

    /// A client that reports into `health`, the counters of the host that owns it.
    pub fn with_health(
        servers: Vec<ServerAddr>,
        tls: Arc<rustls::ClientConfig>,
        options: Options,
        health: Arc<Health>,
    ) -> std::io::Result<Self> {
        Ok(KmipClient {
            runtime: super::runtime::handle()?,
            shared: Arc::new(Shared {
                servers,
                tls,
                options,
                conn: Mutex::new(None),
                last_failure: std::sync::Mutex::new(None),
                health,
            }),
        })
    }

    pub fn from_conf_dir(conf: &ConfDir) -> std::io::Result<Self> {
        Self::new(conf.servers.clone(), conf.tls.clone(), conf.options.clone())
    }

    pub fn from_conf_dir_with_health(conf: &ConfDir, health: Arc<Health>) -> std::io::Result<Self> {
        Self::with_health(
            conf.servers.clone(),
            conf.tls.clone(),
            conf.options.clone(),
            health,
        )
    }

    /// How many servers (SERVER and standbys) the client may use.
    pub fn server_count(&self) -> usize {
        self.shared.servers.len()
    }

    /// The counters this client reports into.
    pub fn health(&self) -> &Arc<Health> {
        &self.shared.health
    }

    /// Makes sure a live connection exists (connecting in list order if needed) and says where.
    pub fn connect(&self) -> Result<Connected, ClientError> {
        let shared = self.shared.clone();
        self.runtime.block_on(async move {
            let mut conn = shared.conn.lock().await;
            let session = shared.ensure(&mut conn, None).await?;
            Ok(Connected {
                server: session.server().clone(),
                index: session.index(),
            })
        })
    }

    /// Sends one request and returns the response payload.
    pub fn call(&self, request: &Request, retry: Retry) -> Result<Ttlv, ClientError> {
        self.request(request, retry, |payload| Ok(payload.clone()))
    }

    /// Sends one request and parses the response payload with `parse`; a payload that does not
    /// parse is reported as a fault of the server that sent it.
    pub fn request<T>(
        &self,
        request: &Request,
        retry: Retry,
        parse: impl FnOnce(&Ttlv) -> Result<T, kmip::KmipError>,
    ) -> Result<T, ClientError> {
        let encoded = Zeroizing::new(kmip::encode_request(request));
        let shared = self.shared.clone();
        let operation = request.operation;
        let started = Instant::now();
        let outcome = self
            .runtime
            .block_on(async move { shared.call(&encoded, operation, retry).await })
            .and_then(|(mut payload, server)| {
                let parsed =
                    parse(&payload).map_err(|source| ClientError::Server { server, source });
                // The payload may hold key material (Get); the parser made its own copy.
                payload.zeroize();
                parsed
            });
        let health = &self.shared.health;
        health.request_done(started.elapsed());
        if let Err(e) = &outcome {
            // Item Not Found is how an absent key is asked about, not a fault.
            if !e.is_item_not_found() {
                health.error(&e.to_string());
            }
        }
        outcome
    }

    /// Sends `requests` as batch items of one message. Returns the server that answered (so
    /// that what the caller learns can be tied to it) and, per request, its answer or `None`
    /// when the server left the item out.
    pub fn request_batch(
        &self,
        requests: &[Request],
        retry: Retry,
    ) -> Result<BatchAnswer, ClientError> {
        let encoded = Zeroizing::new(kmip::encode_batch(requests));
        let operations: Vec<u32> = requests.iter().map(|r| r.operation).collect();
        let shared = self.shared.clone();
        let started = Instant::now();
        let outcome = self.runtime.block_on(async move {
            shared
                .call_with(&encoded, retry, |message| {
                    kmip::decode_batch_response(message, RESPONSE_CAP, &operations)
                })
                .await
        });
        let health = &self.shared.health;
        health.request_done(started.elapsed());
        match outcome {
            Ok((items, server)) => Ok(BatchAnswer { server, items }),
            Err(e) => {
                health.error(&e.to_string());
                Err(e)
            }
        }
    }
}

/// The answer to [`KmipClient::request_batch`].
#[derive(Debug)]
pub struct BatchAnswer {
    /// The server that answered, as named in errors.
    pub server: String,
    pub items: Vec<Option<kmip::ItemResult>>,
}

impl Shared {
    async fn ensure<'a>(
        &self,
        conn: &'a mut Option<Session>,
        avoid: Option<usize>,
    ) -> Result<&'a mut Session, TransportError> {
        if let Some(session) = conn.as_mut() {
            if session.is_stale().await {
                tracing::debug!(
                    "connection to {} went stale; reconnecting",
                    session.server()
                );
                *conn = None;
                self.health.disconnected();
            }
        }
        let session = match conn.take() {
            Some(session) => session,
            None => self.connect_new(avoid).await?,
        };
        Ok(conn.insert(session))
    }

    /// A new connection, unless a round failed moments ago (then that round's reason).
    async fn connect_new(&self, avoid: Option<usize>) -> Result<Session, TransportError> {
        let hold = FAILURE_HOLD.min(self.options.connect_timeout);
        let recent = self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some((at, last)) = recent {
            let ago = at.elapsed();
            if ago < hold {
                return Err(TransportError::RecentlyFailed {
                    last,
                    ago,
                    retry_after: hold - ago,
                });
            }
        }
        let outcome = connect_avoiding(&self.servers, avoid, self.tls.clone(), &self.options).await;
        let mut last_failure = self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &outcome {
            Ok(session) => {
                *last_failure = None;
                tracing::debug!("connected to KMIP server {}", session.server());
                self.health
                    .connected(&session.server().to_string(), session.index());
            }
            Err(e) => *last_failure = Some((tokio::time::Instant::now(), e.to_string())),
        }
        outcome
    }

    async fn call(
        &self,
        encoded: &[u8],
        operation: u32,
        retry: Retry,
    ) -> Result<(Ttlv, String), ClientError> {
        self.call_with(encoded, retry, |message| {
            kmip::decode_response_for(message, RESPONSE_CAP, operation)
        })
        .await
    }

    async fn call_with<T>(
        &self,
        encoded: &[u8],
        retry: Retry,
        decode: impl Fn(&[u8]) -> Result<T, kmip::KmipError>,
    ) -> Result<(T, String), ClientError> {
        let mut conn = self.conn.lock().await;
        let mut attempt = 0;
        let mut avoid = None;
        loop {
            attempt += 1;
            let session = self.ensure(&mut conn, avoid).await?;
            let index = session.index();
            let server = session.server().to_string();
            let outcome = session
                .round_trip(encoded, self.options.request_timeout, RESPONSE_CAP)
                .await;
            match outcome {
                Ok(message) => {
                    let message = Zeroizing::new(message);
                    return match decode(&message) {
                        Ok(payload) => Ok((payload, server)),
                        Err(kmip::KmipError::Ttlv(source)) => {
                            // The stream can no longer be trusted to be in step.
                            *conn = None;
                            self.health.disconnected();
                            Err(TransportError::Garbage { server, source }.into())
                        }
                        Err(source) => Err(ClientError::Server { server, source }),
                    };
                }
                Err(e) => {
                    *conn = None;
                    self.health.disconnected();
                    avoid = Some(index);
                    if retry == Retry::Idempotent && attempt == 1 {
                        tracing::debug!("{e}; repeating the request on a new connection");
                        continue;
                    }
                    return Err(match retry {
                        Retry::Idempotent => e.into(),
                        Retry::Never => ClientError::Ambiguous(e),
                    });
                }
            }
        }
    }
}
