//! The one I/O runtime of the process: a single tokio worker drives every connection's sockets
//! and timers. Host names are resolved on blocking threads started on demand, one per lookup in
//! flight (at most `MAX_LOOKUP_THREADS`), so that a hung lookup of one server never holds up the
//! lookup of another; they end a second after their last lookup. Shared by every client, even
//! while SET GLOBAL keyring_okv_conf_dir builds the next configuration beside the current one.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

/// Lookups in flight at once; more wait for a thread. 65 servers (SERVER and 64 standbys) could
/// each need one, but lists that long are IP addresses in practice.
const MAX_LOOKUP_THREADS: usize = 16;

/// How long unload waits for host name lookups still in flight: the system resolver gives up
/// on its own by then (resolv.conf defaults: 5 s per try, 2 tries, per name server, at most 3).
pub const LOOKUP_WAIT: Duration = Duration::from_secs(30);

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// The shared runtime, started on first use.
pub fn handle() -> std::io::Result<Handle> {
    let mut runtime = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(rt) = runtime.as_ref() {
        return Ok(rt.handle().clone());
    }
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(MAX_LOOKUP_THREADS)
        .thread_keep_alive(Duration::from_secs(1))
        .thread_name("keyring_okv-io")
        .enable_io()
        .enable_time()
        .build()?;
    let handle = rt.handle().clone();
    *runtime = Some(rt);
    Ok(handle)
}

/// Stops the runtime's threads (plugin deinit): waits up to `LOOKUP_WAIT` for host name lookups
/// still in flight (a lookup thread must not outlive the library), then up to `wait` for the
/// rest. A later client starts a new runtime.
pub fn shutdown(wait: Duration) {
    let runtime = RUNTIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(rt) = runtime {
        let started = std::time::Instant::now();
        let mut warned = false;
        while super::failover::lookups_in_flight() > 0 && started.elapsed() < LOOKUP_WAIT {
            if !warned {
                tracing::warn!(
                    "keyring_okv: waiting up to {} s for a KMIP server host name lookup to end",
                    LOOKUP_WAIT.as_secs()
                );
                warned = true;
            }
            // No event to wait on: the lookup runs inside the system resolver.
            std::thread::sleep(Duration::from_millis(20));
        }
        rt.shutdown_timeout(wait);
    }
}
