//! The background thread that finds new key versions, so that get_latest_key_version never
//! waits on the KMIP server.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::store::KeyStore;

pub struct Refresher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Refresher {
    pub fn start(store: Arc<KeyStore>) -> std::io::Result<Refresher> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kmip_key_refresh".into())
            .spawn(move || {
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

    /// Asks the thread to stop and waits for it; a round in progress ends within the KMIP
    /// client's deadlines.
    pub fn stop(mut self) {
        self.signal_and_join();
    }

    fn signal_and_join(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.signal_and_join();
    }
}
