//! The sealed key cache (opt-in): the keys this server has fetched or made, kept in one
//! encrypted file so that a restart while no KMIP server answers can still open the data.
//!
//! Rules (documented in the security notes):
//! - The file is AES-256-GCM under a key derived from ssl/key.pem (`file.rs`), bound to the
//!   product, the client identity and the server list; mode 0600, this account's, refused
//!   otherwise.
//! - Keys are served from it only when no KMIP server answers at all (`is_unreachable`): a
//!   server that answers and refuses (a revoked certificate, a key not found) is obeyed.
//! - Served keys are read-only: writes go to the KMIP server or fail.
//! - Each key carries when a KMIP server last said it is the key; past the maximum age it is
//!   not served.
//! - While a server answers, every cached key is confirmed again (`confirm`): a key revoked,
//!   destroyed or renamed on the KMIP server is dropped at once, and the log says which.
//! - Confirmations and writes that raced are ordered by an epoch, so an older answer never
//!   undoes a newer keep or forget.
//! - Several processes use one file (the server, `mariadb-backup`, a second cache while the
//!   configuration is replaced): writers take a lock beside the file, read what is on disk and
//!   merge it per key, the newest confirmation winning (a key known absent, or dropped, counts
//!   as a confirmation of its absence), so no writer loses another's entry. A process that only
//!   reads keys (a backup tool) never creates or rewrites the file, and a cache that replaces
//!   another in one process starts writing only once the old one has stopped.
//! - The file follows the client identity: when ssl/key.pem is renewed while the server runs,
//!   the file is sealed again under the new key at once (`renew`).
//! - A confirmation time in the future (a clock set back since) counts as no confirmation.

mod error;
pub mod file;
pub mod for_keyring;
mod keeper;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

pub use error::SealedError;
pub use file::{Absent, Binding, Entries, Entry};

/// A key a KMIP server answered for this recently (a fetch, or the key cache's fill at start)
/// is not asked again by a confirmation: the answer is that fresh already.
const JUST_CONFIRMED_SECS: u64 = 2;

/// Keys remembered as absent, at most (mysqld asks for a few at start; keyring_udf misses are
/// not worth a growing file).
const MAX_ABSENT: usize = 1024;

/// A time written as a confirmation, as a confirmation: one in the future (the clock was set
/// back since, or another host's clock was ahead) proves nothing.
fn confirmed(t: u64, now: u64) -> u64 {
    if t > now { 0 } else { t }
}

/// A confirmation time renewed at `t`.
fn renewed(old: u64, t: u64) -> u64 {
    confirmed(old, t).max(t)
}

/// What the cache answers for a key while no KMIP server does.
pub enum Served {
    Key(FetchedKey),
    /// The KMIP server said there is no such key, and no later answer said otherwise.
    Absent,
}
pub use keeper::Keeper;

use crate::config::ConfDir;
use crate::keyring::FetchedKey;

/// Which library keeps the cache: its file name and log prefix, and the setting that turns it
/// on (named in messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Product {
    pub name: &'static str,
    pub setting: &'static str,
}

pub const PLUGIN: Product = Product {
    name: "keyring_okv",
    setting: "keyring_okv_sealed_cache_max_age_hours",
};
pub const COMPONENT: Product = Product {
    name: "component_keyring_okv",
    setting: "sealed_cache_max_age_hours",
};
pub const MARIADB: Product = Product {
    name: "kmip_key_management",
    setting: "kmip_key_management_sealed_cache_max_age_hours",
};

/// Where the sealed files are kept unless the `sealed_cache_dir` setting says otherwise: the
/// directory Debian's MySQL packages make for keyring data, which the server may write under
/// its AppArmor profile and, for MariaDB, under `ProtectSystem=full` (unlike /etc).
pub const DEFAULT_DIR: &str = "/var/lib/mysql-keyring";

/// The file of `product` in the directory `dir` (the `sealed_cache_dir` setting).
pub fn path_in(dir: &Path, product: &Product) -> PathBuf {
    dir.join(format!("{}.sealed", product.name))
}

/// Programs that load a keyring or encryption plugin to read keys only (backup tools): they never
/// create or rewrite the server's sealed file, which they often run as another account to.
const READ_ONLY_PROGRAMS: [&str; 4] =
    ["mariadb-backup", "mariabackup", "xtrabackup", "mysqlbackup"];

/// Whether this process may write the sealed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The database server: keeps the file up to date.
    Writer,
    /// A backup tool: reads the file, never creates or rewrites it.
    Reader,
}

impl Access {
    /// Reader in a backup tool (by the program's name), Writer otherwise.
    pub fn of_this_process() -> Access {
        let program = std::env::args_os()
            .next()
            .map(PathBuf::from)
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        Self::of_program(&program)
    }

