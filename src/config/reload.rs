//! The client's TLS identity, picked up again from disk when it is replaced: key managers hand
//! out short-lived client certificates (HashiCorp Vault's KMIP engine: 24 hours) that an agent
//! replaces in `ssl/` while the database runs, so waiting for `SET GLOBAL` or a restart would
//! break the keyring every day at the certificate's expiry.
//!
//! - Every new connection asks for [`TlsSource::current`]: when `ssl/CA.pem`, `ssl/cert.pem`,
//!   `ssl/key.pem` or `password.txt` changed since they were read (size, times or inode), the
//!   ssl/ materials are loaded again with the same checks as at start. A replacement that does
//!   not load (half written, a key that does not match the certificate, wrong permissions)
//!   leaves the old identity in use and is logged once, naming the file and the problem; the
//!   next change is tried again. okvclient.ora is not read again (servers and timeouts change
//!   with `SET GLOBAL` or a restart).
//! - A connection made with a certificate that expires within [`RENEW_BEFORE`] is replaced
//!   before its next request when a certificate that lasts longer is on disk
//!   ([`TlsSource::renewal_due`]).
//! - The status's client certificate expiry ([`TlsSource::on_disk_expiry`]) follows the files
//!   on disk, not the open connection.
//! - The error log warns once per certificate when less than `KEYRING_OKV_CERT_EXPIRY_WARNING`
//!   is left, and says once when it has expired with nothing to replace it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{ConfDir, OkvClientOra, load_conf_dir_with};

/// A connection whose client certificate expires sooner than this is replaced when a later
/// certificate is on disk.
pub const RENEW_BEFORE: Duration = Duration::from_secs(600);

/// The files the identity is read from, relative to the configuration directory.
const WATCHED: [&str; 4] = ["ssl/CA.pem", "ssl/cert.pem", "ssl/key.pem", "password.txt"];

/// What a file looked like when read: None when absent.
type Stamp = [Option<(u64, i64, i64, u64)>; 4];

fn stamp(dir: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    WATCHED.map(|f| {
        std::fs::metadata(dir.join(f)).ok().map(|m| {
            (
                m.len(),
                m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                m.ctime() * 1_000_000_000 + m.ctime_nsec(),
                m.ino(),
            )
        })
    })
}

/// The identity in use and what is known of the files.
struct State {
    tls: Arc<rustls::ClientConfig>,
    not_after: SystemTime,
    subject: String,
    /// The files as they were when `tls` was read.
    read: Stamp,
    /// The files as they were when a load last failed, so it is logged once.
    failed: Option<Stamp>,
    /// The certificate whose coming expiry was logged.
    warned: Option<SystemTime>,
    /// The certificate whose expiry was logged.
    expired: Option<SystemTime>,
}

/// Told of every identity read again from the files (the sealed key cache seals itself under
/// the new key at once).
type Renewed = Box<dyn Fn(&ConfDir) + Send + Sync>;

/// Where new connections get their TLS configuration.
pub struct TlsSource {
    /// The configuration directory and its okvclient.ora; None for a fixed configuration.
    origin: Option<(PathBuf, OkvClientOra)>,
    warn_before: Duration,
    state: Mutex<State>,
    renewed: Mutex<Vec<Renewed>>,
}

impl TlsSource {
    /// A configuration that never changes (tests, tools given a ready configuration).
    pub fn fixed(tls: Arc<rustls::ClientConfig>) -> TlsSource {
        TlsSource {
            origin: None,
            warn_before: Duration::ZERO,
            state: Mutex::new(State {
                tls,
                not_after: SystemTime::UNIX_EPOCH,
                subject: String::new(),
                read: Default::default(),
                failed: None,
                warned: None,
                expired: None,
            }),
            renewed: Mutex::new(Vec::new()),
        }
    }

    /// The identity of a loaded configuration directory, read again when its files change.
    pub fn from_conf_dir(conf: &ConfDir) -> TlsSource {
        let ora = OkvClientOra {
            server: conf.servers[0].clone(),
            standby: conf.servers[1..].to_vec(),
            options: conf.options.clone(),
        };
        TlsSource {
            origin: Some((conf.dir.clone(), ora)),
            warn_before: conf.options.cert_expiry_warning,
            state: Mutex::new(State {
                tls: conf.tls.clone(),
                not_after: conf.identity.not_after,
                subject: conf.identity.subject.clone(),
                read: stamp(&conf.dir),
                failed: None,
                warned: None,
                expired: None,
            }),
            renewed: Mutex::new(Vec::new()),
        }
    }

