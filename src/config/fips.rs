//! The FIPS 140-3 build (cargo feature `fips`, `bash scripts/fips.sh build`): rustls in FIPS
//! mode on the FIPS module of aws-lc-rs (aws-lc-fips-sys), which then also does the core's
//! random numbers (key material), digests and ciphers.
//!
//! In that build a configuration that would need an algorithm outside the module's approved
//! services is refused with one line naming the file and what to use instead:
//! - `key.pem` encrypted with anything but PBES2 with PBKDF2 (HMAC-SHA-1, -256, -384 or -512)
//!   and AES-CBC: the legacy PEM encryption derives its key with MD5, DES-EDE3 and scrypt are
//!   not approved, and only the module may decrypt the key;
//! - a TLS configuration that rustls itself does not call FIPS (a safety net: the provider of
//!   this build has only approved suites and groups, and requires the extended master secret).
//!
//! RSA keys under 2048 bits are refused by aws-lc-rs in both builds. The default build reports
//! FIPS mode off and refuses none of the above.

use std::path::Path;

use aws_lc_rs::cipher::{AES_128, AES_192, AES_256, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::pbkdf2;
use pkcs8::pkcs5::pbes2;
use zeroize::Zeroizing;

use super::ConfigError;

/// Whether this library was built with the `fips` feature.
pub const BUILD: bool = cfg!(feature = "fips");

/// What the status rows and `keyring-okv check` show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FipsMode {
    /// The FIPS module is in use and in FIPS mode (its power-on self tests passed).
    pub on: bool,
    /// The module and its version, e.g. "AWS-LC FIPS 4.2.0"; empty when off.
    pub module: String,
}

/// The mode of this build.
pub fn mode() -> FipsMode {
    if BUILD && aws_lc_rs::try_fips_mode().is_ok() {
        FipsMode {
            on: true,
            module: module_name(),
        }
    } else {
        FipsMode {
            on: false,
            module: String::new(),
        }
    }
}

impl FipsMode {
    /// "ON" or "OFF", as the other ON/OFF status values.
    pub fn on_off(&self) -> &'static str {
        if self.on { "ON" } else { "OFF" }
    }

    /// One line for `keyring-okv check`.
    pub fn describe(&self) -> String {
        if self.on {
            format!("on ({} module, rustls in FIPS mode)", self.module)
        } else if BUILD {
            "OFF: the FIPS module is not in FIPS mode".to_string()
        } else {
            "off (this build does not use a FIPS 140-3 module; build with --features fips)"
                .to_string()
        }
    }
}

#[cfg(feature = "fips")]
fn module_name() -> String {
    let version = aws_lc_fips_sys::AWSLC_VERSION_NUMBER_STRING;
    let version = version.strip_suffix(b"\0").unwrap_or(version);
    format!("AWS-LC FIPS {}", String::from_utf8_lossy(version))
}

#[cfg(not(feature = "fips"))]
fn module_name() -> String {
    String::new()
}

/// The refusal of something the FIPS build may not use.
pub(crate) fn not_approved(path: &Path, what: String, fix: &'static str) -> ConfigError {
    ConfigError::NotFipsApproved {
        path: path.to_path_buf(),
        what,
        fix,
    }
}

/// What to tell a DBA whose key.pem is encrypted in a way the FIPS build cannot decrypt.
pub(crate) const REENCRYPT_KEY: &str = "re-encrypt it as PKCS#8 with PBKDF2 and AES (openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmac-sha256 -in key.pem -out key-new.pem), then replace key.pem";

/// The outcome of [`decrypt_pbes2`].
pub(crate) enum Pbes2 {
    /// The DER of the decrypted PrivateKeyInfo (not yet checked to be one).
    Plain(Zeroizing<Vec<u8>>),
    /// Padding wrong: a wrong password (or a damaged file).
    WrongPassword,
    /// A scheme this function does not do (the default build decrypts it otherwise; the FIPS
    /// build refuses it), named for the DBA.
    Other(String),
}

/// Decrypts PBES2 with PBKDF2 (HMAC-SHA-1/256/384/512) and AES-128/192/256-CBC through
/// aws-lc-rs, so that in the FIPS build the module does it. Both builds use it for these
/// schemes, so the code the FIPS build relies on is the code every test runs.
pub(crate) fn decrypt_pbes2(
    params: &pbes2::Parameters<'_>,
    password: &[u8],
    ciphertext: &[u8],
) -> Pbes2 {
    let pbes2::Kdf::Pbkdf2(kdf) = &params.kdf else {
        return Pbes2::Other("PBES2 with scrypt".into());
    };
    let prf = match kdf.prf {
        pbes2::Pbkdf2Prf::HmacWithSha1 => pbkdf2::PBKDF2_HMAC_SHA1,
        pbes2::Pbkdf2Prf::HmacWithSha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        pbes2::Pbkdf2Prf::HmacWithSha384 => pbkdf2::PBKDF2_HMAC_SHA384,
        pbes2::Pbkdf2Prf::HmacWithSha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        other => return Pbes2::Other(format!("PBKDF2 with {other:?}")),
    };
    let (cipher, key_len, iv) = match &params.encryption {
        pbes2::EncryptionScheme::Aes128Cbc { iv } => (&AES_128, 16, **iv),
        pbes2::EncryptionScheme::Aes192Cbc { iv } => (&AES_192, 24, **iv),
        pbes2::EncryptionScheme::Aes256Cbc { iv } => (&AES_256, 32, **iv),
        other => return Pbes2::Other(format!("PBES2 with cipher {}", other.oid())),
    };
    if kdf.key_length.is_some_and(|n| usize::from(n) != key_len) {
        return Pbes2::Other("PBES2 whose key length does not match its cipher".into());
    }
    let Some(iterations) = std::num::NonZeroU32::new(kdf.iteration_count) else {
        return Pbes2::Other("PBKDF2 with 0 iterations".into());
    };
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    pbkdf2::derive(prf, iterations, kdf.salt, password, &mut key);
    let Ok(unbound) = UnboundCipherKey::new(cipher, &key) else {
        return Pbes2::Other("an AES key the module refuses".into());
    };
    let Ok(decrypting) = PaddedBlockDecryptingKey::cbc_pkcs7(unbound) else {
        return Pbes2::Other("AES-CBC refused by the module".into());
    };
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let context = aws_lc_rs::cipher::DecryptionContext::Iv128(iv.into());
    match decrypting.decrypt(&mut buffer, context) {
        Ok(plain) => Pbes2::Plain(Zeroizing::new(plain.to_vec())),
        Err(_) => Pbes2::WrongPassword,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_build_says_off_and_the_fips_build_on() {
        let m = mode();
        assert_eq!(m.on, BUILD);
        if BUILD {
            assert!(m.module.starts_with("AWS-LC FIPS "), "{}", m.module);
            assert_eq!(m.on_off(), "ON");
        } else {
            assert_eq!(m.on_off(), "OFF");
            assert!(m.module.is_empty());
            assert!(m.describe().contains("--features fips"));
        }
    }
}
