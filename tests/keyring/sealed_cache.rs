//! The sealed key cache's rules, without a server: the order of keeps, forgets and
//! confirmations, several caches and several processes on one file, a renewed identity,
//! answers that are not about the key, clocks set back, and files that must not be trusted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};

use okv_core::keyring::{FetchedKey, KeyType};
use okv_core::sealed::{
    self, Access, Answer, Binding, FileState, SealedCache, SealedError, Served, file,
};
use zeroize::Zeroizing;

const PRODUCT: sealed::Product = sealed::PLUGIN;

fn binding(identity: &str) -> Binding {
    Binding {
        product: PRODUCT.name.into(),
        identity: identity.into(),
        servers: vec!["127.0.0.1:5696".into()],
    }
}

fn aes(byte: u8) -> FetchedKey {
    FetchedKey {
        key_type: KeyType::Aes,
        material: Zeroizing::new(vec![byte; 32]),
    }
}

fn key_of(byte: u8) -> Zeroizing<[u8; 32]> {
    Zeroizing::new([byte; 32])
}

fn open(path: &Path) -> SealedCache {
    SealedCache::open_at(path.to_path_buf(), key_of(1), binding("CN=a"), PRODUCT, 24)
}

fn open_reader(path: &Path) -> SealedCache {
    SealedCache::open_as(
        path.to_path_buf(),
        key_of(1),
        binding("CN=a"),
        PRODUCT,
        24,
        Access::Reader,
    )
}

fn path_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("keyring_okv.sealed")
}

/// What the file on disk holds, opened as the server would.
fn on_disk(path: &Path, key: u8, identity: &str) -> file::Contents {
    let bytes = file::read(path).unwrap().expect("a file");
    let c = file::open(path, &key_of(key), &bytes).expect("it opens");
    assert_eq!(c.binding, binding(identity));
    c
}

fn served(cache: &SealedCache, id: &str) -> Option<Vec<u8>> {
    match cache.serve(id, "", &"test outage").unwrap() {
        Some(Served::Key(k)) => Some(k.material.to_vec()),
        Some(Served::Absent) | None => None,
    }
}

#[test]
fn a_keep_during_a_confirmation_is_not_undone_by_its_older_answer() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&path_in(&dir));
    cache.keep("k", "", &aes(1), "uid-1", "s");
    // The confirmation started before the key was replaced; its answer ("gone") is older.
    let mut first = true;
    let result = cache.confirm_now_for_tests(|id, _| {
        if first {
            first = false;
            cache.keep(id, "", &aes(2), "uid-2", "s");
        }
        Answer::Gone
    });
    assert!(result.is_ok());
    assert_eq!(served(&cache, "k"), Some(vec![2; 32]));
    assert_eq!(cache.status().dropped, 0);
}

#[test]
fn a_forget_is_remembered_and_a_later_keep_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let cache = open(&path);
    cache.keep("k", "", &aes(1), "uid-1", "s");
    cache.forget("k", "");
    assert!(matches!(
        cache.serve("k", "", &"outage").unwrap(),
        Some(Served::Absent)
    ));
    cache.keep("k", "", &aes(3), "uid-3", "s");
    assert_eq!(served(&cache, "k"), Some(vec![3; 32]));
    let c = on_disk(&path, 1, "CN=a");
    assert!(c.absent.is_empty());
    assert_eq!(c.entries.len(), 1);
}

/// Another cache read the key before it was removed, then writes: the file's record of the
/// removal (in the same second, or later) wins over that cache's older copy.
#[test]
fn a_key_removed_by_one_cache_is_not_brought_back_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let a = open(&path);
    a.keep("k", "", &aes(1), "uid-1", "s");
    let b = open(&path);
    assert_eq!(served(&b, "k"), Some(vec![1; 32]));
    a.forget("k", "");
    b.keep("j", "", &aes(2), "uid-2", "s");
    let c = on_disk(&path, 1, "CN=a");
    assert!(c.absent.contains_key(&("k".to_string(), String::new())));
    assert!(!c.entries.contains_key(&("k".to_string(), String::new())));
    assert!(c.entries.contains_key(&("j".to_string(), String::new())));
    // And b itself no longer serves it.
    assert_eq!(served(&b, "k"), None);
}

