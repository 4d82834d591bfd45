//! Host name lookups, each on a thread of its own (at most `MAX_LOOKUP_THREADS` at once), so
//! that a hung lookup of one server never holds up the lookup of another. The system resolver
//! cannot be cancelled: unload waits for the lookups still running (`wait_all`).

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::owned_thread::OwnedThread;

/// Lookups in flight at once; more wait for a thread. 65 servers (SERVER and 64 standbys) could
/// each need one, but lists that long are IP addresses in practice.
const MAX_LOOKUP_THREADS: usize = 16;

static SLOTS: Semaphore = Semaphore::const_new(MAX_LOOKUP_THREADS);

/// Every lookup thread not yet joined.
static THREADS: Mutex<Vec<OwnedThread>> = Mutex::new(Vec::new());

fn threads() -> std::sync::MutexGuard<'static, Vec<OwnedThread>> {
    THREADS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The addresses of `host`.
pub async fn resolve(host: String, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let slot = SLOTS.acquire().await.map_err(std::io::Error::other)?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    // The slot moves into the thread: it is free again when the lookup itself has returned,
    // even if the attempt waiting for it gave up first.
    let thread = OwnedThread::spawn("keyring_okv-dns", move || {
        let _slot = slot;
        let addrs = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .map(Iterator::collect::<Vec<_>>);
        let _ = answer.send(addrs);
    })?;
    {
        let mut threads = threads();
        // Those whose work is done take no time to join; one the kernel has not let go of yet
        // stays for the next lookup (or unload) to see gone.
        threads.retain_mut(|t| !(t.is_finished() && t.join_by(Instant::now())));
        threads.push(thread);
    }
    answered.await.map_err(std::io::Error::other)?
}

/// Lookups still running.
pub fn in_flight() -> usize {
    threads().iter().filter(|t| !t.is_finished()).count()
}

/// Joins every lookup thread, waiting until `deadline` at most; the number still running then.
pub fn wait_all(deadline: Instant) -> usize {
    let mut all = std::mem::take(&mut *threads());
    all.iter_mut()
        .map(|t| t.join_by(deadline))
        .filter(|gone| !gone)
        .count()
}
