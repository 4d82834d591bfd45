//! Threads the library starts and must see gone before the server unloads it: code of ours
//! still running in a thread once the library is unmapped crashes the server.
//!
//! `JoinHandle::join` alone cannot serve unload: it has no deadline, and a server's shutdown
//! must never hang on us. And on Linux it returns when the thread has released its memory
//! map, a moment before the kernel removes the thread from the process; on a loaded machine
//! that moment lasts long enough for the server (or a test counting `/proc/self/task`) to see
//! the thread still there. So a thread says when its work is done, the owner waits for that
//! with a deadline, joins, then waits (with the same deadline) for the kernel to let go of it.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Exit {
    /// `/proc/self/task/<tid>` of the thread, once it has started (Linux only).
    task: Option<PathBuf>,
    finished: bool,
}

#[derive(Default)]
struct Shared {
    exit: Mutex<Exit>,
    changed: Condvar,
}

impl Shared {
    fn exit(&self) -> std::sync::MutexGuard<'_, Exit> {
        self.exit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A thread started with [`OwnedThread::spawn`].
pub struct OwnedThread {
    handle: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// How often the kernel is asked whether a joined thread is gone: it gives no event for that.
const REAP_POLL: Duration = Duration::from_millis(1);

impl OwnedThread {
    pub fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> std::io::Result<OwnedThread> {
        let shared = Arc::new(Shared::default());
        let mine = shared.clone();
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                // Marks the work done even when it panics, so the owner never waits in vain.
                struct Finished(Arc<Shared>);
                impl Drop for Finished {
                    fn drop(&mut self) {
                        self.0.exit().finished = true;
                        self.0.changed.notify_all();
                    }
                }
                mine.exit().task = own_task();
                let _finished = Finished(mine);
                work();
            })?;
        Ok(OwnedThread {
            handle: Some(handle),
            shared,
        })
    }

    /// Whether the thread's work has returned (the thread may still be exiting).
    pub fn is_finished(&self) -> bool {
        self.shared.exit().finished
    }

    /// Waits until `deadline` for the thread to finish its work and leave the process. True
    /// when it is gone; false when it still runs at the deadline (dropped then, it is left to
    /// itself).
    pub fn join_by(&mut self, deadline: Instant) -> bool {
        let exit = self.shared.exit();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (exit, _) = self
            .shared
            .changed
            .wait_timeout_while(exit, timeout, |e| !e.finished)
            .unwrap_or_else(PoisonError::into_inner);
        if !exit.finished {
            return false;
        }
        let task = exit.task.clone();
        drop(exit);
        if let Some(handle) = self.handle.take() {
            // Finished: only the thread's exit is left, so this returns at once.
            let _ = handle.join();
        }
        match task {
            Some(task) => wait_gone(&task, deadline),
            None => true,
        }
    }
}

/// This thread's entry under `/proc/self/task`, where the kernel lists the threads of the
/// process; None where there is no such file system.
fn own_task() -> Option<PathBuf> {
    // "/proc/thread-self" links to "<pid>/task/<tid>".
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    let tid = link.file_name()?;
    Some(PathBuf::from("/proc/self/task").join(tid))
}

fn wait_gone(task: &std::path::Path, deadline: Instant) -> bool {
    loop {
        if !task.exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(REAP_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_thread_has_left_the_process() {
        for _ in 0..20 {
            let mut thread = OwnedThread::spawn("owned-test", || {}).unwrap();
            let task = loop {
                if let Some(task) = thread.shared.exit().task.clone() {
                    break task;
                }
                std::thread::yield_now();
            };
            assert!(thread.join_by(Instant::now() + Duration::from_secs(10)));
            assert!(!task.exists(), "{} still listed", task.display());
        }
    }

    #[test]
    fn a_thread_still_working_at_the_deadline_is_reported() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let mut thread = OwnedThread::spawn("owned-test", move || {
            let _ = wait.recv();
        })
        .unwrap();
        let started = Instant::now();
        assert!(!thread.join_by(started + Duration::from_millis(50)));
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(release);
    }

    #[test]
    fn a_panicking_thread_still_counts_as_finished() {
        let mut thread = OwnedThread::spawn("owned-test", || panic!("on purpose")).unwrap();
        assert!(thread.join_by(Instant::now() + Duration::from_secs(10)));
    }
}