#[test]
fn answers_that_are_not_about_the_key_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&path_in(&dir));
    cache.keep("k", "", &aes(1), "uid-1", "s");
    cache.backdate_for_tests(3600);
    assert!(
        cache
            .confirm_now_for_tests(|_, _| Answer::Failed("General Failure".into()))
            .is_ok()
    );
    assert_eq!(served(&cache, "k"), Some(vec![1; 32]));
    assert!(
        cache
            .confirm_now_for_tests(|_, _| Answer::Unreachable("refused".into()))
            .is_err()
    );
    assert_eq!(served(&cache, "k"), Some(vec![1; 32]));
    assert_eq!(cache.status().dropped, 0);
    // Still an hour old: neither answer confirmed it.
    assert!(cache.status().oldest_confirmation_age >= 3600);
}

#[test]
fn the_same_bytes_under_another_identifier_update_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let cache = open(&path);
    cache.keep("k", "", &aes(1), "uid-1", "primary");
    cache.backdate_for_tests(3600);
    cache
        .confirm_now_for_tests(|_, _| Answer::Key {
            key: aes(1),
            uid: "uid-standby".into(),
            server: "standby".into(),
        })
        .unwrap();
    assert_eq!(cache.status().dropped, 0);
    let c = on_disk(&path, 1, "CN=a");
    let e = &c.entries[&("k".to_string(), String::new())];
    assert_eq!(
        (e.uid.as_str(), e.server.as_str()),
        ("uid-standby", "standby")
    );
    // Other bytes under the name: another key, dropped.
    cache.backdate_for_tests(3600);
    cache
        .confirm_now_for_tests(|_, _| Answer::Key {
            key: aes(9),
            uid: "uid-9".into(),
            server: "standby".into(),
        })
        .unwrap();
    assert_eq!(cache.status().dropped, 1);
    assert_eq!(served(&cache, "k"), None);
}

#[test]
fn an_entry_of_another_namespace_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&path_in(&dir));
    cache.keep("k", "", &aes(1), "uid-1", "s");
    cache.backdate_for_tests(3600);
    cache
        .confirm_now_for_tests(|_, _| Answer::NotMine("another namespace".into()))
        .unwrap();
    assert_eq!(cache.status().dropped, 0);
    assert_eq!(served(&cache, "k"), Some(vec![1; 32]));
}

#[test]
fn a_confirmation_time_in_the_future_counts_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let mut entries = sealed::Entries::new();
    let ahead = sealed::now_unix() + 7 * 24 * 3600;
    entries.insert(
        ("k".into(), String::new()),
        sealed::Entry {
            key_type: KeyType::Aes,
            material: Zeroizing::new(vec![1; 32]),
            uid: "uid-1".into(),
            server: "s".into(),
            kept_at: ahead,
            confirmed_at: ahead,
        },
    );
    let bytes = file::seal(
        &key_of(1),
        &binding("CN=a"),
        ahead,
        &entries,
        &sealed::Absent::new(),
    )
    .unwrap();
    file::write_atomically(&path, &bytes).unwrap();
    let cache = open(&path);
    let err = match cache.serve("k", "", &"outage") {
        Err(e) => e,
        Ok(_) => panic!("a key confirmed 'in the future' was served"),
    };
    assert!(matches!(err, SealedError::TooOld { .. }), "{err}");
    assert!(err.to_string().contains("in the future"), "{err}");
    assert!(cache.status().oldest_confirmation_age > 24 * 3600);
    // A real confirmation renews it to now, not to the future time.
    cache
        .confirm_now_for_tests(|_, _| Answer::Key {
            key: aes(1),
            uid: "uid-1".into(),
            server: "s".into(),
        })
        .unwrap();
    assert_eq!(served(&cache, "k"), Some(vec![1; 32]));
    let c = on_disk(&path, 1, "CN=a");
    assert!(c.entries[&("k".to_string(), String::new())].confirmed_at <= sealed::now_unix());
}

#[test]
fn a_renewed_identity_seals_the_file_again_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let cache = open(&path);
    cache.keep("k", "", &aes(1), "uid-1", "s");
    cache.renew(key_of(2), "CN=a-renewed");
    let c = on_disk(&path, 2, "CN=a-renewed");
    assert_eq!(c.entries.len(), 1);
    assert!(matches!(
        file::open(&path, &key_of(1), &file::read(&path).unwrap().unwrap()),
        Err(SealedError::WrongKey { .. })
    ));
    assert_eq!(cache.status().file, FileState::Ok);
    // The next start, with the renewed key.pem, serves from it.
    let next = SealedCache::open_at(
        path.clone(),
        key_of(2),
        binding("CN=a-renewed"),
        PRODUCT,
        24,
    );
    assert_eq!(served(&next, "k"), Some(vec![1; 32]));
}

