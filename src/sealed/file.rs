//! The sealed key cache file: its format, its encryption and how it is written and read.
//!
//! ```text
//! "KOVSEAL1"                 8 bytes
//! header length              u32, big-endian
//! header                     UTF-8 lines "name=value": product, identity, server (one per
//!                            server, in order), written (Unix seconds); readable without the key
//! nonce                      12 bytes, random for every write
//! sealed entries             AES-256-GCM ciphertext and tag; the additional data is everything
//!                            before the nonce, so the header cannot be changed either
//! ```
//! The entries, once opened: a count, then for each one key id, owner, key type, KMIP unique
//! identifier, server, kept-at and confirmed-at times, and the key bytes; strings and bytes are
//! u32-length-prefixed, times u64 Unix seconds.
//!
//! The AES key is derived (HKDF-SHA-256) from the configuration directory's private key and
//! the product, so a copy of the file opens only with that key.pem. Writes go to a temporary
//! file in the same directory (mode 0600 from its creation), are flushed to disk, renamed over
//! the file, and the directory is flushed too: a crash leaves the old file or the new one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::error::SealedError;
use crate::keyring::KeyType;

const MAGIC: &[u8; 8] = b"KOVSEAL1";
/// Far above any real cache (a key is at most 16 KiB), so a damaged length fails cleanly.
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// What a file is bound to: written by this product, for this client identity and these
/// servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub product: String,
    pub identity: String,
    pub servers: Vec<String>,
}

/// One cached key.
pub struct Entry {
    pub key_type: KeyType,
    pub material: Zeroizing<Vec<u8>>,
    pub uid: String,
    pub server: String,
    /// When this key was first kept, Unix seconds.
    pub kept_at: u64,
    /// When a KMIP server last said this is the key, Unix seconds.
    pub confirmed_at: u64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key_type", &self.key_type)
            .field("len", &self.material.len())
            .field("uid", &self.uid)
            .field("server", &self.server)
            .field("kept_at", &self.kept_at)
            .field("confirmed_at", &self.confirmed_at)
            .finish()
    }
}

pub type Entries = BTreeMap<(String, String), Entry>;
/// Keys a KMIP server said do not exist, with when it last said so (Unix seconds): mysqld asks
/// for some at start (the binary log's `_old` key) and must get the same answer offline.
pub type Absent = BTreeMap<(String, String), u64>;

/// A file as read: its header, and its entries when it could be opened.
pub struct Contents {
    pub binding: Binding,
    pub written: u64,
    pub entries: Entries,
    pub absent: Absent,
}

