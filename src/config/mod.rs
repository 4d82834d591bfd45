//! The configuration directory named by `keyring_okv_conf_dir`: `okvclient.ora` and the
//! `ssl/` materials (`CA.pem`, `cert.pem`, `key.pem`, optional `password.txt`), and the
//! mutual-TLS client configuration built from them.
//!
//! Every problem ends in one [`ConfigError`] whose message names the file (and the line) and
//! the fix; permission and certificate-date problems are [`Warning`]s.

mod error;
pub mod fips;
mod keys;
mod ora;
mod perms;
mod provider;
mod reload;
mod seal_root;
mod tls;
mod x509;

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, ServerName};
use zeroize::Zeroizing;

pub use error::ConfigError;
pub use ora::{MAX_STANDBY_SERVERS, parse_okvclient_ora};
pub use perms::check_permissions;
pub use provider::provider;
pub use reload::{RENEW_BEFORE, TlsSource, utc};
pub use seal_root::SealRoot;
pub use tls::ChainOnlyVerifier;

/// Largest configuration file we read (anything bigger is not a configuration file).
const MAX_FILE_SIZE: u64 = 1 << 20;

/// Host part of a server address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name (stored lower-case).
    Dns(String),
}

/// A `host:port` from okvclient.ora.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    pub host: Host,
    pub port: u16,
}

impl ServerAddr {
    /// The name the server certificate must carry (IP address or DNS name).
    pub fn server_name(&self) -> ServerName<'static> {
        match &self.host {
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
            // Parsed names are valid; a hand-built invalid name maps to a name no
            // certificate carries, so verification fails instead of panicking.
            Host::Dns(name) => ServerName::try_from(name.clone()).unwrap_or_else(|_| {
                ServerName::try_from("invalid.invalid").expect("valid literal")
            }),
        }
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            Host::Dns(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

impl std::str::FromStr for ServerAddr {
    type Err = String;
    /// Parse `host:port` with the okvclient.ora rules.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ora::parse_server_addr(s)
    }
}

/// Our own okvclient.ora options (`KEYRING_OKV_*` keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Per connection attempt: TCP connect + TLS handshake. Default 20 s.
    pub connect_timeout: Duration,
    /// Write + read of one request. Default 20 s.
    pub request_timeout: Duration,
    /// How long the failover connector waits on a pending attempt before also trying the
    /// next server. Default 250 ms.
    pub failover_stagger: Duration,
    /// Whether the server certificate must name the host/IP dialled. Default true.
    pub verify_server_name: bool,
    /// While on a standby, how often the servers before it are probed to fail back to.
    /// Default 60 s; zero turns failback off.
    pub failback_interval: Duration,
    /// How long before the client certificate expires the error log warns (once per
    /// certificate). Default 7 days; zero turns the warning off.
    pub cert_expiry_warning: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            failover_stagger: Duration::from_millis(250),
            verify_server_name: true,
            failback_interval: Duration::from_secs(60),
            cert_expiry_warning: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The parsed okvclient.ora.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OkvClientOra {
    pub server: ServerAddr,
    pub standby: Vec<ServerAddr>,
    pub options: Options,
}

/// A non-fatal configuration problem (permissions, certificate dates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// What we know about the client identity (cert.pem + key.pem). No secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentityInfo {
    /// Subject of the client certificate (RFC 4514 form).
    pub subject: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// "RSA", "EC", "Ed25519" (or "other").
    pub key_kind: &'static str,
    /// How key.pem was stored, e.g. "PKCS#8", "PKCS#8 PBES2 (encrypted)".
    pub key_format: &'static str,
}

/// Everything read from the configuration directory.
pub struct ConfDir {
    pub dir: PathBuf,
    /// SERVER first, then the STANDBY_SERVERs in order.
    pub servers: Vec<ServerAddr>,
    pub options: Options,
    pub tls: Arc<rustls::ClientConfig>,
    pub identity: ClientIdentityInfo,
    /// The secret of the sealed key cache, derived from key.pem.
    pub seal_root: Arc<SealRoot>,
    /// Permission and certificate-date warnings; the caller reports them (the plugin logs each
    /// once, the admin tool prints them).
    pub warnings: Vec<Warning>,
}

impl fmt::Debug for ConfDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfDir")
            .field("dir", &self.dir)
            .field("servers", &self.servers)
            .field("options", &self.options)
            .field("tls", &"ClientConfig { client key: [redacted] }")
            .field("identity", &self.identity)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Read a regular file of at most [`MAX_FILE_SIZE`] bytes.
