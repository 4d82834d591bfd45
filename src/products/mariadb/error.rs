//! Errors of the MariaDB key store. Each names the key, the KMIP object name and what to do.

use crate::connector::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error(
        "key {key_id} does not exist on the KMIP server (no object named {name}); create it with `keyring-okv --conf-dir <conf_dir> mariadb create-key {key_id}`"
    )]
    Missing { key_id: u32, name: String },
    #[error("KMIP request for {name} failed: {source}")]
    Backend { name: String, source: ClientError },
    #[error("the KMIP object {uid} named {name} is not usable as a MariaDB key: {why}")]
    Unusable {
        uid: String,
        name: String,
        why: String,
    },
    #[error(
        "key_namespace '{0}' is invalid: use 1 to 128 printable ASCII characters without '/' or spaces"
    )]
    Namespace(String),
    #[error("key {key_id} already exists (latest version {version}); rotate it instead")]
    Exists { key_id: u32, version: u32 },
    #[error(
        "{} Active KMIP objects carry the name {name} ({}); kmip_key_management will not guess which one is the key. Find out which one the servers have been using, then revoke and destroy the other on the KMIP server",
        .uids.len(), .uids.join(" and ")
    )]
    Duplicate { name: String, uids: Vec<String> },
    #[error("{name}: {why}")]
    Race { name: String, why: String },
    #[error(
        "the KMIP server {server} already has an object named {name} ({uid}), so the key file's key was not imported under that name; check with `keyring-okv mariadb list` which key the data of that id is encrypted with"
    )]
    Taken {
        name: String,
        uid: String,
        server: String,
    },
    #[error(
        "key ids {ids} of the key file already have versions in namespace {namespace} on the KMIP server (other than one version 1 holding the file's key); nothing was imported. Import into a namespace of its own, or leave those ids out of the key file"
    )]
    ImportRefused { namespace: String, ids: String },
    #[error(
        "after importing key ids {done} of the key file, key id {key_id} failed: {why}; run the import again once fixed (the ids imported with the same bytes are skipped)"
    )]
    ImportPartial {
        done: String,
        key_id: u32,
        why: String,
    },
    #[error("key {key_id} has reached the highest version number")]
    VersionsExhausted { key_id: u32 },
    #[error("the key list of namespace {namespace} is incomplete, so none is given: {why}")]
    ListIncomplete { namespace: String, why: String },
    #[error("{0}")]
    ReadOnly(String),
}

impl KeyStoreError {
    /// No KMIP server answered at all (see `TransportError::is_unreachable`). Whether a
    /// cached copy may stand in is decided by `is_definitely_gone` instead: any failure but a
    /// definite answer that the version is gone leaves the cached copies in use.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, KeyStoreError::Backend { source, .. } if source.is_unreachable())
    }

    /// Whether the failure says nothing about the key itself: the KMIP server could not be
    /// reached, or not asked in time or on one server (see `is_unreachable` for the narrower
    /// "no server answered at all").
    pub fn is_unavailable(&self) -> bool {
        match self {
            KeyStoreError::Backend { source, .. } => matches!(
                source,
                ClientError::Transport(_) | ClientError::Ambiguous(_) | ClientError::Moved { .. }
            ),
            // Only from a look-up that failed over between servers or ran out of time.
            KeyStoreError::Race { .. } => true,
            _ => false,
        }
    }

    /// A server that keeps names unique refused to make an object under the version's name:
    /// another client made one first.
    pub fn is_name_in_use(&self) -> bool {
        matches!(self, KeyStoreError::Backend {
            source: ClientError::Server { source, .. },
            ..
        } if source.is_name_in_use())
    }

    /// The KMIP server definitely says the version is gone: no Active object under its name
    /// (none at all, or not Active), the object under it is not a usable key (the name now
    /// belongs to another object), several Active objects carry it, or the object was not
    /// found when read. Only then is a version forgotten (in memory and in the sealed key
    /// cache); every other failure (General Failure, Permission Denied, ...) is treated like
    /// an unreachable server. The KMIP-level rule is [`ClientError::is_definitely_gone`].
    pub fn is_definitely_gone(&self) -> bool {
        match self {
            KeyStoreError::Missing { .. }
            | KeyStoreError::Unusable { .. }
            | KeyStoreError::Duplicate { .. } => true,
            KeyStoreError::Backend { source, .. } => source.is_definitely_gone(),
            _ => false,
        }
    }

    /// Whether the sealed key cache may stand in for a version this failure left unread: no
    /// server answered, or one answered with an error that says nothing about the version
    /// (General Failure, Permission Denied, a look-up that failed over or ran out of time).
    /// Never on a definite answer that it is gone, and never when the server refused this
    /// client (a TLS alert, a close right after the handshake): the cache obeys a revocation.
    pub fn sealed_may_stand_in(&self) -> bool {
        match self {
            KeyStoreError::Backend { source, .. } => match source {
                ClientError::Transport(t) | ClientError::Ambiguous(t) => t.is_unreachable(),
                ClientError::Server { .. } => !source.is_definitely_gone(),
                ClientError::Moved { .. } => true,
            },
            KeyStoreError::Race { .. } => true,
            _ => false,
        }
    }

    pub(super) fn backend(name: &str) -> impl FnOnce(ClientError) -> KeyStoreError + '_ {
        move |source| KeyStoreError::Backend {
            name: name.to_string(),
            source,
        }
    }
}
