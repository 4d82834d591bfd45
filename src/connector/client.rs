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
//!
//! Deadlines: a request ends by the connect timeout + the request timeout after it was made
//! (or by the deadline of the keyring operation it belongs to, `with_deadline`), however long
//! it queued for the connection. A request that times out opens the same fail-fast window as
//! a connection round that failed, and wakes the callers queued behind it to fail at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{Mutex, MutexGuard, Notify};
use zeroize::Zeroizing;

use super::error::{ClientError, TransportError};
use super::failover::{connect_prefix, connect_until, overall_deadline};
use super::session::Session;
use crate::config::{ConfDir, Options, ServerAddr, TlsSource};
use crate::health::Health;
use crate::kmip::{self, Request, Ttlv};

/// Largest response accepted. Keys are at most 16 KiB; Locate answers list identifiers. PyKMIP
/// itself caps messages at 1 MiB.
pub const RESPONSE_CAP: usize = 1 << 20;

/// After a connection round in which no server answered, or a request that timed out, calls
/// fail at once for this long (at most the connect timeout) instead of each waiting for the
/// timeouts again.
const FAILURE_HOLD: Duration = Duration::from_secs(2);

thread_local! {
    /// The deadline of the keyring operation this thread is running, if its caller set one.
    static OPERATION_DEADLINE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` (one keyring operation, possibly several KMIP requests) under one deadline: every
/// request it makes on this thread ends by `deadline` at the latest, as well as by its own.
pub fn with_deadline<T>(deadline: Instant, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OPERATION_DEADLINE.with(|d| d.set(self.0));
        }
    }
    let outer = OPERATION_DEADLINE.with(|d| d.replace(Some(deadline)));
    // An enclosing operation's earlier deadline stays in force.
    if let Some(earlier) = outer.filter(|o| *o < deadline) {
        OPERATION_DEADLINE.with(|d| d.set(Some(earlier)));
    }
    let _restore = Restore(outer);
    f()
}

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
    /// The TLS identity of new connections, read again when its files are replaced.
    tls: Arc<TlsSource>,
    options: Options,
    conn: Mutex<Option<Session>>,
    /// When the client certificate the open connection was made with expires.
    conn_cert: std::sync::Mutex<SystemTime>,
    last_failure: std::sync::Mutex<Option<(tokio::time::Instant, String, bool)>>,
    /// Wakes callers queued for the connection when a failure opens the fail-fast window.
    failed: Notify,
    closing: AtomicBool,
    closed: Notify,
    failback: std::sync::Mutex<Failback>,
    /// Where the counters go; replaced when a configuration prepared aside is put in force.
    health: std::sync::RwLock<Arc<Health>>,
}

/// Failback to an earlier server of the list (see `Shared::probe_failback`).
#[derive(Default)]
struct Failback {
    /// When the next probe of the earlier servers may start; None while on SERVER.
    next_probe: Option<Instant>,
    probing: bool,
    /// A connection a probe made to an earlier server, for the next call to take over, and
    /// when the client certificate it was made with expires.
    ready: Option<(Session, SystemTime)>,
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
        Self::with_source(servers, TlsSource::fixed(tls), options, health)
    }

    fn with_source(
        servers: Vec<ServerAddr>,
        tls: TlsSource,
        options: Options,
        health: Arc<Health>,
    ) -> std::io::Result<Self> {
        health.set_client_cert_expiry(tls.expires());
        let tls = Arc::new(tls);
        health.follow_certificate(Arc::downgrade(&tls));
        Ok(KmipClient {
            runtime: super::runtime::handle()?,
            shared: Arc::new(Shared {
                servers,
                tls,
                options,
                conn: Mutex::new(None),
                conn_cert: std::sync::Mutex::new(SystemTime::UNIX_EPOCH),
                last_failure: std::sync::Mutex::new(None),
                failed: Notify::new(),
                closing: AtomicBool::new(false),
                closed: Notify::new(),
                failback: std::sync::Mutex::new(Failback::default()),
                health: std::sync::RwLock::new(health),
            }),
        })
    }

    /// A client of the configuration directory's servers whose TLS identity follows the
    /// files in ssl/ (see `config::TlsSource`).
    pub fn from_conf_dir(conf: &ConfDir) -> std::io::Result<Self> {
        Self::from_conf_dir_with_health(conf, Arc::new(Health::new()))
    }

    pub fn from_conf_dir_with_health(conf: &ConfDir, health: Arc<Health>) -> std::io::Result<Self> {
        Self::with_source(
            conf.servers.clone(),
            TlsSource::from_conf_dir(conf),
            conf.options.clone(),
            health,
        )
    }

    /// Calls `f` with each client identity read again from the configuration directory's ssl/
    /// files (a renewed certificate and key), see `config::TlsSource`.
    pub fn on_identity_renewed(&self, f: impl Fn(&ConfDir) + Send + Sync + 'static) {
        self.shared.tls.on_renewal(f);
    }

    /// Reads the client identity again if its files changed (otherwise that happens at the next
    /// new connection).
    pub fn reread_identity(&self) {
        self.shared.tls.on_disk_expiry();
    }

    /// How many servers (SERVER and standbys) the client may use.
    pub fn server_count(&self) -> usize {
        self.shared.servers.len()
    }

    /// The counters this client reports into.
    pub fn health(&self) -> Arc<Health> {
        self.shared.health()
    }

    /// Reports into `health` from now on (a configuration prepared aside, with counters of its
    /// own, is put in force).
    pub fn report_to(&self, health: Arc<Health>) {
        *self
            .shared
            .health
            .write()
            .unwrap_or_else(PoisonError::into_inner) = health.clone();
        health.follow_certificate(Arc::downgrade(&self.shared.tls));
    }

    /// The one deadline of every request: waiting for the shared connection, connecting (with
    /// failover) and the exchange itself all fit in the connect timeout + the request timeout.
    pub fn call_budget(&self) -> Duration {
        self.shared.call_budget()
    }

    /// Runs one call of a host (a MySQL keyring call, a MariaDB key request) under one
    /// deadline, `call_budget` from now: however many requests, repeats and failovers it makes,
    /// and however long it queues for the connection, it ends by then. Every product's entry
    /// points go through this, so none can take a multiple of the timeouts.
    pub fn one_call<T>(&self, f: impl FnOnce() -> T) -> T {
        with_deadline(Instant::now() + self.call_budget(), f)
    }

    /// Abandons the calls in flight and refuses new ones (unload, or a configuration replaced):
    /// each returns `TransportError::ShuttingDown` at once.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.closed.notify_waiters();
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.shared.closing.load(Ordering::SeqCst)
    }

    /// Where the open connection goes, if one is open and no call holds it now; never waits.
    pub fn in_use(&self) -> Option<Connected> {
        let conn = self.shared.conn.try_lock().ok()?;
        conn.as_ref().map(|s| Connected {
            server: s.server().clone(),
            index: s.index(),
        })
    }

    /// Makes sure a live connection exists (connecting in list order if needed) and says where.
    pub fn connect(&self) -> Result<Connected, ClientError> {
        let shared = self.shared.clone();
        let budget = overall_deadline(&shared.options, shared.servers.len());
        self.runtime.block_on(async move {
            let deadline = tokio::time::Instant::now() + budget;
            shared
                .until_closed(async {
                    let mut conn = shared.lock_conn(deadline, budget).await?;
                    shared.take_failback(&mut conn);
                    let session = shared.ensure(&mut conn, None, deadline, false).await?;
                    Ok(Connected {
                        server: session.server().clone(),
                        index: session.index(),
                    })
                })
                .await
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
        self.request_to(None, request, retry, parse)
    }

    /// As `request`, about an object of `server`: sent only if the connection goes to `server`
    /// (otherwise `ClientError::Moved`, nothing sent), so that an identifier is never acted on
    /// at a server where it may name another object.
    pub fn request_on<T>(
        &self,
        server: &str,
        request: &Request,
        retry: Retry,
        parse: impl FnOnce(&Ttlv) -> Result<T, kmip::KmipError>,
    ) -> Result<T, ClientError> {
        self.request_to(Some(server), request, retry, parse)
    }

    fn request_to<T>(
        &self,
        on: Option<&str>,
        request: &Request,
        retry: Retry,
        parse: impl FnOnce(&Ttlv) -> Result<T, kmip::KmipError>,
    ) -> Result<T, ClientError> {
        let encoded = Zeroizing::new(kmip::encode_request(request));
        let shared = self.shared.clone();
        let operation = request.operation;
        let started = Instant::now();
        let budget = self.budget_from(started)?;
        let outcome = self
            .runtime
            .block_on(async move {
                let deadline = tokio::time::Instant::now() + budget;
                shared
                    .until_closed(shared.call(&encoded, operation, retry, on, deadline, budget))
                    .await
            })
            .and_then(|(mut payload, server)| {
                let parsed =
                    parse(&payload).map_err(|source| ClientError::Server { server, source });
                // The payload may hold key material (Get); the parser made its own copy.
                payload.zeroize();
                parsed
            });
        let health = self.shared.health();
        health.request_done(started.elapsed());
        if let Err(e) = &outcome {
            // Item Not Found is how an absent key is asked about, and a name refused as in use
            // how a server that keeps names unique answers its probe: not faults.
            if !e.is_item_not_found() && !e.is_name_in_use() {
                health.error(&e.to_string());
            }
        }
        outcome
    }

    /// What is left of the call's one deadline (connect + request timeout, or the enclosing
    /// operation's deadline when that is sooner) for a request starting at `started`.
    fn budget_from(&self, started: Instant) -> Result<Duration, ClientError> {
        let full = self.shared.call_budget();
        let mut budget = full;
        if let Some(deadline) = OPERATION_DEADLINE.with(std::cell::Cell::get) {
            budget = budget.min(deadline.saturating_duration_since(started));
        }
        if budget.is_zero() {
            return Err(TransportError::Busy { deadline: full }.into());
        }
        Ok(budget)
    }

    /// Sends `requests` as batch items of one message. Returns the server that answered (so
    /// that what the caller learns can be tied to it) and, per request, its answer or `None`
    /// when the server left the item out.
    pub fn request_batch(
        &self,
        requests: &[Request],
        retry: Retry,
    ) -> Result<BatchAnswer, ClientError> {
        self.request_batch_to(None, requests, retry)
    }

    /// As `request_batch`, about objects of `server`: sent only if the connection goes there
    /// (otherwise `ClientError::Moved`, nothing sent).
    pub fn request_batch_on(
        &self,
        server: &str,
        requests: &[Request],
        retry: Retry,
    ) -> Result<BatchAnswer, ClientError> {
        self.request_batch_to(Some(server), requests, retry)
    }

    /// As `request_batch_on`, in a message of protocol `version` (what the server offered in
    /// Discover Versions): for the few requests that need a feature later than KMIP 1.1.
    pub fn request_batch_as(
        &self,
        server: &str,
        requests: &[Request],
        retry: Retry,
        version: (i32, i32),
    ) -> Result<BatchAnswer, ClientError> {
        self.request_batch_versioned(Some(server), requests, retry, version)
    }

    fn request_batch_to(
        &self,
        on: Option<&str>,
        requests: &[Request],
        retry: Retry,
    ) -> Result<BatchAnswer, ClientError> {
        self.request_batch_versioned(on, requests, retry, kmip::PROTOCOL_VERSION)
    }

    fn request_batch_versioned(
        &self,
        on: Option<&str>,
        requests: &[Request],
        retry: Retry,
        version: (i32, i32),
    ) -> Result<BatchAnswer, ClientError> {
        let encoded = Zeroizing::new(kmip::encode_batch_as(requests, version));
        let operations: Vec<u32> = requests.iter().map(|r| r.operation).collect();
        let shared = self.shared.clone();
        let started = Instant::now();
        let budget = self.budget_from(started)?;
        let outcome = self.runtime.block_on(async move {
            let deadline = tokio::time::Instant::now() + budget;
            shared
                .until_closed(
                    shared.call_with(&encoded, retry, on, deadline, budget, |message| {
                        kmip::decode_batch_response_stamped(message, RESPONSE_CAP, &operations)
                    }),
                )
                .await
        });
        let health = self.shared.health();
        health.request_done(started.elapsed());
        match outcome {
            Ok(((items, time_stamp), server)) => Ok(BatchAnswer {
                server,
                items,
                time_stamp,
            }),
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
    /// The server's clock when it answered (the Response Header's Time Stamp, seconds since
    /// 1970), when it sent one.
    pub time_stamp: Option<i64>,
}

impl Shared {
    fn health(&self) -> Arc<Health> {
        self.health
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn call_budget(&self) -> Duration {
        self.options.connect_timeout + self.options.request_timeout
    }

    /// Runs `work` unless the client is closed first.
    async fn until_closed<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let closed = self.closed.notified();
        tokio::pin!(closed);
        if self.closing.load(Ordering::SeqCst) {
            return Err(TransportError::ShuttingDown.into());
        }
        tokio::select! {
            biased;
            _ = &mut closed => Err(TransportError::ShuttingDown.into()),
            outcome = work => outcome,
        }
    }

    /// The failure of moments ago that callers share instead of waiting for it again.
    fn recent_failure(&self) -> Option<TransportError> {
        let hold = FAILURE_HOLD.min(self.options.connect_timeout);
        let recent = self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (at, last, unreachable) = recent?;
        let ago = at.elapsed();
        (ago < hold).then(|| TransportError::RecentlyFailed {
            last,
            unreachable,
            ago,
            retry_after: hold - ago,
        })
    }

    fn record_failure(&self, error: &TransportError) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((
            tokio::time::Instant::now(),
            error.to_string(),
            error.is_unreachable(),
        ));
        self.failed.notify_waiters();
    }

    fn clear_failure(&self) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The shared connection, waited for until `deadline` at most. A caller queued behind a
    /// request that failed (so the fail-fast window opened) fails at once with that failure.
    async fn lock_conn(
        &self,
        deadline: tokio::time::Instant,
        budget: Duration,
    ) -> Result<MutexGuard<'_, Option<Session>>, TransportError> {
        loop {
            let failed = self.failed.notified();
            tokio::pin!(failed);
            if let Some(e) = self.recent_failure() {
                return Err(e);
            }
            tokio::select! {
                guard = self.conn.lock() => return Ok(guard),
                _ = &mut failed => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(TransportError::Busy { deadline: budget });
                }
            }
        }
    }

    async fn ensure<'a>(
        &self,
        conn: &'a mut Option<Session>,
        avoid: Option<usize>,
        deadline: tokio::time::Instant,
        retrying: bool,
    ) -> Result<&'a mut Session, TransportError> {
        if let Some(session) = conn.as_ref() {
            let connected_with = *self
                .conn_cert
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.tls.renewal_due(connected_with) {
                tracing::info!(
                    "keyring_okv: the client certificate of the connection to {} expires at {}; reconnecting with the renewed one",
                    session.server(),
                    crate::config::utc(connected_with)
                );
                *conn = None;
                self.health().disconnected();
            }
        }
        if let Some(session) = conn.as_mut() {
            if session.is_stale().await {
                tracing::debug!(
                    "connection to {} went stale; reconnecting",
                    session.server()
                );
                *conn = None;
                self.health().disconnected();
            }
        }
        let session = match conn.take() {
            Some(session) => session,
            None => self.connect_new(avoid, deadline, retrying).await?,
        };
        Ok(conn.insert(session))
    }

    /// A new connection, unless a round failed moments ago (then that round's reason). The
    /// retry of a call whose request just failed is not held back by its own failure.
    async fn connect_new(
        &self,
        avoid: Option<usize>,
        deadline: tokio::time::Instant,
        retrying: bool,
    ) -> Result<Session, TransportError> {
        if !retrying {
            if let Some(e) = self.recent_failure() {
                return Err(e);
            }
        }
        let (tls, cert_expires) = self.tls.current();
        self.health().set_client_cert_expiry(cert_expires);
        let outcome = connect_until(&self.servers, avoid, tls, &self.options, Some(deadline)).await;
        match &outcome {
            Ok(session) => {
                *self
                    .conn_cert
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = cert_expires;
                // The retry of a request that just timed out keeps the window open until the
                // server answers it: reaching a hung server proves little.
                if !retrying {
                    self.clear_failure();
                }
                tracing::debug!("connected to KMIP server {}", session.server());
                self.health()
                    .connected(&session.server().to_string(), session.index());
            }
            Err(e) => self.record_failure(e),
        }
        outcome
    }

    async fn call(
        self: &Arc<Self>,
        encoded: &[u8],
        operation: u32,
        retry: Retry,
        on: Option<&str>,
        deadline: tokio::time::Instant,
        budget: Duration,
    ) -> Result<(Ttlv, String), ClientError> {
        self.call_with(encoded, retry, on, deadline, budget, |message| {
            kmip::decode_response_for(message, RESPONSE_CAP, operation)
        })
        .await
    }

    /// Sends one encoded message (a single request or a batch) and decodes its answer with
    /// `decode`, under the call's deadline; with `on`, only to that server.
    async fn call_with<T>(
        self: &Arc<Self>,
        encoded: &[u8],
        retry: Retry,
        on: Option<&str>,
        deadline: tokio::time::Instant,
        budget: Duration,
        decode: impl Fn(&[u8]) -> Result<T, kmip::KmipError>,
    ) -> Result<(T, String), ClientError> {
        let mut conn = self.lock_conn(deadline, budget).await?;
        // Between requests, never during one: take over a connection a failback probe made.
        self.take_failback(&mut conn);
        let mut attempt = 0;
        let mut avoid = None;
        loop {
            attempt += 1;
            let session = self.ensure(&mut conn, avoid, deadline, attempt > 1).await?;
            let index = session.index();
            let server = session.server().to_string();
            if let Some(expected) = on.filter(|e| *e != server) {
                return Err(ClientError::Moved {
                    expected: expected.to_string(),
                    now: server,
                });
            }
            let timeout = self.options.request_timeout;
            let sent = tokio::time::Instant::now();
            let until = (sent + timeout).min(deadline);
            let outcome = session
                .round_trip_until(encoded, until, timeout, RESPONSE_CAP)
                .await;
            match outcome {
                Ok(message) => {
                    let message = Zeroizing::new(message);
                    return match decode(&message) {
                        Ok(payload) => {
                            if attempt > 1 {
                                self.clear_failure();
                            }
                            self.probe_failback(index);
                            Ok((payload, server))
                        }
                        Err(kmip::KmipError::Ttlv(source)) => {
                            // The stream can no longer be trusted to be in step.
                            *conn = None;
                            self.health().disconnected();
                            Err(TransportError::Garbage { server, source }.into())
                        }
                        Err(source) => Err(ClientError::Server { server, source }),
                    };
                }
                Err(e) => {
                    *conn = None;
                    self.health().disconnected();
                    avoid = Some(index);
                    // (Not when the call's own deadline left the request too little time to
                    // say anything about the server.)
                    let waited = until.saturating_duration_since(sent);
                    if matches!(e, TransportError::Timeout { .. })
                        && waited >= timeout.min(FAILURE_HOLD) / 2
                    {
                        // A server that hangs is as dead as one that does not answer the
                        // connect: the callers queued behind this one fail at once.
                        self.record_failure(&e);
                    }
                    if retry == Retry::Idempotent
                        && attempt == 1
                        && tokio::time::Instant::now() < deadline
                    {
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

    fn failback_state(&self) -> std::sync::MutexGuard<'_, Failback> {
        self.failback.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Failback policy: while a request was just served by a standby (position > 0), at most
    /// once per failback interval a probe tries the servers before it, in the background with
    /// the usual failover round. A connection it makes is taken over by the next call, before
    /// that call sends anything.
    fn probe_failback(self: &Arc<Self>, index: usize) {
        let interval = self.options.failback_interval;
        let mut state = self.failback_state();
        if index == 0 || interval.is_zero() {
            state.next_probe = None;
            return;
        }
        let now = Instant::now();
        match state.next_probe {
            None => {
                state.next_probe = Some(now + interval);
                return;
            }
            Some(at) if now < at => return,
            Some(_) => {}
        }
        if state.probing || state.ready.is_some() {
            return;
        }
        state.probing = true;
        state.next_probe = Some(now + interval);
        drop(state);
        let weak: Weak<Shared> = Arc::downgrade(self);
        let (tls, cert_expires) = self.tls.current();
        let (servers, options) = (self.servers.clone(), self.options.clone());
        tokio::spawn(async move {
            let outcome = connect_prefix(&servers, index, tls, &options).await;
            // A client dropped meanwhile does not need the connection.
            let Some(shared) = weak.upgrade() else {
                return;
            };
            let mut state = shared.failback_state();
            state.probing = false;
            match outcome {
                Ok(session) => state.ready = Some((session, cert_expires)),
                Err(e) => tracing::debug!("failback probe: {e}"),
            }
        });
    }

    fn take_failback(&self, conn: &mut Option<Session>) {
        let Some((ready, cert_expires)) = self.failback_state().ready.take() else {
            return;
        };
        let current = conn.as_ref().map(|s| (s.server().to_string(), s.index()));
        match current {
            Some((from, from_index)) if ready.index() < from_index => {
                tracing::warn!(
                    "failing back from {} {from} (position {from_index}) to {} {} (position {}), which answers again",
                    role(from_index),
                    role(ready.index()),
                    ready.server(),
                    ready.index()
                );
                self.health()
                    .connected(&ready.server().to_string(), ready.index());
                if ready.index() == 0 {
                    self.failback_state().next_probe = None;
                }
                *self
                    .conn_cert
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = cert_expires;
                *conn = Some(ready);
            }
            // Reconnected meanwhile (to an earlier server, or none is open): not needed.
            _ => drop(ready),
        }
    }
}

fn role(index: usize) -> &'static str {
    if index == 0 {
        "SERVER"
    } else {
        "STANDBY_SERVER"
    }
}
