//! Configuration errors: each one is a single line naming the file (and the line when relevant)
//! and what to do about it.

use std::path::PathBuf;

/// Everything that can be wrong in the configuration directory.
///
/// `Display` gives one line that names the file, the line number when relevant, and the fix.
/// No variant ever carries key material or the key password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `keyring_okv_conf_dir` names nothing.
    #[error(
        "{}: configuration directory does not exist; create it (mode 750, owned by the server's account) with okvclient.ora and ssl/ inside, or fix keyring_okv_conf_dir",
        path.display()
    )]
    DirMissing { path: PathBuf },

    /// `keyring_okv_conf_dir` names a file, not a directory.
    #[error(
        "{}: is not a directory; keyring_okv_conf_dir must name the directory that holds okvclient.ora and ssl/",
        path.display()
    )]
    NotADirectory { path: PathBuf },

    /// A mandatory file (okvclient.ora, ssl/CA.pem, ssl/cert.pem, ssl/key.pem) or the ssl
    /// directory is missing.
    #[error("{}: {what} is missing; {fix}", path.display())]
    Missing {
        path: PathBuf,
        what: &'static str,
        fix: &'static str,
    },

    /// A path exists but could not be read (permissions, I/O error, not a regular file).
    #[error(
        "{}: cannot read {what}: {reason}; it must be a regular file (or directory) readable by the account that runs the server",
        path.display()
    )]
    Unreadable {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },

    /// A file is empty (or whitespace only).
    #[error("{}: {what} is empty; {fix}", path.display())]
    Empty {
        path: PathBuf,
        what: &'static str,
        fix: &'static str,
    },

    /// A syntax or value error in okvclient.ora.
    #[error("{}:{line}: {message}", path.display())]
    Ora {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// A recognised okvclient.ora key appears twice.
    #[error(
        "{}:{line}: {key} is repeated (first set on line {first_line}); keep only one {key} line",
        path.display()
    )]
    OraRepeatedKey {
        path: PathBuf,
        key: &'static str,
        first_line: usize,
        line: usize,
    },

    /// okvclient.ora has no SERVER line.
    #[error(
        "{}: no SERVER=host:port line; add the primary key server, e.g. SERVER=192.0.2.10:5696",
        path.display()
    )]
    OraMissingServer { path: PathBuf },

    /// A PEM file is not PEM at all (or its base64 is damaged).
    #[error(
        "{}: not a valid PEM file ({reason}); {what} must hold '-----BEGIN ...-----' blocks",
        path.display()
    )]
    NotPem {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },

    /// A PEM file holds the wrong kind of object (a certificate in key.pem, a key in cert.pem...).
    #[error(
        "{}: expected {expected} but found '{found}'; {fix}",
        path.display()
    )]
    WrongPemType {
        path: PathBuf,
        expected: &'static str,
        found: String,
        fix: &'static str,
    },

    /// A certificate could not be parsed or used.
    #[error("{}: certificate #{index} is invalid ({reason}); {fix}", path.display())]
    BadCertificate {
        path: PathBuf,
        index: usize,
        reason: String,
        fix: &'static str,
    },

    /// key.pem holds more than one private key.
    #[error(
        "{}: holds {count} private keys; keep only the key that belongs to cert.pem",
        path.display()
    )]
    SeveralKeys { path: PathBuf, count: usize },

    /// key.pem is encrypted and there is no ssl/password.txt.
    #[error(
        "{}: the private key is encrypted but {} does not exist; write the key password on one line in that file (mode 600) or decrypt the key",
        path.display(),
        password_path.display()
    )]
    PasswordMissing {
        path: PathBuf,
        password_path: PathBuf,
    },

    /// password.txt exists but holds nothing usable.
    #[error(
        "{}: password file is empty; write the key.pem password on its first line",
        path.display()
    )]
    PasswordEmpty { path: PathBuf },

    /// The password does not decrypt key.pem.
    #[error(
        "{}: wrong password: {} does not decrypt the key; check it with 'openssl pkey -in key.pem -passin file:password.txt -noout'",
        path.display(),
        password_path.display()
    )]
    WrongPassword {
        path: PathBuf,
        password_path: PathBuf,
    },

    /// key.pem is encrypted with a scheme we do not implement.
    #[error(
        "{}: unsupported key encryption '{scheme}'; re-encrypt with 'openssl pkey -in key.pem -aes256 -out key.pem.new' (AES-CBC or DES-EDE3-CBC, PBES2 or legacy PEM)",
        path.display()
    )]
    UnsupportedKeyEncryption { path: PathBuf, scheme: String },

    /// The FIPS build met something outside the FIPS module's approved services.
    #[error(
        "{}: {what} is not FIPS 140-3 approved and this is the FIPS build of keyring_okv; {fix}",
        path.display()
    )]
    NotFipsApproved {
        path: PathBuf,
        what: String,
        fix: &'static str,
    },

    /// The key decoded but is not usable (unsupported algorithm or curve, damaged DER).
    #[error(
        "{}: private key cannot be used ({reason}); use an RSA (2048 to 8192 bits), EC P-256, P-384 or P-521, or Ed25519 key",
        path.display()
    )]
    BadKey { path: PathBuf, reason: String },

    /// key.pem does not belong to the first certificate of cert.pem.
    #[error(
        "{}: private key does not match the certificate in {}; install the key.pem that was issued together with cert.pem",
        key_path.display(),
        cert_path.display()
    )]
    KeyCertMismatch {
        key_path: PathBuf,
        cert_path: PathBuf,
    },

    /// None of the CA certificates could be used as a trust anchor.
    #[error("{}: no usable CA certificate ({reason}); put the key server's CA certificate(s) in this file", path.display())]
    NoTrustAnchor { path: PathBuf, reason: String },

    /// Building the rustls configuration failed (should not happen once the files are valid).
    #[error("{}: cannot build the TLS client configuration: {reason}", path.display())]
    Tls { path: PathBuf, reason: String },
}
