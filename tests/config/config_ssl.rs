//! ssl/ materials, permissions, secrets hygiene and the TLS server-name policy.

#[path = "../common/mod.rs"]
mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::fixtures::{
    KEY_PASSWORD, Layout, TestConfDir, make_conf_dir, pki, rustls_server_config,
};
use okv_core::config::{ConfDir, ConfigError, check_permissions, load_conf_dir};

fn load(l: &Layout) -> (TestConfDir, Result<ConfDir, ConfigError>) {
    let d = make_conf_dir(l);
    let r = load_conf_dir(&d.dir);
    (d, r)
}

fn load_err(l: &Layout) -> (TestConfDir, ConfigError) {
    let (d, r) = load(l);
    let e = r.expect_err("expected an error");
    (d, e)
}

fn pem_body_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.contains(':') && l.len() > 16)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_key_format_loads() {
    let pki = pki();
    for case in &pki.key_cases {
        let mut l = pki.layout();
        l.key = Some(case.key.clone());
        l.cert = Some(case.cert.clone());
        if case.encrypted {
            l.password = Some(format!("{KEY_PASSWORD}\n"));
        }
        let (_d, r) = load(&l);
        let c = r.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(c.identity.key_kind, case.kind, "{}", case.name);
        assert_eq!(c.identity.key_format, case.format, "{}", case.name);
        assert!(
            c.identity.subject.contains("CN=keyring-okv-"),
            "{}",
            case.name
        );
        assert!(c.identity.not_before < c.identity.not_after);
        assert!(c.warnings.is_empty(), "{}: {:?}", case.name, c.warnings);
        assert_eq!(c.servers.len(), 1);
        assert_eq!(c.servers[0].to_string(), "127.0.0.1:5696");
    }
}

/// The sealed key cache's key comes from the private key, not from how key.pem encodes it:
/// converting a key from PKCS#1 to PKCS#8 (or SEC1 to PKCS#8, encrypted or not) must not make
/// the sealed file unreadable. Two different keys give two different roots.
#[test]
fn the_sealed_cache_root_is_the_same_for_every_encoding_of_one_key() {
    let pki = pki();
    let mut roots: std::collections::BTreeMap<&str, Vec<(&str, [u8; 32])>> = Default::default();
    for case in &pki.key_cases {
        let mut l = pki.layout();
        l.key = Some(case.key.clone());
        l.cert = Some(case.cert.clone());
        if case.encrypted {
            l.password = Some(format!("{KEY_PASSWORD}\n"));
        }
        let (_d, r) = load(&l);
        let c = r.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        roots
            .entry(case.kind)
            .or_default()
            .push((case.name, *c.seal_root.key_for(b"keyring_okv")));
    }
    for (kind, list) in &roots {
        let (first_name, first) = list[0];
        for (name, root) in list {
            assert_eq!(
                root, &first,
                "{kind}: '{name}' and '{first_name}' are one key in two encodings"
            );
        }
    }
    assert!(roots.len() >= 2, "both an RSA and an EC key were tried");
    let distinct: std::collections::BTreeSet<[u8; 32]> =
        roots.values().map(|list| list[0].1).collect();
    assert_eq!(
        distinct.len(),
        roots.len(),
        "different keys, different roots"
    );
}

#[test]
fn password_file_variants() {
    let pki = pki();
    let case = &pki
        .key_cases
        .iter()
        .find(|c| c.name.starts_with("openssl rsa -des3 ("))
        .unwrap();
    for pw in [
        KEY_PASSWORD.to_string(),
        format!("{KEY_PASSWORD}\r\n"),
        format!("{KEY_PASSWORD}\nsecond line ignored\n"),
    ] {
        let mut l = pki.layout();
        l.key = Some(case.key.clone());
        l.cert = Some(case.cert.clone());
        l.password = Some(pw.clone());
        let (_d, r) = load(&l);
        r.unwrap_or_else(|e| panic!("{pw:?}: {e}"));
    }
    // A plain key with a password.txt next to it is fine.
    let mut l = pki.layout();
    l.password = Some("unused\n".into());
    load(&l).1.unwrap();
}

