//! The one I/O runtime of the process: a single tokio worker drives every connection's sockets
//! and timers, and at most one blocking thread resolves host names. Shared by every client, so
//! that mysqld never runs more than two keyring_okv threads, even while SET GLOBAL
//! keyring_okv_conf_dir builds the next configuration beside the current one.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// The shared runtime, started on first use.
pub fn handle() -> std::io::Result<Handle> {
    let mut runtime = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(rt) = runtime.as_ref() {
        return Ok(rt.handle().clone());
    }
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .thread_name("keyring_okv-io")
        .enable_io()
        .enable_time()
        .build()?;
    let handle = rt.handle().clone();
    *runtime = Some(rt);
    Ok(handle)
}

/// Stops the runtime's threads, waiting at most `wait` (plugin deinit). A later client starts
/// a new runtime.
pub fn shutdown(wait: Duration) {
    let runtime = RUNTIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(rt) = runtime {
        rt.shutdown_timeout(wait);
    }
}
