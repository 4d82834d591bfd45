//! The key file of MariaDB's `file_key_management` plugin, read as that plugin reads it, for
//! `keyring-okv mariadb import`: lines `<key id>;<hex key>` (16, 24 or 32 bytes), `#` comments
//! and blank lines, key id 1 required, a later line for an id replacing an earlier one. The
//! file may be encrypted as `openssl enc -aes-256-cbc -md sha1 -k <filekey>` makes it
//! (`Salted__`, an 8-byte salt, then AES-256-CBC under OpenSSL's EVP_BytesToKey with SHA-1 and
//! one iteration); the filekey is given as `file_key_management_filekey` is: the password
//! itself, or `FILE:<path>` naming a file that holds it.
//!
//! Key bytes live only in `Zeroizing` buffers, and no error quotes the file's content.

use std::path::{Path, PathBuf};

use aes::Aes256;
use aws_lc_rs::digest::{self, SHA1_FOR_LEGACY_USE_ONLY};
use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use zeroize::Zeroizing;

/// MariaDB reads at most this much of a key file.
pub const MAX_KEY_FILE_SIZE: u64 = 1024 * 1024;
/// The longest filekey MariaDB accepts from a `FILE:` file.
const MAX_SECRET_SIZE: usize = 256;
const SALTED: &[u8] = b"Salted__";
const SALT_LEN: usize = 8;

/// One key of the file: its id and its bytes (16, 24 or 32).
pub struct FileKey {
    pub id: u32,
    pub material: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FileKey {{ id: {}, {} bytes }}",
            self.id,
            self.material.len()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the key file {path}: {why}")]
    Read { path: PathBuf, why: String },
    #[error(
        "the key file {path} is larger than 1 MiB, more than file_key_management reads; check that it is the right file"
    )]
    TooLarge { path: PathBuf },
    #[error("cannot read the filekey file {path}: {why}")]
    FilekeyRead { path: PathBuf, why: String },
    #[error(
        "the filekey in {path} is longer than 256 bytes, which file_key_management refuses; give the filekey the server uses"
    )]
    FilekeyTooLong { path: PathBuf },
    #[error(
        "the key file {path} does not decrypt with the filekey given; give the value of file_key_management_filekey with --filekey (the password, or FILE:<path>)"
    )]
    Decrypt { path: PathBuf },
    #[error(
        "a filekey was given but the key file {path} is not encrypted (file_key_management refuses it too); leave out --filekey"
    )]
    NotEncrypted { path: PathBuf },
    #[error(
        "{what} at {path} line {line}, column {column}; fix the line as file_key_management expects: <key id>;<32, 48 or 64 hex digits>"
    )]
    Syntax {
        path: PathBuf,
        what: &'static str,
        line: usize,
        column: usize,
    },
    #[error(
        "the key file {path} has no key id 1, which file_key_management requires; check that it is the file the server uses"
    )]
    NoKey1 { path: PathBuf },
}