#[test]
fn wrong_password_for_every_encrypted_form() {
    let pki = pki();
    for case in pki.key_cases.iter().filter(|c| c.encrypted) {
        for pw in ["not-the-pw-42\n", "s3cret pass,word\n"] {
            let mut l = pki.layout();
            l.key = Some(case.key.clone());
            l.cert = Some(case.cert.clone());
            l.password = Some(pw.into());
            let (d, e) = load_err(&l);
            assert!(
                matches!(e, ConfigError::WrongPassword { .. }),
                "{}: {e:?}",
                case.name
            );
            let msg = e.to_string();
            assert!(
                msg.starts_with(&d.ssl("key.pem").display().to_string()),
                "{msg}"
            );
            assert!(
                msg.contains("password.txt") && msg.contains("wrong password"),
                "{msg}"
            );
            assert!(!msg.contains(pw.trim()) && !format!("{e:?}").contains(pw.trim()));
        }
    }
}

#[test]
fn encrypted_key_without_or_with_empty_password() {
    let pki = pki();
    for case in pki.key_cases.iter().filter(|c| c.encrypted) {
        let mut l = pki.layout();
        l.key = Some(case.key.clone());
        l.cert = Some(case.cert.clone());
        let (d, e) = load_err(&l);
        assert!(
            matches!(e, ConfigError::PasswordMissing { .. }),
            "{}: {e:?}",
            case.name
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&d.ssl("password.txt").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("encrypted"), "{msg}");

        l.password = Some("\r\n".into());
        let (_d, e) = load_err(&l);
        assert!(
            matches!(e, ConfigError::PasswordEmpty { .. }),
            "{}: {e:?}",
            case.name
        );
        assert!(e.to_string().contains("password.txt"));
    }
}

/// (name, modify the layout / dir, file the message must name, fragments)
type ErrCase = (
    &'static str,
    Box<dyn Fn(&mut Layout, &Path)>,
    &'static str,
    &'static [&'static str],
);

