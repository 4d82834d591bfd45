//! Health counters a DBA can read: which server is in use, connections, failovers, requests,
//! errors, the last error and request latency. Every library shows the same counters (the
//! plugin as status variables, the component as status rows, the MariaDB plugin as status
//! variables), so they are kept here once. Reading them never waits on a KMIP call: every field
//! is an atomic or a mutex held only to copy a short string, except the client certificate's
//! expiry, which looks at the certificate files (`TlsSource::on_disk_expiry`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::TlsSource;

/// Live counters of one host (plugin, component or MariaDB plugin). They survive a change of
/// configuration; only the configuration-dependent fields are replaced then.
#[derive(Default)]
pub struct Health {
    config_loaded: AtomicBool,
    servers_configured: AtomicUsize,
    connections: AtomicU64,
    failovers: AtomicU64,
    failbacks: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    latency_last_us: AtomicU64,
    latency_max_us: AtomicU64,
    /// When the client certificate of new connections expires, seconds since the epoch.
    client_cert_expires: AtomicU64,
    /// Where that certificate is read from, when it follows files on disk: a snapshot asks it,
    /// so a certificate renewed early shows before the next connection uses it.
    cert_source: Mutex<Option<Weak<TlsSource>>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The server of the open connection and its position in the list (0 = SERVER).
    in_use: Option<(String, usize)>,
    /// Position of the server of the last connection made; 0 before any, so that a first
    /// connection to a standby counts as a failover.
    last_index: usize,
    last_error: Option<(String, SystemTime)>,
    /// How the last listing made sure it had every object (see `keyring::survey`).
    listing_method: String,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub config_loaded: bool,
    pub servers_configured: usize,
    /// `host:port` of the server in use, empty when not connected.
    pub server_in_use: String,
    /// Its position in the list (0 = SERVER), None when not connected.
    pub server_index: Option<usize>,
    pub connections: u64,
    /// Connections to a later server of the list than the one before.
    pub failovers: u64,
    /// Connections back to an earlier server of the list than the one before.
    pub failbacks: u64,
    pub requests: u64,
    pub errors: u64,
    /// Text of the last error, empty when there was none.
    pub last_error: String,
    /// When it happened, as seconds since the Unix epoch (0 = never).
    pub last_error_unix: u64,
    pub latency_last_us: u64,
    pub latency_max_us: u64,
    /// When the client certificate new connections use expires, `YYYY-MM-DD HH:MM:SS` UTC;
    /// empty when unknown.
    pub client_cert_expires: String,
    /// The same as seconds since the Unix epoch (0 when unknown), for monitoring.
    pub client_cert_expires_unix: u64,
    /// How the last listing of the server in use was made complete (or why it could not
    /// be), empty before the first listing.
    pub listing_method: String,
}

impl Snapshot {
    /// The time of the last error as `YYYY-MM-DD HH:MM:SS` UTC, empty when there was none.
    pub fn last_error_time(&self) -> String {
        if self.last_error_unix == 0 {
            return String::new();
        }
        utc_timestamp(self.last_error_unix)
    }
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing in State can be left half-written by a panic worth refusing to read.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A configuration with `servers` servers is in force (or, with None, none is).
    pub fn set_configuration(&self, servers: Option<usize>) {
        self.config_loaded
            .store(servers.is_some(), Ordering::Relaxed);
        self.servers_configured
            .store(servers.unwrap_or(0), Ordering::Relaxed);
        let mut state = self.state();
        state.in_use = None;
        state.last_index = 0;
    }