#[test]
fn a_second_cache_on_the_same_file_writes_only_once_the_first_has_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let old = open(&path);
    old.keep("a", "", &aes(1), "uid-a", "s");
    let new = open(&path).waiting_to_write();
    new.keep("b", "", &aes(2), "uid-b", "s");
    // Nothing of the new one's is on disk yet.
    assert_eq!(on_disk(&path, 1, "CN=a").entries.len(), 1);
    old.keep("c", "", &aes(3), "uid-c", "s");
    old.close();
    new.start_writing();
    let c = on_disk(&path, 1, "CN=a");
    let names: Vec<&str> = c.entries.keys().map(|(id, _)| id.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn a_backup_tool_never_creates_or_rewrites_the_file() {
    assert_eq!(Access::of_program("mariadb-backup"), Access::Reader);
    assert_eq!(Access::of_program("mariabackup"), Access::Reader);
    assert_eq!(Access::of_program("mariadbd"), Access::Writer);
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let reader = open_reader(&path);
    reader.keep("k", "", &aes(1), "uid-1", "s");
    reader.close();
    assert!(!path.exists(), "a reader created the file");
    assert_eq!(reader.status().file, FileState::ReadOnly);

    let server = open(&path);
    server.keep("k", "", &aes(1), "uid-1", "s");
    // The server's file belongs to its account; a backup tool run as another reads it too.
    std::os::unix::fs::chown(&path, Some(4242), Some(4242)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let reader = open_reader(&path);
    assert_eq!(reader.status().file, FileState::ReadOnly);
    assert_eq!(served(&reader, "k"), Some(vec![1; 32]));
    reader.keep("other", "", &aes(2), "uid-2", "s");
    reader.forget("k", "");
    reader.close();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a reader rewrote the file"
    );
}

#[test]
fn a_file_that_cannot_be_written_shows_in_the_status_and_holds_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("keyring_okv.sealed");
    let cache = open(&path);
    cache.keep("k", "", &aes(1), "uid-1", "s");
    let status = cache.status();
    assert_eq!(status.file.code(), "unwritable");
    assert_eq!(
        status.keys, 0,
        "keys only in memory are not in the sealed cache"
    );
}

#[test]
fn a_start_that_cannot_use_the_file_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    open(&path).keep("k", "", &aes(1), "uid-1", "s");
    // key.pem replaced while the server was down: the file does not open.
    let cache = SealedCache::open_at(path.clone(), key_of(7), binding("CN=a"), PRODUCT, 24);
    assert_eq!(cache.status().file.code(), "other_identity");
    let err = match cache.serve("k", "", &"refused") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("served from a file that does not open"),
    };
    assert!(err.contains("cannot stand in"), "{err}");
    assert!(err.contains("key.pem"), "{err}");
}

#[test]
fn links_fifos_and_open_files_are_refused_without_blocking() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    // A FIFO: opening it for reading would block until a writer comes.
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    let cache = open(&path);
    assert_eq!(cache.status().file.code(), "refused");
    std::fs::remove_file(&path).unwrap();

    let target = dir.path().join("elsewhere");
    open(&target).keep("k", "", &aes(1), "uid-1", "s");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert_eq!(open(&path).status().file.code(), "refused");
    std::fs::remove_file(&path).unwrap();

    open(&path).keep("k", "", &aes(1), "uid-1", "s");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = open(&path);
    assert_eq!(refused.status().file.code(), "refused");
    // A refused file is left for the DBA, not replaced behind their back.
    refused.keep("other", "", &aes(2), "uid-2", "s");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

/// Several caches on one file in one process, each writing its own keys and removing some of
/// the others' at once, many times over: every key kept by someone and removed by nobody is in
/// the file at the end, and the file always opens.
#[test]
fn caches_side_by_side_in_one_process_lose_no_entry() {
    for round in 0..5 {
        caches_side_by_side(round);
    }
}

