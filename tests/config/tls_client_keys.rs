//! Every client key type a key manager hands out, over TLS 1.3 and TLS 1.2, with the RSA
//! signature schemes both ways (PSS, and PKCS#1 v1.5 where a TLS 1.2 server asks only for it):
//! EC P-256, P-384, P-521, RSA 2048, 3072, 4096 and 8192, and Ed25519. Each against an
//! in-process rustls KMIP server that accepts only the one protocol version (and, for the
//! PKCS#1 v1.5 case, only those schemes), then the keys that PyKMIP's OpenSSL must also take
//! (Ed25519, RSA 4096 and 8192) against PyKMIP itself through `keyring-okv check`.
//!
//! The same tests run in the FIPS build (`bash scripts/fips.sh test`): there the handshakes go
//! through the FIPS module, TLS 1.2 with the extended master secret.

#[path = "../common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use common::fault_server::{Fault, FaultServer};
use common::fixtures::{openssl, set_mode};
use common::kmip_quirks::QuirkyKmip;
use okv_core::config::load_conf_dir;
use okv_core::connector::KmipClient;
use okv_core::keyring::Keyring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

const KEYRING_OKV: &str = env!("CARGO_BIN_EXE_keyring-okv");

/// (name, `openssl genpkey` arguments, what `keyring-okv check` calls the key).
const KEYS: [(&str, &[&str], &str); 8] = [
    (
        "ec-p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "EC",
    ),
    (
        "ec-p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "EC",
    ),
    (
        "ec-p521",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        "EC",
    ),
    (
        "rsa-2048",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "RSA",
    ),
    (
        "rsa-3072",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        "RSA",
    ),
    (
        "rsa-4096",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
        "RSA",
    ),
    (
        "rsa-8192",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:8192"],
        "RSA",
    ),
    ("ed25519", &["-algorithm", "ED25519"], "Ed25519"),
];