    /// Connections made so far: a change means the connection in use was replaced.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// A new connection to `server`, at `index` in the list: a failover when it is later in
    /// the list than the last one, a failback when earlier.
    pub fn connected(&self, server: &str, index: usize) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        if index > state.last_index {
            self.failovers.fetch_add(1, Ordering::Relaxed);
        } else if index < state.last_index {
            self.failbacks.fetch_add(1, Ordering::Relaxed);
        }
        state.last_index = index;
        state.in_use = Some((server.to_string(), index));
    }

    /// The connection was closed or found broken.
    pub fn disconnected(&self) {
        self.state().in_use = None;
    }

    /// One keyring request to the KMIP server finished after `elapsed`.
    pub fn request_done(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.latency_last_us.store(us, Ordering::Relaxed);
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// A call failed; `text` says why (never key material).
    pub fn error(&self, text: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.state().last_error = Some((text.to_string(), SystemTime::now()));
    }

    /// The client certificate of new connections expires at `at`.
    pub fn set_client_cert_expiry(&self, at: SystemTime) {
        let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.client_cert_expires.store(secs, Ordering::Relaxed);
    }

    /// The client certificate's expiry follows `source` (the files on disk) from now on.
    pub fn follow_certificate(&self, source: Weak<TlsSource>) {
        *self
            .cert_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    fn refresh_cert_expiry(&self) {
        let source = self
            .cert_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(Weak::upgrade);
        if let Some(source) = source {
            self.set_client_cert_expiry(source.on_disk_expiry());
        }
    }

    /// How the last listing was made complete, or why it could not be.
    pub fn set_listing_method(&self, text: &str) {
        let mut state = self.state();
        if state.listing_method != text {
            state.listing_method = text.to_string();
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.refresh_cert_expiry();
        let state = self.state();
        let (server_in_use, server_index) = match &state.in_use {
            Some((server, index)) => (server.clone(), Some(*index)),
            None => (String::new(), None),
        };
        let (last_error, last_error_unix) = match &state.last_error {
            Some((text, at)) => (
                text.clone(),
                at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            ),
            None => (String::new(), 0),
        };
        let listing_method = state.listing_method.clone();
        drop(state);
        Snapshot {
            config_loaded: self.config_loaded.load(Ordering::Relaxed),
            servers_configured: self.servers_configured.load(Ordering::Relaxed),
            server_in_use,
            server_index,
            connections: self.connections.load(Ordering::Relaxed),
            failovers: self.failovers.load(Ordering::Relaxed),
            failbacks: self.failbacks.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error,
            last_error_unix,
            latency_last_us: self.latency_last_us.load(Ordering::Relaxed),
            latency_max_us: self.latency_max_us.load(Ordering::Relaxed),
            client_cert_expires: match self.client_cert_expires.load(Ordering::Relaxed) {
                0 => String::new(),
                secs => utc_timestamp(secs),
            },
            client_cert_expires_unix: self.client_cert_expires.load(Ordering::Relaxed),
            listing_method,
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` for seconds since the epoch, UTC (proleptic Gregorian calendar).
pub fn utc_timestamp(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's days-to-civil algorithm, for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(1), "1970-01-01 00:00:01");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_timestamp(1_798_761_599), "2026-12-31 23:59:59");
    }

    #[test]
    fn failovers_count_moves_down_the_list_and_failbacks_moves_up() {
        let h = Health::new();
        h.set_configuration(Some(3));
        h.connected("a:1", 0);
        h.disconnected();
        h.connected("a:1", 0);
        assert_eq!(h.snapshot().failovers, 0);
        h.connected("b:1", 1);
        h.connected("a:1", 0);
        let s = h.snapshot();
        assert_eq!((s.connections, s.failovers, s.failbacks), (4, 1, 1));
        assert_eq!((s.server_in_use.as_str(), s.server_index), ("a:1", Some(0)));

        let standby_first = Health::new();
        standby_first.connected("b:1", 1);
        assert_eq!(standby_first.snapshot().failovers, 1);
    }

    #[test]
    fn latency_keeps_last_and_maximum_and_errors_keep_text_and_time() {
        let h = Health::new();
        h.request_done(Duration::from_micros(700));
        h.request_done(Duration::from_micros(300));
        h.error("KMIP server 127.0.0.1:1 refused the connection");
        let s = h.snapshot();
        assert_eq!(
            (s.requests, s.latency_last_us, s.latency_max_us),
            (2, 300, 700)
        );
        assert_eq!(s.errors, 1);
        assert!(s.last_error.contains("refused"));
        assert!(s.last_error_unix > 0 && s.last_error_time().len() == 19);
        h.disconnected();
        assert_eq!(h.snapshot().server_index, None);
    }
}