/// The keys of the file at `path`, ordered by id. `filekey` is the value of
/// `file_key_management_filekey` (None or empty when it is not set).
pub fn read_key_file(path: &Path, filekey: Option<&str>) -> Result<Vec<FileKey>, KeyFileError> {
    let read_error = |e: std::io::Error| KeyFileError::Read {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_KEY_FILE_SIZE {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let raw = Zeroizing::new(std::fs::read(path).map_err(read_error)?);
    let secret = match filekey {
        Some(value) => match value.strip_prefix("FILE:") {
            Some(file) => read_filekey(Path::new(file))?,
            None => Zeroizing::new(value.as_bytes().to_vec()),
        },
        None => Zeroizing::new(Vec::new()),
    };
    let text = if raw.len() > SALTED.len() && raw.starts_with(SALTED) {
        decrypt(&raw, &secret).ok_or_else(|| KeyFileError::Decrypt {
            path: path.to_path_buf(),
        })?
    } else if !secret.is_empty() {
        return Err(KeyFileError::NotEncrypted {
            path: path.to_path_buf(),
        });
    } else {
        raw
    };
    parse(path, &text)
}

/// The filekey in `path`: up to 256 bytes, without the line ends at its end.
fn read_filekey(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let mut secret =
        Zeroizing::new(std::fs::read(path).map_err(|e| KeyFileError::FilekeyRead {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?);
    if secret.is_empty() {
        return Err(KeyFileError::FilekeyRead {
            path: path.to_path_buf(),
            why: "it is empty".into(),
        });
    }
    while matches!(secret.last(), Some(b'\r' | b'\n')) {
        secret.pop();
    }
    if secret.len() > MAX_SECRET_SIZE {
        return Err(KeyFileError::FilekeyTooLong {
            path: path.to_path_buf(),
        });
    }
    // MariaDB holds the filekey as a C string: it ends at the first NUL.
    if let Some(nul) = secret.iter().position(|&b| b == 0) {
        secret.truncate(nul);
    }
    Ok(secret)
}

/// OpenSSL's EVP_BytesToKey with SHA-1, one iteration: the AES-256 key and the IV.
fn bytes_to_key(secret: &[u8], salt: &[u8]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 16]>) {
    let mut stream = Zeroizing::new(Vec::with_capacity(60));
    let mut previous: Option<digest::Digest> = None;
    while stream.len() < 48 {
        let mut ctx = digest::Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        if let Some(d) = &previous {
            ctx.update(d.as_ref());
        }
        ctx.update(secret);
        ctx.update(salt);
        let d = ctx.finish();
        stream.extend_from_slice(d.as_ref());
        previous = Some(d);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    let mut iv = Zeroizing::new([0u8; 16]);
    key.copy_from_slice(&stream[..32]);
    iv.copy_from_slice(&stream[32..48]);
    (key, iv)
}

/// The plaintext of an OpenSSL `Salted__` file, or None when it does not decrypt (a wrong
/// filekey almost always leaves bad padding).
fn decrypt(raw: &[u8], secret: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let body = raw.get(SALTED.len()..)?;
    if body.len() < SALT_LEN {
        return None;
    }
    let (salt, ciphertext) = body.split_at(SALT_LEN);
    let (key, iv) = bytes_to_key(secret, salt);
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let decryptor = cbc::Decryptor::<Aes256>::new_from_slices(&key[..], &iv[..]).ok()?;
    let len = decryptor
        .decrypt_padded_mut::<Pkcs7>(&mut buffer)
        .ok()?
        .len();
    buffer.truncate(len);
    Some(buffer)
}

/// C's isspace without the newline.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|v| v as u8)
}

/// The parser of file_key_management (`Parser::parse_line`), byte for byte: the text ends at
/// the first NUL, as MariaDB's C string does.
fn parse(path: &Path, text: &[u8]) -> Result<Vec<FileKey>, KeyFileError> {
    let text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
    let mut keys: std::collections::BTreeMap<u32, Zeroizing<Vec<u8>>> = Default::default();
    let mut start = 0;
    let mut line = 0;
    while start < text.len() {
        line += 1;
        let end = text[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| start + i);
        let bytes = &text[start..end];
        let at_end = end == text.len();
        start = if at_end { end } else { end + 1 };
        let syntax = |what, column: usize| KeyFileError::Syntax {
            path: path.to_path_buf(),
            what,
            line,
            column: column + 1,
        };
        let mut p = bytes.iter().take_while(|&&b| is_blank(b)).count();
        // A comment, or a blank line ended by a newline (a blank last line without one is a
        // syntax error to MariaDB).
        if bytes.get(p) == Some(&b'#') || (p == bytes.len() && !at_end) {
            continue;
        }
        if !bytes.get(p).is_some_and(u8::is_ascii_digit) {
            return Err(syntax("Syntax error", p));
        }
        let mut id: u64 = 0;
        while let Some(d) = bytes.get(p).filter(|b| b.is_ascii_digit()) {
            id = id * 10 + u64::from(d - b'0');
            if id > u64::from(u32::MAX) {
                return Err(syntax("Invalid key id", p));
            }
            p += 1;
        }
        if id < 1 {
            return Err(syntax("Invalid key id", p));
        }
        if bytes.get(p) != Some(&b';') {
            return Err(syntax("Syntax error", p));
        }
        p += 1;
        let mut material = Zeroizing::new(Vec::with_capacity(32));
        while material.len() < 32 {
            let (Some(hi), Some(lo)) = (
                bytes.get(p).copied().and_then(hex_value),
                bytes.get(p + 1).copied().and_then(hex_value),
            ) else {
                break;
            };
            material.push(hi * 16 + lo);
            p += 2;
        }
        if bytes.get(p).copied().and_then(hex_value).is_some()
            || ![16, 24, 32].contains(&material.len())
        {
            return Err(syntax("Invalid key", p));
        }
        keys.insert(id as u32, material);
    }
    if !keys.contains_key(&1) {
        return Err(KeyFileError::NoKey1 {
            path: path.to_path_buf(),
        });
    }
    Ok(keys
        .into_iter()
        .map(|(id, material)| FileKey { id, material })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "a7addd9adea9978fda19f21e6be987880e68ac92632ca052e5bb42b1a506939a";
    const K5: &str = "F5502320F8429037B8DAEF761B189D12";

    fn parsed(text: &str) -> Result<Vec<(u32, Vec<u8>)>, String> {
        parse(Path::new("keys.txt"), text.as_bytes())
            .map(|keys| {
                keys.into_iter()
                    .map(|k| (k.id, k.material.to_vec()))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn lines_comments_and_blank_lines() {
        let text = format!(
            "# the keys\n\n  1;{K1}\n\t# five\r\n5;{K5}  trailing words are ignored\n2;{}\n",
            &K1[..48]
        );
        let keys = parsed(&text).unwrap();
        assert_eq!(
            keys,
            vec![(1, unhex(K1)), (2, unhex(&K1[..48])), (5, unhex(K5))]
        );
    }

    #[test]
    fn a_later_line_replaces_an_earlier_one() {
        let keys = parsed(&format!("1;{K1}\n1;{K5}")).unwrap();
        assert_eq!(keys, vec![(1, unhex(K5))]);
    }

    #[test]
    fn errors_name_the_line_and_column_as_mariadb_does() {
        for (text, error) in [
            (
                format!("1;{K1}\nx;{K5}\n"),
                "Syntax error at keys.txt line 2, column 1",
            ),
            (
                format!("1;{K1}\n0;{K5}\n"),
                "Invalid key id at keys.txt line 2, column 2",
            ),
            (
                format!("1;{K1}\n4294967296;{K5}\n"),
                "Invalid key id at keys.txt line 2, column 10",
            ),
            (
                format!("1:{K1}\n"),
                "Syntax error at keys.txt line 1, column 2",
            ),
            (
                format!("1;{}\n", &K1[..40]),
                "Invalid key at keys.txt line 1, column 43",
            ),
            (
                format!("1;{K1}0\n"),
                "Invalid key at keys.txt line 1, column 67",
            ),
            (
                format!("1;{K1}\n  "),
                "Syntax error at keys.txt line 2, column 3",
            ),
        ] {
            let got = parsed(&text).unwrap_err();
            assert!(got.starts_with(error), "{text:?}: {got}");
            assert!(!got.contains(&K1[..8]), "a key in the message: {got}");
        }
        assert!(
            parsed(&format!("5;{K5}\n"))
                .unwrap_err()
                .contains("no key id 1")
        );
        assert!(parsed("").unwrap_err().contains("no key id 1"));
        assert_eq!(
            parsed(&format!("4294967295;{K5}\n1;{K5}")).unwrap().len(),
            2
        );
    }

    /// A file encrypted as `openssl enc -aes-256-cbc -md sha1 -k secret` does (the key schedule
    /// is checked against openssl below; the MariaDB test decrypts a file openssl made).
    #[test]
    fn an_encrypted_file_decrypts_with_its_filekey_only() {
        let dir = std::env::temp_dir().join(format!("okv-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, iv) = bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8]);
        let plain = format!("1;{K5}\n");
        let mut buffer = plain.as_bytes().to_vec();
        let encrypted = {
            use cbc::cipher::BlockEncryptMut;
            let len = buffer.len();
            buffer.resize(len + 16, 0);
            cbc::Encryptor::<Aes256>::new_from_slices(&key[..], &iv[..])
                .unwrap()
                .encrypt_padded_mut::<Pkcs7>(&mut buffer, len)
                .unwrap()
                .to_vec()
        };
        let mut file = b"Salted__\x01\x02\x03\x04\x05\x06\x07\x08".to_vec();
        file.extend(encrypted);
        let path = dir.join("keys.enc");
        std::fs::write(&path, &file).unwrap();
        let keys = read_key_file(&path, Some("secret")).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(&keys[0].material[..], &unhex(K5)[..]);
        std::fs::write(dir.join("filekey"), "secret\r\n").unwrap();
        let filekey = format!("FILE:{}", dir.join("filekey").display());
        assert_eq!(read_key_file(&path, Some(&filekey)).unwrap().len(), 1);
        assert!(matches!(
            read_key_file(&path, Some("wrong")),
            Err(KeyFileError::Decrypt { .. })
        ));
        let plain_path = dir.join("keys.txt");
        std::fs::write(&plain_path, &plain).unwrap();
        assert!(matches!(
            read_key_file(&plain_path, Some("secret")),
            Err(KeyFileError::NotEncrypted { .. })
        ));
        assert_eq!(read_key_file(&plain_path, None).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// EVP_BytesToKey(SHA-1) of "secret" with that salt, as `openssl enc -P` prints it.
    #[test]
    fn bytes_to_key_is_openssls() {
        let Ok(out) = std::process::Command::new("openssl")
            .args([
                "enc",
                "-aes-256-cbc",
                "-md",
                "sha1",
                "-k",
                "secret",
                "-S",
                "0102030405060708",
                "-P",
            ])
            .output()
        else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |label: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(label))
                .map(|v| v.trim().to_lowercase())
                .unwrap()
        };
        let (key, iv) = bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8]);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&key[..]), value("key="));
        assert_eq!(hex(&iv[..]), value("iv ="));
    }
}
