//! The `keyring_aes` service: AES with a stored key, the way MySQL's own keyring components do
//! it (components/keyrings/common/encryption/aes.cc): block size 256 only, modes cbc, cfb1, cfb8,
//! cfb128 and ofb, the cipher key being SHA-256 of the stored key's bytes, a 16-byte IV, and
//! PKCS#7 padding in CBC when asked for. The output equals OpenSSL's `aes-256-<mode>` with the
//! same key, IV and data (tests/component/component_abi.rs checks that against the openssl tool).
//!
//! The block cipher is aws-lc-rs' AES (the FIPS module in the FIPS build), whose key schedules
//! are wiped when dropped; the modes are built here because the module has no CFB1, CFB8 or OFB.

use aws_lc_rs::cipher::{
    AES_256, DecryptingKey, DecryptionContext, EncryptingKey, UnboundCipherKey,
};
use zeroize::Zeroizing;

const BLOCK: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Cbc,
    Cfb1,
    Cfb8,
    Cfb128,
    Ofb,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AesError {
    #[error(
        "keyring_aes: mode '{mode}' with block size {block_size} is not supported; use block size 256 with cbc, cfb1, cfb8, cfb128 or ofb"
    )]
    UnsupportedMode { mode: String, block_size: usize },
    #[error("keyring_aes: the data is not a multiple of 16 bytes, which CBC without padding needs")]
    NotBlockAligned,
    #[error("keyring_aes: the decrypted data has no valid padding (wrong key, IV or data)")]
    BadPadding,
    #[error("keyring_aes: the output buffer is too small")]
    OutputTooSmall,
}

impl Mode {
    /// The mode for the service's `mode` and `block_size` arguments.
    pub fn parse(mode: &str, block_size: usize) -> Result<Mode, AesError> {
        let m = match (mode, block_size) {
            ("cbc", 256) => Mode::Cbc,
            ("cfb1", 256) => Mode::Cfb1,
            ("cfb8", 256) => Mode::Cfb8,
            ("cfb128", 256) => Mode::Cfb128,
            ("ofb", 256) => Mode::Ofb,
            _ => {
                return Err(AesError::UnsupportedMode {
                    mode: mode.to_string(),
                    block_size,
                });
            }
        };
        Ok(m)
    }

    /// The output buffer size `get_size` reports (and encrypt needs) for `input_len` bytes.
    pub fn output_size(self, input_len: usize) -> usize {
        match self {
            Mode::Cbc => BLOCK * (input_len / BLOCK) + BLOCK,
            _ => input_len,
        }
    }
}

/// AES-256 with the key SHA-256(stored key), one block at a time.
struct Aes256 {
    encrypting: EncryptingKey,
    decrypting: DecryptingKey,
}

/// The cipher key: SHA-256 of the stored key's bytes, as MySQL's components derive it.
fn cipher_key(stored_key: &[u8]) -> Zeroizing<[u8; 32]> {
    use aws_lc_rs::digest::{SHA256, digest};
    let mut key = Zeroizing::new([0u8; 32]);
    let mut hashed = digest(&SHA256, stored_key);
    key.copy_from_slice(&hashed.as_ref()[..32]);
    // aws-lc-rs' Digest is a plain Copy value with private fields, which safe code cannot
    // wipe: its one copy here is overwritten in place with the hash of nothing, and the write
    // made observable so that it is not optimised away as a dead store.
    hashed = digest(&SHA256, &[]);
    std::hint::black_box(&hashed);
    key
}

fn cipher(stored_key: &[u8]) -> Aes256 {
    let key = cipher_key(stored_key);
    // A 32-byte key always makes an AES-256 key; ECB of whole blocks cannot fail.
    let unbound = || UnboundCipherKey::new(&AES_256, &key[..]).expect("AES-256 key");
    Aes256 {
        encrypting: EncryptingKey::ecb(unbound()).expect("AES-256 ECB"),
        decrypting: DecryptingKey::ecb(unbound()).expect("AES-256 ECB"),
    }
}

impl Aes256 {
    fn decrypt_block(&self, block: &mut [u8; BLOCK]) {
        self.decrypting
            .decrypt(block, DecryptionContext::None)
            .expect("AES block");
    }
}

fn encrypt_block(aes: &Aes256, block: &mut [u8; BLOCK]) {
    aes.encrypting.encrypt(block).expect("AES block");
}

/// Encrypts `data` with the stored key's bytes.
pub fn encrypt(
    stored_key: &[u8],
    mode: Mode,
    iv: &[u8; BLOCK],
    padding: bool,
    data: &[u8],
) -> Result<Vec<u8>, AesError> {
    let aes = cipher(stored_key);
    match mode {
        Mode::Cbc => {
            if !padding && data.len() % BLOCK != 0 {
                return Err(AesError::NotBlockAligned);
            }
            let mut out = Vec::with_capacity(mode.output_size(data.len()));
            let mut prev = *iv;
            let mut padded = Zeroizing::new(data.to_vec());
            if padding {
                let pad = BLOCK - data.len() % BLOCK;
                padded.extend(std::iter::repeat_n(pad as u8, pad));
            }
            for chunk in padded.chunks(BLOCK) {
                let mut block = [0u8; BLOCK];
                for i in 0..BLOCK {
                    block[i] = chunk[i] ^ prev[i];
                }
                encrypt_block(&aes, &mut block);
                out.extend_from_slice(&block);
                prev = block;
            }
            Ok(out)
        }
        _ => Ok(stream(&aes, mode, iv, data, true)),
    }
}

