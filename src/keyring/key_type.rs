//! The key types keyring_okv accepts, and their lengths.

use super::error::KeyringError;

/// Longest SECRET a keyring accepts (MySQL's general keyring limit since 8.0.18).
pub const MAX_SECRET_LEN: usize = 16384;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// A KMIP Symmetric Key with Cryptographic Algorithm AES.
    Aes,
    /// A KMIP Secret Data object.
    Secret,
}

impl KeyType {
    /// MySQL compares type names exactly ("AES", not "aes"), as keyring_file does.
    pub fn parse(name: &str) -> Result<Self, KeyringError> {
        match name {
            "AES" => Ok(KeyType::Aes),
            "SECRET" => Ok(KeyType::Secret),
            other => Err(KeyringError::UnsupportedType(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyType::Aes => "AES",
            KeyType::Secret => "SECRET",
        }
    }

    pub fn check_len(self, len: usize) -> Result<(), KeyringError> {
        let ok = match self {
            KeyType::Aes => matches!(len, 16 | 24 | 32),
            KeyType::Secret => (1..=MAX_SECRET_LEN).contains(&len),
        };
        if ok {
            Ok(())
        } else {
            Err(KeyringError::InvalidLength {
                key_type: self.name(),
                len,
                allowed: match self {
                    KeyType::Aes => "16, 24 or 32 bytes",
                    KeyType::Secret => "1 to 16384 bytes",
                },
            })
        }
    }
}
