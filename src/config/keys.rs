//! Reading `ssl/key.pem` (plain or encrypted) and the certificate files.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use zeroize::Zeroizing;

use super::ConfigError;

/// The key password read from `ssl/password.txt`. Zeroized on drop, never printed.
pub(crate) struct Password(Zeroizing<Vec<u8>>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    /// First line of the file, trailing CR/LF removed.
    pub(crate) fn from_file_bytes(
        path: &Path,
        bytes: Zeroizing<Vec<u8>>,
    ) -> Result<Self, ConfigError> {
        let mut line: &[u8] = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
        while let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        if line.is_empty() {
            return Err(ConfigError::PasswordEmpty {
                path: path.to_path_buf(),
            });
        }
        Ok(Password(Zeroizing::new(line.to_vec())))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A decoded private key. Zeroized on drop, never printed.
pub(crate) struct LoadedKey {
    pub(crate) der: Zeroizing<PrivateKeyDer<'static>>,
    pub(crate) format: &'static str,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("der", &"[redacted]")
            .field("format", &self.format)
            .finish()
    }
}

/// PEM blocks whose decoded contents are zeroized when dropped.
pub(crate) struct PemBlocks(Vec<pem::Pem>);

fn scrub(block: pem::Pem) {
    drop(Zeroizing::new(block.into_contents()));
}

impl Drop for PemBlocks {
    fn drop(&mut self) {
        self.0.drain(..).for_each(scrub);
    }
}

impl PemBlocks {
    fn iter(&self) -> std::slice::Iter<'_, pem::Pem> {
        self.0.iter()
    }
}

/// Parse PEM blocks, mapping damage to a clear error.
pub(crate) fn pem_blocks(
    path: &Path,
    what: &'static str,
    bytes: &[u8],
) -> Result<PemBlocks, ConfigError> {
    let blocks = pem::parse_many(bytes).map_err(|e| ConfigError::NotPem {
        path: path.to_path_buf(),
        what,
        reason: e.to_string(),
    })?;
    if blocks.is_empty() {
        return Err(ConfigError::NotPem {
            path: path.to_path_buf(),
            what,
            reason: "no PEM block found".into(),
        });
    }
    Ok(PemBlocks(blocks))
}

fn is_key_tag(tag: &str) -> bool {
    matches!(
        tag,
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"
    )
}

fn is_cert_tag(tag: &str) -> bool {
    matches!(
        tag,
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
    )
}

/// Certificates of a PEM file (`what` = "CA.pem" / "cert.pem"). Errors when there is none.
pub(crate) fn load_certs(
    path: &Path,
    what: &'static str,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let mut blocks = pem_blocks(path, what, bytes)?;
    let mut certs = Vec::new();
    let mut other = None;
    for b in std::mem::take(&mut blocks.0) {
        if is_cert_tag(b.tag()) {
            certs.push(CertificateDer::from(b.into_contents()));
        } else {
            if other.is_none() {
                other = Some(b.tag().to_string());
            }
            // A private key pasted into a certificate file is wiped right here.
            scrub(b);
        }
    }
    if certs.is_empty() {
        let fix = if what == "CA.pem" {
            "put the key server's CA certificate(s) ('-----BEGIN CERTIFICATE-----') in CA.pem"
        } else {
            "put the client certificate ('-----BEGIN CERTIFICATE-----') in cert.pem and the private key in key.pem"
        };
        return Err(ConfigError::WrongPemType {
            path: path.to_path_buf(),
            expected: "a CERTIFICATE",
            found: other.unwrap_or_default(),
            fix,
        });
    }
    Ok(certs)
}

/// Does key.pem hold an encrypted key? (Decides whether password.txt is needed.)
pub(crate) fn key_is_encrypted(blocks: &PemBlocks) -> bool {
    blocks.iter().filter(|b| is_key_tag(b.tag())).any(|b| {
        b.tag() == "ENCRYPTED PRIVATE KEY"
            || b.headers()
                .get("Proc-Type")
                .is_some_and(|v| v.to_ascii_uppercase().contains("ENCRYPTED"))
    })
}