#[test]
fn each_error_is_distinct_and_names_the_file() {
    let pki = pki();
    let tmp = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let empty = w("empty.pem", "\n \n");
    let garbage = w("garbage.pem", "this is not PEM at all\n");
    let damaged = w(
        "damaged.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    let two_keys = {
        let k = [
            fs::read(&pki.client_ec_key).unwrap(),
            fs::read(&pki.server_key).unwrap(),
        ]
        .concat();
        let p = tmp.path().join("two_keys.pem");
        fs::write(&p, k).unwrap();
        p
    };
    let des_cbc = {
        let trad = pki
            .key_cases
            .iter()
            .find(|c| c.name == "openssl rsa -des3 -traditional")
            .unwrap();
        let t = fs::read_to_string(&trad.key)
            .unwrap()
            .replace("DES-EDE3-CBC", "DES-CBC");
        w("des_cbc.pem", &t)
    };
    let bad_der_cert = w(
        "bad_der.pem",
        "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
    );

    let cases: Vec<ErrCase> = vec![
        (
            "okvclient.ora missing",
            Box::new(|l, _| l.ora = None),
            "okvclient.ora",
            &["is missing", "SERVER=host:port"],
        ),
        (
            "okvclient.ora syntax",
            Box::new(|l, _| l.ora = Some("\nSERVER=1.2.3.4:0\n".into())),
            "okvclient.ora:2:",
            &["port 0"],
        ),
        (
            "CA.pem missing",
            Box::new(|l, _| l.ca = None),
            "ssl/CA.pem",
            &["is missing"],
        ),
        (
            "cert.pem missing",
            Box::new(|l, _| l.cert = None),
            "ssl/cert.pem",
            &["is missing"],
        ),
        (
            "key.pem missing",
            Box::new(|l, _| l.key = None),
            "ssl/key.pem",
            &["is missing"],
        ),
        (
            "CA.pem empty",
            {
                let e = empty.clone();
                Box::new(move |l, _| l.ca = Some(e.clone()))
            },
            "ssl/CA.pem",
            &["is empty"],
        ),
        (
            "cert.pem empty",
            {
                let e = empty.clone();
                Box::new(move |l, _| l.cert = Some(e.clone()))
            },
            "ssl/cert.pem",
            &["is empty"],
        ),
        (
            "key.pem empty",
            {
                let e = empty.clone();
                Box::new(move |l, _| l.key = Some(e.clone()))
            },
            "ssl/key.pem",
            &["is empty"],
        ),
        (
            "key.pem not PEM",
            {
                let g = garbage.clone();
                Box::new(move |l, _| l.key = Some(g.clone()))
            },
            "ssl/key.pem",
            &["not a valid PEM file"],
        ),
        (
            "cert.pem damaged base64",
            {
                let g = damaged.clone();
                Box::new(move |l, _| l.cert = Some(g.clone()))
            },
            "ssl/cert.pem",
            &["not a valid PEM file"],
        ),
        (
            "certificate in key.pem",
            Box::new(|l, _| l.key = Some(pki.client_ec_cert.clone())),
            "ssl/key.pem",
            &["expected a PRIVATE KEY", "'CERTIFICATE'"],
        ),
        (
            "key in cert.pem",
            Box::new(|l, _| l.cert = Some(pki.client_ec_key.clone())),
            "ssl/cert.pem",
            &["expected a CERTIFICATE", "'PRIVATE KEY'"],
        ),
        (
            "key in CA.pem",
            Box::new(|l, _| l.ca = Some(pki.client_rsa_key.clone())),
            "ssl/CA.pem",
            &["expected a CERTIFICATE", "CA certificate"],
        ),
        (
            "CA.pem undecodable cert",
            {
                let b = bad_der_cert.clone();
                Box::new(move |l, _| l.ca = Some(b.clone()))
            },
            "ssl/CA.pem",
            &["no usable CA certificate"],
        ),
        (
            "cert.pem undecodable cert",
            {
                let b = bad_der_cert.clone();
                Box::new(move |l, _| l.cert = Some(b.clone()))
            },
            "ssl/cert.pem",
            &["certificate #1 is invalid"],
        ),
        (
            "two keys",
            {
                let t = two_keys.clone();
                Box::new(move |l, _| l.key = Some(t.clone()))
            },
            "ssl/key.pem",
            &["2 private keys"],
        ),
        (
            "ec key, other ec cert",
            Box::new(|l, _| l.key = Some(pki.server_key.clone())),
            "ssl/key.pem",
            &["does not match", "cert.pem"],
        ),
        (
            "rsa key, ec cert",
            Box::new(|l, _| l.key = Some(pki.client_rsa_key.clone())),
            "ssl/key.pem",
            &["does not match"],
        ),
        (
            "unsupported legacy cipher",
            {
                let p = des_cbc.clone();
                Box::new(move |l, _| {
                    l.key = Some(p.clone());
                    l.password = Some(KEY_PASSWORD.into());
                })
            },
            "ssl/key.pem",
            &["unsupported key encryption", "DES-CBC"],
        ),
    ];
    let mut kinds = std::collections::HashSet::new();
    for (name, modify, file, fragments) in &cases {
        let mut l = pki.layout();
        modify(&mut l, tmp.path());
        let (d, e) = load_err(&l);
        let msg = e.to_string();
        let expected_path = d.dir.join(file).display().to_string();
        assert!(msg.starts_with(&expected_path), "{name}: {msg}");
        for f in *fragments {
            assert!(msg.contains(f), "{name}: {msg:?} lacks {f:?}");
        }
        assert!(!msg.contains('\n'), "{name}: {msg}");
        kinds.insert(msg.replace(&d.dir.display().to_string(), "<dir>"));
    }
    // Every case has its own message, except the two key/cert mismatch cases (same error).
    assert_eq!(
        kinds.len(),
        cases.len() - 1,
        "messages are distinct: {kinds:#?}"
    );
}

