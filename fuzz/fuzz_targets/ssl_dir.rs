//! The ssl/ loader (CA.pem, cert.pem, key.pem with PKCS#1, PKCS#8, SEC1 and encrypted keys,
//! password.txt) through the public entry point, load_conf_dir. The first input byte picks
//! the file the rest replaces in an otherwise valid configuration directory, made at start
//! with openssl:
//!   0: key.pem   1: cert.pem   2: CA.pem
//!   3: password.txt (up to the first newline) and key.pem (the rest)
#![no_main]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use okv_core::config::load_conf_dir;

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs")
        .status
        .success();
    assert!(ok, "openssl {args:?}");
}

/// A valid configuration directory (made once per process) whose files each run rewrites.
fn conf_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("keyring-okv-fuzz-{}", std::process::id()));
        let ssl = dir.join("ssl");
        std::fs::create_dir_all(&ssl).unwrap();
        std::fs::write(dir.join("okvclient.ora"), "SERVER=127.0.0.1:5696\n").unwrap();
        for args in [
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ca.key",
            ][..],
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-subj",
                "/CN=fuzz CA",
                "-days",
                "3650",
                "-out",
                "CA.pem",
            ],
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "key.pem",
            ],
            &[
                "req",
                "-new",
                "-key",
                "key.pem",
                "-subj",
                "/CN=fuzz client",
                "-out",
                "client.csr",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "CA.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "3650",
                "-out",
                "cert.pem",
            ],
        ] {
            openssl(&ssl, args);
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = conf_dir();
    let ssl = dir.join("ssl");
    let originals: Vec<(PathBuf, Vec<u8>)> = ["key.pem", "cert.pem", "CA.pem", "password.txt"]
        .iter()
        .map(|f| {
            let p = ssl.join(f);
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect();
    match mode % 4 {
        0 => std::fs::write(ssl.join("key.pem"), rest).unwrap(),
        1 => std::fs::write(ssl.join("cert.pem"), rest).unwrap(),
        2 => std::fs::write(ssl.join("CA.pem"), rest).unwrap(),
        _ => {
            let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            std::fs::write(ssl.join("password.txt"), &rest[..cut]).unwrap();
            std::fs::write(ssl.join("key.pem"), rest.get(cut + 1..).unwrap_or_default()).unwrap();
        }
    }
    let _ = load_conf_dir(dir);
    for (path, bytes) in originals {
        if bytes.is_empty() {
            let _ = std::fs::remove_file(&path);
        } else {
            std::fs::write(&path, bytes).unwrap();
        }
    }
});
