//! Errors of the sealed key cache. Each one names the file and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    #[error("sealed key cache {path}: refused: {why}; {fix}")]
    Permissions {
        path: PathBuf,
        why: String,
        fix: String,
    },
    #[error(
        "sealed key cache {path}: cannot {what} it: {source}; the server's account must be able to write its directory (set with the sealed_cache_dir setting, by default /var/lib/mysql-keyring), or turn the sealed cache off"
    )]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "sealed key cache {path}: damaged ({why}); it is not used: remove it (keyring-okv sealed-cache remove) and it is written again while a KMIP server answers"
    )]
    Damaged { path: PathBuf, why: String },
    #[error(
        "sealed key cache {path}: it does not open with this configuration directory's ssl/key.pem (the key was replaced, or the file was changed); it is not used, and is written anew under the current key while a KMIP server answers"
    )]
    WrongKey { path: PathBuf },
    #[error(
        "sealed key cache {path}: it was written for {was}, and this configuration is {now}; it is not used, and is written anew for this configuration while a KMIP server answers"
    )]
    OtherConfiguration {
        path: PathBuf,
        was: String,
        now: String,
    },
    #[error(
        "sealed key cache {path}: another process kept it locked for {waited} s, so this write was skipped (the next one tries again); if no other server or keyring-okv uses this directory, remove the stale lock file beside it"
    )]
    Locked { path: PathBuf, waited: u64 },
    #[error(
        "no KMIP server answers ({cause}), and the sealed key cache {path} cannot stand in for key '{key_id}': {why}"
    )]
    CannotStandIn {
        path: PathBuf,
        key_id: String,
        cause: String,
        why: String,
    },
    #[error("the system random generator failed; the sealed key cache was not written")]
    Random,
    #[error(
        "no KMIP server answers, and the sealed key cache {path} cannot stand in: key '{key_id}' was last confirmed by a KMIP server {age}, longer than {setting}={hours} allows; bring a KMIP server back (or raise {setting} if older keys are acceptable)"
    )]
    TooOld {
        path: PathBuf,
        key_id: String,
        age: String,
        setting: &'static str,
        hours: u64,
    },
}
