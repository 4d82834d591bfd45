//! Permission checks on the configuration directory (warnings only).

use std::path::Path;

use super::Warning;

/// Check the modes of the conf dir, `ssl/`, `ssl/key.pem` and `ssl/password.txt`.
///
/// Directories: warn when writable by group/others or accessible by others (the spec asks
/// for mode 750). Secrets: warn when group or others may read (or write) them (600 expected),
/// except a group read of a file owned by another account (root:mysql 640: the server reads
/// it through its group).
/// Missing paths are skipped: `load_conf_dir` reports those as errors.
pub fn check_permissions(dir: &Path) -> Vec<Warning> {
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        check_dir(dir, &mut out);
        let ssl = dir.join("ssl");
        check_dir(&ssl, &mut out);
        check_secret(&ssl.join("key.pem"), "private key", &mut out);
        check_secret(&ssl.join("password.txt"), "key password file", &mut out);
    }
    #[cfg(not(unix))]
    let _ = dir;
    out
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(unix)]
fn shell_quote(path: &Path) -> String {
    let s = path.display().to_string();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(unix)]
fn check_dir(path: &Path, out: &mut Vec<Warning>) {
    let Some(mode) = mode_of(path) else { return };
    if !std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return;
    }
    let mut problems = Vec::new();
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => problems.push("writable by group and others"),
        (true, false) => problems.push("writable by group"),
        (false, true) => problems.push("writable by others"),
        _ => {}
    }
    if mode & 0o005 != 0 {
        problems.push("accessible by others");
    }
    if problems.is_empty() {
        return;
    }
    let fixed = mode & !0o027;
    let message = format!(
        "directory mode {mode:03o} is {}; only the server's account should have access: run 'chmod {fixed:03o} {}'",
        problems.join(" and "),
        shell_quote(path)
    );
    out.push(Warning {
        path: path.to_path_buf(),
        message,
    });
}

#[cfg(unix)]
fn check_secret(path: &Path, what: &str, out: &mut Vec<Warning>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.mode() & 0o7777;
    // A file of another account (root) that the server reads through its group (the layout a
    // package uses: root:mysql 640) needs that group read; only what goes beyond is a problem.
    let group_read_needed = meta.uid() != rustix::process::geteuid().as_raw();
    let group_bits = if group_read_needed { 0o020 } else { 0o060 };
    let who = match (mode & group_bits != 0, mode & 0o006 != 0) {
        (true, true) => "group and others",
        (true, false) => "group",
        (false, true) => "others",
        (false, false) => return,
    };
    let readable = mode & (0o004 | (group_bits & 0o040)) != 0;
    let fixed = mode & !(0o007 | group_bits);
    let message = format!(
        "{what} mode {mode:03o} lets {who} {} it; run 'chmod {fixed:03o} {}'",
        if readable { "read" } else { "write" },
        shell_quote(path)
    );
    out.push(Warning {
        path: path.to_path_buf(),
        message,
    });
}
