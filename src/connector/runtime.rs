//! The one I/O runtime of the process: a thread of ours drives every connection's sockets and
//! timers (callers wait on their own threads with `Handle::block_on`; the runtime's tasks run
//! on the I/O thread). Host names are resolved on threads of their own (`lookup.rs`). Shared
//! by every client, even while SET GLOBAL keyring_okv_conf_dir builds the next configuration
//! beside the current one.
//!
//! The runtime is a current-thread one on a thread we start and join, not tokio's
//! multi-thread runtime: that one's shutdown only waits (up to a timeout) for its threads, and
//! unload must be able to say that every thread of ours has left the process.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use crate::owned_thread::OwnedThread;

/// How long unload waits for host name lookups still in flight: the system resolver gives up
/// on its own by then (resolv.conf defaults: 5 s per try, 2 tries, per name server, at most 3).
pub const LOOKUP_WAIT: Duration = Duration::from_secs(30);

/// How long unload waits for a thread of ours once its work was called off (the KMIP client
/// closed, the I/O thread told to stop). Nothing of ours holds them up then: only a machine so
/// loaded that they do not get to run makes this wait last.
pub const THREAD_WAIT: Duration = Duration::from_secs(10);

/// What the runtime's own pool may still hold when the I/O thread ends (nothing spawns onto it).
const BLOCKING_POOL_WAIT: Duration = Duration::from_secs(1);

struct Io {
    handle: Handle,
    stop: oneshot::Sender<()>,
    thread: OwnedThread,
}

static IO: Mutex<Option<Io>> = Mutex::new(None);

/// The shared runtime, started on first use.
pub fn handle() -> std::io::Result<Handle> {
    let mut io = IO.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(io) = io.as_ref() {
        return Ok(io.handle.clone());
    }
    let rt = Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let handle = rt.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = OwnedThread::spawn("keyring_okv-io", move || {
        // Runs the tasks and drives the sockets and timers of every caller until unload.
        let _ = rt.block_on(stopped);
        // The tasks left (a failback probe, a parked configuration's timer) are dropped here,
        // on the thread that ran them.
        rt.shutdown_timeout(BLOCKING_POOL_WAIT);
    })?;
    *io = Some(Io {
        handle: handle.clone(),
        stop,
        thread,
    });
    Ok(handle)
}

/// Stops every thread of the runtime (unload), once the clients have been closed: the I/O
/// thread first (within `THREAD_WAIT`), which ends the tasks that could start a lookup (a
/// failback probe), then up to `LOOKUP_WAIT` for host name lookups still in flight (a lookup
/// thread must not outlive the library). Returns whether they are all gone. A later client
/// starts a new runtime.
pub fn shutdown() -> bool {
    let io = IO.lock().unwrap_or_else(PoisonError::into_inner).take();
    let io_left = io.map_or(0, |mut io| {
        let _ = io.stop.send(());
        usize::from(!io.thread.join_by(Instant::now() + THREAD_WAIT))
    });
    if super::lookup::in_flight() > 0 {
        tracing::warn!(
            "keyring_okv: waiting up to {} s for a KMIP server host name lookup to end",
            LOOKUP_WAIT.as_secs()
        );
    }
    let lookups_left = super::lookup::wait_all(Instant::now() + LOOKUP_WAIT);
    report(io_left + lookups_left)
}

fn report(left: usize) -> bool {
    if left > 0 {
        tracing::error!(
            "keyring_okv: {left} thread(s) of the KMIP client were still running when unload stopped waiting for them"
        );
    }
    left == 0
}
