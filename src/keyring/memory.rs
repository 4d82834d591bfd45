//! What this process remembers of names: object name -> unique identifier, tied to the server
//! that said so. An identifier means nothing on another server (a standby may hold other
//! objects under the same identifiers), so a remembered identifier is used only while the same
//! server answers; otherwise the name is looked up again.

use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Remembered {
    pub uid: String,
    pub server: String,
}

#[derive(Default)]
pub(super) struct Memory {
    names: HashMap<String, Remembered>,
    /// Bumped by every forget: a lookup that started before a remove must not put back the
    /// identifier the remove just destroyed.
    epoch: u64,
}

impl Memory {
    pub fn get(&self, name: &str) -> Option<&Remembered> {
        self.names.get(name)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Remembers `uid` for `name` unless a forget happened since `epoch` was read.
    pub fn remember(&mut self, name: &str, uid: &str, server: &str, epoch: u64) {
        if self.epoch == epoch {
            self.names.insert(
                name.to_string(),
                Remembered {
                    uid: uid.to_string(),
                    server: server.to_string(),
                },
            );
        }
    }

    pub fn forget(&mut self, name: &str) {
        self.names.remove(name);
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_older_than_a_forget_is_not_remembered() {
        let mut m = Memory::default();
        let seen = m.epoch();
        m.forget("k");
        m.remember("k", "1", "s", seen);
        assert!(m.get("k").is_none());
        let seen = m.epoch();
        m.remember("k", "2", "s", seen);
        assert_eq!(m.get("k").unwrap().uid, "2");
    }
}