fn read_file(
    path: &Path,
    what: &'static str,
    missing_fix: &'static str,
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let unreadable = |reason: String| ConfigError::Unreadable {
        path: path.to_path_buf(),
        what,
        reason,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing {
                path: path.to_path_buf(),
                what,
                fix: missing_fix,
            });
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    if !meta.is_file() {
        // Never open FIFOs or devices: that could block forever.
        return Err(unreadable(if meta.is_dir() {
            "it is a directory, not a file".into()
        } else {
            "it is not a regular file".into()
        }));
    }
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| unreadable(e.to_string()))?;
    if buf.len() as u64 > MAX_FILE_SIZE {
        return Err(unreadable(format!(
            "larger than {MAX_FILE_SIZE} bytes, not a configuration file"
        )));
    }
    Ok(buf)
}

/// The path and contents of ssl/`file`, which must exist and not be blank.
fn read_pem_file(
    dir: &Path,
    file: &'static str,
    fix: &'static str,
) -> Result<(PathBuf, Zeroizing<Vec<u8>>), ConfigError> {
    let path = keys::ssl_path(dir, file);
    let bytes = non_empty(&path, file, fix, read_file(&path, file, fix)?)?;
    Ok((path, bytes))
}

fn non_empty(
    path: &Path,
    what: &'static str,
    fix: &'static str,
    bytes: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let blank = bytes
        .iter()
        .all(|b| b.is_ascii_whitespace() || matches!(b, 0xEF | 0xBB | 0xBF));
    if blank {
        return Err(ConfigError::Empty {
            path: path.to_path_buf(),
            what,
            fix,
        });
    }
    Ok(bytes)
}

fn cert_info(
    path: &Path,
    index: usize,
    der: &CertificateDer<'_>,
) -> Result<(String, SystemTime, SystemTime), ConfigError> {
    let cert = x509::read(der.as_ref()).map_err(|e| ConfigError::BadCertificate {
        path: path.to_path_buf(),
        index,
        reason: e.to_string(),
        fix: "replace it with the PEM certificate issued for this server",
    })?;
    Ok((cert.subject, cert.not_before, cert.not_after))
}

fn fmt_time(t: SystemTime) -> String {
    use der::DateTime;
    match DateTime::from_system_time(t) {
        Ok(d) => d.to_string(),
        Err(_) => format!("{t:?}"),
    }
}

/// One certificate of ssl/cert.pem or ssl/CA.pem and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateDates {
    /// "cert.pem" or "CA.pem".
    pub file: &'static str,
    /// Position in the file, from 1.
    pub index: usize,
    pub subject: String,
    pub not_after: SystemTime,
}

/// Every certificate of ssl/cert.pem (the client's chain) and ssl/CA.pem, with its expiry.
pub fn certificate_dates(dir: &Path) -> Result<Vec<CertificateDates>, ConfigError> {
    let mut out = Vec::new();
    for file in ["cert.pem", "CA.pem"] {
        let (path, bytes) = read_pem_file(dir, file, "put the PEM certificate(s) in it")?;
        for (i, der) in keys::load_certs(&path, file, &bytes)?.iter().enumerate() {
            let (subject, _, not_after) = cert_info(&path, i + 1, der)?;
            out.push(CertificateDates {
                file,
                index: i + 1,
                subject,
                not_after,
            });
        }
    }
    Ok(out)
}

/// Read, validate and build everything from the configuration directory.
pub fn load_conf_dir(dir: &Path) -> Result<ConfDir, ConfigError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(ConfigError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::DirMissing {
                path: dir.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(ConfigError::Unreadable {
                path: dir.to_path_buf(),
                what: "the configuration directory",
                reason: e.to_string(),
            });
        }
    }

    let ora = read_okvclient_ora(dir)?;
    load_conf_dir_with(dir, ora)
}

/// Reads and parses `dir`/okvclient.ora.
pub fn read_okvclient_ora(dir: &Path) -> Result<OkvClientOra, ConfigError> {
    let ora_path = dir.join("okvclient.ora");
    let ora_bytes = read_file(
        &ora_path,
        "okvclient.ora",
        "create it with a SERVER=host:port line (and optional STANDBY_SERVER=host:port,...)",
    )?;
    parse_okvclient_ora(&ora_path, &ora_bytes)
}