/// Decode the one private key in key.pem (`blocks` from [`pem_blocks`]).
pub(crate) fn load_key(
    path: &Path,
    password_path: &Path,
    mut blocks: PemBlocks,
    password: Option<&Password>,
) -> Result<LoadedKey, ConfigError> {
    let count = blocks.iter().filter(|b| is_key_tag(b.tag())).count();
    if count > 1 {
        return Err(ConfigError::SeveralKeys {
            path: path.to_path_buf(),
            count,
        });
    }
    let other = blocks
        .iter()
        .find(|b| !is_key_tag(b.tag()) && b.tag() != "EC PARAMETERS")
        .map(|b| b.tag().to_string());
    let key_index = blocks.iter().position(|b| is_key_tag(b.tag()));
    let Some(block) = key_index.map(|i| blocks.0.remove(i)) else {
        return Err(ConfigError::WrongPemType {
            path: path.to_path_buf(),
            expected: "a PRIVATE KEY",
            found: other.unwrap_or_else(|| "EC PARAMETERS".into()),
            fix: "put the client private key (PKCS#1, PKCS#8 or SEC1 PEM) in key.pem and the certificate in cert.pem",
        });
    };

    let tag = block.tag().to_string();
    let proc_type = block.headers().get("Proc-Type").map(str::to_string);
    let dek_info = block.headers().get("DEK-Info").map(str::to_string);
    let contents = Zeroizing::new(block.into_contents());

    let need_password = || -> Result<&Password, ConfigError> {
        password.ok_or_else(|| ConfigError::PasswordMissing {
            path: path.to_path_buf(),
            password_path: password_path.to_path_buf(),
        })
    };
    let wrong_password = || ConfigError::WrongPassword {
        path: path.to_path_buf(),
        password_path: password_path.to_path_buf(),
    };

    if tag == "ENCRYPTED PRIVATE KEY" {
        let pw = need_password()?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(contents.as_slice()).map_err(|e| {
            ConfigError::BadKey {
                path: path.to_path_buf(),
                reason: format!("damaged encrypted PKCS#8 structure: {e}"),
            }
        })?;
        check_kdf_cost(path, &info.encryption_algorithm)?;
        // PBKDF2 and AES-CBC go through aws-lc-rs (the FIPS module in the FIPS build); the
        // default build decrypts the other schemes with the RustCrypto crates.
        let scheme = match &info.encryption_algorithm {
            pkcs8::pkcs5::EncryptionScheme::Pbes2(params) => {
                super::fips::decrypt_pbes2(params, pw.bytes(), info.encrypted_data)
            }
            _ => super::fips::Pbes2::Other("PKCS#5 v1.5 (PBES1)".into()),
        };
        let plain = match scheme {
            super::fips::Pbes2::Plain(plain) => plain,
            super::fips::Pbes2::WrongPassword => return Err(wrong_password()),
            super::fips::Pbes2::Other(what) if super::fips::BUILD => {
                return Err(super::fips::not_approved(
                    path,
                    format!("key.pem's encryption ({what})"),
                    super::fips::REENCRYPT_KEY,
                ));
            }
            super::fips::Pbes2::Other(_) => rustcrypto_decrypt(path, password_path, &info, pw)?,
        };
        // Garbage that passes the padding check is caught when the key is parsed.
        if pkcs8::PrivateKeyInfo::try_from(plain.as_slice()).is_err() {
            return Err(wrong_password());
        }
        return Ok(LoadedKey {
            der: Zeroizing::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                plain.to_vec(),
            ))),
            format: "PKCS#8 PBES2 (encrypted)",
        });
    }

    let encrypted = proc_type
        .as_deref()
        .is_some_and(|v| v.to_ascii_uppercase().contains("ENCRYPTED"));
    if encrypted && super::fips::BUILD {
        return Err(super::fips::not_approved(
            path,
            "key.pem's legacy PEM encryption (its key is derived with MD5)".into(),
            super::fips::REENCRYPT_KEY,
        ));
    }
    if encrypted {
        let pw = need_password()?;
        let Some(dek) = dek_info else {
            return Err(ConfigError::BadKey {
                path: path.to_path_buf(),
                reason: "'Proc-Type: 4,ENCRYPTED' without a DEK-Info header".into(),
            });
        };
        let (alg, iv_hex) = dek.split_once(',').unwrap_or((dek.as_str(), ""));
        let alg = alg.trim().to_ascii_uppercase();
        let iv = hex_decode(iv_hex.trim()).ok_or_else(|| ConfigError::BadKey {
            path: path.to_path_buf(),
            reason: format!("DEK-Info IV '{}' is not hexadecimal", iv_hex.trim()),
        })?;
        let plain = legacy_decrypt(&alg, &iv, pw.bytes(), &contents).map_err(|e| match e {
            LegacyError::Unsupported => ConfigError::UnsupportedKeyEncryption {
                path: path.to_path_buf(),
                scheme: format!("legacy PEM {alg}"),
            },
            LegacyError::BadIv => ConfigError::BadKey {
                path: path.to_path_buf(),
                reason: format!("DEK-Info IV has the wrong length for {alg}"),
            },
            LegacyError::Padding => wrong_password(),
        })?;
        let (der, format) = match tag.as_str() {
            "RSA PRIVATE KEY" => (
                PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(plain.to_vec())),
                legacy_format("PKCS#1", &alg),
            ),
            "EC PRIVATE KEY" => (
                PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(plain.to_vec())),
                legacy_format("SEC1", &alg),
            ),
            _ => (
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.to_vec())),
                legacy_format("PKCS#8", &alg),
            ),
        };
        // Padding accidentally valid with a wrong password: the result is not DER.
        if !looks_like_der_sequence(&plain) {
            return Err(wrong_password());
        }
        return Ok(LoadedKey {
            der: Zeroizing::new(der),
            format,
        });
    }

    let bytes = contents.to_vec();
    let (der, format) = match tag.as_str() {
        "RSA PRIVATE KEY" => (
            PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(bytes)),
            "PKCS#1",
        ),
        "EC PRIVATE KEY" => (PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(bytes)), "SEC1"),
        _ => (
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes)),
            "PKCS#8",
        ),
    };
    Ok(LoadedKey {
        der: Zeroizing::new(der),
        format,
    })
}

