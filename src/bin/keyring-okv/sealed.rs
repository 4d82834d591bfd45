//! `keyring-okv sealed-cache ...`: the sealed key cache files (`<product>.sealed` in the
//! directory of the servers' `sealed_cache_dir` setting), shown without their key material, or
//! removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use okv_core::config::{self, ConfDir};
use okv_core::sealed::{self, Binding, Product, SealedError, file};

use super::{Cli, Failure, load};

/// The exit code of a sealed key cache file that is refused, damaged, does not open with this
/// configuration directory's key, or cannot be removed.
pub const EXIT_SEALED: u8 = 6;

#[derive(Subcommand)]
pub enum SealedCommand {
    /// Show each sealed key cache file: path, mode, owner, size, header, and one line per
    /// cached key (id, owner, type, length, KMIP unique id, server, times). Never the key
    /// material.
    Show {
        /// Whose file: the MySQL plugin, the MySQL component, the MariaDB plugin, or all.
        #[arg(long, value_enum, default_value = "all")]
        product: Which,
        /// The directory of the files: the server's sealed_cache_dir setting.
        #[arg(long, env = "KEYRING_OKV_SEALED_CACHE_DIR", default_value = sealed::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Delete the sealed key cache file(s). Stop the server (or turn its sealed cache setting
    /// off) first: a running server writes the file again.
    Remove {
        /// Whose file: the MySQL plugin, the MySQL component, the MariaDB plugin, or all.
        #[arg(long, value_enum, default_value = "all")]
        product: Which,
        /// The directory of the files: the server's sealed_cache_dir setting.
        #[arg(long, env = "KEYRING_OKV_SEALED_CACHE_DIR", default_value = sealed::DEFAULT_DIR)]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Which {
    /// keyring_okv.sealed (keyring_okv.so).
    Plugin,
    /// component_keyring_okv.sealed (component_keyring_okv.so).
    Component,
    /// kmip_key_management.sealed (MariaDB's kmip_key_management.so).
    Mariadb,
    /// All three.
    All,
}

impl Which {
    fn products(self) -> Vec<Product> {
        match self {
            Which::Plugin => vec![sealed::PLUGIN],
            Which::Component => vec![sealed::COMPONENT],
            Which::Mariadb => vec![sealed::MARIADB],
            Which::All => vec![sealed::PLUGIN, sealed::COMPONENT, sealed::MARIADB],
        }
    }
}

pub fn run(cli: &Cli, command: &SealedCommand) -> Result<(), Failure> {
    match command {
        SealedCommand::Show { product, dir } => show(cli, dir, product.products()),
        SealedCommand::Remove { product, dir } => remove(cli, dir, product.products()),
    }
}

/// "2026-12-02 03:22:48 UTC (5 min ago)".
fn when(secs: u64, now: u64) -> String {
    format!(
        "{} ({} ago)",
        config::utc(UNIX_EPOCH + Duration::from_secs(secs)),
        sealed::age_text(now.saturating_sub(secs))
    )
}

/// The name of the account with user id `uid` (from /etc/passwd), or the number.
#[cfg(unix)]
fn account(uid: u32) -> String {
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?;
            (id.parse() == Ok(uid)).then(|| name.to_string())
        })
    });
    match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// Mode, owner (uid and text) and size of the file as it is on disk, without following a link.
fn metadata(path: &Path) -> Option<(String, Option<u32>, String, u64)> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let kind = if meta.file_type().is_symlink() {
            " (symbolic link)"
        } else if meta.is_dir() {
            " (directory)"
        } else {
            ""
        };
        Some((
            format!("{:04o}{kind}", meta.mode() & 0o7777),
            Some(meta.uid()),
            account(meta.uid()),
            meta.len(),
        ))
    }
    #[cfg(not(unix))]
    Some(("?".into(), None, "?".into(), meta.len()))
}

/// The binding the server would write and accept for `product` with this configuration.
fn binding_now(conf: &ConfDir, product: &Product) -> Binding {
    Binding {
        product: product.name.to_string(),
        identity: conf.identity.subject.clone(),
        servers: conf.servers.iter().map(ToString::to_string).collect(),
    }
}

