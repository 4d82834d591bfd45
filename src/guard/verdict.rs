//! What one answer of the KMIP server says about a key in use: still good, revoked (the server
//! answered, and the key is no longer the key), or nothing (the server could not be asked).
//! An outage must never pass for a revocation, so only an answer about the object itself counts.

use crate::connector::ClientError;
use crate::kmip::{self, KmipError, ops, tags::state};

/// Why a key in use is no longer the key, as the server said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The object is in this State (Deactivated, Compromised, Destroyed, Destroyed Compromised).
    State(u32),
    /// The server answered that the object does not exist (Item Not Found or a newer word).
    NotFound,
    /// The key's name is now held by another object (`None`: the object lost the name and
    /// no Active object holds it).
    Replaced(Option<String>),
}

impl Revocation {
    /// The state as written in the log line and the status.
    pub fn describe(&self) -> String {
        match self {
            Revocation::State(s) => kmip::tags::name_of_state(*s).to_string(),
            Revocation::NotFound => "not found on the KMIP server".into(),
            Revocation::Replaced(Some(other)) => format!("replaced by KMIP object {other}"),
            Revocation::Replaced(None) => "no longer holds its name".into(),
        }
    }
}

/// The verdict on one key after one poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Active, and still the object its name designates.
    InForce,
    Revoked(Revocation),
    /// The server could not say (why, for the outage line).
    Unknown(String),
}

/// A state that is not the key any more.
pub fn is_revoked_state(s: u32) -> bool {
    matches!(
        s,
        state::DEACTIVATED | state::COMPROMISED | state::DESTROYED | state::DESTROYED_COMPROMISED
    )
}

/// The verdict from the answers to the two batch items asked about a key: Get Attributes
/// (State and Name) of `uid`, and Locate of Active objects named `name`. `server` names the
/// server that answered, for the error rules of `ClientError`.
pub fn judge(
    server: &str,
    uid: &str,
    name: &str,
    attributes: Option<&Result<kmip::Ttlv, KmipError>>,
    located: Option<&Result<kmip::Ttlv, KmipError>>,
) -> Verdict {
    let payload = match attributes {
        None => return Verdict::Unknown(format!("KMIP server {server} left the question out")),
        Some(Err(e)) => {
            let e = ClientError::Server {
                server: server.to_string(),
                source: e.clone(),
            };
            // The one rule of every layer for "the object is not there".
            if e.is_definitely_gone() {
                return Verdict::Revoked(Revocation::NotFound);
            }
            return Verdict::Unknown(e.to_string());
        }
        Some(Ok(p)) => p,
    };
    let attrs = match ops::parse_get_attributes(payload) {
        Ok(a) => a,
        Err(e) => return Verdict::Unknown(format!("KMIP server {server}: {e}")),
    };
    let Some(s) = ops::attr_state(&attrs) else {
        return Verdict::Unknown(format!(
            "KMIP server {server} did not say the State of object {uid}"
        ));
    };
    if is_revoked_state(s) {
        return Verdict::Revoked(Revocation::State(s));
    }
    if s != state::ACTIVE {
        // Pre-Active (never served as a key) or a value unknown to us: nothing to act on.
        return Verdict::Unknown(format!(
            "KMIP server {server}: object {uid} is {}",
            kmip::tags::name_of_state(s)
        ));
    }
    let names = ops::attr_names(&attrs);
    let others: Option<Vec<String>> = match located {
        Some(Ok(p)) => ops::parse_locate(p).ok(),
        _ => None,
    };
    if let Some(others) = &others
        && !others.is_empty()
        && !others.iter().any(|o| o == uid)
    {
        return Verdict::Revoked(Revocation::Replaced(Some(others[0].clone())));
    }
    // A server that sends no Name at all says nothing about it.
    if !names.is_empty() && !names.contains(&name) {
        let holder = others.and_then(|o| o.into_iter().next());
        return Verdict::Revoked(Revocation::Replaced(holder));
    }
    Verdict::InForce
}