fn header(binding: &Binding, written: u64) -> String {
    let mut h = format!(
        "product={}\nidentity={}\n",
        one_line(&binding.product),
        one_line(&binding.identity)
    );
    for s in &binding.servers {
        h.push_str(&format!("server={}\n", one_line(s)));
    }
    h.push_str(&format!("written={written}\n"));
    h
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn parse_header(path: &Path, text: &str) -> Result<(Binding, u64), SealedError> {
    let bad = |why: &str| SealedError::Damaged {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let mut product = None;
    let mut identity = None;
    let mut servers = Vec::new();
    let mut written = None;
    for line in text.lines() {
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| bad("a header line has no '='"))?;
        match name {
            "product" => product = Some(value.to_string()),
            "identity" => identity = Some(value.to_string()),
            "server" => servers.push(value.to_string()),
            "written" => written = value.parse().ok(),
            _ => {}
        }
    }
    Ok((
        Binding {
            product: product.ok_or_else(|| bad("the header names no product"))?,
            identity: identity.ok_or_else(|| bad("the header names no client identity"))?,
            servers,
        },
        written.ok_or_else(|| bad("the header has no write time"))?,
    ))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// The length of the encoded entries, so that the buffer holding key bytes is allocated once
/// with room for the tag too: a buffer that grows leaves copies of what it held in freed memory.
fn encoded_len(entries: &Entries, absent: &Absent) -> usize {
    let field = |b: &[u8]| 4 + b.len();
    let entries_len: usize = entries
        .iter()
        .map(|((key_id, owner), e)| {
            field(key_id.as_bytes())
                + field(owner.as_bytes())
                + field(e.key_type.name().as_bytes())
                + field(e.uid.as_bytes())
                + field(e.server.as_bytes())
                + 16
                + field(&e.material)
        })
        .sum();
    let absent_len: usize = absent
        .keys()
        .map(|(key_id, owner)| field(key_id.as_bytes()) + field(owner.as_bytes()) + 8)
        .sum();
    4 + entries_len + 4 + absent_len
}

fn encode(entries: &Entries, absent: &Absent) -> Zeroizing<Vec<u8>> {
    let len = encoded_len(entries, absent);
    let mut out = Zeroizing::new(Vec::with_capacity(len + AES_256_GCM.tag_len()));
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for ((key_id, owner), e) in entries {
        put_bytes(&mut out, key_id.as_bytes());
        put_bytes(&mut out, owner.as_bytes());
        put_bytes(&mut out, e.key_type.name().as_bytes());
        put_bytes(&mut out, e.uid.as_bytes());
        put_bytes(&mut out, e.server.as_bytes());
        out.extend_from_slice(&e.kept_at.to_be_bytes());
        out.extend_from_slice(&e.confirmed_at.to_be_bytes());
        put_bytes(&mut out, &e.material);
    }
    out.extend_from_slice(&(absent.len() as u32).to_be_bytes());
    for ((key_id, owner), confirmed_at) in absent {
        put_bytes(&mut out, key_id.as_bytes());
        put_bytes(&mut out, owner.as_bytes());
        out.extend_from_slice(&confirmed_at.to_be_bytes());
    }
    debug_assert_eq!(out.len(), len);
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

fn decode(plain: &[u8]) -> Option<(Entries, Absent)> {
    let mut r = Reader(plain);
    let count = r.u32()?;
    let mut entries = Entries::new();
    for _ in 0..count {
        let key_id = r.string()?;
        let owner = r.string()?;
        let key_type = KeyType::parse(&r.string()?).ok()?;
        let uid = r.string()?;
        let server = r.string()?;
        let kept_at = r.u64()?;
        let confirmed_at = r.u64()?;
        let material = Zeroizing::new(r.bytes()?.to_vec());
        key_type.check_len(material.len()).ok()?;
        entries.insert(
            (key_id, owner),
            Entry {
                key_type,
                material,
                uid,
                server,
                kept_at,
                confirmed_at,
            },
        );
    }
    let count = r.u32()?;
    let mut absent = Absent::new();
    for _ in 0..count {
        let key_id = r.string()?;
        let owner = r.string()?;
        absent.insert((key_id, owner), r.u64()?);
    }
    r.0.is_empty().then_some((entries, absent))
}

fn aead(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

/// The whole file for `entries`, sealed under `key`.
pub fn seal(
    key: &[u8; 32],
    binding: &Binding,
    written: u64,
    entries: &Entries,
    absent: &Absent,
) -> Result<Vec<u8>, SealedError> {
    let header = header(binding, written);
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(header.as_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SealedError::Random)?;
    let mut sealed = encode(entries, absent);
    aead(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&out[..]),
            &mut *sealed,
        )
        .map_err(|_| SealedError::Random)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The header of a file, without opening its entries.
pub fn read_header(path: &Path, bytes: &[u8]) -> Result<(Binding, u64, usize), SealedError> {
    let bad = |why: &str| SealedError::Damaged {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(bad("it does not start like a keyring_okv sealed key cache"));
    }
    let len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let end = 12usize
        .checked_add(len)
        .filter(|&e| e + NONCE_LEN <= bytes.len())
        .ok_or_else(|| bad("it is cut short"))?;
    let text = std::str::from_utf8(&bytes[12..end]).map_err(|_| bad("its header is not text"))?;
    let (binding, written) = parse_header(path, text)?;
    Ok((binding, written, end))
}

/// Opens a whole file.
pub fn open(path: &Path, key: &[u8; 32], bytes: &[u8]) -> Result<Contents, SealedError> {
    let (binding, written, end) = read_header(path, bytes)?;
    let nonce: [u8; NONCE_LEN] = bytes[end..end + NONCE_LEN].try_into().unwrap();
    let mut sealed = Zeroizing::new(bytes[end + NONCE_LEN..].to_vec());
    let plain = aead(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&bytes[..end]),
            &mut sealed,
        )
        .map_err(|_| SealedError::WrongKey {
            path: path.to_path_buf(),
        })?;
    let (entries, absent) = decode(plain).ok_or_else(|| SealedError::Damaged {
        path: path.to_path_buf(),
        why: "its entries do not decode although they authenticate".into(),
    })?;
    Ok(Contents {
        binding,
        written,
        entries,
        absent,
    })
}

/// Reads the file, after checking that it is a regular file of this account that nobody else
/// can read or change. None when there is no file.
///
/// The file is opened once, without following a symbolic link and without blocking (a FIFO put
/// in its place must not hang the server's start), and every check is made on that descriptor,
/// so nothing can be swapped in between the check and the read.
pub fn read(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, SealedError> {
    read_checked(path, Owner::ThisAccount)
}

/// Whose file [`read_checked`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The account this process runs as (the server).
    ThisAccount,
    /// Any account (the admin tool shows the server's file, and its owner).
    Any,
}

/// As [`read`], with the owner check `owner`.
pub fn read_checked(path: &Path, owner: Owner) -> Result<Option<Zeroizing<Vec<u8>>>, SealedError> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    let io = |source: std::io::Error| SealedError::Io {
        path: path.to_path_buf(),
        what: "read",
        source,
    };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => std::fs::File::from(fd),
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => return Err(not_regular(path)),
        Err(e) => return Err(io(e.into())),
    };
    let meta = file.metadata().map_err(io)?;
    check_owner_and_mode(path, &meta, owner)?;
    if meta.len() > MAX_FILE {
        return Err(SealedError::Damaged {
            path: path.to_path_buf(),
            why: format!("it is {} bytes long", meta.len()),
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(Some(bytes))
}

fn not_regular(path: &Path) -> SealedError {
    SealedError::Permissions {
        path: path.to_path_buf(),
        why: "it is not a regular file (a symbolic link, a directory, a FIFO or a device)".into(),
        fix: "remove it; the cache is written again while a KMIP server answers".into(),
    }
}

fn check_owner_and_mode(
    path: &Path,
    meta: &std::fs::Metadata,
    owner: Owner,
) -> Result<(), SealedError> {
    use std::os::unix::fs::MetadataExt;
    if !meta.file_type().is_file() {
        return Err(not_regular(path));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SealedError::Permissions {
            path: path.to_path_buf(),
            why: format!("its mode {mode:03o} lets other accounts read or change it"),
            fix: format!(
                "run 'chmod 600 {}' if nobody else has read it, otherwise remove it (keyring-okv sealed-cache remove)",
                path.display()
            ),
        });
    }
    let me = own_uid();
    if owner == Owner::ThisAccount && meta.uid() != me {
        return Err(SealedError::Permissions {
            path: path.to_path_buf(),
            why: format!(
                "it belongs to user id {}, not to this process's account ({me})",
                meta.uid()
            ),
            fix: format!(
                "it must belong to the account the database server runs as (user id {me}): 'chown' it to that account if that account wrote it, otherwise remove it"
            ),
        });
    }
    Ok(())
}

/// The account files this process creates belong to (its effective user id), from the kernel:
/// not from /proc, which is missing under mysqld's own --chroot.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// A name for the next temporary file beside `path` that no other writer uses: the process, a
/// counter of this process and random bits (two caches in one process, or a process that
/// reused a pid, never share one).
fn temporary_name(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut random = [0u8; 8];
    let _ = SystemRandom::new().fill(&mut random);
    let dir = path.parent().unwrap_or(Path::new("."));
    dir.join(format!(
        ".{}.{}.{}.{:016x}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        u64::from_ne_bytes(random)
    ))
}

/// How long a writer waits for another process's write of the same file.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The lock that serialises writers of one file across processes: `flock` on a file beside it
/// (`.<name>.lock`, never renamed, so every writer locks the same inode). Released on drop.
pub struct WriteLock(#[allow(dead_code)] std::fs::File);

/// The lock file of `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    dir.join(format!(
        ".{}.lock",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ))
}

/// Takes the write lock of `path`, waiting at most [`LOCK_WAIT`] for another writer (which
/// holds it for one read and one write of a small file).
pub fn lock(path: &Path) -> Result<WriteLock, SealedError> {
    use rustix::fs::{FlockOperation, Mode, OFlags};
    let lock = lock_path(path);
    let io = |source: std::io::Error| SealedError::Io {
        path: lock.clone(),
        what: "lock",
        source,
    };
    let flags =
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = std::fs::File::from(
        rustix::fs::open(&lock, flags, Mode::from_raw_mode(0o600)).map_err(|e| io(e.into()))?,
    );
    let meta = file.metadata().map_err(io)?;
    check_owner_and_mode(&lock, &meta, Owner::ThisAccount)?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(WriteLock(file)),
            Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                // Another process writes the file; that takes milliseconds.
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(SealedError::Locked {
                    path: path.to_path_buf(),
                    waited: LOCK_WAIT.as_secs(),
                });
            }
            Err(e) => return Err(io(e.into())),
        }
    }
}