/// Decrypts `data` with the stored key's bytes. The plaintext is wiped when dropped.
pub fn decrypt(
    stored_key: &[u8],
    mode: Mode,
    iv: &[u8; BLOCK],
    padding: bool,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AesError> {
    let aes = cipher(stored_key);
    match mode {
        Mode::Cbc => {
            if data.len() % BLOCK != 0 || (padding && data.is_empty()) {
                return Err(if padding {
                    AesError::BadPadding
                } else {
                    AesError::NotBlockAligned
                });
            }
            let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
            let mut prev = *iv;
            for chunk in data.chunks(BLOCK) {
                let mut block = [0u8; BLOCK];
                block.copy_from_slice(chunk);
                aes.decrypt_block(&mut block);
                for i in 0..BLOCK {
                    block[i] ^= prev[i];
                }
                out.extend_from_slice(&block);
                prev.copy_from_slice(chunk);
            }
            if padding {
                let pad = usize::from(*out.last().unwrap_or(&0));
                let valid = (1..=BLOCK).contains(&pad)
                    && out.len() >= pad
                    && out[out.len() - pad..]
                        .iter()
                        .all(|&b| usize::from(b) == pad);
                if !valid {
                    return Err(AesError::BadPadding);
                }
                let keep = out.len() - pad;
                out.truncate(keep);
            }
            Ok(out)
        }
        _ => Ok(Zeroizing::new(stream(&aes, mode, iv, data, false))),
    }
}

/// The stream modes (CFB1, CFB8, CFB128, OFB) as OpenSSL implements them.
fn stream(aes: &Aes256, mode: Mode, iv: &[u8; BLOCK], data: &[u8], encrypting: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut reg = *iv;
    match mode {
        Mode::Cfb128 | Mode::Ofb => {
            for chunk in data.chunks(BLOCK) {
                let mut stream = reg;
                encrypt_block(aes, &mut stream);
                let start = out.len();
                for (i, b) in chunk.iter().enumerate() {
                    out.push(b ^ stream[i]);
                }
                reg = stream;
                if mode == Mode::Cfb128 {
                    // The feedback is the ciphertext block.
                    let cipher_text = if encrypting { &out[start..] } else { chunk };
                    reg[..cipher_text.len()].copy_from_slice(cipher_text);
                }
            }
        }
        Mode::Cfb8 => {
            for &b in data {
                let mut stream = reg;
                encrypt_block(aes, &mut stream);
                let o = b ^ stream[0];
                out.push(o);
                let c = if encrypting { o } else { b };
                reg.copy_within(1.., 0);
                reg[BLOCK - 1] = c;
            }
        }
        Mode::Cfb1 => {
            for &b in data {
                let mut o = 0u8;
                for bit in (0..8).rev() {
                    let mut stream = reg;
                    encrypt_block(aes, &mut stream);
                    let in_bit = (b >> bit) & 1;
                    let out_bit = in_bit ^ (stream[0] >> 7);
                    o |= out_bit << bit;
                    let c = if encrypting { out_bit } else { in_bit };
                    // Shift the 128-bit register left by one bit, the cipher text bit enters.
                    for i in 0..BLOCK {
                        let next = if i + 1 < BLOCK { reg[i + 1] >> 7 } else { c };
                        reg[i] = (reg[i] << 1) | next;
                    }
                }
                out.push(o);
            }
        }
        Mode::Cbc => unreachable!("CBC is a block mode"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cipher_key_is_sha256_of_the_stored_key() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            cipher_key(b"abc")[..],
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad
            ]
        );
    }

    #[test]
    fn modes_and_sizes() {
        assert_eq!(Mode::parse("cbc", 256), Ok(Mode::Cbc));
        assert!(Mode::parse("cbc", 128).is_err());
        assert!(Mode::parse("ecb", 256).is_err());
        assert!(Mode::parse("CBC", 256).is_err());
        assert_eq!(Mode::Cbc.output_size(0), 16);
        assert_eq!(Mode::Cbc.output_size(16), 32);
        assert_eq!(Mode::Cbc.output_size(17), 32);
        assert_eq!(Mode::Ofb.output_size(17), 17);
    }

    #[test]
    fn every_mode_round_trips() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        let data: Vec<u8> = (0..=100).collect();
        for mode in [Mode::Cbc, Mode::Cfb1, Mode::Cfb8, Mode::Cfb128, Mode::Ofb] {
            let c = encrypt(&key, mode, &iv, true, &data).unwrap();
            assert_eq!(c.len(), mode.output_size(data.len()), "{mode:?}");
            assert_ne!(&c[..data.len()], &data[..]);
            let p = decrypt(&key, mode, &iv, true, &c).unwrap();
            assert_eq!(&p[..], &data[..], "{mode:?}");
        }
        assert_eq!(
            encrypt(&key, Mode::Cbc, &iv, false, &data),
            Err(AesError::NotBlockAligned)
        );
        let c = encrypt(&key, Mode::Cbc, &iv, true, &data).unwrap();
        assert!(decrypt(&[8u8; 32], Mode::Cbc, &iv, true, &c).is_err());
    }
}