/// One product's file, as shown: JSON, text lines, and the error when it cannot be used.
fn show_one(
    conf: &ConfDir,
    dir: &Path,
    product: &Product,
    now: u64,
) -> (Value, Vec<String>, Option<String>) {
    let path = sealed::path_in(dir, product);
    let mut lines = vec![format!("{}: {}", product.name, path.display())];
    let mut value = json!({"product": product.name, "path": path.display().to_string()});
    let Some((mode, uid, owner, size)) = metadata(&path) else {
        lines.push("  no file (the sealed key cache is off, or has not been written yet)".into());
        value["exists"] = json!(false);
        return (value, lines, None);
    };
    value["exists"] = json!(true);
    value["mode"] = json!(mode);
    value["owner_uid"] = json!(uid);
    value["owner"] = json!(owner);
    value["size"] = json!(size);
    lines.push(format!("  mode {mode}, owner {owner}, {size} bytes"));
    let fail = |mut value: Value, mut lines: Vec<String>, e: SealedError| {
        let message = e.to_string();
        lines.push(format!("  error: {message}"));
        value["error"] = json!(message);
        (value, lines, Some(message))
    };
    // Whoever runs this (root, a DBA) reads the server's file: its owner is shown, not checked.
    let bytes = match file::read_checked(&path, file::Owner::Any) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            lines.push("  no file (it was removed meanwhile)".into());
            value["exists"] = json!(false);
            return (value, lines, None);
        }
        Err(e) => return fail(value, lines, e),
    };
    let (binding, written, _) = match file::read_header(&path, &bytes) {
        Ok(h) => h,
        Err(e) => return fail(value, lines, e),
    };
    let expected = binding_now(conf, product);
    let matches = binding == expected;
    lines.push(format!("  product: {}", binding.product));
    lines.push(format!("  client identity: {}", binding.identity));
    lines.push(format!(
        "  servers: {}",
        if binding.servers.is_empty() {
            "(none)".to_string()
        } else {
            binding.servers.join(", ")
        }
    ));
    lines.push(format!("  written: {}", when(written, now)));
    lines.push(if matches {
        "  configuration: matches this configuration directory".into()
    } else {
        format!(
            "  configuration: written for another one; the server does not use it and writes it anew (now: product {}, client identity '{}', servers {})",
            expected.product,
            expected.identity,
            expected.servers.join(", ")
        )
    });
    value["header"] = json!({
        "product": binding.product,
        "identity": binding.identity,
        "servers": binding.servers,
        "written": written,
        "written_age_seconds": now.saturating_sub(written),
    });
    value["matches_configuration"] = json!(matches);
    let key = conf.seal_root.key_for(product.name.as_bytes());
    let contents = match file::open(&path, &key, &bytes) {
        Ok(c) => c,
        Err(e) => return fail(value, lines, e),
    };
    let mut keys = Vec::new();
    if contents.entries.is_empty() {
        lines.push("  keys: none".into());
    } else {
        lines.push(format!("  keys: {}", contents.entries.len()));
        lines.push(format!(
            "  {:<32} {:<20} {:<7} {:>6}  {:<38} {:<22} {:<24} LAST CONFIRMED",
            "KEY ID", "OWNER", "TYPE", "BITS", "UNIQUE ID", "SERVER", "KEPT AT"
        ));
    }
    for ((key_id, key_owner), e) in &contents.entries {
        let bits = e.material.len() * 8;
        lines.push(format!(
            "  {:<32} {:<20} {:<7} {:>6}  {:<38} {:<22} {:<24} {}",
            key_id,
            if key_owner.is_empty() { "-" } else { key_owner },
            e.key_type.name(),
            bits,
            e.uid,
            e.server,
            config::utc(UNIX_EPOCH + Duration::from_secs(e.kept_at)),
            when(e.confirmed_at, now)
        ));
        keys.push(json!({
            "key_id": key_id,
            "owner": key_owner,
            "type": e.key_type.name(),
            "length_bits": bits,
            "unique_id": e.uid,
            "server": e.server,
            "kept_at": e.kept_at,
            "confirmed_at": e.confirmed_at,
            "confirmed_age_seconds": now.saturating_sub(e.confirmed_at),
        }));
    }
    value["keys"] = Value::Array(keys);
    // Names the KMIP server said do not exist (mysqld asks for some at every start).
    let mut absent = Vec::new();
    if !contents.absent.is_empty() {
        lines.push(format!(
            "  known absent (the KMIP server said there is no such key): {}",
            contents.absent.len()
        ));
    }
    for ((key_id, key_owner), confirmed_at) in &contents.absent {
        lines.push(format!(
            "  {:<32} {:<20} last confirmed {}",
            key_id,
            if key_owner.is_empty() { "-" } else { key_owner },
            when(*confirmed_at, now)
        ));
        absent.push(json!({
            "key_id": key_id,
            "owner": key_owner,
            "confirmed_at": confirmed_at,
            "confirmed_age_seconds": now.saturating_sub(*confirmed_at),
        }));
    }
    value["absent_keys"] = Value::Array(absent);
    (value, lines, None)
}