#[test]
fn directory_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let e = load_conf_dir(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::DirMissing { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&missing.display().to_string()));
    assert!(e.to_string().contains("keyring_okv_conf_dir"));

    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let e = load_conf_dir(&file).unwrap_err();
    assert!(matches!(e, ConfigError::NotADirectory { .. }), "{e:?}");
    assert!(e.to_string().contains("is not a directory"));

    // ssl/ missing.
    let pki = pki();
    let d = make_conf_dir(&pki.layout());
    fs::remove_dir_all(d.dir.join("ssl")).unwrap();
    let e = load_conf_dir(&d.dir).unwrap_err().to_string();
    assert!(
        e.starts_with(&d.dir.join("ssl").display().to_string())
            && e.contains("ssl directory is missing"),
        "{e}"
    );

    // ssl is a file.
    fs::write(d.dir.join("ssl"), "x").unwrap();
    let e = load_conf_dir(&d.dir).unwrap_err().to_string();
    assert!(e.contains("not a directory"), "{e}");

    // key.pem is a directory: unreadable, clear message.
    let d = make_conf_dir(&pki.layout());
    fs::remove_file(d.ssl("key.pem")).unwrap();
    fs::create_dir(d.ssl("key.pem")).unwrap();
    let e = load_conf_dir(&d.dir).unwrap_err();
    assert!(matches!(e, ConfigError::Unreadable { .. }), "{e:?}");
    assert!(e.to_string().contains("is a directory"), "{e}");

    // okvclient.ora is a FIFO: refused without blocking.
    let d = make_conf_dir(&pki.layout());
    fs::remove_file(d.dir.join("okvclient.ora")).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(d.dir.join("okvclient.ora"))
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let e = load_conf_dir(&d.dir).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}

