//! Client certificates replaced in ssl/ while the keyring runs are picked up without a reload:
//! a short-lived certificate is renewed before it expires, a half-written replacement keeps the
//! old identity in use, and a new identity from another CA works once the KMIP server is
//! restarted trusting only that CA. Against PyKMIP, behind a TCP relay whose target moves the
//! way an address does when the server is replaced. Also: a certificate that expires under a
//! running mysqld with nothing to replace it gives one clear line, and the status's expiry
//! follows the certificate on disk while a connection stays open (in-process, no PyKMIP).

#[path = "../common/mod.rs"]
mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::mysql::Instance;
use common::pykmip::{Named, lab, unique};
use okv_core::config::load_conf_dir;
use okv_core::connector::KmipClient;
use okv_core::keyring::Keyring;

/// A TCP relay on 127.0.0.1 whose upstream can be changed; `cut` closes what it relays.
struct Relay {
    port: u16,
    upstream: Arc<Mutex<SocketAddr>>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = Arc::new(Mutex::new(upstream));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (up, o) = (upstream.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let target = *up.lock().unwrap();
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                o.lock()
                    .unwrap()
                    .extend([conn.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (c2, s2) = (conn.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(conn, s2));
                std::thread::spawn(move || pipe(server, c2));
            }
        });
        Relay {
            port,
            upstream,
            open,
        }
    }

    /// The server behind the address is replaced: open connections break, new ones go there.
    fn retarget(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// A PyKMIP instance of its own (`profile`: the PKI it trusts); stopped when dropped.
struct Kmip {
    _named: Named,
    port: u16,
    certs: PathBuf,
}

impl Kmip {
    fn start(name: &str, profile: &'static str) -> Kmip {
        let named = Named::start(name, profile);
        let (port, certs) = (named.port(), named.certs());
        Kmip {
            _named: named,
            port,
            certs,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// A client certificate and key (PEM) for CN keyring-okv-test, EKU clientAuth, signed by the
/// CA in `certs`, valid from a minute ago for `seconds`. Made with the lab's Python
/// `cryptography` (the openssl command line counts validity in days).
fn client_identity(certs: &Path, seconds: u64) -> (String, String) {
    let python = lab().certs.parent().unwrap().join("venv/bin/python");
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
ca_cert = x509.load_pem_x509_certificate(open(sys.argv[1] + "/ca.crt", "rb").read())
ca_key = serialization.load_pem_private_key(open(sys.argv[1] + "/ca.key", "rb").read(), None)
key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder()
    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyring-okv-test")]))
    .issuer_name(ca_cert.subject)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(minutes=1))
    .not_valid_after(now + datetime.timedelta(seconds=int(sys.argv[2])))
    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    .sign(ca_key, hashes.SHA256()))
sys.stdout.write(cert.public_bytes(serialization.Encoding.PEM).decode())
sys.stdout.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(certs)
        .arg(seconds.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let at = text.find("-----BEGIN PRIVATE KEY-----").unwrap();
    (text[..at].to_string(), text[at..].to_string())
}

/// Replaces `file` in the conf dir the way a careful agent does: a new file renamed over it.
fn replace(conf: &Path, file: &str, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = conf.join(file);
    let tmp = path.with_extension("new");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

fn conf_dir(kmip_port: u16, certs: &Path, identity: &(String, String)) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path();
    std::fs::set_permissions(conf, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::create_dir(conf.join("ssl")).unwrap();
    std::fs::set_permissions(conf.join("ssl"), std::fs::Permissions::from_mode(0o750)).unwrap();
    replace(
        conf,
        "okvclient.ora",
        &format!("SERVER=127.0.0.1:{kmip_port}\n"),
        0o600,
    );
    replace(
        conf,
        "ssl/CA.pem",
        &std::fs::read_to_string(certs.join("ca.crt")).unwrap(),
        0o640,
    );
    replace(conf, "ssl/cert.pem", &identity.0, 0o640);
    replace(conf, "ssl/key.pem", &identity.1, 0o600);
    dir
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn replaced_certificates_are_used_without_a_reload() {
    let a = Kmip::start("reloada", "p256");
    let b = Kmip::start("reloadb", "p384");
    let relay = Relay::start(a.addr());
    // Five minutes left: inside the renewal window from the start.
    let short = client_identity(&a.certs, 300);
    let dir = conf_dir(relay.port, &a.certs, &short);
    let conf = load_conf_dir(dir.path()).unwrap();
    let first_expiry = conf.identity.not_after;
    let client = KmipClient::from_conf_dir(&conf).unwrap();
    let health = client.health();
    let k = Keyring::new(client);
    let id = unique("reload");
    k.generate(&id, "", "AES", 32).unwrap();
    let expires = |h: &okv_core::health::Health| h.snapshot().client_cert_expires;
    assert_eq!(
        expires(&health),
        okv_core::health::utc_timestamp(unix(first_expiry))
    );
    let connections = health.snapshot().connections;

    // 1. A half-written replacement: the old identity stays in use, nothing breaks.
    replace(
        dir.path(),
        "ssl/cert.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB",
        0o640,
    );
    assert!(k.fetch(&id, "").unwrap().is_some());
    assert_eq!(health.snapshot().connections, connections);
    assert_eq!(
        expires(&health),
        okv_core::health::utc_timestamp(unix(first_expiry))
    );

    // 2. The renewed certificate arrives (same CA, a year): the connection made with the
    // expiring one is replaced before the next request, with no statement or restart.
    let renewed = client_identity(&a.certs, 365 * 86_400);
    replace(dir.path(), "ssl/key.pem", &renewed.1, 0o600);
    replace(dir.path(), "ssl/cert.pem", &renewed.0, 0o640);
    assert!(k.fetch(&id, "").unwrap().is_some());
    assert_eq!(health.snapshot().connections, connections + 1);
    assert_ne!(
        expires(&health),
        okv_core::health::utc_timestamp(unix(first_expiry))
    );

    // 3. A new identity from another CA, while the KMIP server is replaced by one that
    // trusts only that CA: calls keep working.
    let other = client_identity(&b.certs, 3600);
    replace(
        dir.path(),
        "ssl/CA.pem",
        &std::fs::read_to_string(b.certs.join("ca.crt")).unwrap(),
        0o640,
    );
    replace(dir.path(), "ssl/key.pem", &other.1, 0o600);
    replace(dir.path(), "ssl/cert.pem", &other.0, 0o640);
    relay.retarget(b.addr());
    drop(a);
    let id2 = unique("reload-b");
    k.generate(&id2, "", "AES", 32).unwrap();
    assert!(k.fetch(&id2, "").unwrap().is_some());
    k.remove(&id2, "").unwrap();
}

#[test]
fn a_certificate_that_expires_under_mysqld_gives_one_clear_line() {
    let certs = lab().certs.clone();
    // Long enough for mysqld to start and make its first connection.
    let seconds = 75;
    let identity = client_identity(&certs, seconds);
    let expiry = SystemTime::now() + Duration::from_secs(seconds);
    let staging = conf_dir(lab().port, &certs, &identity);
    let name = "tls-expiry";
    let conf = common::component::conf_dir_in_chroot(staging.path(), name, None);
    let args = [
        "--early-plugin-load=keyring_okv.so".to_string(),
        format!("--loose-keyring_okv_conf_dir={conf}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let db = Instance::fresh(name, &args);
    db.udf();
    let key = unique("Expiring");
    db.must_sql(&format!("SELECT keyring_key_generate('{key}', 'AES', 32)"));
    assert!(
        !db.must_sql("SHOW GLOBAL STATUS LIKE 'keyring_okv_client_cert_expires'")
            .ends_with('\t')
    );
    // The certificate runs out; no replacement comes.
    while SystemTime::now() < expiry + Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..3 {
        let _ = db.sql(&format!("SELECT keyring_key_fetch('{key}')"));
    }
    let lines: Vec<String> = db
        .plugin_log()
        .into_iter()
        .filter(|l| l.contains("expired at") && l.contains("ssl/cert.pem"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}\n{}", db.log_tail(30));
    // Before that, one warning: less than KEYRING_OKV_CERT_EXPIRY_WARNING (7 days) was left.
    let warnings: Vec<String> = db
        .plugin_log()
        .into_iter()
        .filter(|l| l.contains("expires at") && l.contains("ssl/cert.pem"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("[Warning]"), "{}", warnings[0]);
    assert!(lines[0].contains("[ERROR]"), "{}", lines[0]);
    assert!(
        lines[0].contains("put a renewed certificate and key in"),
        "{}",
        lines[0]
    );
    common::mysql::script(&["stop", name]).unwrap();
}

/// The status's client certificate expiry follows the certificate on disk, not the open
/// connection: after a correct early renewal the documented alert must stop at once, not at
/// the next connection (which may be days away on a busy server). In-process, no PyKMIP.
#[test]
fn the_status_shows_a_renewed_certificate_while_the_connection_stays_open() {
    use common::fixtures::{Layout, make_conf_dir, openssl, pki};
    use common::kmip_quirks::{Quirks, serve_own_pki};
    use okv_core::connector::Retry;
    use okv_core::kmip::{LocateFilter, ops};

    let pki = pki();
    let tmp = tempfile::tempdir().unwrap();
    // The test PKI's client key, certified for 5 days: outside the renewal window, so the
    // open connection stays in use.
    let short = tmp.path().join("short.pem");
    openssl(
        &pki.dir,
        &[
            "x509",
            "-req",
            "-in",
            "client_ec.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "4242",
            "-days",
            "5",
            "-sha256",
            "-extfile",
            "client.ext",
            "-out",
            short.to_str().unwrap(),
        ],
    );
    let (_kmip, server) = serve_own_pki("u", Quirks::default());
    let dir = make_conf_dir(&Layout {
        ora: Some(format!("SERVER=127.0.0.1:{}\n", server.port())),
        cert: Some(short),
        ..pki.layout()
    });
    let conf = load_conf_dir(&dir.dir).unwrap();
    let short_expiry = unix(conf.identity.not_after);
    let client = KmipClient::from_conf_dir(&conf).unwrap();
    let health = client.health();
    let locate = ops::locate(
        &LocateFilter {
            name: Some("mysql-keyring::no-such-key"),
            object_type: None,
        },
        None,
    );
    client
        .request(&locate, Retry::Idempotent, ops::parse_locate)
        .unwrap();
    assert_eq!(health.snapshot().client_cert_expires_unix, short_expiry);
    let connections = health.snapshot().connections;

    // Renewed early, in place (same key, 825 days).
    replace(
        &dir.dir,
        "ssl/cert.pem",
        &std::fs::read_to_string(&pki.client_ec_cert).unwrap(),
        0o600,
    );
    let renewed = unix(load_conf_dir(&dir.dir).unwrap().identity.not_after);
    assert!(renewed > short_expiry);
    let status = health.snapshot();
    assert_eq!(status.client_cert_expires_unix, renewed);
    assert_eq!(
        status.client_cert_expires,
        okv_core::health::utc_timestamp(renewed)
    );
    assert_eq!(status.connections, connections, "no new connection");
    // The open connection is still the one in use.
    client
        .request(&locate, Retry::Idempotent, ops::parse_locate)
        .unwrap();
    assert_eq!(health.snapshot().connections, connections);
    assert_eq!(health.snapshot().client_cert_expires_unix, renewed);
}