fn show(cli: &Cli, dir: &Path, products: Vec<Product>) -> Result<(), Failure> {
    let conf = load(cli)?;
    let now = sealed::now_unix();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for (i, product) in products.iter().enumerate() {
        let (value, lines, error) = show_one(&conf, dir, product, now);
        let error = error.map(|e| (sealed::path_in(dir, product), e));
        if !cli.json {
            if i > 0 {
                outln!();
            }
            for line in lines {
                outln!("{line}");
            }
        }
        files.push(value);
        errors.extend(error);
    }
    if cli.json {
        outln!("{}", json!({"files": files, "ok": errors.is_empty()}));
    }
    if errors.is_empty() {
        return Ok(());
    }
    if cli.json {
        // Each file's error is in its "error" field.
        let all: Vec<String> = errors.into_iter().map(|(_, e)| e).collect();
        return Err(Failure::reported(EXIT_SEALED, all.join("; and ")));
    }
    // Each file's error is printed above, under the file.
    let paths: Vec<String> = errors
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    Err(Failure::new(
        EXIT_SEALED,
        format!(
            "{} sealed key cache file(s) cannot be used (the reason is printed under each): {}",
            paths.len(),
            paths.join(", ")
        ),
    ))
}

/// The file, its lock file and the temporary files a write left behind
/// (`.<name>.sealed.<...>.tmp`, `.<name>.sealed.lock`).
fn files_of(dir: &Path, product: &Product) -> Vec<PathBuf> {
    let path = sealed::path_in(dir, product);
    let mut out = Vec::new();
    if std::fs::symlink_metadata(&path).is_ok() {
        out.push(path);
    }
    let prefix = format!(".{}.sealed.", product.name);
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut tmps: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        tmps.sort();
        out.extend(tmps);
    }
    out
}

fn remove(cli: &Cli, dir: &Path, products: Vec<Product>) -> Result<(), Failure> {
    // The configuration need not load: a directory whose key.pem was replaced, or whose
    // servers changed, still has files to remove.
    if !dir.is_dir() {
        return Err(Failure::new(
            2,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mut removed = Vec::new();
    let mut absent = Vec::new();
    let mut errors = Vec::new();
    for product in &products {
        let paths = files_of(dir, product);
        if paths.is_empty() {
            absent.push(sealed::path_in(dir, product).display().to_string());
        }
        for path in paths {
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path.display().to_string()),
                Err(e) => errors.push(format!("cannot remove {}: {e}", path.display())),
            }
        }
    }
    if cli.json {
        outln!(
            "{}",
            json!({"removed": removed, "absent": absent, "errors": errors})
        );
    } else {
        for path in &removed {
            outln!("removed {path}");
        }
        for path in &absent {
            outln!("no file {path}");
        }
        if !removed.is_empty() {
            outln!(
                "a running server with its sealed cache setting on writes the file again while a KMIP server answers"
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        let message = errors.join("; ");
        if cli.json {
            Err(Failure::reported(EXIT_SEALED, message))
        } else {
            Err(Failure::new(EXIT_SEALED, message))
        }
    }
}