/// PKCS#8 schemes aws-lc-rs does not decrypt (PBES2 with scrypt or DES-EDE3, PBES1), in the
/// default build only.
fn rustcrypto_decrypt(
    path: &Path,
    password_path: &Path,
    info: &pkcs8::EncryptedPrivateKeyInfo<'_>,
    pw: &Password,
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let wrong_password = || ConfigError::WrongPassword {
        path: path.to_path_buf(),
        password_path: password_path.to_path_buf(),
    };
    let doc = info.decrypt(pw.bytes()).map_err(|e| match e {
        // pkcs5 0.7 reports a CBC padding failure on decryption as `EncryptFailed`.
        pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
        ) => wrong_password(),
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm { oid }) => {
            ConfigError::UnsupportedKeyEncryption {
                path: path.to_path_buf(),
                scheme: format!("PKCS#8 algorithm {oid}"),
            }
        }
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::NoPbes1CryptSupport) => {
            ConfigError::UnsupportedKeyEncryption {
                path: path.to_path_buf(),
                scheme: "PKCS#5 v1.5 (PBES1)".into(),
            }
        }
        pkcs8::Error::EncryptedPrivateKey(other) => ConfigError::UnsupportedKeyEncryption {
            path: path.to_path_buf(),
            scheme: format!("PKCS#8 ({other})"),
        },
        // A decryption that "succeeds" into garbage is a wrong password.
        _ => wrong_password(),
    })?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

/// Most PBKDF2 iterations accepted (OpenSSL writes 2048; a huge count would stall startup).
const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// Most scrypt work accepted, as N * r * p * 128 bytes (OpenSSL's default is 16 MiB).
const MAX_SCRYPT_WORK: u64 = 256 << 20;

