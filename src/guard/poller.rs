//! The thread that polls: started by a product with its keyring, stopped and joined at unload
//! (after the product closed its KMIP client, so a poll in flight ends at once).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::owned_thread::OwnedThread;

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Waits `wait`, or less when stopped; true when stopped.
    fn wait(&self, wait: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, wait, |s| !*s)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }
}

pub struct Poller {
    stop: Arc<Stop>,
    thread: Mutex<OwnedThread>,
}

impl Poller {
    /// Runs `poll` every `every` (the first one `every` after the start) until stopped.
    pub fn start(every: Duration, poll: impl FnMut() + Send + 'static) -> std::io::Result<Self> {
        Self::start_after(every, || {}, poll)
    }

    /// As [`start`](Self::start), the thread first running `first`: what must not be done
    /// under the server's lock (stopping the guard of a configuration replaced).
    pub fn start_after(
        every: Duration,
        first: impl FnOnce() + Send + 'static,
        mut poll: impl FnMut() + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(Stop::default());
        let mine = stop.clone();
        let thread = OwnedThread::spawn("keyring_okv-guard", move || {
            first();
            while !mine.wait(every) {
                poll();
            }
        })?;
        Ok(Poller {
            stop,
            thread: Mutex::new(thread),
        })
    }

    /// Tells the thread to stop after the poll in flight, without waiting for it.
    pub fn request_stop(&self) {
        *self
            .stop
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.stop.wake.notify_all();
    }

    /// Stops the polls and joins the thread by `deadline`; true when it is gone.
    pub fn stop(&self, deadline: Instant) -> bool {
        self.request_stop();
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join_by(deadline)
    }
}

impl Drop for Poller {
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