fn caches_side_by_side(round: usize) {
    const CACHES: usize = 4;
    const KEYS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let barrier = Arc::new(Barrier::new(CACHES));
    let threads: Vec<_> = (0..CACHES)
        .map(|c| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let cache = open(&path);
                barrier.wait();
                for k in 0..KEYS {
                    cache.keep(&format!("c{c}-k{k}"), "", &aes(k as u8), "uid", "s");
                    if k % 10 == 9 {
                        // A key this cache removes (it kept it itself).
                        cache.forget(&format!("c{c}-k{}", k - 1), "");
                    }
                }
                cache.close();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = on_disk(&path, 1, "CN=a");
    for cache in 0..CACHES {
        for k in 0..KEYS {
            let id = (format!("c{cache}-k{k}"), String::new());
            let removed = k % 10 == 8;
            assert_eq!(
                c.entries.contains_key(&id),
                !removed,
                "round {round}: {} ({})",
                id.0,
                if removed { "removed" } else { "kept" }
            );
            assert_eq!(c.absent.contains_key(&id), removed, "{}", id.0);
        }
    }
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// The child's part of the test below: keeps its keys in the file named by the environment.
#[test]
fn sealed_cache_writer_process() {
    let (Ok(path), Ok(me)) = (
        std::env::var("KEYRING_OKV_TEST_SEALED_PATH"),
        std::env::var("KEYRING_OKV_TEST_SEALED_WRITER"),
    ) else {
        return; // run as an ordinary test: nothing to do
    };
    let cache = open(Path::new(&path));
    for k in 0..30 {
        cache.keep(&format!("p{me}-k{k}"), "", &aes(k), "uid", "s");
        if k % 10 == 9 {
            cache.forget(&format!("p{me}-k{}", k - 1), "");
        }
    }
    cache.close();
    assert_eq!(cache.status().file, FileState::Ok);
}

#[test]
fn processes_side_by_side_lose_no_entry() {
    const PROCESSES: usize = 3;
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir);
        let children: Vec<_> = (0..PROCESSES)
            .map(|p| {
                Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", "sealed_cache_writer_process", "--nocapture"])
                    .env("KEYRING_OKV_TEST_SEALED_PATH", &path)
                    .env("KEYRING_OKV_TEST_SEALED_WRITER", p.to_string())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // This process writes too, at the same time.
        let cache = open(&path);
        for k in 0..30u8 {
            cache.keep(&format!("parent-k{k}"), "", &aes(k), "uid", "s");
        }
        cache.close();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: a writer failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let c = on_disk(&path, 1, "CN=a");
        assert_eq!(
            c.entries.len(),
            30 * (PROCESSES + 1) - 3 * PROCESSES,
            "round {round}: every process's keys are in the file, but those removed"
        );
        for p in 0..PROCESSES {
            for k in [8, 18, 28] {
                let id = (format!("p{p}-k{k}"), String::new());
                assert!(
                    c.absent.contains_key(&id),
                    "round {round}: {} came back",
                    id.0
                );
            }
        }
    }
}

/// A confirmation asks the keys together first (the MySQL libraries read every cached key's
/// object in one message) and asks on its own only a key the batch left out, whose answer then
/// counts as before: here it was replaced on the server.
#[test]
fn a_batched_confirmation_asks_alone_only_the_keys_the_batch_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&path_in(&dir));
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        cache.keep(id, "", &aes(i as u8 + 1), &format!("uid-{id}"), "s");
    }
    cache.backdate_for_tests(3600);
    let mut batched_with = Vec::new();
    let mut asked_alone = Vec::new();
    let result = cache.confirm_batched_now_for_tests(
        |keys| {
            batched_with = keys.iter().map(|k| (k.0.clone(), k.2.clone())).collect();
            keys.iter()
                .filter(|k| k.0 != "c")
                .map(|k| {
                    let byte = k.0.as_bytes()[0] - b'a' + 1;
                    let answer = Answer::Key {
                        key: aes(byte),
                        uid: k.2.clone(),
                        server: k.3.clone(),
                    };
                    ((k.0.clone(), k.1.clone()), answer)
                })
                .collect()
        },
        |id, _| {
            asked_alone.push(id.to_string());
            Answer::Key {
                key: aes(9),
                uid: "uid-c2".into(),
                server: "s".into(),
            }
        },
    );
    assert!(result.is_ok());
    batched_with.sort();
    assert_eq!(
        batched_with,
        ["a", "b", "c", "d"].map(|id| (id.to_string(), format!("uid-{id}")))
    );
    assert_eq!(asked_alone, ["c"]);
    // The batch's answers confirmed a, b and d as they were; c's own answer replaced it.
    assert_eq!(cache.status().oldest_confirmation_age, 0);
    for (id, byte) in [("a", 1), ("b", 2), ("d", 4)] {
        assert_eq!(served(&cache, id), Some(vec![byte; 32]));
    }
    assert_ne!(served(&cache, "c"), Some(vec![3; 32]));
}
