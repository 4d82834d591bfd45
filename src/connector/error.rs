//! Errors of the transport and client layer.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::kmip::{KmipError, TtlvError};

/// The step of a connection or request that failed; named in messages so a DBA can tell a
/// firewall (connect) from a certificate problem (handshake) from a stuck server (read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Resolve,
    Connect,
    Handshake,
    Write,
    Read,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Resolve => "host name lookup",
            Stage::Connect => "TCP connect",
            Stage::Handshake => "TLS handshake",
            Stage::Write => "sending the request",
            Stage::Read => "reading the response",
        })
    }
}

/// A failure to reach a server or to exchange one message with it. Every variant names the
/// server. All of them are worth trying another server for.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "KMIP server {server}: connection refused; check that the server runs and listens on that port"
    )]
    Refused { server: String },
    #[error("KMIP server {server}: no answer within {} s during {stage}; check that the server is up and that nothing drops the traffic", timeout.as_secs_f64())]
    Timeout {
        server: String,
        stage: Stage,
        timeout: Duration,
    },
    #[error("KMIP server {server}: {stage} failed: {source}")]
    Io {
        server: String,
        stage: Stage,
        source: io::Error,
    },
    #[error("KMIP server {server}: TLS handshake failed: {detail}{hint}")]
    Tls {
        server: String,
        detail: String,
        hint: &'static str,
    },
    #[error("KMIP server {server}: the server closed the connection during {stage}")]
    Closed { server: String, stage: Stage },
    /// A new connection closed or reset after its TLS handshake completed and before any
    /// answer: what a KMS or TLS proxy that refuses the client certificate does with TLS 1.3
    /// (the client's certificate is checked after the client considers the handshake done).
    #[error(
        "KMIP server {server}: the server closed the connection right after the TLS handshake without answering ({stage}): it may refuse this client certificate, ssl/cert.pem (revoked or unknown); check the server's log"
    )]
    ClosedAfterHandshake { server: String, stage: Stage },
    #[error(
        "KMIP server {server}: the response is not valid KMIP ({source}); is this port a KMIP server?"
    )]
    Garbage { server: String, source: TtlvError },
    #[error("no KMIP server could be reached: {}", summarize(.0))]
    AllFailed(Vec<TransportError>),
    /// A connection round failed moments ago; callers queued behind it fail at once instead of
    /// each waiting for the servers' timeouts again.
    #[error("{last} (the last attempt was {} s ago; the next one starts after {} s)", ago.as_secs_f64().round(), retry_after.as_secs_f64())]
    RecentlyFailed {
        last: String,
        /// Whether that failure was [`TransportError::is_unreachable`].
        unreachable: bool,
        ago: std::time::Duration,
        retry_after: std::time::Duration,
    },
    /// The keyring call's deadline passed while it waited for the shared connection, which an
    /// earlier request still held (or before it could start).
    #[error(
        "no KMIP server answered within the keyring call's deadline of {} s (the connect timeout + the request timeout): the connection was busy with an earlier request that is not answered yet, or earlier requests of the same call used the time; check that the KMIP server is up and not overloaded",
        deadline.as_secs_f64()
    )]
    Busy { deadline: std::time::Duration },
    /// The keyring is being unloaded or reconfigured away; the call was abandoned.
    #[error("keyring_okv is shutting down; the request was abandoned")]
    ShuttingDown,
}

