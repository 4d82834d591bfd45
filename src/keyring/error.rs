//! Errors of the keyring layer: what a keyring call returns to the plugin boundary.

use crate::connector::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("invalid key id: {0}")]
    InvalidKeyId(&'static str),
    #[error("invalid key owner: {0}")]
    InvalidOwner(&'static str),
    #[error(
        "key type '{0}' is not supported by keyring_okv: use AES (16, 24 or 32 bytes) or SECRET (1 to 16384 bytes)"
    )]
    UnsupportedType(String),
    #[error("a {key_type} key of {len} bytes is not supported: {key_type} keys are {allowed}")]
    InvalidLength {
        key_type: &'static str,
        len: usize,
        allowed: &'static str,
    },
    #[error("key '{key_id}': the system random generator failed; the SECRET was not generated")]
    Random { key_id: String },
    #[error(
        "key '{key_id}' of owner '{owner}' already exists on the KMIP server; it was left unchanged"
    )]
    AlreadyExists { key_id: String, owner: String },
    #[error("key '{key_id}' of owner '{owner}' does not exist on the KMIP server")]
    NotFound { key_id: String, owner: String },
    #[error(
        "KMIP object {uid} for key '{key_id}' is a {found}, not an AES key or secret data; remove or rename it on the KMIP server"
    )]
    UnexpectedObject {
        key_id: String,
        uid: String,
        found: String,
    },
    #[error(
        "key '{key_id}' of owner '{owner}': {} usable KMIP objects carry its name ({}); keyring_okv will not guess which one is the key. Find out which one mysqld has been using, then revoke and destroy the other on the KMIP server (or rename it)",
        .uids.len(), .uids.join(" and ")
    )]
    Duplicate {
        key_id: String,
        owner: String,
        uids: Vec<String>,
    },
    #[error(
        "key '{key_id}': KMIP object {uid} was not handed to mysqld: {why}; check the object on the KMIP server"
    )]
    BadKey {
        key_id: String,
        uid: String,
        why: String,
    },
    #[error(
        "key '{key_id}': the request that makes it was sent to KMIP server {sent_to}, whose answer was lost, and that server cannot be asked now whether it made the key ({now}); check on {sent_to} whether an object named for the key exists before trying again"
    )]
    OutcomeUnknown {
        key_id: String,
        sent_to: String,
        now: String,
    },
    #[error("key '{key_id}': {why}")]
    Race { key_id: String, why: String },
    #[error("the key list is incomplete, so none is given: {0}")]
    ListIncomplete(String),
    #[error("key '{key_id}': {source}")]
    Backend { key_id: String, source: ClientError },
    #[error("{0}")]
    Client(#[from] ClientError),
}

impl KeyringError {
    /// A refusal caused by the caller's request (bad id, type or length, a key that exists or
    /// does not), as opposed to a failure of the configuration, network or KMIP server.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            KeyringError::InvalidKeyId(_)
                | KeyringError::InvalidOwner(_)
                | KeyringError::UnsupportedType(_)
                | KeyringError::InvalidLength { .. }
                | KeyringError::AlreadyExists { .. }
                | KeyringError::NotFound { .. }
        )
    }

    /// The call failed because no KMIP server could be reached.
    pub fn is_unreachable(&self) -> bool {
        match self {
            KeyringError::Client(c) | KeyringError::Backend { source: c, .. } => c.is_unreachable(),
            _ => false,
        }
    }

    /// The KMIP server definitely says the key is gone: no such key, no usable object under
    /// its name (not Active, another kind of object, not a valid key), or several objects
    /// under it. Only then may a copy kept elsewhere (the sealed key cache) be forgotten; every
    /// other failure is treated like an unreachable server. The KMIP-level rule is
    /// [`ClientError::is_definitely_gone`].
    pub fn is_definitely_gone(&self) -> bool {
        match self {
            KeyringError::NotFound { .. }
            | KeyringError::Duplicate { .. }
            | KeyringError::BadKey { .. }
            | KeyringError::UnexpectedObject { .. } => true,
            KeyringError::Client(c) | KeyringError::Backend { source: c, .. } => {
                c.is_definitely_gone()
            }
            _ => false,
        }
    }

    pub(crate) fn backend(key_id: &str) -> impl FnOnce(ClientError) -> KeyringError + '_ {
        move |source| KeyringError::Backend {
            key_id: key_id.to_string(),
            source,
        }
    }
}
