//! The thread that confirms the sealed key cache with a KMIP server: at start, then every few
//! minutes while a server answers, and every few seconds while none does, so that a server that
//! comes back is noticed without a call from the database.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Answer, Batched, KnownObject, SealedCache};
use crate::owned_thread::OwnedThread;

/// How often the cached keys are confirmed while a server answers (at most a quarter of the
/// maximum age, so a running server's cache never comes near it).
const CONFIRM_EVERY: Duration = Duration::from_secs(600);
/// How soon a failed confirmation is tried again.
const RETRY: Duration = Duration::from_secs(10);

pub struct Keeper {
    cache: Arc<SealedCache>,
    thread: Mutex<OwnedThread>,
}

impl Keeper {
    /// Starts the thread; `ask` asks the KMIP server about one key (see [`Answer`]).
    pub fn start(
        cache: Arc<SealedCache>,
        ask: impl FnMut(&str, &str) -> Answer + Send + 'static,
    ) -> std::io::Result<Keeper> {
        Self::start_after(cache, || {}, |_: &[KnownObject]| Batched::new(), ask)
    }

    /// As [`start`](Self::start), the thread first running `first`: the work a configuration
    /// put in force by `SET GLOBAL` or a keyring reload must not do under the server's lock
    /// (stopping the cache it replaces, reading keys from the KMIP server). Each confirmation
    /// asks the keys together with `batch` first, then those it did not answer with `ask`
    /// ([`SealedCache::confirm_batched`]).
    pub fn start_after(
        cache: Arc<SealedCache>,
        first: impl FnOnce() + Send + 'static,
        mut batch: impl FnMut(&[KnownObject]) -> Batched + Send + 'static,
        mut ask: impl FnMut(&str, &str) -> Answer + Send + 'static,
    ) -> std::io::Result<Keeper> {
        let mine = cache.clone();
        let every = CONFIRM_EVERY.min(cache.max_age() / 4).max(RETRY);
        let thread = OwnedThread::spawn("keyring_okv-sealed", move || {
            first();
            loop {
                let wait = match mine.confirm_batched(&mut batch, &mut ask) {
                    Ok(()) => every,
                    Err(_) => RETRY,
                };
                if mine.wait(wait) {
                    return;
                }
            }
        })?;
        Ok(Keeper {
            cache,
            thread: Mutex::new(thread),
        })
    }

    pub fn cache(&self) -> &Arc<SealedCache> {
        &self.cache
    }

    /// Closes the cache (pending times are written) and joins the thread by `deadline`. The
    /// caller closes the KMIP client first, so a confirmation in flight ends at once.
    pub fn stop(&self, deadline: Instant) -> bool {
        self.cache.close();
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join_by(deadline)
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        let finished = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_finished();
        if !finished {
            self.stop(Instant::now() + crate::connector::runtime::THREAD_WAIT);
        }
    }
}
