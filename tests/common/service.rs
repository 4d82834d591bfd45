//! Real servers run as a production host runs them: the service modes of scripts/mysql-real.sh
//! (`KEYRING_OKV_MYSQL_AS_SERVICE=1`) and scripts/mariadb-real.sh
//! (`KEYRING_OKV_MARIADB_AS_SERVICE=1`) start mysqld 9.7 (sid chroot), MariaDB 10.11 (host)
//! or 11.8 (trixie chroot) as the `mysql` account, umask 007, in a private mount namespace
//! where `/etc` and `/usr` are read-only (systemd's `ProtectSystem=full`; MySQL's AppArmor
//! profile gives `/etc/mysql/**` read only). Beside the instances: configuration directories
//! under `/etc/mysql/` owned by root and readable by the `mysql` group, as a package installs
//! them, the client key pair renewed in place as a key manager's agent does, and what the tests
//! check of a running server (its account, its read-only `/etc`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::mariadb::Target;

/// Where a packaged server may write keyring data: the sealed key cache's default directory.
pub const KEYRING_DIR: &str = "/var/lib/mysql-keyring";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Which real server, and where it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// mysqld 9.7 in the sid chroot.
    Mysql,
    /// MariaDB 10.11 on the host or 11.8 in the trixie chroot.
    Mariadb(Target),
}

impl Server {
    fn command(self) -> Command {
        let mut cmd = Command::new("bash");
        match self {
            Server::Mysql => {
                cmd.arg(repo_root().join("scripts/mysql-real.sh"))
                    .env("KEYRING_OKV_MYSQL_AS_SERVICE", "1");
            }
            Server::Mariadb(target) => {
                cmd.arg(repo_root().join("scripts/mariadb-real.sh"))
                    .env("KEYRING_OKV_MARIADB_AS_SERVICE", "1")
                    .env(
                        "KEYRING_OKV_MARIADB_TARGET",
                        match target {
                            Target::Host => "host",
                            Target::Chroot => "chroot",
                        },
                    )
                    .env(
                        "KEYRING_OKV_MARIADB_PLUGIN",
                        super::mariadb::plugin_library(),
                    );
            }
        }
        cmd
    }

    /// The script with `args`, in the service mode.
    pub fn script(self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("run the lab script")
    }