/// Writes `bytes` as the file: temporary file (0600), fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SealedError> {
    let io = |what: &'static str| {
        move |source| SealedError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temporary_name(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut f = options.open(&tmp).map_err(io("create"))?;
        f.write_all(bytes).map_err(io("write"))?;
        f.sync_all().map_err(io("flush"))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io("rename"))?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().map_err(io("flush the directory of"))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            product: "keyring_okv".into(),
            identity: "CN=client".into(),
            servers: vec!["127.0.0.1:5696".into(), "127.0.0.2:5696".into()],
        }
    }

    fn entries() -> Entries {
        let mut e = Entries::new();
        e.insert(
            ("INNODBKey-1".into(), "".into()),
            Entry {
                key_type: KeyType::Aes,
                material: Zeroizing::new(vec![0xA5; 32]),
                uid: "17".into(),
                server: "127.0.0.1:5696".into(),
                kept_at: 100,
                confirmed_at: 200,
            },
        );
        e
    }

    #[test]
    fn round_trip_and_no_plain_key_bytes() {
        let key = [7u8; 32];
        let mut absent = Absent::new();
        absent.insert(("MySQLReplicationKey_x_old".into(), "".into()), 250);
        let bytes = seal(&key, &binding(), 300, &entries(), &absent).unwrap();
        assert_eq!(open(Path::new("f"), &key, &bytes).unwrap().absent, absent);
        assert!(!bytes.windows(8).any(|w| w == [0xA5; 8]));
        let c = open(Path::new("f"), &key, &bytes).unwrap();
        assert_eq!(c.binding, binding());
        assert_eq!(c.written, 300);
        let e = &c.entries[&("INNODBKey-1".to_string(), String::new())];
        assert_eq!(&e.material[..], &[0xA5; 32]);
        assert_eq!(
            (e.kept_at, e.confirmed_at, e.uid.as_str()),
            (100, 200, "17")
        );
    }

    #[test]
    fn another_key_or_a_changed_byte_is_refused() {
        let key = [7u8; 32];
        let bytes = seal(&key, &binding(), 300, &entries(), &Absent::new()).unwrap();
        assert!(matches!(
            open(Path::new("f"), &[8u8; 32], &bytes),
            Err(SealedError::WrongKey { .. })
        ));
        for i in [9, 20, bytes.len() - 1] {
            let mut changed = bytes.clone();
            changed[i] ^= 1;
            assert!(open(Path::new("f"), &key, &changed).is_err(), "byte {i}");
        }
        assert!(open(Path::new("f"), &key, &bytes[..bytes.len() / 2]).is_err());
    }
}
