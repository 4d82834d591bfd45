//! The crypto provider every TLS connection uses: rustls on aws-lc-rs, whose signatures cover
//! what key managers hand out (EC P-256, P-384 and P-521, RSA 2048-8192 with PKCS#1 v1.5 or PSS,
//! Ed25519), plus the secp521r1 key exchange group.
//!
//! Why the extra group: in TLS 1.2 a server may only use an ECDSA certificate whose curve the
//! client lists in its supported groups (RFC 8422 §5.1), so a server with a P-521 certificate
//! (HashiCorp Vault's KMIP engine by default) refuses every client that does not list
//! secp521r1; rustls' aws-lc-rs provider has no such group of its own. It is listed last, so
//! it is never preferred and no TLS 1.3 key share is sent for it.
//!
//! In the FIPS build (feature `fips`) rustls' provider holds only the module's approved suites
//! and groups (no X25519, no ChaCha20-Poly1305); see [`super::fips`].

use std::sync::Arc;

use aws_lc_rs::agreement::{self, ECDH_P521, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::rand::SystemRandom;
use rustls::crypto::{ActiveKeyExchange, CryptoProvider, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved};

/// The provider of every client configuration (and of the test servers).
pub fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups.push(&SECP521R1);
    Arc::new(provider)
}

/// ECDHE over NIST P-521.
pub static SECP521R1: Secp521r1 = Secp521r1;

#[derive(Debug)]
pub struct Secp521r1;

impl SupportedKxGroup for Secp521r1 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let private = EphemeralPrivateKey::generate(&ECDH_P521, &SystemRandom::new())
            .map_err(|_| Error::FailedToGetRandomBytes)?;
        let public = private
            .compute_public_key()
            .map_err(|_| Error::General("secp521r1 public key".into()))?;
        Ok(Box::new(Active {
            private,
            public: public.as_ref().to_vec(),
        }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp521r1
    }

    /// ECDH over P-521 is an approved service of the module, which does it in the FIPS build.
    fn fips(&self) -> bool {
        aws_lc_rs::try_fips_mode().is_ok()
    }
}

struct Active {
    private: EphemeralPrivateKey,
    public: Vec<u8>,
}

impl ActiveKeyExchange for Active {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        // aws-lc checks that the peer's point is on the curve.
        let peer = UnparsedPublicKey::new(&ECDH_P521, peer_pub_key);
        agreement::agree_ephemeral(
            self.private,
            peer,
            Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare),
            |secret| Ok(SharedSecret::from(secret)),
        )
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp521r1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_ends_agree_and_a_bad_point_is_refused() {
        let a = SECP521R1.start().unwrap();
        let b = SECP521R1.start().unwrap();
        let b_public = b.pub_key().to_vec();
        let ab = a.complete(&b_public).unwrap();
        let a2 = SECP521R1.start().unwrap();
        let a2_public = a2.pub_key().to_vec();
        let ba = b.complete(&a2_public).unwrap();
        assert_eq!(ab.secret_bytes().len(), 66);
        assert_ne!(ab.secret_bytes(), ba.secret_bytes());
        let mut bad = a2_public.clone();
        bad[10] ^= 1;
        assert!(SECP521R1.start().unwrap().complete(&bad).is_err());
        assert!(
            provider()
                .kx_groups
                .iter()
                .any(|g| g.name() == NamedGroup::secp521r1)
        );
        assert_ne!(provider().kx_groups[0].name(), NamedGroup::secp521r1);
    }
}