    fn must(self, args: &[&str]) -> String {
        let out = self.script(args);
        assert!(
            out.status.success(),
            "{self:?} {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Host path of the root directory the server sees (`/` on the host), once installed (with
    /// our libraries where the server loads them from its own plugin directory).
    pub fn root(self) -> PathBuf {
        match self {
            Server::Mysql => super::mysql::root().clone(),
            Server::Mariadb(Target::Host) => {
                super::mariadb::installed(Target::Host);
                PathBuf::from("/")
            }
            Server::Mariadb(Target::Chroot) => {
                super::mariadb::installed(Target::Chroot);
                PathBuf::from(self.must(&["root"]))
            }
        }
    }

    /// Host path of `inner`, a path as the server sees it.
    pub fn host_path(self, inner: &str) -> PathBuf {
        self.root().join(inner.trim_start_matches('/'))
    }

    /// The `mysql` account of the server's root.
    pub fn account(self) -> Account {
        Account::of(&self.root())
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `mysql` account as a root's /etc/passwd has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    pub fn of(root: &Path) -> Account {
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("read etc/passwd");
        let line = passwd
            .lines()
            .find(|l| l.starts_with("mysql:"))
            .unwrap_or_else(|| panic!("no mysql account in {}/etc/passwd", root.display()));
        let fields: Vec<&str> = line.split(':').collect();
        Account {
            uid: fields[2].parse().expect("uid"),
            gid: fields[3].parse().expect("gid"),
        }
    }
}

/// One instance started in the service mode; stopped when dropped.
pub struct Service {
    pub server: Server,
    pub name: String,
}

impl Service {
    /// A new instance (wiped if it existed), not started.
    pub fn new(server: Server, name: &str) -> Service {
        server.root();
        let _ = server.script(&["reset", name]);
        Service {
            server,
            name: name.to_string(),
        }
    }

    /// (Re)starts with `args`, which later restarts reuse; Err(the script's output) when the
    /// server did not come up.
    pub fn start(&self, args: &[String]) -> Result<(), String> {
        let mut all = vec!["restart", self.name.as_str()];
        all.extend(args.iter().map(String::as_str));
        let out = self.server.script(&all);
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out))
        }
    }

    pub fn must_start(&self, args: &[String]) {
        if let Err(e) = self.start(args) {
            panic!("{:?} {} did not start:\n{e}", self.server, self.name);
        }
    }

    /// Restarts with the stored arguments.
    pub fn restart(&self) -> Result<(), String> {
        self.start(&[])
    }

    pub fn stop(&self) {
        self.server.must(&["stop", &self.name]);
    }

    pub fn sql(&self, query: &str) -> Result<String, String> {
        let out = self.server.script(&["sql", &self.name, query]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(text(&out))
        }
    }

    pub fn must_sql(&self, query: &str) -> String {
        self.sql(query).unwrap_or_else(|e| {
            panic!(
                "SQL failed on {}: {query}\n{e}\nerror log:\n{}",
                self.name,
                self.log_tail(40)
            )
        })
    }

    /// Host path of the instance directory.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(self.server.must(&["path", &self.name]))
    }

    /// The instance directory as the server sees it.
    pub fn inner(&self) -> String {
        match self.server {
            Server::Mysql => format!("/srv/mysql/{}", self.name),
            Server::Mariadb(_) => self.server.must(&["inner", &self.name]),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("error.log")).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The server's process id (from its pid file).
    pub fn pid(&self) -> u32 {
        let file = match self.server {
            Server::Mysql => "mysqld.pid",
            Server::Mariadb(_) => "mariadbd.pid",
        };
        let text = std::fs::read_to_string(self.path().join(file))
            .unwrap_or_else(|e| panic!("{}'s pid file: {e}", self.name));
        text.trim().parse().expect("a pid")
    }

    /// Asserts that the running server is what a service unit starts: the `mysql` account, and
    /// `/etc` read-only in its mount namespace (the script's write probe, made as that account
    /// in that namespace, failed with EROFS).
    pub fn assert_runs_as_service(&self) {
        let account = self.server.account();
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uids = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .expect("Uid line");
        let want = account.uid.to_string();
        assert!(
            uids.split_whitespace().all(|u| u == want),
            "{} runs as uids {uids}, not mysql ({want})",
            self.name
        );
        assert_eq!(
            mount_options(pid, "/etc")
                .as_deref()
                .map(|o| o.starts_with("ro")),
            Some(true),
            "/etc is not read-only for {} (pid {pid})",
            self.name
        );
        let probe = std::fs::read_to_string(self.path().join("etc-probe")).unwrap_or_default();
        assert!(probe.contains("Read-only file system"), "probe: {probe:?}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.server.script(&["stop", &self.name]);
    }
}

/// The options of the mount on `point` (the last one stacked there) as process `pid` sees it.
pub fn mount_options(pid: u32, point: &str) -> Option<String> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    info.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(4) == Some(&point)).then(|| f[5].to_string())
    })
}

/// A configuration directory as a package installs one under `/etc/mysql/`: the directory and
/// `ssl/` mode 750 and the files 640, owned by root, group `mysql`.
pub struct ConfDir {
    /// As the server sees it.
    pub inner: String,
    /// On the host.
    pub host: PathBuf,
    pub account: Account,
}

impl ConfDir {
    /// `/etc/mysql/keyring-okv-<name>` in the server's root: a copy of `src` (a PyKMIP lab
    /// configuration directory) whose okvclient.ora names only `server`.
    pub fn under_etc(server: Server, name: &str, src: &Path, kmip: std::net::SocketAddr) -> Self {
        let inner = format!("/etc/mysql/keyring-okv-{name}");
        let host = server.host_path(&inner);
        let account = server.account();
        let _ = std::fs::remove_dir_all(&host);
        std::fs::create_dir_all(host.join("ssl")).unwrap();
        std::fs::write(host.join("okvclient.ora"), format!("SERVER={kmip}\n")).unwrap();
        for file in ["CA.pem", "cert.pem", "key.pem"] {
            std::fs::copy(src.join("ssl").join(file), host.join("ssl").join(file)).unwrap();
        }
        let conf = ConfDir {
            inner,
            host,
            account,
        };
        for (path, mode) in [
            (conf.host.clone(), 0o750),
            (conf.host.join("ssl"), 0o750),
            (conf.host.join("okvclient.ora"), 0o640),
            (conf.host.join("ssl/CA.pem"), 0o640),
            (conf.host.join("ssl/cert.pem"), 0o640),
            (conf.host.join("ssl/key.pem"), 0o640),
        ] {
            conf.own(&path, mode);
        }
        conf
    }

