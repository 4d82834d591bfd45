//! The error log without a server service: mariadbd (and mariadb-backup) send stderr to the
//! error log, so lines are written there in the server's own format. A log service would tie
//! the library to one MariaDB release (its version changed between 10.11 and 11.8).

use std::io::Write as _;

use okv_core::logging::Severity;

fn label(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "ERROR",
        Severity::Warning => "Warning",
        Severity::Information => "Note",
    }
}

/// The tracing sink: one line, `YYYY-MM-DD HH:MM:SS 0 [Level] kmip_key_management: message`.
/// A message that already names the plugin (the shared sealed key cache prefixes its lines
/// with the product's name) is not prefixed twice.
pub fn log_line(severity: Severity, message: &str) {
    let message = message
        .strip_prefix("kmip_key_management: ")
        .unwrap_or(message);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The server's own layout: the hour is padded with a space, not a zero.
    let stamp = okv_core::health::utc_timestamp(now);
    let stamp = match stamp.split_once(' ') {
        Some((day, time)) if time.starts_with('0') => format!("{day}  {}", &time[1..]),
        _ => stamp,
    };
    let line = format!(
        "{stamp} 0 [{}] kmip_key_management: {message}\n",
        label(severity)
    );
    // One write per line, so that lines of different threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub fn install() {
    okv_ffi::logging::install(log_line);
}
