//! The secret the sealed key cache is encrypted under: derived from the configuration
//! directory's private key (ssl/key.pem), so that nobody can recompute it without that key,
//! and the sealed file alone (a copy of a disk, a backup) opens nothing.
//!
//! It is derived from the key itself, not from the file's encoding: the same key written as
//! PKCS#1 or PKCS#8 (RSA), SEC1 or PKCS#8 (EC), with or without its public part, gives the same
//! root, so converting a key's format (as the security notes advise for legacy keys) keeps the
//! sealed file readable.

use aws_lc_rs::hkdf;
use rustls_pki_types::PrivateKeyDer;
use zeroize::Zeroizing;

/// HKDF-SHA-256 pseudo-random key extracted from the client private key. The key itself is not
/// kept; this is, wiped when dropped.
pub struct SealRoot(Zeroizing<[u8; 32]>);

const SALT: &[u8] = b"keyring_okv sealed key cache v1";

/// OIDs (DER content octets) of the PKCS#8 algorithms whose inner key is read.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// One DER element: (tag, content), and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The private scalar of a SEC1 ECPrivateKey (version, privateKey, [0] parameters, [1] public
/// key: only the scalar is the key).
fn ec_scalar(sec1: &[u8]) -> Option<&[u8]> {
    let (0x30, body, _) = element(sec1)? else {
        return None;
    };
    let (0x02, _, rest) = element(body)? else {
        return None;
    };
    let (0x04, scalar, _) = element(rest)? else {
        return None;
    };
    Some(scalar)
}

/// The key, independent of how key.pem encodes it: a label and the key's own bytes (an RSA
/// key's RSAPrivateKey, which DER makes unique; an EC key's scalar; an Ed25519 seed). A key this
/// does not understand is taken as it is encoded.
fn canonical(key: &PrivateKeyDer<'_>) -> Zeroizing<Vec<u8>> {
    let labelled = |label: &[u8], bytes: &[u8]| {
        let mut out = Zeroizing::new(Vec::with_capacity(label.len() + bytes.len()));
        out.extend_from_slice(label);
        out.extend_from_slice(bytes);
        out
    };
    let from_pkcs8 = |der: &[u8]| -> Option<Zeroizing<Vec<u8>>> {
        // PrivateKeyInfo: version, AlgorithmIdentifier { algorithm, parameters }, privateKey.
        let (0x30, body, _) = element(der)? else {
            return None;
        };
        let (0x02, _, rest) = element(body)? else {
            return None;
        };
        let (0x30, algorithm, rest) = element(rest)? else {
            return None;
        };
        let (0x06, oid, _) = element(algorithm)? else {
            return None;
        };
        let (0x04, inner, _) = element(rest)? else {
            return None;
        };
        match oid {
            RSA_ENCRYPTION | RSASSA_PSS => Some(labelled(b"rsa", inner)),
            EC_PUBLIC_KEY => Some(labelled(b"ec", ec_scalar(inner)?)),
            ED25519 => {
                let (0x04, seed, _) = element(inner)? else {
                    return None;
                };
                Some(labelled(b"ed25519", seed))
            }
            _ => None,
        }
    };
    let canonical = match key {
        PrivateKeyDer::Pkcs1(k) => Some(labelled(b"rsa", k.secret_pkcs1_der())),
        PrivateKeyDer::Sec1(k) => ec_scalar(k.secret_sec1_der()).map(|s| labelled(b"ec", s)),
        PrivateKeyDer::Pkcs8(k) => from_pkcs8(k.secret_pkcs8_der()),
        _ => None,
    };
    canonical.unwrap_or_else(|| labelled(b"der", key.secret_der()))
}

impl SealRoot {
    /// The root of the private key `key`, whatever its encoding.
    pub(crate) fn of_key(key: &PrivateKeyDer<'_>) -> SealRoot {
        Self::derive(&canonical(key))
    }

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