#[test]
fn chain_in_cert_pem_and_several_cas() {
    let pki = pki();
    let tmp = tempfile::tempdir().unwrap();
    let cas = tmp.path().join("cas.pem");
    fs::write(
        &cas,
        [
            fs::read(&pki.other_ca_cert).unwrap(),
            fs::read(&pki.ca_cert).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let mut l = pki.layout();
    l.cert = Some(pki.client_ec_chain.clone());
    l.ca = Some(cas);
    let c = load(&l).1.unwrap();
    assert_eq!(c.identity.subject, "CN=keyring-okv-ec");
}

#[test]
fn certificate_dates_are_warnings() {
    let pki = pki();
    let mut l = pki.layout();
    l.cert = Some(pki.client_expired_cert.clone());
    let (d, r) = load(&l);
    let c = r.expect("an expired certificate is only a warning");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = c.warnings[0].to_string();
    assert!(
        w.starts_with(&d.ssl("cert.pem").display().to_string()),
        "{w}"
    );
    assert!(
        w.contains("expired") && w.contains("2020-01-01") && w.contains("2021-01-01"),
        "{w}"
    );

    l.cert = Some(pki.client_future_cert.clone());
    let c = load(&l).1.unwrap();
    assert_eq!(c.warnings.len(), 1);
    let w = c.warnings[0].to_string();
    assert!(
        w.contains("not valid yet") && w.contains("2090-01-01"),
        "{w}"
    );
}

#[cfg(unix)]
#[test]
fn permission_warnings_name_the_chmod() {
    use common::fixtures::set_mode;
    let pki = pki();
    let mut l = pki.layout();
    l.password = Some("x\n".into());
    let d = make_conf_dir(&l);
    assert!(check_permissions(&d.dir).is_empty());
    let key = d.ssl("key.pem");
    let pw = d.ssl("password.txt");
    let ssl = d.dir.join("ssl");

    let cases: &[(&Path, u32, &str, &str)] = &[
        (&key, 0o640, "lets group read", "chmod 600"),
        (&key, 0o604, "lets others read", "chmod 600"),
        (&key, 0o644, "lets group and others read", "chmod 600"),
        (&key, 0o620, "lets group write", "chmod 600"),
        (&pw, 0o644, "lets group and others read", "chmod 600"),
        (&pw, 0o400, "", ""),
        (&d.dir, 0o755, "accessible by others", "chmod 750"),
        (&d.dir, 0o770, "writable by group", "chmod 750"),
        (
            &d.dir,
            0o777,
            "writable by group and others and accessible by others",
            "chmod 750",
        ),
        (&d.dir, 0o700, "", ""),
        (&ssl, 0o751, "accessible by others", "chmod 750"),
        (&ssl, 0o722, "writable by group and others", "chmod 700"),
    ];
    for (path, mode, what, chmod) in cases {
        set_mode(path, *mode);
        let w = check_permissions(&d.dir);
        if what.is_empty() {
            assert!(w.is_empty(), "{mode:o}: {w:?}");
        } else {
            assert_eq!(w.len(), 1, "{mode:o}: {w:?}");
            let s = w[0].to_string();
            assert_eq!(&w[0].path, path);
            assert!(s.contains(what), "{mode:o}: {s}");
            assert!(
                s.contains(&format!("{chmod} {}'", path.display())),
                "{mode:o}: {s}"
            );
            assert!(s.contains(&format!("mode {mode:03o}")), "{s}");
        }
        set_mode(path, if path.is_dir() { 0o750 } else { 0o600 });
    }

    // The layout of a package: key.pem owned by root, read by the server's account through its
    // group (root:mysql 640). Seen from the server's account, that group read is needed;
    // others and a group write are still problems.
    std::os::unix::fs::chown(&key, Some(4242), None).unwrap();
    set_mode(&key, 0o640);
    assert!(
        check_permissions(&d.dir).is_empty(),
        "{:?}",
        check_permissions(&d.dir)
    );
    set_mode(&key, 0o660);
    let w = check_permissions(&d.dir);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].to_string().contains("lets group write"), "{}", w[0]);
    assert!(w[0].to_string().contains("chmod 640"), "{}", w[0]);
    set_mode(&key, 0o644);
    let w = check_permissions(&d.dir);
    assert!(w[0].to_string().contains("lets others read"), "{}", w[0]);
    std::os::unix::fs::chown(&key, Some(0), None).unwrap();
    set_mode(&key, 0o600);

    // load_conf_dir reports them too, and still succeeds.
    set_mode(&key, 0o644);
    set_mode(&d.dir, 0o755);
    let c = load_conf_dir(&d.dir).unwrap();
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let pki = pki();
    // Plain key.
    let c = load(&pki.layout()).1.unwrap();
    let dbg = format!("{c:?} {:?} {:?}", c.tls, c.identity);
    for line in pem_body_lines(&pki.client_ec_key) {
        assert!(!dbg.contains(&line), "key material in Debug output");
    }
    assert!(dbg.contains("[redacted]"));

    // Encrypted key: neither the password nor the key shows up.
    let case = pki
        .key_cases
        .iter()
        .find(|c| c.name == "pkcs8 -v2 aes256")
        .unwrap();
    let mut l = pki.layout();
    l.key = Some(case.key.clone());
    l.cert = Some(case.cert.clone());
    l.password = Some(format!("{KEY_PASSWORD}\n"));
    let c = load(&l).1.unwrap();
    let dbg = format!("{c:?} {:?} {:#?}", c.tls, c);
    assert!(!dbg.contains(KEY_PASSWORD));
    for line in pem_body_lines(&pki.client_rsa_key) {
        assert!(!dbg.contains(&line), "key material in Debug output");
    }
}

