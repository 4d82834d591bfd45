//! The two settings every product gives the guard, under its own naming conventions:
//! `key_state_poll_seconds` and `key_state_action`.

use std::time::Duration;

/// Default `key_state_poll_seconds`.
pub const DEFAULT_POLL_SECONDS: u64 = 300;

/// What a revoked key in use makes the guard do (`key_state_action`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    /// One ERROR line per revoked key, with the SQL to run next.
    #[default]
    Warn,
    /// As `Warn`, and the key is dropped from every cache of ours and never served again by
    /// this process.
    Refuse,
    /// MariaDB only: as `Warn`, and a new version of the key id is made at once (when the
    /// revoked version is the latest), so that InnoDB's encryption threads re-encrypt the pages.
    Rotate,
}

impl Action {
    /// The setting's values, in the order of the products' enumerations.
    pub const NAMES: [&'static str; 3] = ["warn", "refuse", "rotate"];

    pub fn parse(text: &str) -> Option<Action> {
        match text.trim().to_ascii_lowercase().as_str() {
            "warn" => Some(Action::Warn),
            "refuse" => Some(Action::Refuse),
            "rotate" => Some(Action::Rotate),
            _ => None,
        }
    }

    /// The value at `index` of [`Action::NAMES`] (a system variable's enumeration).
    pub fn from_index(index: u64) -> Option<Action> {
        match index {
            0 => Some(Action::Warn),
            1 => Some(Action::Refuse),
            2 => Some(Action::Rotate),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Warn => "warn",
            Action::Refuse => "refuse",
            Action::Rotate => "rotate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Time between polls; zero turns the guard off.
    pub poll: Duration,
    pub action: Action,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll: Duration::from_secs(DEFAULT_POLL_SECONDS),
            action: Action::Warn,
        }
    }
}

impl Settings {
    pub fn is_on(&self) -> bool {
        !self.poll.is_zero()
    }
}
