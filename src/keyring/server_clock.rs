//! Where a KMIP server's clock stands against this host's, learned from the Time Stamps of its
//! answers, so that the wait of the create race rule (`race`) can sleep until the server's
//! clock has turned to the next second instead of asking it every few hundred milliseconds (on
//! one shared connection those questions queue ahead of every other session's requests).
//!
//! An answer sent at host time `s`, received at `r` and stamped with whole second `T` was
//! stamped at some moment of `[s, r]`, when the server's clock read `[T, T + 1)`. So the
//! server's clock minus this host's monotonic clock lies in `(T - r, T + 1 - s)`; the bounds of
//! all answers are intersected. Only the lower bound is used, and only to choose when to ask:
//! whether the server's clock has passed a date is always read from an answer, never inferred.
//! An empty intersection (a clock was set) starts again from the last answer.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);
/// Server -> (lower, upper) bound of its clock minus [`host_now`], in seconds.
static OFFSETS: LazyLock<Mutex<HashMap<String, (f64, f64)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// This host's monotonic clock, in seconds.
pub fn host_now() -> f64 {
    BASE.elapsed().as_secs_f64()
}

/// Records an answer of `server` stamped `stamp`, for a request sent at `sent` and answered at
/// `received` (both from [`host_now`]).
pub fn record(server: &str, stamp: i64, sent: f64, received: f64) {
    let stamp = stamp as f64;
    let (lo, hi) = (stamp - received, stamp + 1.0 - sent);
    let mut offsets = OFFSETS.lock().unwrap_or_else(PoisonError::into_inner);
    let bounds = offsets.entry(server.to_string()).or_insert((lo, hi));
    let merged = (bounds.0.max(lo), bounds.1.min(hi));
    *bounds = if merged.0 <= merged.1 {
        merged
    } else {
        (lo, hi)
    };
}

/// How long from now until the clock of `server` surely reads `second` or later, as far as its
/// answers tell; None when nothing is known of it.
pub fn until(server: &str, second: i64) -> Option<Duration> {
    let lo = OFFSETS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(server)?
        .0;
    // The server's clock is at least host time + lo: it reads `second` by host time second - lo.
    let left = second as f64 - lo - host_now();
    Some(Duration::from_secs_f64(left.max(0.0)))
}

/// When, from now, the clock of `server` can first and will at the latest read `second`, as far
/// as its answers tell; None when nothing is known of it.
pub fn window(server: &str, second: i64) -> Option<(Duration, Duration)> {
    let (lo, hi) = *OFFSETS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(server)?;
    let now = host_now();
    let from_now = |offset: f64| Duration::from_secs_f64((second as f64 - offset - now).max(0.0));
    Some((from_now(hi), from_now(lo)))
}

/// The latest second the clock of `server` can have read at `at` (from [`host_now`]), when its
/// answers bound it to within `within` seconds; None otherwise.
pub fn latest_at(server: &str, at: f64, within: f64) -> Option<i64> {
    let (lo, hi) = *OFFSETS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(server)?;
    (hi - lo <= within).then(|| (at + hi).floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_narrow_the_offset_and_a_set_clock_starts_again() {
        let server = "clock-test:1";
        // Sent at 10.0, answered at 10.1 with 1000: offset in (989.9, 991.0).
        record(server, 1000, 10.0, 10.1);
        // Sent at 10.5, answered at 10.6 with 1001: offset in (990.4, 991.5).
        record(server, 1001, 10.5, 10.6);
        let (lo, hi) = OFFSETS.lock().unwrap()[server];
        assert!(
            (lo - 990.4).abs() < 1e-9 && (hi - 991.0).abs() < 1e-9,
            "{lo} {hi}"
        );
        // A clock set back by an hour: the bounds no longer meet, the last answer stands.
        record(server, 1001 - 3600, 11.0, 11.1);
        let (lo, hi) = OFFSETS.lock().unwrap()[server];
        assert!((lo - (1001.0 - 3600.0 - 11.1)).abs() < 1e-9, "{lo}");
        assert!((hi - (1002.0 - 3600.0 - 11.0)).abs() < 1e-9, "{hi}");
        assert!(until("clock-test:unknown", 5).is_none());
    }

    #[test]
    fn the_window_of_a_turn_narrows_with_each_answer() {
        let server = "clock-test:3";
        let now = host_now();
        // Answered at once with 1000: the clock turns to 1001 within the next second.
        record(server, 1000, now, now);
        let (earliest, latest) = window(server, 1001).unwrap();
        assert!(earliest.as_secs_f64() < 0.05, "{earliest:?}");
        assert!((latest.as_secs_f64() - 1.0).abs() < 0.05, "{latest:?}");
        // Still 1000 half a second later: the turn is in the second half.
        record(server, 1000, now + 0.5, now + 0.5);
        let (earliest, latest) = window(server, 1001).unwrap();
        assert!((earliest.as_secs_f64() - 0.5).abs() < 0.05, "{earliest:?}");
        assert!((latest.as_secs_f64() - 1.0).abs() < 0.05, "{latest:?}");
        assert!(window("clock-test:unknown", 5).is_none());
    }

    #[test]
    fn a_clock_known_closely_gives_the_latest_second_it_can_read() {
        let server = "clock-test:2";
        // 1000 for a request sent at 10.0, 1001 for one answered at 10.15: offset in
        // (990.85, 991.0).
        record(server, 1000, 10.0, 10.05);
        assert_eq!(latest_at(server, 20.0, 0.2), None);
        record(server, 1001, 10.05, 10.15);
        assert_eq!(latest_at(server, 20.0, 0.2), Some(1011));
        assert_eq!(latest_at(server, 20.0, 0.1), None);
        // It reads 1012 by host time 21.15 at the latest (1012 - 990.85).
        let left = until(server, 1012).unwrap().as_secs_f64();
        assert!((left - (21.15 - host_now())).abs() < 0.05, "{left}");
    }
}