// ---- TLS handshakes against an in-process rustls server ----

fn handshake(conf: &ConfDir, server: Arc<rustls::ServerConfig>) -> Result<(), rustls::Error> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let conn = rustls::ServerConnection::new(server).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut buf = [0u8; 5];
        if tls.read_exact(&mut buf).is_ok() {
            let _ = tls.write_all(&buf);
            let _ = tls.flush();
        }
    });
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let name = conf.servers[0].server_name();
    let conn = rustls::ClientConnection::new(conf.tls.clone(), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let res = tls
        .write_all(b"hello")
        .and_then(|_| tls.flush())
        .and_then(|_| {
            let mut b = [0u8; 5];
            tls.read_exact(&mut b)?;
            assert_eq!(&b, b"hello");
            Ok(())
        });
    drop(tls);
    srv.join().unwrap();
    res.map_err(|e| {
        e.get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .cloned()
            .unwrap_or_else(|| rustls::Error::General(e.to_string()))
    })
}

fn conf_with_verify(verify: &str) -> (TestConfDir, ConfDir) {
    let mut l = pki().layout();
    l.ora = Some(format!(
        "SERVER=127.0.0.1:5696\nKEYRING_OKV_VERIFY_SERVER_NAME={verify}\n"
    ));
    let d = make_conf_dir(&l);
    let c = load_conf_dir(&d.dir).unwrap();
    (d, c)
}

fn is_name_error(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. }
        )
    )
}

#[test]
fn tls_default_policy_verifies_chain_and_name() {
    let pki = pki();
    let (_d, conf) = conf_with_verify("YES");
    assert!(conf.options.verify_server_name);

    let good = rustls_server_config(&pki.server_cert, &pki.server_key, &pki.ca_cert);
    handshake(&conf, good).expect("cert with IP SAN 127.0.0.1");

    let nosan = rustls_server_config(&pki.server_nosan_cert, &pki.server_nosan_key, &pki.ca_cert);
    let e = handshake(&conf, nosan).unwrap_err();
    assert!(is_name_error(&e), "{e:?}");

    let other = rustls_server_config(&pki.other_server_cert, &pki.other_server_key, &pki.ca_cert);
    let e = handshake(&conf, other).unwrap_err();
    assert!(
        matches!(
            e,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{e:?}"
    );
}

#[test]
fn tls_verify_name_no_accepts_only_a_name_mismatch() {
    let pki = pki();
    let (_d, conf) = conf_with_verify("NO");
    assert!(!conf.options.verify_server_name);

    let good = rustls_server_config(&pki.server_cert, &pki.server_key, &pki.ca_cert);
    handshake(&conf, good).expect("cert with IP SAN");

    let nosan = rustls_server_config(&pki.server_nosan_cert, &pki.server_nosan_key, &pki.ca_cert);
    handshake(&conf, nosan).expect("name mismatch accepted with VERIFY_SERVER_NAME=NO");

    let other = rustls_server_config(&pki.other_server_cert, &pki.other_server_key, &pki.ca_cert);
    let e = handshake(&conf, other).unwrap_err();
    assert!(
        matches!(
            e,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{e:?}"
    );

    // Expired server certificate: dates still checked, in both modes.
    for verify in ["NO", "YES"] {
        let (_d, conf) = conf_with_verify(verify);
        let expired = rustls_server_config(&pki.server_expired_cert, &pki.server_key, &pki.ca_cert);
        let e = handshake(&conf, expired).unwrap_err();
        assert!(
            matches!(
                e,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired
                        | rustls::CertificateError::ExpiredContext { .. }
                )
            ),
            "{verify}: {e:?}"
        );
    }

    // A client certificate (EKU clientAuth only) presented as server cert: EKU still checked.
    let wrong_eku = rustls_server_config(&pki.client_ec_cert, &pki.client_ec_key, &pki.ca_cert);
    let e = handshake(&conf, wrong_eku).unwrap_err();
    assert!(!is_name_error(&e), "{e:?}");
    assert!(matches!(e, rustls::Error::InvalidCertificate(_)), "{e:?}");
}

#[test]
fn tls_rsa_client_and_tls12_only_server() {
    let pki = pki();
    let mut l = pki.layout();
    l.cert = Some(pki.client_rsa_cert.clone());
    l.key = Some(
        pki.key_cases
            .iter()
            .find(|c| c.name == "openssl rsa -des3 -traditional")
            .unwrap()
            .key
            .clone(),
    );
    l.password = Some(format!("{KEY_PASSWORD}\n"));
    let (_d, r) = load(&l);
    let conf = r.unwrap();
    let good = rustls_server_config(&pki.server_cert, &pki.server_key, &pki.ca_cert);
    handshake(&conf, good).expect("RSA client over TLS 1.3");

    // TLS 1.2 only server (like PyKMIP with auth_suite=TLS1.2).
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = okv_core::config::provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&pki.ca_cert).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_file(&pki.server_cert).unwrap()],
            PrivateKeyDer::from_pem_file(&pki.server_key).unwrap(),
        )
        .unwrap();
    handshake(&conf, Arc::new(cfg)).expect("TLS 1.2");
}