/// The private keys, kept across runs (an 8192-bit RSA key can take a minute to make); the
/// certificates are made anew by each run.
fn key_file(name: &str, genpkey: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("keyring_okv_client_keys");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.key"));
    if !path.exists() {
        let tmp = dir.join(format!("{name}.key.{}", std::process::id()));
        let mut args = vec!["genpkey"];
        args.extend(genpkey);
        args.extend(["-out", tmp.to_str().unwrap()]);
        openssl(&dir, &args);
        fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// A CA, a server certificate for 127.0.0.1, and a client certificate for every key of [`KEYS`].
struct Pki {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Pki {
    fn get() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().to_path_buf();
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
            let mut ca = vec!["req", "-x509"];
            ca.extend(ec);
            ca.extend([
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=keyring-okv client key matrix CA",
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(&dir, &ca);
            fs::write(
                dir.join("server.ext"),
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
            )
            .unwrap();
            fs::write(
                dir.join("client.ext"),
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
            )
            .unwrap();
            let mut server = vec!["req", "-new"];
            server.extend(ec);
            server.extend([
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ]);
            openssl(&dir, &server);
            sign(&dir, "server", "ca", "server.ext");
            for (name, genpkey, _) in KEYS {
                fs::copy(key_file(name, genpkey), dir.join(format!("{name}.key"))).unwrap();
                openssl(
                    &dir,
                    &[
                        "req",
                        "-new",
                        "-key",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.csr"),
                        "-subj",
                        &format!("/CN=keyring-okv-{name}"),
                    ],
                );
                sign(&dir, name, "ca", "client.ext");
            }
            Pki { _tmp: tmp, dir }
        })
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

fn sign(dir: &Path, name: &str, ca: &str, ext: &str) {
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "30",
            "-sha256",
            "-extfile",
            ext,
        ],
    );
}

/// The client certificate verifier of the server, offering only `schemes` when given (a TLS
/// 1.2 server that asks for PKCS#1 v1.5 signatures only).
#[derive(Debug)]
struct OnlySchemes {
    inner: Arc<dyn ClientCertVerifier>,
    schemes: Option<Vec<SignatureScheme>>,
}

impl ClientCertVerifier for OnlySchemes {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        if let Some(schemes) = &self.schemes {
            assert!(
                schemes.contains(&dss.scheme),
                "client used {:?}",
                dss.scheme
            );
        }
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.schemes {
            Some(schemes) => schemes.clone(),
            None => self.inner.supported_verify_schemes(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Tls {
    V13,
    V12,
    /// TLS 1.2 asking for RSA PKCS#1 v1.5 signatures only.
    V12Pkcs1,
}

fn server(pki: &Pki, tls: Tls) -> (Arc<QuirkyKmip>, FaultServer) {
    let provider = okv_core::config::provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.path("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let schemes = matches!(tls, Tls::V12Pkcs1).then(|| {
        vec![
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PKCS1_SHA512,
        ]
    });
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls {
        Tls::V13 => &[&rustls::version::TLS13],
        Tls::V12 | Tls::V12Pkcs1 => &[&rustls::version::TLS12],
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pki.path("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_client_cert_verifier(Arc::new(OnlySchemes { inner, schemes }))
        .with_single_cert(chain, key)
        .unwrap();
    let kmip = Arc::new(QuirkyKmip::new("ck-"));
    let fault = FaultServer::start(Fault::Kmip {
        tls: Arc::new(config),
        server: kmip.clone(),
    });
    (kmip, fault)
}

/// A configuration directory with the client certificate and key for the server on `port`.
fn conf_dir(cert: &Path, key: &Path, ca: &Path, port: u16) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let ssl = tmp.path().join("ssl");
    fs::create_dir_all(&ssl).unwrap();
    fs::write(
        tmp.path().join("okvclient.ora"),
        format!("SERVER=127.0.0.1:{port}\nKEYRING_OKV_CONNECT_TIMEOUT=10\nKEYRING_OKV_REQUEST_TIMEOUT=30\n"),
    )
    .unwrap();
    fs::copy(ca, ssl.join("CA.pem")).unwrap();
    fs::copy(cert, ssl.join("cert.pem")).unwrap();
    fs::copy(key, ssl.join("key.pem")).unwrap();
    for f in ["CA.pem", "cert.pem", "key.pem"] {
        set_mode(&ssl.join(f), 0o600);
    }
    set_mode(&ssl, 0o750);
    set_mode(tmp.path(), 0o750);
    tmp
}

#[test]
fn every_client_key_type_over_tls_1_3_and_1_2() {
    let pki = Pki::get();
    for tls in [Tls::V13, Tls::V12, Tls::V12Pkcs1] {
        let (kmip, fault) = server(pki, tls);
        let mut made = 0;
        for (name, _, kind) in KEYS {
            if matches!(tls, Tls::V12Pkcs1) && kind != "RSA" {
                continue;
            }
            let dir = conf_dir(
                &pki.path(&format!("{name}.pem")),
                &pki.path(&format!("{name}.key")),
                &pki.path("ca.pem"),
                fault.port(),
            );
            let conf = load_conf_dir(dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(conf.identity.key_kind, kind, "{name}");
            let keyring = Keyring::new(KmipClient::from_conf_dir(&conf).expect("client"));
            let id = format!("ck-{name}-{tls:?}");
            keyring
                .generate(&id, "", "AES", 32)
                .unwrap_or_else(|e| panic!("{name} over {tls:?}: {e}"));
            let fetched = keyring.fetch(&id, "").unwrap().expect("the key just made");
            assert_eq!(fetched.material.len(), 32, "{name} over {tls:?}");
            made += 1;
            assert_eq!(kmip.objects().len(), made, "{name} over {tls:?}");
        }
    }
}

#[test]
fn ed25519_and_large_rsa_client_keys_against_pykmip() {
    let pki = Pki::get();
    let lab = common::pykmip::lab();
    // Client certificates for these keys from the PyKMIP lab's CA, which the server trusts.
    let dir = tempfile::tempdir().unwrap();
    for file in ["ca.crt", "ca.key"] {
        fs::copy(lab.certs.join(file), dir.path().join(file)).unwrap();
    }
    fs::copy(pki.path("client.ext"), dir.path().join("client.ext")).unwrap();
    for (name, _, kind) in KEYS
        .iter()
        .filter(|(n, _, _)| ["ed25519", "rsa-4096", "rsa-8192"].contains(n))
    {
        fs::copy(
            pki.path(&format!("{name}.csr")),
            dir.path().join(format!("{name}.csr")),
        )
        .unwrap();
        openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-sha256",
                "-extfile",
                "client.ext",
            ],
        );
        let conf = conf_dir(
            &dir.path().join(format!("{name}.pem")),
            &pki.path(&format!("{name}.key")),
            &lab.certs.join("ca.crt"),
            lab.port,
        );
        let out = Command::new(KEYRING_OKV)
            .arg("--conf-dir")
            .arg(conf.path())
            .arg("check")
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains(&format!("{kind} key")), "{name}: {report}");
        assert!(report.contains("TLS"), "{name}: {report}");
    }
}