/// Refuse key-derivation parameters that would take minutes or gigabytes.
fn check_kdf_cost(
    path: &Path,
    scheme: &pkcs8::pkcs5::EncryptionScheme<'_>,
) -> Result<(), ConfigError> {
    use pkcs8::pkcs5::pbes2::Kdf;
    let pkcs8::pkcs5::EncryptionScheme::Pbes2(params) = scheme else {
        return Ok(());
    };
    let too_costly = |what: String| ConfigError::UnsupportedKeyEncryption {
        path: path.to_path_buf(),
        scheme: what,
    };
    match &params.kdf {
        Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => Err(too_costly(format!(
            "PBKDF2 with {} iterations (at most {MAX_PBKDF2_ITERATIONS})",
            p.iteration_count
        ))),
        Kdf::Scrypt(p) => {
            let work = p
                .cost_parameter
                .saturating_mul(u64::from(p.block_size))
                .saturating_mul(u64::from(p.parallelization))
                .saturating_mul(128);
            if work > MAX_SCRYPT_WORK {
                Err(too_costly(format!(
                    "scrypt N={} r={} p={} (too costly)",
                    p.cost_parameter, p.block_size, p.parallelization
                )))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

fn legacy_format(kind: &str, alg: &str) -> &'static str {
    match (kind, alg) {
        ("PKCS#1", "DES-EDE3-CBC") => "PKCS#1 (legacy PEM encryption, DES-EDE3-CBC)",
        ("PKCS#1", "AES-128-CBC") => "PKCS#1 (legacy PEM encryption, AES-128-CBC)",
        ("PKCS#1", "AES-192-CBC") => "PKCS#1 (legacy PEM encryption, AES-192-CBC)",
        ("PKCS#1", _) => "PKCS#1 (legacy PEM encryption, AES-256-CBC)",
        ("SEC1", "DES-EDE3-CBC") => "SEC1 (legacy PEM encryption, DES-EDE3-CBC)",
        ("SEC1", "AES-128-CBC") => "SEC1 (legacy PEM encryption, AES-128-CBC)",
        ("SEC1", "AES-192-CBC") => "SEC1 (legacy PEM encryption, AES-192-CBC)",
        ("SEC1", _) => "SEC1 (legacy PEM encryption, AES-256-CBC)",
        _ => "PKCS#8 (legacy PEM encryption)",
    }
}

fn looks_like_der_sequence(b: &[u8]) -> bool {
    if b.len() < 2 || b[0] != 0x30 {
        return false;
    }
    let (len, hdr) = match b[1] {
        l @ 0..=0x7f => (l as usize, 2),
        0x81 if b.len() > 2 => (b[2] as usize, 3),
        0x82 if b.len() > 3 => (((b[2] as usize) << 8) | b[3] as usize, 4),
        0x83 if b.len() > 4 => (
            ((b[2] as usize) << 16) | ((b[3] as usize) << 8) | b[4] as usize,
            5,
        ),
        _ => return false,
    };
    hdr + len == b.len()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

enum LegacyError {
    Unsupported,
    BadIv,
    Padding,
}

/// OpenSSL's EVP_BytesToKey with MD5, one iteration, salt = first 8 bytes of the IV.
fn evp_bytes_to_key(password: &[u8], salt: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
    use md5::{Digest, Md5};
    let mut out = Zeroizing::new(Vec::with_capacity(key_len + 16));
    let mut prev: Option<Zeroizing<[u8; 16]>> = None;
    while out.len() < key_len {
        let mut h = Md5::new();
        if let Some(p) = &prev {
            h.update(p.as_slice());
        }
        h.update(password);
        h.update(salt);
        // Straight into wiped memory: `finalize()` would return the block as a temporary.
        let mut d: Zeroizing<[u8; 16]> = Zeroizing::new([0; 16]);
        h.finalize_into(md5::digest::generic_array::GenericArray::from_mut_slice(
            &mut d[..],
        ));
        out.extend_from_slice(d.as_slice());
        prev = Some(d);
    }
    out.truncate(key_len);
    out
}

fn legacy_decrypt(
    alg: &str,
    iv: &[u8],
    password: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LegacyError> {
    use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let (key_len, iv_len) = match alg {
        "DES-EDE3-CBC" => (24, 8),
        "AES-128-CBC" => (16, 16),
        "AES-192-CBC" => (24, 16),
        "AES-256-CBC" => (32, 16),
        _ => return Err(LegacyError::Unsupported),
    };
    if iv.len() != iv_len {
        return Err(LegacyError::BadIv);
    }
    let key = evp_bytes_to_key(password, &iv[..8], key_len);
    let mut buf = Zeroizing::new(data.to_vec());
    let n = match alg {
        "DES-EDE3-CBC" => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, iv)
            .map_err(|_| LegacyError::BadIv)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(|p| p.len()),
        "AES-128-CBC" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, iv)
            .map_err(|_| LegacyError::BadIv)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(|p| p.len()),
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, iv)
            .map_err(|_| LegacyError::BadIv)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(|p| p.len()),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv)
            .map_err(|_| LegacyError::BadIv)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(|p| p.len()),
    }
    .map_err(|_| LegacyError::Padding)?;
    buf.truncate(n);
    Ok(buf)
}

/// Path helper used in messages.
pub(crate) fn ssl_path(dir: &Path, file: &str) -> PathBuf {
    dir.join("ssl").join(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cipher that holds a key schedule derived from a key's password wipes it when
    /// dropped (it compiles only with the crates' zeroize feature on).
    #[test]
    fn legacy_key_schedules_wipe_themselves() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<aes::Aes128>();
        wiped_on_drop::<aes::Aes192>();
        wiped_on_drop::<aes::Aes256>();
        wiped_on_drop::<des::TdesEde3>();
        wiped_on_drop::<cbc::Decryptor<aes::Aes128>>();
        wiped_on_drop::<cbc::Decryptor<aes::Aes192>>();
        wiped_on_drop::<cbc::Decryptor<aes::Aes256>>();
        wiped_on_drop::<cbc::Decryptor<des::TdesEde3>>();
    }

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // openssl enc -aes-256-cbc -P -S 0102030405060708 -pass pass:password -md md5
        let key = evp_bytes_to_key(b"password", &[1, 2, 3, 4, 5, 6, 7, 8], 32);
        assert_eq!(
            hex_decode("E7B0971E52CA5CC8D0539FB3412F6316F7BA2E6EE293D9F3457B99436B51CE02").unwrap(),
            key.to_vec()
        );
        assert_eq!(
            evp_bytes_to_key(b"password", &[1, 2, 3, 4, 5, 6, 7, 8], 24)[..],
            key[..24]
        );
    }

    #[test]
    fn hex_and_der_helpers() {
        assert_eq!(hex_decode("00ffA0"), Some(vec![0, 0xff, 0xa0]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode(""), None);
        assert_eq!(hex_decode("é0"), None);
        assert!(looks_like_der_sequence(&[0x30, 0x01, 0x00]));
        assert!(!looks_like_der_sequence(&[0x30, 0x02, 0x00]));
        assert!(!looks_like_der_sequence(&[0x31, 0x01, 0x00]));
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend([0u8; 256]);
        assert!(looks_like_der_sequence(&long));
    }

    #[test]
    fn password_first_line_trimmed() {
        let p = Path::new("password.txt");
        let pw = Password::from_file_bytes(p, Zeroizing::new(b"abc\r\r\nnext".to_vec())).unwrap();
        assert_eq!(pw.bytes(), b"abc");
        assert_eq!(format!("{pw:?}"), "Password([redacted])");
        assert!(Password::from_file_bytes(p, Zeroizing::new(b"\n".to_vec())).is_err());
        assert!(Password::from_file_bytes(p, Zeroizing::new(Vec::new())).is_err());
    }

    #[test]
    fn legacy_errors() {
        let iv = [0u8; 16];
        assert!(matches!(
            legacy_decrypt("DES-CBC", &iv[..8], b"x", &[0; 16]),
            Err(LegacyError::Unsupported)
        ));
        assert!(matches!(
            legacy_decrypt("AES-128-CBC", &iv[..8], b"x", &[0; 16]),
            Err(LegacyError::BadIv)
        ));
        // Not a multiple of the block size / bad padding: reported as a padding failure.
        assert!(matches!(
            legacy_decrypt("AES-256-CBC", &iv, b"x", &[0; 15]),
            Err(LegacyError::Padding)
        ));
    }
}