fn summarize(errors: &[TransportError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

impl TransportError {
    /// No server answered at all: nothing listened, the network dropped the traffic or the
    /// connection broke or was closed. A server that answered and refused us (a TLS alert, say
    /// for a revoked client certificate), or sent something that is not KMIP, did answer: that
    /// is not this.
    pub fn is_unreachable(&self) -> bool {
        match self {
            // A close without a TLS alert, even during the handshake, is what a load balancer
            // with no server behind it does; a server refusing our certificate sends an alert.
            TransportError::Refused { .. }
            | TransportError::Timeout { .. }
            | TransportError::Busy { .. }
            | TransportError::Closed { .. } => true,
            TransportError::Io { source, .. } => source
                .get_ref()
                .is_none_or(|inner| !inner.is::<rustls::Error>()),
            TransportError::AllFailed(all) => {
                !all.is_empty() && all.iter().all(TransportError::is_unreachable)
            }
            TransportError::RecentlyFailed { unreachable, .. } => *unreachable,
            // The server answered the handshake and then refused to go on: a refusal, not an
            // outage, so the sealed key cache does not stand in.
            TransportError::Tls { .. }
            | TransportError::ClosedAfterHandshake { .. }
            | TransportError::Garbage { .. }
            | TransportError::ShuttingDown => false,
        }
    }

    /// The server a request was sent to when the connection failed with it in flight (None
    /// when nothing reached a server: no connection, the deadline, shutting down).
    pub fn sent_to(&self) -> Option<&str> {
        match self {
            TransportError::Refused { server }
            | TransportError::Timeout { server, .. }
            | TransportError::Io { server, .. }
            | TransportError::Tls { server, .. }
            | TransportError::Closed { server, .. }
            | TransportError::ClosedAfterHandshake { server, .. }
            | TransportError::Garbage { server, .. } => Some(server),
            _ => None,
        }
    }

    /// Builds the error for a failed TLS handshake, with a hint for the cases DBAs meet.
    pub(crate) fn from_handshake(server: String, err: io::Error) -> Self {
        let rustls_err = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        match rustls_err {
            Some(e) => TransportError::Tls {
                server,
                detail: e.to_string(),
                hint: tls_hint(&e),
            },
            None if err.kind() == io::ErrorKind::UnexpectedEof => TransportError::Closed {
                server,
                stage: Stage::Handshake,
            },
            None => TransportError::Io {
                server,
                stage: Stage::Handshake,
                source: err,
            },
        }
    }
}

fn tls_hint(err: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match err {
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "; the server certificate does not name the host or IP address in okvclient.ora: add it to the certificate's subjectAltName, or set KEYRING_OKV_VERIFY_SERVER_NAME=NO in okvclient.ora (the chain is still verified against ssl/CA.pem)"
        }
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "; the server certificate is not signed by a CA in ssl/CA.pem: put the KMIP server's CA certificate in ssl/CA.pem"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "; the server certificate has expired: renew it on the KMIP server"
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "; the server certificate is not valid yet: check the clocks of both machines"
        }
        E::InvalidCertificate(_) => {
            "; the server certificate was rejected: check that ssl/CA.pem holds the CA that signed it and that the certificate is a valid server certificate (extendedKeyUsage serverAuth)"
        }
        E::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity | A::ProtocolVersion) => {
            "; no common protocol or cipher suite: keyring_okv needs TLS 1.3, or TLS 1.2 with ECDHE and AES-GCM or ChaCha20 (servers that offer only CBC suites or RSA key exchange, e.g. PyKMIP with an RSA certificate, cannot be used; give the server an ECDSA certificate)"
        }
        E::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::UnsupportedCertificate
            | A::AccessDenied,
        ) => {
            "; the server rejected our client certificate (ssl/cert.pem): check that it is enrolled with the KMIP server, signed by the CA it trusts, unexpired, and has extendedKeyUsage clientAuth"
        }
        _ => "",
    }
}

/// A failure of one KMIP request as seen by the keyring layer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server answered, and refused or failed the operation.
    #[error("KMIP server {server}: {source}")]
    Server { server: String, source: KmipError },
    /// The request may or may not have been carried out: the connection failed after it was
    /// sent. Never repeated blindly; the keyring layer looks before acting again.
    #[error("{0} (the request may or may not have been carried out)")]
    Ambiguous(TransportError),
    /// A request about an object of one server found the connection on another (identifiers
    /// differ between servers, and may name another object there); it was not sent.
    #[error(
        "the connection moved from KMIP server {expected} to {now}; the request about an object of {expected} was not sent to {now}, try again"
    )]
    Moved { expected: String, now: String },
}

impl ClientError {
    /// No KMIP server could be reached (see [`TransportError::is_unreachable`]).
    pub fn is_unreachable(&self) -> bool {
        match self {
            ClientError::Transport(t) | ClientError::Ambiguous(t) => t.is_unreachable(),
            ClientError::Server { .. } | ClientError::Moved { .. } => false,
        }
    }

    pub fn is_item_not_found(&self) -> bool {
        matches!(self, ClientError::Server { source, .. } if source.is_item_not_found())
    }

    /// The server refused a second object under a Name in use (servers that keep names
    /// unique; the answer `unique_names` probes for).
    pub fn is_name_in_use(&self) -> bool {
        matches!(self, ClientError::Server { source, .. } if source.is_name_in_use())
    }

    /// The server answered that the object asked about is not there (Item Not Found, or a
    /// newer version's words for it). This is the one KMIP-level rule for "definitely gone"
    /// that every layer's `is_definitely_gone` builds on: any other error answer (General
    /// Failure during a fail-over, Permission Denied during a policy change, ...) says nothing
    /// about the key and is treated like an unreachable server.
    pub fn is_definitely_gone(&self) -> bool {
        matches!(self, ClientError::Server { source, .. } if source.is_absent())
    }
}