    pub fn of_program(name: &str) -> Access {
        if READ_ONLY_PROGRAMS.contains(&name) {
            Access::Reader
        } else {
            Access::Writer
        }
    }
}

/// What is known of the file on disk, for the status (`Sealed_cache_file`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FileState {
    /// It holds what this cache holds, sealed under the identity in force.
    Ok,
    /// Nothing written yet.
    #[default]
    Absent,
    /// The last write failed (the reason); the keys held in memory are not in the file.
    Unwritable(String),
    /// The file does not open under the identity in force (another key.pem, another client
    /// or server list); it is replaced at the next write.
    OtherIdentity(String),
    /// The file is damaged; it is replaced at the next write.
    Damaged(String),
    /// The file was refused (its owner or mode; the reason): it is neither read nor replaced
    /// until the DBA fixes it.
    Refused(String),
    /// This process only reads the file (a backup tool).
    ReadOnly,
}

impl FileState {
    /// The status value.
    pub fn code(&self) -> &'static str {
        match self {
            FileState::Ok => "ok",
            FileState::Absent => "absent",
            FileState::Unwritable(_) => "unwritable",
            FileState::OtherIdentity(_) => "other_identity",
            FileState::Damaged(_) => "damaged",
            FileState::Refused(_) => "refused",
            FileState::ReadOnly => "read_only",
        }
    }

    /// Why the file cannot stand in for a KMIP server, when that is the case.
    pub fn problem(&self) -> Option<&str> {
        match self {
            FileState::Unwritable(why)
            | FileState::OtherIdentity(why)
            | FileState::Damaged(why)
            | FileState::Refused(why) => Some(why),
            FileState::Ok | FileState::Absent | FileState::ReadOnly => None,
        }
    }
}

/// A key as [`SealedCache::known_objects`] lists it: key id, owner, KMIP object, server.
pub type KnownObject = (String, String, String, String);

/// Answers a batch gave, by (key id, owner).
pub type Batched = std::collections::HashMap<(String, String), Answer>;

/// A batch that answers nothing: every key is asked on its own.
fn no_batch(_: &[KnownObject]) -> Batched {
    Batched::new()
}

/// What a KMIP server said of a cached key when it was confirmed.
pub enum Answer {
    /// The key under that name now: its bytes, object and the server that named it.
    Key {
        key: FetchedKey,
        uid: String,
        server: String,
    },
    /// The entry is not this configuration's to confirm (another MariaDB namespace): it is left
    /// as it is, and the reason is logged once.
    NotMine(String),
    /// No usable key of that name (removed, revoked, destroyed).
    Gone,
    /// No server answered.
    Unreachable(String),
    /// The server answered with an error; the key stays, unconfirmed.
    Failed(String),
}

/// What the status variables show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub keys: usize,
    /// Keys are being answered from the file because no KMIP server answers.
    pub serving: bool,
    /// Seconds since the least recently confirmed key was confirmed (0 without keys).
    pub oldest_confirmation_age: u64,
    /// Keys dropped because the KMIP server no longer has them.
    pub dropped: u64,
    /// When the last complete confirmation finished, Unix seconds (0 = not yet).
    pub last_confirmed: u64,
    /// The file on disk.
    pub file: FileState,
}

struct State {
    /// The AES key of the file, from the identity in force; the ones before a renewal, to read a
    /// file another process has not sealed again yet.
    key: Zeroizing<[u8; 32]>,
    previous_keys: Vec<Zeroizing<[u8; 32]>>,
    binding: Binding,
    entries: Entries,
    absent: Absent,
    /// Bumped by every keep and forget, so that a confirmation that started before one does
    /// not apply its older answer to that key.
    epoch: u64,
    /// Which epoch last changed each key.
    changed_at: std::collections::HashMap<(String, String), u64>,
    /// Confirmation times updated in memory and not yet written.
    dirty: bool,
    /// Since when keys are answered from the file (Unix seconds).
    serving_since: Option<u64>,
    too_old_logged: bool,
    write_error_logged: bool,
    dropped: u64,
    last_confirmed: u64,
    closed: bool,
    /// The keeper is asked to confirm now (a server answered while serving).
    wake: bool,
    file: FileState,
    /// How many keys the file held when last written or read.
    file_keys: usize,
    /// Writes wait until the cache this one replaces has stopped (`start_writing`).
    writing: bool,
    /// Something changed while writes waited.
    unwritten: bool,
    /// Each key's record as this process last wrote or read the file (see `merge`).
    written: std::collections::HashMap<Id, Sig>,
    not_mine_logged: bool,
}