#[test]
fn pbkdf2_iteration_count_is_bounded() {
    let pki = pki();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("slow.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "pkcs8", "-topk8", "-v2", "aes256", "-iter", "2000000", "-passout",
        ])
        .arg(format!("pass:{KEY_PASSWORD}"))
        .arg("-in")
        .arg(&pki.client_ec_key)
        .arg("-out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut l = pki.layout();
    l.key = Some(out);
    l.password = Some(KEY_PASSWORD.into());
    let (_d, e) = load_err(&l);
    let msg = e.to_string();
    assert!(
        matches!(e, ConfigError::UnsupportedKeyEncryption { .. }),
        "{e:?}"
    );
    assert!(msg.contains("2000000 iterations"), "{msg}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn fuzz_dir(password: bool) -> TestConfDir {
        let mut l = pki().layout();
        if password {
            l.password = Some(KEY_PASSWORD.into());
        }
        make_conf_dir(&l)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Arbitrary bytes in key.pem / cert.pem / CA.pem end in an error or a load, never a panic.
        #[test]
        fn arbitrary_pem_files_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            which in 0usize..3,
        ) {
            let d = fuzz_dir(true);
            let file = ["key.pem", "cert.pem", "CA.pem"][which];
            let mut content = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
            content.extend_from_slice(&bytes);
            fs::write(d.ssl(file), &bytes).unwrap();
            let _ = load_conf_dir(&d.dir);
            content.extend_from_slice(b"\n-----END PRIVATE KEY-----\n");
            fs::write(d.ssl(file), &content).unwrap();
            let _ = load_conf_dir(&d.dir);
        }

        /// Damaged encrypted keys (one byte changed anywhere) never panic and never load a
        /// different key silently.
        #[test]
        fn damaged_encrypted_keys_never_panic(
            case in 0usize..8,
            pos in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let pki = pki();
            let encrypted: Vec<_> = pki.key_cases.iter().filter(|c| c.encrypted).collect();
            let case = encrypted[case % encrypted.len()];
            let mut text = fs::read(&case.key).unwrap();
            let i = pos.index(text.len());
            text[i] = byte;
            let mut l = pki.layout();
            l.cert = Some(case.cert.clone());
            l.password = Some(KEY_PASSWORD.into());
            let d = make_conf_dir(&l);
            fs::write(d.ssl("key.pem"), &text).unwrap();
            if let Ok(c) = load_conf_dir(&d.dir) {
                // Only a harmless change (e.g. a header's case) may still load, as the same key.
                prop_assert_eq!(c.identity.key_kind, case.kind);
            }
        }
    }
}
