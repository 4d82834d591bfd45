//! The end of a mysqld start, as the plugin and the component can see it: the process has a
//! listening socket.
//!
//! Why this signal. mysqld opens its listening sockets (`network_init`, TCP and the Unix
//! socket alike) after its storage engines and the binary log have started — InnoDB's
//! tablespace validation, which reads the master key once per encrypted tablespace, is over
//! by then — and before it logs "ready for connections"; no client can be served before. A
//! keyring plugin gets no call at that moment, and the services that announce the start
//! (audit plugins, event tracking components) would make the library a second plugin or
//! component that mysqld must load; the process's own sockets need nothing from mysqld.
//! A keyring loaded into a server that is already running (INSTALL PLUGIN, ALTER INSTANCE
//! RELOAD KEYRING) sees the sockets at its first read.
//!
//! What it costs when it is wrong: a listening socket opened early (a plugin that listens
//! during its own init) ends the memory early, which only costs requests; a process that
//! never listens (mysql_migrate_keyring, a test host) keeps it for `START_WINDOW` at most. A
//! process whose /proc cannot be read (a chroot without it) cannot see the end of its start,
//! so it keeps nothing: the signal says "started" at once.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use crate::keyring::start_memory::{START_WINDOW, StartMemory};

/// A start-time memory that ends when this process listens (or after `START_WINDOW`).
pub fn start_memory(product: &'static str) -> StartMemory {
    let probe = Mutex::new(ListenProbe::default());
    let started = move || {
        probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .listens()
    };
    StartMemory::new(product, START_WINDOW, Box::new(started))
}

/// Looks whether this process listens, cheaply enough to be asked while a start reads its
/// master key once per tablespace.
///
/// Which sockets listen is in /proc/net, whose tables the kernel builds by walking its whole
/// socket hash tables (5–15 ms a read on a loaded 2-core machine); which sockets are this
/// process's is in its descriptors' links (about 1 ms with 300 open files). The descriptors
/// are read at each look, the tables only when a socket appears that was not seen before:
/// mysqld's listening sockets are new sockets, and it makes each one listen right after
/// creating it (a look that falls between the two only leaves the memory to its window).
#[derive(Default)]
pub struct ListenProbe {
    /// This process's sockets seen not listening.
    quiet: HashSet<u64>,
}

impl ListenProbe {
    /// Whether this process holds a listening TCP or Unix socket; true when /proc cannot be
    /// read (the end of the start cannot be seen).
    pub fn listens(&mut self) -> bool {
        let Some(ours) = socket_inodes() else {
            return true;
        };
        if ours.iter().all(|inode| self.quiet.contains(inode)) {
            return false;
        }
        let listening = listening_inodes();
        if ours.iter().any(|inode| listening.contains(inode)) {
            return true;
        }
        self.quiet = ours;
        false
    }
}

/// Whether this process holds a listening TCP or Unix socket (or /proc cannot be read), looked
/// at once.
pub fn this_process_listens() -> bool {
    ListenProbe::default().listens()
}

/// The listening sockets of this process's network namespace.
fn listening_inodes() -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for path in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        if let Ok(table) = std::fs::read_to_string(path) {
            inodes.extend(listening_tcp(&table));
        }
    }
    if let Ok(table) = std::fs::read_to_string("/proc/self/net/unix") {
        inodes.extend(listening_unix(&table));
    }
    inodes
}

/// The inodes of this process's sockets (its descriptors that link to `socket:[N]`); None when
/// /proc cannot be read.
fn socket_inodes() -> Option<HashSet<u64>> {
    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    let inodes = fds
        .filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    Some(inodes)
}

/// The inodes of the LISTEN rows of /proc/net/tcp or tcp6 (state 0A).
fn listening_tcp(table: &str) -> impl Iterator<Item = u64> + '_ {
    table.lines().skip(1).filter_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        (fields.get(3) == Some(&"0A"))
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

/// The inodes of the listening rows of /proc/net/unix (flag __SO_ACCEPTCON, 0x10000).
fn listening_unix(table: &str) -> impl Iterator<Item = u64> + '_ {
    table.lines().skip(1).filter_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
        (flags & 0x0001_0000 != 0)
            .then(|| fields.get(6)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_rows_are_told_from_others() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 4242 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:A2F4 0100007F:1650 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(listening_tcp(tcp).collect::<Vec<_>>(), vec![4242]);
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 5151 /run/mysqld/mysqld.sock\n0000000000000000: 00000003 00000000 00000000 0001 03 5252\n";
        assert_eq!(listening_unix(unix).collect::<Vec<_>>(), vec![5151]);
    }

    #[test]
    fn a_socket_of_this_process_that_listens_is_seen() {
        let before = this_process_listens();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(this_process_listens());
        drop(listener);
        // Other tests of this binary may listen meanwhile: only a process that did not listen
        // before can be checked for not listening after.
        if !before {
            let unix_dir = tempfile::tempdir().unwrap();
            let unix = std::os::unix::net::UnixListener::bind(unix_dir.path().join("s")).unwrap();
            assert!(this_process_listens());
            drop(unix);
        }
    }

    #[test]
    fn a_probe_that_saw_other_listeners_still_sees_this_process_listen() {
        let mut probe = ListenProbe::default();
        // Whatever listens now (other tests of this binary, other processes) is remembered.
        let before = probe.listens();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(probe.listens());
        drop(listener);
        if !before {
            let unix_dir = tempfile::tempdir().unwrap();
            let _unix = std::os::unix::net::UnixListener::bind(unix_dir.path().join("s")).unwrap();
            assert!(probe.listens());
        }
    }

    #[test]
    fn a_connected_socket_is_not_listening() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (served, _) = listener.accept().unwrap();
        let ours = socket_inodes().unwrap();
        let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
        let listening: HashSet<u64> = listening_tcp(&table).collect();
        let inode_of = |fd: std::os::fd::RawFd| -> u64 {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
            let link = link.to_str().unwrap();
            link["socket:[".len()..link.len() - 1].parse().unwrap()
        };
        use std::os::fd::AsRawFd;
        let (l, c, s) = (
            inode_of(listener.as_raw_fd()),
            inode_of(client.as_raw_fd()),
            inode_of(served.as_raw_fd()),
        );
        assert!(ours.contains(&l) && ours.contains(&c) && ours.contains(&s));
        assert!(listening.contains(&l));
        assert!(!listening.contains(&c) && !listening.contains(&s));
    }
}
