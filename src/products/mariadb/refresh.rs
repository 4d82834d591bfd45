//! The background thread that finds new key versions, so that get_latest_key_version never
//! waits on the KMIP server.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::store::KeyStore;
use crate::owned_thread::OwnedThread;

/// How long dropping a refresher (a start that failed later on) waits for its thread.
const DROP_WAIT: Duration = Duration::from_secs(5);

pub struct Refresher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<OwnedThread>,
}

impl Refresher {
    pub fn start(store: Arc<KeyStore>) -> std::io::Result<Refresher> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = OwnedThread::spawn("kmip_key_refresh", move || {
            let (flag, wake) = &*signal;
            loop {
                let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
                let (guard, _) = wake
                    .wait_timeout_while(guard, store.version_refresh(), |stop| !*stop)
                    .unwrap_or_else(PoisonError::into_inner);
                if *guard {
                    return;
                }
                drop(guard);
                if catch_unwind(AssertUnwindSafe(|| store.refresh())).is_err() {
                    tracing::error!(
                        "internal error in the key version refresh; it goes on (please report this as a bug)"
                    );
                }
            }
        })?;
        Ok(Refresher {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop and waits for it until `deadline`; whether it is gone. A round
    /// in progress ends at once when the store's KMIP client was closed first, otherwise within
    /// the client's deadlines.
    pub fn stop(mut self, deadline: Instant) -> bool {
        self.signal_and_join(deadline)
    }

    fn signal_and_join(&mut self, deadline: Instant) -> bool {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        self.thread.take().is_none_or(|mut t| t.join_by(deadline))
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.signal_and_join(Instant::now() + DROP_WAIT);
    }
}