impl State {
    fn new(key: Zeroizing<[u8; 32]>, binding: Binding) -> State {
        State {
            key,
            previous_keys: Vec::new(),
            binding,
            entries: Entries::new(),
            absent: Absent::new(),
            epoch: 0,
            changed_at: Default::default(),
            dirty: false,
            serving_since: None,
            too_old_logged: false,
            write_error_logged: false,
            dropped: 0,
            last_confirmed: 0,
            closed: false,
            wake: false,
            file: FileState::Absent,
            file_keys: 0,
            writing: true,
            unwritten: false,
            written: Default::default(),
            not_mine_logged: false,
        }
    }

    /// Takes what other processes wrote since this one last wrote or read the file, per key:
    /// the later record wins; within one second (the file's resolution) a key known absent
    /// wins over a key, and two different objects cancel out (the key is taken as absent), so a
    /// merge never brings back a key another process removed: the safe side of a tie is a key
    /// that has to be read from the KMIP server again, never a key that may be gone.
    fn merge(&mut self, disk: file::Contents, now: u64) {
        let mut records: Vec<(Id, Record)> = Vec::new();
        for (id, entry) in disk.entries {
            records.push((id, Record::Key(entry)));
        }
        for (id, at) in disk.absent {
            records.push((id, Record::Absent(at)));
        }
        for (id, record) in records {
            if self.written.get(&id) == Some(&record.sig()) {
                continue; // what this process wrote (or read) itself: nothing new
            }
            let theirs = confirmed(record.time(), now);
            let ours = self.known_at(&id, now);
            let take = match (&record, self.entries.get(&id)) {
                _ if theirs > ours => true,
                _ if theirs < ours => false,
                // Same second, or this process knows nothing of the key (ours = 0 only then).
                (Record::Absent(_), Some(_)) => true,
                (Record::Key(e), Some(mine)) if e.uid != mine.uid => {
                    self.entries.remove(&id);
                    self.absent.insert(id, theirs);
                    continue;
                }
                (Record::Key(_), None) => !self.absent.contains_key(&id),
                _ => false,
            };
            if take {
                match record {
                    Record::Key(entry) => {
                        self.absent.remove(&id);
                        self.entries.insert(id, entry);
                    }
                    Record::Absent(at) => {
                        self.entries.remove(&id);
                        self.absent.insert(id, at);
                    }
                }
            }
        }
    }

    /// When this process last learnt something of `id` (0: never).
    fn known_at(&self, id: &Id, now: u64) -> u64 {
        match (self.entries.get(id), self.absent.get(id)) {
            (Some(e), _) => confirmed(e.confirmed_at, now).max(1),
            (None, Some(at)) => confirmed(*at, now).max(1),
            (None, None) => 0,
        }
    }

    /// What the file holds now that this process wrote or read it.
    fn remember_written(&mut self) {
        self.written = self
            .entries
            .iter()
            .map(|(id, e)| (id.clone(), Sig::Key(e.uid.clone(), e.confirmed_at)))
            .chain(
                self.absent
                    .iter()
                    .map(|(id, at)| (id.clone(), Sig::Absent(*at))),
            )
            .collect();
    }
}

type Id = (String, String);

/// One key's record in a file.
enum Record {
    Key(Entry),
    Absent(u64),
}

/// A record without its key bytes, to tell whether the file still holds what this process
/// wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Sig {
    Key(String, u64),
    Absent(u64),
}

impl Record {
    fn time(&self) -> u64 {
        match self {
            Record::Key(e) => e.confirmed_at,
            Record::Absent(at) => *at,
        }
    }

    fn sig(&self) -> Sig {
        match self {
            Record::Key(e) => Sig::Key(e.uid.clone(), e.confirmed_at),
            Record::Absent(at) => Sig::Absent(*at),
        }
    }
}

