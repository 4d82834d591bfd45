//! The secret the sealed key cache is encrypted under: derived from the configuration
//! directory's private key (ssl/key.pem), so that nobody can recompute it without that key,
//! and the sealed file alone (a copy of a disk, a backup) opens nothing.

use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

/// HKDF-SHA-256 pseudo-random key extracted from the client private key. The key itself is not
/// kept; this is, wiped when dropped.
pub struct SealRoot(Zeroizing<[u8; 32]>);

const SALT: &[u8] = b"keyring_okv sealed key cache v1";

impl SealRoot {
    pub(crate) fn derive(private_key_der: &[u8]) -> SealRoot {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(private_key_der);
        let mut out = Zeroizing::new([0u8; 32]);
        prk.expand(&[b"root"], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out[..]))
            .expect("HKDF-SHA-256 expands to 32 bytes");
        SealRoot(out)
    }

    /// The AES-256 key of one use (one product's file), bound to what `context` says.
    pub fn key_for(&self, context: &[u8]) -> Zeroizing<[u8; 32]> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(&self.0[..]);
        let mut out = Zeroizing::new([0u8; 32]);
        prk.expand(&[b"aes-256-gcm ", context], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out[..]))
            .expect("HKDF-SHA-256 expands to 32 bytes");
        out
    }

    /// For tests of the sealed file: a root from given bytes.
    pub fn from_bytes_for_tests(bytes: [u8; 32]) -> SealRoot {
        SealRoot(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for SealRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealRoot([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_keys_and_contexts_give_different_keys() {
        let a = SealRoot::derive(b"private key one");
        let b = SealRoot::derive(b"private key two");
        assert_ne!(*a.key_for(b"x"), *b.key_for(b"x"));
        assert_ne!(*a.key_for(b"x"), *a.key_for(b"y"));
        assert_eq!(
            *a.key_for(b"x"),
            *SealRoot::derive(b"private key one").key_for(b"x")
        );
        assert_eq!(format!("{a:?}"), "SealRoot([redacted])");
    }
}