/// Like [`load_conf_dir`], with the servers and options given by the caller instead of
/// okvclient.ora (the component's JSON configuration may name them); `dir` must exist.
pub fn load_conf_dir_with(dir: &Path, ora: OkvClientOra) -> Result<ConfDir, ConfigError> {
    // ssl/
    let ssl = dir.join("ssl");
    match std::fs::metadata(&ssl) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(ConfigError::Unreadable {
                path: ssl,
                what: "the ssl directory",
                reason: "it is not a directory".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing {
                path: ssl,
                what: "the ssl directory",
                fix: "create it with CA.pem, cert.pem and key.pem from the key server",
            });
        }
        Err(e) => {
            return Err(ConfigError::Unreadable {
                path: ssl,
                what: "the ssl directory",
                reason: e.to_string(),
            });
        }
    }

    // CA.pem
    let (ca_path, ca_bytes) = read_pem_file(
        dir,
        "CA.pem",
        "copy the key server's CA certificate(s) into it as PEM",
    )?;
    let ca_certs = keys::load_certs(&ca_path, "CA.pem", &ca_bytes)?;
    let mut roots = RootCertStore::empty();
    let mut first_ca_error = None;
    for (i, c) in ca_certs.into_iter().enumerate() {
        if let Err(e) = roots.add(c) {
            first_ca_error.get_or_insert(format!("certificate #{}: {e}", i + 1));
        }
    }
    if roots.is_empty() {
        return Err(ConfigError::NoTrustAnchor {
            path: ca_path,
            reason: first_ca_error.unwrap_or_else(|| "no certificate".into()),
        });
    }

    // cert.pem
    let (cert_path, cert_bytes) = read_pem_file(
        dir,
        "cert.pem",
        "copy the client certificate issued for this server into it as PEM",
    )?;
    let chain = keys::load_certs(&cert_path, "cert.pem", &cert_bytes)?;
    let (subject, not_before, not_after) = cert_info(&cert_path, 1, &chain[0])?;

    // key.pem (+ password.txt)
    let (key_path, key_bytes) = read_pem_file(
        dir,
        "key.pem",
        "copy the client private key issued with cert.pem into it as PEM",
    )?;
    let pw_path = keys::ssl_path(dir, "password.txt");
    let blocks = keys::pem_blocks(&key_path, "key.pem", &key_bytes)?;
    drop(key_bytes);
    let password = if keys::key_is_encrypted(&blocks) {
        match read_file(&pw_path, "password.txt", "") {
            Ok(bytes) => Some(keys::Password::from_file_bytes(&pw_path, bytes)?),
            Err(ConfigError::Missing { .. }) => {
                return Err(ConfigError::PasswordMissing {
                    path: key_path,
                    password_path: pw_path,
                });
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let key = keys::load_key(&key_path, &pw_path, blocks, password.as_ref())?;
    drop(password);

    let provider = provider::provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.der.clone_key())
        .map_err(|e| ConfigError::BadKey {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
    let key_kind = match signing_key.algorithm() {
        rustls::SignatureAlgorithm::RSA => "RSA",
        rustls::SignatureAlgorithm::ECDSA => "EC",
        rustls::SignatureAlgorithm::ED25519 => "Ed25519",
        rustls::SignatureAlgorithm::ED448 => "Ed448",
        _ => "other",
    };
    match CertifiedKey::new(chain.clone(), signing_key).keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(ConfigError::KeyCertMismatch {
                key_path,
                cert_path,
            });
        }
        Err(rustls::Error::InconsistentKeys(_)) => {} // key cannot tell its public key
        Err(e) => {
            return Err(ConfigError::BadCertificate {
                path: cert_path,
                index: 1,
                reason: e.to_string(),
                fix: "replace it with the PEM certificate issued for this server",
            });
        }
    }

    // TLS client configuration: TLS 1.2 + 1.3, CA.pem only, client auth.
    let tls_err = |e: String| ConfigError::Tls {
        path: dir.to_path_buf(),
        reason: e,
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ConfigError::NoTrustAnchor {
            path: ca_path.clone(),
            reason: e.to_string(),
        })?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_err(e.to_string()))?;
    let builder = if ora.options.verify_server_name {
        builder.with_webpki_verifier(webpki)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier::new(webpki)))
    };
    let config = builder
        .with_client_auth_cert(chain, key.der.clone_key())
        .map_err(|e| tls_err(e.to_string()))?;
    if fips::BUILD && !config.fips() {
        return Err(fips::not_approved(
            dir,
            "the TLS client configuration (rustls does not call it FIPS)".into(),
            "report this: the FIPS build's provider should only hold approved algorithms",
        ));
    }
    let key_format = key.format;
    let seal_root = Arc::new(SealRoot::of_key(&key.der));
    drop(key);

    // Warnings.
    let mut warnings = check_permissions(dir);
    let now = SystemTime::now();
    if now > not_after {
        warnings.push(Warning {
            path: cert_path.clone(),
            message: format!(
                "client certificate expired on {} (valid from {} to {}); the key server will probably refuse it: install a renewed cert.pem and key.pem",
                fmt_time(not_after),
                fmt_time(not_before),
                fmt_time(not_after)
            ),
        });
    } else if now < not_before {
        warnings.push(Warning {
            path: cert_path.clone(),
            message: format!(
                "client certificate is not valid yet (valid from {} to {}); check the system clock or wait until it becomes valid",
                fmt_time(not_before),
                fmt_time(not_after)
            ),
        });
    }
    let mut servers = Vec::with_capacity(1 + ora.standby.len());
    servers.push(ora.server);
    servers.extend(ora.standby);
    Ok(ConfDir {
        dir: dir.to_path_buf(),
        servers,
        options: ora.options,
        tls: Arc::new(config),
        identity: ClientIdentityInfo {
            subject,
            not_before,
            not_after,
            key_kind,
            key_format,
        },
        seal_root,
        warnings,
    })
}