    fn own(&self, path: &Path, mode: u32) {
        std::os::unix::fs::chown(path, Some(0), Some(self.account.gid)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Every entry below the directory: relative path -> (mode, uid, gid, size, modified).
    pub fn tree(&self) -> BTreeMap<String, (u32, u32, u32, u64, i64)> {
        walk(&self.host)
            .into_iter()
            .map(|p| {
                let m = std::fs::symlink_metadata(&p).unwrap();
                (
                    p.strip_prefix(&self.host).unwrap().display().to_string(),
                    (m.mode(), m.uid(), m.gid(), m.len(), m.mtime()),
                )
            })
            .collect()
    }

    /// Renews the client identity in place, as a key manager's agent does while the server runs:
    /// a new private key of the same kind and a new certificate for the same subject from the
    /// same CA (`ca_dir`/ca.crt and ca.key), each written beside its file and renamed over it,
    /// the certificate first. Returns the new certificate's serial number.
    pub fn renew_client_identity(&self, ca_dir: &Path) -> String {
        let work = tempfile::tempdir().unwrap();
        let ssl = self.host.join("ssl");
        let old_key = openssl_out(&[
            "pkey",
            "-noout",
            "-text",
            "-in",
            ssl.join("key.pem").to_str().unwrap(),
        ]);
        let key = work.path().join("key.pem");
        let key_s = key.to_str().unwrap();
        let curve = old_key
            .lines()
            .find_map(|l| l.trim().strip_prefix("NIST CURVE:"))
            .map(|c| c.trim().to_string());
        match curve {
            Some(curve) => openssl_out(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
                "-out",
                key_s,
            ]),
            None => {
                let bits = old_key
                    .lines()
                    .next()
                    .and_then(|l| l.split('(').nth(1))
                    .and_then(|l| l.split(' ').next())
                    .unwrap_or("2048")
                    .to_string();
                openssl_out(&[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    &format!("rsa_keygen_bits:{bits}"),
                    "-out",
                    key_s,
                ])
            }
        };
        // The request takes the subject from the certificate in force, byte for byte.
        let csr = work.path().join("client.csr");
        openssl_out(&[
            "x509",
            "-x509toreq",
            "-in",
            ssl.join("cert.pem").to_str().unwrap(),
            "-key",
            key_s,
            "-out",
            csr.to_str().unwrap(),
        ]);
        let ext = work.path().join("client.ext");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        let cert = work.path().join("cert.pem");
        let serial: String = {
            use std::time::{SystemTime, UNIX_EPOCH};
            let n = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            format!("0x{n:x}{:x}", std::process::id())
        };
        openssl_out(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca_dir.join("ca.crt").to_str().unwrap(),
            "-CAkey",
            ca_dir.join("ca.key").to_str().unwrap(),
            "-set_serial",
            &serial,
            "-days",
            "30",
            "-sha256",
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
        for (from, to) in [(&cert, "cert.pem"), (&key, "key.pem")] {
            let staged = ssl.join(format!(".{to}.new"));
            std::fs::copy(from, &staged).unwrap();
            self.own(&staged, 0o640);
            std::fs::rename(&staged, ssl.join(to)).unwrap();
        }
        serial
    }
}

impl Drop for ConfDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.host);
        // In a chroot nothing else owns /etc/mysql: leave the root as it was (the package test
        // compares the chroot's file list before and after a purge, and dpkg removes an empty
        // /etc/mysql that no package owns). It is removed only once empty, so a test still
        // running in the same root keeps its directory; the host's own /etc/mysql is left.
        if let Some(parent) = self.host.parent()
            && parent != Path::new("/etc/mysql")
        {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

fn openssl_out(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every path below `dir` (not following symbolic links), `dir` excluded.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The paths below `dir` owned by `uid`.
pub fn owned_by(dir: &Path, uid: u32) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() == uid))
        .collect()
}

/// A directory for the sealed key cache as a package makes one: mysql:mysql, mode 0750.
pub fn keyring_dir(server: Server, inner: &str) -> PathBuf {
    let host = server.host_path(inner);
    let account = server.account();
    std::fs::create_dir_all(&host).unwrap();
    std::os::unix::fs::chown(&host, Some(account.uid), Some(account.gid)).unwrap();
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o750)).unwrap();
    host
}

/// (mode & 0o7777, uid) of a file.
pub fn mode_owner(path: &Path) -> (u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid())
}

/// Polls `f` until it gives a value; panics with `what` (and `context()`) after `timeout`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