pub struct SealedCache {
    path: PathBuf,
    access: Access,
    max_age: Duration,
    product: Product,
    /// Keep keys with an owner (keyring_udf's, a user's): only when asked.
    user_keys: bool,
    state: Mutex<State>,
    changed: Condvar,
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// "2 h 5 min", "40 s".
pub fn age_text(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} days {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn binding_text(b: &Binding) -> String {
    format!(
        "client '{}' and servers {}",
        b.identity,
        if b.servers.is_empty() {
            "(none)".to_string()
        } else {
            b.servers.join(",")
        }
    )
}

impl SealedCache {
    /// The cache of `product` for the configuration `conf`, its file in `dir` (the
    /// `sealed_cache_dir` setting), with what that file holds. A file that cannot be used is
    /// logged once and shows in the status ([`FileState`]): one with a wrong owner or mode is
    /// left alone, one that does not open for this configuration is replaced at the next write.
    pub fn open(
        conf: &ConfDir,
        product: Product,
        max_age_hours: u64,
        dir: &Path,
        access: Access,
    ) -> SealedCache {
        let binding = Binding {
            product: product.name.to_string(),
            identity: conf.identity.subject.clone(),
            servers: conf.servers.iter().map(ToString::to_string).collect(),
        };
        let key = conf.seal_root.key_for(product.name.as_bytes());
        Self::open_as(
            path_in(dir, &product),
            key,
            binding,
            product,
            max_age_hours,
            access,
        )
    }

    /// As [`open`](Self::open), with everything given (tests, the admin tool).
    pub fn open_at(
        path: PathBuf,
        key: Zeroizing<[u8; 32]>,
        binding: Binding,
        product: Product,
        max_age_hours: u64,
    ) -> SealedCache {
        Self::open_as(path, key, binding, product, max_age_hours, Access::Writer)
    }

    /// As [`open_at`](Self::open_at), for a process with `access`: a reader (a backup tool,
    /// often run as root or a backup account) reads the server's file whoever owns it, and
    /// never writes it.
    pub fn open_as(
        path: PathBuf,
        key: Zeroizing<[u8; 32]>,
        binding: Binding,
        product: Product,
        max_age_hours: u64,
        access: Access,
    ) -> SealedCache {
        let mut state = State::new(key, binding);
        let owner = match access {
            Access::Writer => file::Owner::ThisAccount,
            Access::Reader => file::Owner::Any,
        };
        match file::read_checked(&path, owner) {
            Ok(None) => {}
            Ok(Some(bytes)) => match file::open(&path, &state.key, &bytes) {
                Ok(c) if c.binding == state.binding => {
                    state.file_keys = c.entries.len();
                    state.entries = c.entries;
                    state.absent = c.absent;
                    state.file = FileState::Ok;
                    state.remember_written();
                }
                Ok(c) => {
                    let e = SealedError::OtherConfiguration {
                        path: path.clone(),
                        was: binding_text(&c.binding),
                        now: binding_text(&state.binding),
                    };
                    tracing::warn!("{}: {e}", product.name);
                    state.file = FileState::OtherIdentity(e.to_string());
                }
                Err(e @ SealedError::WrongKey { .. }) => {
                    tracing::warn!("{}: {e}", product.name);
                    state.file = FileState::OtherIdentity(e.to_string());
                }
                Err(e) => {
                    tracing::warn!("{}: {e}", product.name);
                    state.file = FileState::Damaged(e.to_string());
                }
            },
            Err(e) => {
                tracing::error!(
                    "{}: {e}; the sealed key cache serves nothing and writes nothing until this is fixed and the server restarts or its configuration is loaded again (SET GLOBAL keyring_okv_conf_dir, ALTER INSTANCE RELOAD KEYRING)",
                    product.name
                );
                state.file = FileState::Refused(e.to_string());
            }
        }
        if access == Access::Reader && matches!(state.file, FileState::Ok | FileState::Absent) {
            state.file = FileState::ReadOnly;
        }
        SealedCache {
            path,
            access,
            max_age: Duration::from_secs(max_age_hours.saturating_mul(3600)),
            product,
            user_keys: false,
            state: Mutex::new(state),
            changed: Condvar::new(),
        }
    }

    /// A cache that replaces another on the same file in this process: it writes nothing until
    /// [`start_writing`](Self::start_writing), once the other has stopped, so the old one's
    /// last write cannot come after the new one's.
    pub fn waiting_to_write(self) -> Self {
        self.state().writing = false;
        self
    }

    /// The cache this one replaces has stopped: what changed meanwhile is written now.
    pub fn start_writing(&self) {
        let mut state = self.state();
        state.writing = true;
        if std::mem::take(&mut state.unwritten) {
            self.write(&mut state);
        }
    }

    /// Seals the file again under each identity `client` reads anew from ssl/ (held weakly:
    /// a cache that is gone is not kept alive by its client).
    pub fn follow_identity_of(self: &std::sync::Arc<Self>, client: &crate::connector::KmipClient) {
        let cache = std::sync::Arc::downgrade(self);
        client.on_identity_renewed(move |conf| {
            if let Some(cache) = cache.upgrade() {
                cache.renew_from(conf);
            }
        });
    }

    /// [`renew`](Self::renew) from a configuration read again with a renewed identity.
    pub fn renew_from(&self, conf: &ConfDir) {
        self.renew(
            conf.seal_root.key_for(self.product.name.as_bytes()),
            &conf.identity.subject,
        );
    }

    /// The client identity was renewed (a new ssl/key.pem while the server runs): the file is
    /// sealed again at once under the key derived from it, so that a restart with the renewed
    /// key.pem can open it.
    pub fn renew(&self, key: Zeroizing<[u8; 32]>, identity: &str) {
        let mut state = self.state();
        if state.closed || (*state.key == *key && state.binding.identity == identity) {
            return;
        }
        let old = std::mem::replace(&mut state.key, key);
        state.previous_keys.insert(0, old);
        state.previous_keys.truncate(2);
        state.binding.identity = identity.to_string();
        tracing::info!(
            "{}: the client identity was renewed ('{identity}'); the sealed key cache {} is sealed again under it",
            self.product.name,
            self.path.display()
        );
        self.write(&mut state);
    }

    /// Keeps keys that have an owner too (keyring_udf keys, of a user); by default only the
    /// server's own keys (InnoDB, binary log: no owner) are kept.
    pub fn with_user_keys(mut self, on: bool) -> Self {
        self.user_keys = on;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The names of the cached keys.
    pub fn names(&self) -> Vec<(String, String)> {
        self.state().entries.keys().cloned().collect()
    }

    /// (key id, owner, KMIP unique identifier, server) of every cached key.
    pub fn known_objects(&self) -> Vec<(String, String, String, String)> {
        self.state()
            .entries
            .iter()
            .map(|((id, owner), e)| (id.clone(), owner.clone(), e.uid.clone(), e.server.clone()))
            .collect()
    }

    /// Records a key a KMIP server has just given or made; the file is written when something
    /// changed (a key seen again only has its confirmation time renewed).
    pub fn keep(&self, key_id: &str, owner: &str, key: &FetchedKey, uid: &str, server: &str) {
        if !owner.is_empty() && !self.user_keys {
            return;
        }
        let now = now_unix();
        let id = (key_id.to_string(), owner.to_string());
        let mut state = self.state();
        if state.closed {
            return;
        }
        if state.serving_since.is_some() {
            state.wake = true;
            self.changed.notify_all();
        }
        if let Some(e) = state.entries.get_mut(&id)
            && e.uid == uid
            && e.key_type == key.key_type
            && e.material[..] == key.material[..]
        {
            e.confirmed_at = renewed(e.confirmed_at, now);
            state.dirty = true;
            return;
        }
        state.epoch += 1;
        let epoch = state.epoch;
        state.changed_at.insert(id.clone(), epoch);
        state.absent.remove(&id);
        state.entries.insert(
            id,
            Entry {
                key_type: key.key_type,
                material: key.material.clone(),
                uid: uid.to_string(),
                server: server.to_string(),
                kept_at: now,
                confirmed_at: now,
            },
        );
        self.write(&mut state);
    }

    /// Drops a key that was removed, or that a KMIP server said is gone, and remembers that it
    /// is absent.
    pub fn forget(&self, key_id: &str, owner: &str) {
        let id = (key_id.to_string(), owner.to_string());
        let now = now_unix();
        let mut state = self.state();
        state.epoch += 1;
        let epoch = state.epoch;
        state.changed_at.insert(id.clone(), epoch);
        let mut changed = state.entries.remove(&id).is_some();
        let remember = changed || owner.is_empty() || self.user_keys;
        if remember {
            // Also when the list of absent names is full: a key removed here must not come
            // back from another process's older copy of the file.
            let room = changed || state.absent.len() < MAX_ABSENT;
            match state.absent.get_mut(&id) {
                Some(at) => {
                    *at = now;
                    state.dirty = true;
                }
                None if room => {
                    state.absent.insert(id, now);
                    changed = true;
                }
                None => {}
            }
        }
        if changed && !state.closed {
            self.write(&mut state);
        }
    }

    /// Writes the file from `state`, merged with what other processes wrote to it since; one log
    /// line for the first failure of a row, and the status says so until a write succeeds.
    fn write(&self, state: &mut State) {
        if self.access == Access::Reader {
            return;
        }
        if !state.writing {
            state.unwritten = true;
            return;
        }
        if let FileState::Refused(_) = state.file {
            return;
        }
        let result = self.merge_and_write(state);
        match result {
            Ok(()) => {
                state.dirty = false;
                state.file = FileState::Ok;
                state.file_keys = state.entries.len();
                state.remember_written();
                if std::mem::take(&mut state.write_error_logged) {
                    tracing::info!(
                        "{}: the sealed key cache {} is written again",
                        self.product.name,
                        self.path.display()
                    );
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut state.write_error_logged, true) {
                    tracing::error!(
                        "{}: {e}; until it is written, the keys fetched since are not in the sealed key cache and a restart while no KMIP server answers cannot use them",
                        self.product.name
                    );
                }
                state.file = FileState::Unwritable(e.to_string());
            }
        }
    }

    fn merge_and_write(&self, state: &mut State) -> Result<(), SealedError> {
        let _lock = file::lock(&self.path)?;
        let now = now_unix();
        if let Some(bytes) = file::read(&self.path)? {
            let opened = std::iter::once(&state.key)
                .chain(state.previous_keys.iter())
                .find_map(|key| file::open(&self.path, key, &bytes).ok());
            // A file of another product, server list or client (not this configuration's to
            // merge) or one that is damaged is replaced.
            if let Some(contents) = opened
                && contents.binding.product == state.binding.product
                && contents.binding.servers == state.binding.servers
            {
                state.merge(contents, now);
            }
        }
        let bytes = file::seal(
            &state.key,
            &state.binding,
            now,
            &state.entries,
            &state.absent,
        )?;
        file::write_atomically(&self.path, &bytes)
    }

    /// The key, answered from the file because no KMIP server answers (`cause`): the key, or
    /// that the KMIP server said there is none; an error past the maximum age, and when the
    /// cache cannot answer for that key (it says why: the file could not be used, or does not
    /// hold it). None once closed.
    pub fn serve(
        &self,
        key_id: &str,
        owner: &str,
        cause: &dyn std::fmt::Display,
    ) -> Result<Option<Served>, SealedError> {
        let now = now_unix();
        let mut state = self.state();
        if state.closed {
            return Ok(None);
        }
        let id = (key_id.to_string(), owner.to_string());
        let (confirmed_at, key) = match (state.entries.get(&id), state.absent.get(&id)) {
            (Some(e), _) => (
                e.confirmed_at,
                Served::Key(FetchedKey {
                    key_type: e.key_type,
                    material: e.material.clone(),
                }),
            ),
            (None, Some(at)) => (*at, Served::Absent),
            (None, None) => {
                let named = format!("sealed key cache {}: ", self.path.display());
                let why = match (&state.file, state.file.problem()) {
                    (_, Some(why)) => why.strip_prefix(&named).unwrap_or(why).to_string(),
                    (FileState::Absent, None) => {
                        "it has not been written yet (no key was fetched while a KMIP server answered)".to_string()
                    }
                    _ => "it holds no such key (it was not fetched while a KMIP server answered and this cache was on)".to_string(),
                };
                return Err(SealedError::CannotStandIn {
                    path: self.path.clone(),
                    key_id: key_id.to_string(),
                    cause: cause.to_string(),
                    why,
                });
            }
        };
        let age = match confirmed(confirmed_at, now) {
            // Confirmed "in the future": the clock was set back since, so nothing says when.
            0 => u64::MAX,
            t => now - t,
        };
        if age > self.max_age.as_secs() {
            let err = SealedError::TooOld {
                path: self.path.clone(),
                key_id: key_id.to_string(),
                age: if age == u64::MAX {
                    "at an unknown time (its confirmation time lies in the future: the clock was set back since)".to_string()
                } else {
                    format!("{} ago", age_text(age))
                },
                setting: self.product.setting,
                hours: self.max_age.as_secs() / 3600,
            };
            if !std::mem::replace(&mut state.too_old_logged, true) {
                tracing::error!("{}: {err}", self.product.name);
            }
            return Err(err);
        }
        if state.serving_since.is_none() {
            state.serving_since = Some(now);
            let oldest = oldest_age(&state.entries, now);
            tracing::warn!(
                "{}: no KMIP server answers ({cause}); answering keys read-only from the sealed key cache {} ({} keys, confirmed by a KMIP server at most {} ago; limit {}={} hours). Generating, storing, removing and rotating keys are refused until a KMIP server answers",
                self.product.name,
                self.path.display(),
                state.entries.len(),
                age_text(oldest),
                self.product.setting,
                self.max_age.as_secs() / 3600,
            );
        }
        Ok(Some(key))
    }

    /// Whether keys are being answered from the file.
    pub fn is_serving(&self) -> bool {
        self.state().serving_since.is_some()
    }

    /// The message of a write refused while the keys are served from the file: `error` is the
    /// write's own failure to reach a server.
    pub fn write_refused(&self, error: &dyn std::fmt::Display) -> String {
        format!(
            "keys are being served read-only from the sealed key cache {} because no KMIP server answers; generating, storing, removing and rotating keys need a KMIP server: {error}",
            self.path.display()
        )
    }

    /// Asks the KMIP server about every cached key (`ask`), drops those it no longer has, and
    /// renews the others. Returns the failure when no server answered.
    pub fn confirm(&self, ask: impl FnMut(&str, &str) -> Answer) -> Result<(), String> {
        self.confirm_older_than(no_batch, ask, JUST_CONFIRMED_SECS)
    }

    /// As [`confirm`](Self::confirm), the cached keys first asked together: `batch` gets them
    /// as [`known_objects`](Self::known_objects) lists them and answers for those it could
    /// (the MySQL libraries: every key's object read in one message, `Keyring::read_known`);
    /// only the keys it leaves out are asked one by one with `ask`.
    pub fn confirm_batched(
        &self,
        batch: impl FnOnce(&[KnownObject]) -> Batched,
        ask: impl FnMut(&str, &str) -> Answer,
    ) -> Result<(), String> {
        self.confirm_older_than(batch, ask, JUST_CONFIRMED_SECS)
    }

    /// [`confirm_batched`](Self::confirm_batched) of every key, also those answered for just
    /// now (tests).
    #[doc(hidden)]
    pub fn confirm_batched_now_for_tests(
        &self,
        batch: impl FnOnce(&[KnownObject]) -> Batched,
        ask: impl FnMut(&str, &str) -> Answer,
    ) -> Result<(), String> {
        self.confirm_older_than(batch, ask, 0)
    }

    /// [`confirm`](Self::confirm) of every key, also those answered for just now (tests).
    #[doc(hidden)]
    pub fn confirm_now_for_tests(
        &self,
        ask: impl FnMut(&str, &str) -> Answer,
    ) -> Result<(), String> {
        self.confirm_older_than(no_batch, ask, 0)
    }

    /// Moves every confirmation time `secs` into the past (tests of ages).
    #[doc(hidden)]
    pub fn backdate_for_tests(&self, secs: u64) {
        let mut state = self.state();
        for e in state.entries.values_mut() {
            e.confirmed_at = e.confirmed_at.saturating_sub(secs);
        }
        for at in state.absent.values_mut() {
            *at = at.saturating_sub(secs);
        }
    }

    fn confirm_older_than(
        &self,
        batch: impl FnOnce(&[KnownObject]) -> Batched,
        mut ask: impl FnMut(&str, &str) -> Answer,
        fresh: u64,
    ) -> Result<(), String> {
        let started = now_unix();
        let stale = |t: u64| started.saturating_sub(confirmed(t, started)) >= fresh;
        let (start_epoch, snapshot, absent): (u64, Vec<_>, Vec<_>) = {
            let state = self.state();
            let list = state
                .entries
                .iter()
                .filter(|(_, e)| stale(e.confirmed_at))
                .map(|(id, e)| {
                    (
                        id.clone(),
                        e.uid.clone(),
                        e.server.clone(),
                        e.material.clone(),
                        e.key_type,
                    )
                })
                .collect();
            let absent = state
                .absent
                .iter()
                .filter(|(_, t)| stale(**t))
                .map(|(id, _)| id.clone())
                .collect();
            (state.epoch, list, absent)
        };
        let mut outcomes = Vec::with_capacity(snapshot.len());
        let mut unreachable = None;
        let mut failed = 0usize;
        let mut not_mine = None;
        let listed: Vec<KnownObject> = snapshot
            .iter()
            .map(|(id, uid, server, ..)| (id.0.clone(), id.1.clone(), uid.clone(), server.clone()))
            .collect();
        let mut batched = if listed.is_empty() {
            Batched::new()
        } else {
            batch(&listed)
        };
        for (id, uid, _, material, key_type) in &snapshot {
            let answer = match batched.remove(id) {
                Some(answer) => answer,
                None => ask(&id.0, &id.1),
            };
            match answer {
                Answer::Key {
                    key,
                    uid: now_uid,
                    server,
                } => {
                    let same_bytes = key.key_type == *key_type && key.material[..] == material[..];
                    let outcome = match (same_bytes, &now_uid == uid) {
                        (true, true) => Outcome::Same,
                        // A standby that holds the same key under its own identifier: the
                        // key is the same, only where it is found changed.
                        (true, false) => Outcome::Moved(now_uid, server),
                        (false, _) => Outcome::Replaced(now_uid),
                    };
                    outcomes.push((id.clone(), uid.clone(), outcome));
                }
                Answer::Gone => outcomes.push((id.clone(), uid.clone(), Outcome::Gone)),
                Answer::NotMine(why) => not_mine = Some(why),
                Answer::Unreachable(why) => {
                    unreachable = Some(why);
                    break;
                }
                Answer::Failed(why) => {
                    failed += 1;
                    tracing::warn!(
                        "{}: key '{}' of the sealed key cache could not be confirmed: {why}",
                        self.product.name,
                        id.0
                    );
                }
            }
        }
        // Keys remembered as absent: still absent (renewed), or there now (forgotten: the next
        // read keeps it).
        let mut absent_outcomes = Vec::new();
        if unreachable.is_none() {
            for id in absent {
                match ask(&id.0, &id.1) {
                    Answer::Gone => absent_outcomes.push((id, true)),
                    Answer::Key { .. } => absent_outcomes.push((id, false)),
                    Answer::NotMine(why) => not_mine = Some(why),
                    Answer::Unreachable(why) => {
                        unreachable = Some(why);
                        break;
                    }
                    Answer::Failed(_) => failed += 1,
                }
            }
        }
        let mut state = self.state();
        if state.closed {
            return Ok(());
        }
        if let Some(why) = not_mine
            && !std::mem::replace(&mut state.not_mine_logged, true)
        {
            tracing::warn!(
                "{}: the sealed key cache {} holds keys this configuration does not confirm ({why}); they are kept as they are and not served",
                self.product.name,
                self.path.display()
            );
        }
        let mut changed = false;
        for (id, still_absent) in absent_outcomes {
            if state.changed_at.get(&id).is_some_and(|&e| e > start_epoch) {
                continue;
            }
            if still_absent {
                if let Some(at) = state.absent.get_mut(&id) {
                    *at = renewed(*at, started);
                    state.dirty = true;
                }
            } else if state.absent.remove(&id).is_some() {
                changed = true;
            }
        }
        for (id, uid, outcome) in outcomes {
            // A keep or forget since the confirmation started knows better.
            if state.changed_at.get(&id).is_some_and(|&e| e > start_epoch) {
                continue;
            }
            let Some(e) = state.entries.get_mut(&id) else {
                continue;
            };
            if e.uid != uid {
                continue;
            }
            let why = match outcome {
                Outcome::Same => {
                    e.confirmed_at = renewed(e.confirmed_at, started);
                    state.dirty = true;
                    continue;
                }
                Outcome::Moved(now_uid, server) => {
                    tracing::info!(
                        "{}: key '{}' of the sealed key cache is now KMIP object {now_uid} on {server} (was {uid}), with the same key bytes; kept",
                        self.product.name,
                        id.0
                    );
                    e.uid = now_uid;
                    e.server = server;
                    e.confirmed_at = renewed(e.confirmed_at, started);
                    changed = true;
                    continue;
                }
                Outcome::Gone => {
                    "the KMIP server no longer has it as an active key (revoked, destroyed or removed)"
                        .to_string()
                }
                Outcome::Replaced(now_uid) => {
                    format!("its name now belongs to KMIP object {now_uid}")
                }
            };
            state.entries.remove(&id);
            // Remembered as gone, so that another process's older copy does not bring it back.
            state.absent.insert(id.clone(), started);
            state.dropped += 1;
            changed = true;
            tracing::warn!(
                "{}: key '{}'{} (KMIP object {uid}) dropped from the sealed key cache: {why}",
                self.product.name,
                id.0,
                if id.1.is_empty() {
                    String::new()
                } else {
                    format!(" of owner '{}'", id.1)
                },
            );
        }
        if changed || state.dirty {
            self.write(&mut state);
        }
        if let Some(why) = unreachable {
            return Err(why);
        }
        if failed == 0 {
            state.last_confirmed = started;
        }
        if state.serving_since.take().is_some() {
            tracing::info!(
                "{}: a KMIP server answers again; keys come from it again, and the sealed key cache is confirmed ({} keys, {} dropped so far)",
                self.product.name,
                state.entries.len(),
                state.dropped
            );
        }
        Ok(())
    }

    pub fn status(&self) -> Status {
        let now = now_unix();
        let state = self.state();
        Status {
            // What the file holds: keys held in memory and not written are not "in the sealed
            // key cache".
            keys: match state.file {
                FileState::Ok | FileState::ReadOnly | FileState::Unwritable(_) => state.file_keys,
                _ => 0,
            },
            serving: state.serving_since.is_some(),
            oldest_confirmation_age: oldest_age(&state.entries, now),
            dropped: state.dropped,
            last_confirmed: state.last_confirmed,
            file: state.file.clone(),
        }
    }

    /// Writes what is pending and refuses everything after (unload, a new configuration).
    pub fn close(&self) {
        let mut state = self.state();
        if state.dirty {
            self.write(&mut state);
        }
        state.closed = true;
        state.entries.clear();
        self.changed.notify_all();
    }

    /// Waits until `timeout` passes, the cache is closed, or a confirmation is wanted now.
    /// True when closed.
    fn wait(&self, timeout: Duration) -> bool {
        let state = self.state();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| !s.closed && !s.wake)
            .unwrap_or_else(PoisonError::into_inner);
        state.wake = false;
        state.closed
    }
}

/// What a confirmation found for one cached key.
enum Outcome {
    Same,
    /// Same bytes, another object (and server).
    Moved(String, String),
    /// Another key holds the name now.
    Replaced(String),
    Gone,
}

/// Seconds since the least recently confirmed entry was confirmed (a time in the future counts
/// as never).
fn oldest_age(entries: &Entries, now: u64) -> u64 {
    entries
        .values()
        .map(|e| now - confirmed(e.confirmed_at, now))
        .max()
        .unwrap_or(0)
}

impl std::fmt::Debug for SealedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCache")
            .field("path", &self.path)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}