    /// Calls `f` with each identity read again from the files from now on.
    pub fn on_renewal(&self, f: impl Fn(&ConfDir) + Send + Sync + 'static) {
        self.renewed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(f));
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration for a new connection, and when its client certificate expires (the
    /// epoch when unknown).
    pub fn current(&self) -> (Arc<rustls::ClientConfig>, SystemTime) {
        let mut state = self.state();
        self.refresh(&mut state);
        self.check_expiry(&mut state);
        (state.tls.clone(), state.not_after)
    }

    /// When the client certificate in use expires (the epoch when unknown).
    pub fn expires(&self) -> SystemTime {
        self.state().not_after
    }

    /// When the client certificate new connections would use expires: that of the files on
    /// disk, not of the open connection, so that the status shows a certificate renewed early
    /// at once. Cheap: the files are read again only when their stamp changed (as at a new
    /// connection, with the same checks; a replacement that does not load leaves the one in
    /// use), otherwise this costs four `stat` calls.
    pub fn on_disk_expiry(&self) -> SystemTime {
        let mut state = self.state();
        self.refresh(&mut state);
        state.not_after
    }

    /// Whether a connection made with a certificate that expires at `connected_with` should
    /// be replaced now: it expires within [`RENEW_BEFORE`] and the files now hold one that
    /// lasts longer.
    pub fn renewal_due(&self, connected_with: SystemTime) -> bool {
        if self.origin.is_none() || connected_with == SystemTime::UNIX_EPOCH {
            return false;
        }
        let mut state = self.state();
        self.check_expiry(&mut state);
        if SystemTime::now() + RENEW_BEFORE < connected_with {
            return false;
        }
        self.refresh(&mut state);
        state.not_after > connected_with
    }

    /// Reads the identity again if its files changed since they were read.
    fn refresh(&self, state: &mut State) {
        let Some((dir, ora)) = &self.origin else {
            return;
        };
        let now = stamp(dir);
        if now == state.read || state.failed.as_ref() == Some(&now) {
            return;
        }
        match load_conf_dir_with(dir, ora.clone()) {
            Ok(conf) => {
                tracing::info!(
                    "keyring_okv: {} changed; new connections use the client certificate '{}', valid until {}",
                    dir.join("ssl").display(),
                    conf.identity.subject,
                    utc(conf.identity.not_after)
                );
                for w in &conf.warnings {
                    tracing::warn!("keyring_okv: {w}");
                }
                state.tls = conf.tls.clone();
                state.not_after = conf.identity.not_after;
                state.subject = conf.identity.subject.clone();
                state.read = now;
                state.failed = None;
                for f in self
                    .renewed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                {
                    f(&conf);
                }
            }
            Err(e) => {
                tracing::error!(
                    "keyring_okv: the replaced TLS files in {} do not load, so the ones read before stay in use: {e}",
                    dir.display()
                );
                state.failed = Some(now);
            }
        }
    }

    /// Logs once per certificate that it is close to its expiry, and once that it expired.
    fn check_expiry(&self, state: &mut State) {
        let Some((dir, _)) = &self.origin else {
            return;
        };
        let now = SystemTime::now();
        let cert = dir.join("ssl/cert.pem");
        if now >= state.not_after {
            if state.expired != Some(state.not_after) {
                state.expired = Some(state.not_after);
                tracing::error!(
                    "keyring_okv: the client certificate {} ('{}') expired at {} and nothing has replaced it, so KMIP servers refuse new connections; put a renewed certificate and key in {} (picked up without a restart)",
                    cert.display(),
                    state.subject,
                    utc(state.not_after),
                    dir.join("ssl").display()
                );
            }
        } else if !self.warn_before.is_zero()
            && now + self.warn_before >= state.not_after
            && state.warned != Some(state.not_after)
        {
            state.warned = Some(state.not_after);
            let left = state.not_after.duration_since(now).unwrap_or_default();
            tracing::warn!(
                "keyring_okv: the client certificate {} ('{}') expires at {} (in {}); replace ssl/cert.pem and ssl/key.pem before then (picked up without a restart)",
                cert.display(),
                state.subject,
                utc(state.not_after),
                human(left)
            );
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{} UTC", crate::health::utc_timestamp(secs))
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}
