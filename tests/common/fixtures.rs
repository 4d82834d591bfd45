//! Test-time PKI: shells out to `openssl` (OpenSSL 3) to make a CA, client and server
//! certificates and every private-key format keyring_okv must read. Nothing secret is
//! committed; everything is generated when the tests run.
//!
//! Use from a test file with `mod common;` then `common::fixtures::pki()`.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// Password used for every encrypted key (has a space and punctuation on purpose).
pub const KEY_PASSWORD: &str = "s3cret pass,word!";

/// One private-key file in some format, with the certificate it belongs to.
#[derive(Clone, Debug)]
pub struct KeyCase {
    pub name: &'static str,
    pub key: PathBuf,
    pub cert: PathBuf,
    pub encrypted: bool,
    /// Expected `ClientIdentityInfo::key_kind`.
    pub kind: &'static str,
    /// Expected `ClientIdentityInfo::key_format`.
    pub format: &'static str,
}

/// All generated files. Paths are absolute, in a directory removed at the next run.
#[derive(Debug)]
pub struct Pki {
    pub dir: PathBuf,
    /// The CA that issued every certificate below (except `other_*`).
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// A second, unrelated CA, and a server certificate (SAN IP:127.0.0.1) from it.
    pub other_ca_cert: PathBuf,
    pub other_ca_key: PathBuf,
    pub other_server_cert: PathBuf,
    pub other_server_key: PathBuf,
    /// Client EC P-256 key (PKCS#8) and certificate (CN=keyring-okv-ec, EKU clientAuth).
    pub client_ec_key: PathBuf,
    pub client_ec_cert: PathBuf,
    /// Client RSA-2048 key (PKCS#8) and certificate (CN=keyring-okv-rsa, EKU clientAuth).
    pub client_rsa_key: PathBuf,
    pub client_rsa_cert: PathBuf,
    /// cert.pem followed by the CA certificate (a chain).
    pub client_ec_chain: PathBuf,
    /// Client certificate for `client_ec_key`, valid 2020-01-01 .. 2021-01-01.
    pub client_expired_cert: PathBuf,
    /// Client certificate for `client_ec_key`, valid from 2090-01-01.
    pub client_future_cert: PathBuf,
    /// Server EC key and certificate with SAN IP:127.0.0.1, DNS:localhost (EKU serverAuth).
    pub server_key: PathBuf,
    pub server_cert: PathBuf,
    /// Server certificate for `server_key` (SAN IP:127.0.0.1), valid 2020-01-01 .. 2021-01-01.
    pub server_expired_cert: PathBuf,
    /// Server EC certificate without the IP SAN (only DNS:kms.invalid).
    pub server_nosan_key: PathBuf,
    pub server_nosan_cert: PathBuf,
    /// Every key format: plain and encrypted (password [`KEY_PASSWORD`]).
    pub key_cases: Vec<KeyCase>,
}

/// Runs `openssl ARGS` in `dir`; a failure fails the test with openssl's message.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (OpenSSL 3 must be installed)");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

const CA_CNF: &str = "\
[ ca ]
default_ca = testca
[ testca ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = pol
unique_subject = no
copy_extensions = none
x509_extensions = client_ext
[ pol ]
commonName = supplied
[ server_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
";

impl Pki {
    /// Generate everything into a fresh directory under `parent`.
    pub fn generate(parent: &Path) -> Pki {
        let d = parent.to_path_buf();
        fs::create_dir_all(&d).unwrap();
        let p = |n: &str| d.join(n);
        fs::write(p("pw.txt"), format!("{KEY_PASSWORD}\n")).unwrap();
        fs::write(
            p("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        fs::write(
            p("server.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        fs::write(
            p("server_nosan.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:kms.invalid\n",
        )
        .unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

        // CAs.
        for ca in ["ca", "other_ca"] {
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=keyring-okv test {ca}"),
            );
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend([
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &pem,
                "-subj",
                &subj,
                "-days",
                "3650",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(&d, &a);
        }

        // Leaf keys + CSRs.
        let leaf = |name: &str, cn: &str, rsa: bool| {
            if rsa {
                openssl(
                    &d,
                    &[
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                        "-out",
                        &format!("{name}.key"),
                    ],
                );
            } else {
                openssl(
                    &d,
                    &[
                        "genpkey",
                        "-algorithm",
                        "EC",
                        "-pkeyopt",
                        "ec_paramgen_curve:P-256",
                        "-out",
                        &format!("{name}.key"),
                    ],
                );
            }
            openssl(
                &d,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            );
        };
        let sign = |name: &str, ca: &str, ext: &str| {
            openssl(
                &d,
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
                    "-days",
                    "825",
                    "-sha256",
                    "-extfile",
                    ext,
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        };
        leaf("client_ec", "keyring-okv-ec", false);
        sign("client_ec", "ca", "client.ext");
        leaf("client_rsa", "keyring-okv-rsa", true);
        sign("client_rsa", "ca", "client.ext");
        leaf("server", "keyring-okv test server", false);
        sign("server", "ca", "server.ext");
        leaf("server_nosan", "keyring-okv test server", false);
        sign("server_nosan", "ca", "server_nosan.ext");
        leaf("other_server", "keyring-okv other server", false);
        sign("other_server", "other_ca", "server.ext");

        // Chain file.
        let chain = [
            fs::read(p("client_ec.pem")).unwrap(),
            fs::read(p("ca.pem")).unwrap(),
        ]
        .concat();
        fs::write(p("client_ec_chain.pem"), chain).unwrap();

        // Expired / not-yet-valid certificates (explicit dates need `openssl ca`).
        fs::write(p("ca.cnf"), CA_CNF).unwrap();
        fs::write(p("index.txt"), "").unwrap();
        fs::write(p("serial"), "1000\n").unwrap();
        for (out, start, end) in [
            ("client_expired.pem", "20200101000000Z", "20210101000000Z"),
            ("client_future.pem", "20900101000000Z", "20910101000000Z"),
        ] {
            openssl(
                &d,
                &[
                    "ca",
                    "-batch",
                    "-config",
                    "ca.cnf",
                    "-cert",
                    "ca.pem",
                    "-keyfile",
                    "ca.key",
                    "-in",
                    "client_ec.csr",
                    "-out",
                    out,
                    "-startdate",
                    start,
                    "-enddate",
                    end,
                    "-notext",
                ],
            );
        }
        let server_expired_args = "ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key \
            -in server.csr -out server_expired.pem -extensions server_ext \
            -startdate 20200101000000Z -enddate 20210101000000Z -notext";
        openssl(
            &d,
            &server_expired_args.split_whitespace().collect::<Vec<_>>(),
        );

        // Key formats.
        let pw = "file:pw.txt";
        let rsa_in = "client_rsa.key";
        let ec_in = "client_ec.key";
        let mk = |args: &[&str]| openssl(&d, args);
        mk(&[
            "rsa",
            "-in",
            rsa_in,
            "-traditional",
            "-out",
            "k_rsa_pkcs1.pem",
        ]);
        mk(&["ec", "-in", ec_in, "-out", "k_ec_sec1.pem"]);
        mk(&[
            "rsa",
            "-in",
            rsa_in,
            "-des3",
            "-passout",
            pw,
            "-out",
            "k_rsa_des3.pem",
        ]);
        mk(&[
            "rsa",
            "-in",
            rsa_in,
            "-des3",
            "-traditional",
            "-passout",
            pw,
            "-out",
            "k_rsa_des3_trad.pem",
        ]);
        mk(&[
            "rsa",
            "-in",
            rsa_in,
            "-aes128",
            "-traditional",
            "-passout",
            pw,
            "-out",
            "k_rsa_aes128_trad.pem",
        ]);
        mk(&[
            "rsa",
            "-in",
            rsa_in,
            "-aes192",
            "-traditional",
            "-passout",
            pw,
            "-out",
            "k_rsa_aes192_trad.pem",
        ]);
        mk(&[
            "rsa",
            "-in",
            rsa_in,
            "-aes256",
            "-traditional",
            "-passout",
            pw,
            "-out",
            "k_rsa_aes256_trad.pem",
        ]);
        mk(&[
            "ec",
            "-in",
            ec_in,
            "-des3",
            "-passout",
            pw,
            "-out",
            "k_ec_des3_trad.pem",
        ]);
        mk(&[
            "ec",
            "-in",
            ec_in,
            "-aes128",
            "-passout",
            pw,
            "-out",
            "k_ec_aes128_trad.pem",
        ]);
        mk(&[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes256",
            "-in",
            rsa_in,
            "-passout",
            pw,
            "-out",
            "k_rsa_p8_aes256.pem",
        ]);
        mk(&[
            "pkcs8",
            "-topk8",
            "-v2",
            "des3",
            "-v2prf",
            "hmacWithSHA1",
            "-in",
            rsa_in,
            "-passout",
            pw,
            "-out",
            "k_rsa_p8_des3_sha1.pem",
        ]);
        mk(&[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes128",
            "-in",
            ec_in,
            "-passout",
            pw,
            "-out",
            "k_ec_p8_aes128.pem",
        ]);
        // `openssl ecparam -genkey` style: EC PARAMETERS block before the key.
        let params = {
            let out = Command::new("openssl")
                .args(["ecparam", "-name", "prime256v1"])
                .output()
                .unwrap();
            out.stdout
        };
        fs::write(
            p("k_ec_sec1_params.pem"),
            [params, fs::read(p("k_ec_sec1.pem")).unwrap()].concat(),
        )
        .unwrap();

        let rsa_cert = p("client_rsa.pem");
        let ec_cert = p("client_ec.pem");
        let case = |name, key: &str, ec: bool, encrypted, format| KeyCase {
            name,
            key: p(key),
            cert: if ec {
                ec_cert.clone()
            } else {
                rsa_cert.clone()
            },
            encrypted,
            kind: if ec { "EC" } else { "RSA" },
            format,
        };
        let key_cases = vec![
            case("rsa pkcs8 plain", "client_rsa.key", false, false, "PKCS#8"),
            case("rsa pkcs1 plain", "k_rsa_pkcs1.pem", false, false, "PKCS#1"),
            case("ec pkcs8 plain", "client_ec.key", true, false, "PKCS#8"),
            case("ec sec1 plain", "k_ec_sec1.pem", true, false, "SEC1"),
            case(
                "ec sec1 with EC PARAMETERS",
                "k_ec_sec1_params.pem",
                true,
                false,
                "SEC1",
            ),
            case(
                "openssl rsa -des3 (PKCS#8 PBES2 SHA256 3DES)",
                "k_rsa_des3.pem",
                false,
                true,
                "PKCS#8 PBES2 (encrypted)",
            ),
            case(
                "openssl rsa -des3 -traditional",
                "k_rsa_des3_trad.pem",
                false,
                true,
                "PKCS#1 (legacy PEM encryption, DES-EDE3-CBC)",
            ),
            case(
                "legacy AES-128-CBC",
                "k_rsa_aes128_trad.pem",
                false,
                true,
                "PKCS#1 (legacy PEM encryption, AES-128-CBC)",
            ),
            case(
                "legacy AES-192-CBC",
                "k_rsa_aes192_trad.pem",
                false,
                true,
                "PKCS#1 (legacy PEM encryption, AES-192-CBC)",
            ),
            case(
                "legacy AES-256-CBC",
                "k_rsa_aes256_trad.pem",
                false,
                true,
                "PKCS#1 (legacy PEM encryption, AES-256-CBC)",
            ),
            case(
                "openssl ec -des3 (legacy EC)",
                "k_ec_des3_trad.pem",
                true,
                true,
                "SEC1 (legacy PEM encryption, DES-EDE3-CBC)",
            ),
            case(
                "openssl ec -aes128 (legacy EC)",
                "k_ec_aes128_trad.pem",
                true,
                true,
                "SEC1 (legacy PEM encryption, AES-128-CBC)",
            ),
            case(
                "pkcs8 -v2 aes256",
                "k_rsa_p8_aes256.pem",
                false,
                true,
                "PKCS#8 PBES2 (encrypted)",
            ),
            case(
                "pkcs8 -v2 des3 -v2prf hmacWithSHA1",
                "k_rsa_p8_des3_sha1.pem",
                false,
                true,
                "PKCS#8 PBES2 (encrypted)",
            ),
            case(
                "ec pkcs8 -v2 aes128",
                "k_ec_p8_aes128.pem",
                true,
                true,
                "PKCS#8 PBES2 (encrypted)",
            ),
        ];

        Pki {
            ca_cert: p("ca.pem"),
            ca_key: p("ca.key"),
            other_ca_cert: p("other_ca.pem"),
            other_ca_key: p("other_ca.key"),
            other_server_cert: p("other_server.pem"),
            other_server_key: p("other_server.key"),
            client_ec_key: p("client_ec.key"),
            client_ec_cert: ec_cert,
            client_rsa_key: p("client_rsa.key"),
            client_rsa_cert: rsa_cert,
            client_ec_chain: p("client_ec_chain.pem"),
            client_expired_cert: p("client_expired.pem"),
            client_future_cert: p("client_future.pem"),
            server_key: p("server.key"),
            server_cert: p("server.pem"),
            server_expired_cert: p("server_expired.pem"),
            server_nosan_key: p("server_nosan.key"),
            server_nosan_cert: p("server_nosan.pem"),
            key_cases,
            dir: d,
        }
    }
}

/// The PKI shared by all tests of one test binary (generated once, on first use).
///
/// Lives under the cargo target tmp dir in `pki-<pid>`; directories of earlier runs are
/// removed when a new one is made.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("keyring_okv_pki");
        fs::create_dir_all(&base).unwrap();
        let mine = format!("pki-{}", std::process::id());
        if let Ok(entries) = fs::read_dir(&base) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 600);
                if old && e.file_name() != mine.as_str() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = base.join(mine);
        let _ = fs::remove_dir_all(&dir);
        Pki::generate(&dir)
    })
}

/// What to put in a test configuration directory.
#[derive(Clone, Debug)]
pub struct Layout {
    /// okvclient.ora contents (None = no file).
    pub ora: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// password.txt contents, written verbatim (None = no file).
    pub password: Option<String>,
    /// Mode of the conf dir and ssl dir (750) and of the files (600).
    pub dir_mode: u32,
    pub file_mode: u32,
}

impl Pki {
    /// A valid layout: SERVER=127.0.0.1:5696, the CA, the EC client key and certificate.
    pub fn layout(&self) -> Layout {
        Layout {
            ora: Some("SERVER=127.0.0.1:5696\n".into()),
            ca: Some(self.ca_cert.clone()),
            cert: Some(self.client_ec_cert.clone()),
            key: Some(self.client_ec_key.clone()),
            password: None,
            dir_mode: 0o750,
            file_mode: 0o600,
        }
    }
}

/// A configuration directory in a temp dir: `conf/okvclient.ora` and `conf/ssl/*`.
#[derive(Debug)]
pub struct TestConfDir {
    pub tmp: tempfile::TempDir,
    /// The directory to give to `load_conf_dir`.
    pub dir: PathBuf,
}

impl TestConfDir {
    pub fn ssl(&self, file: &str) -> PathBuf {
        self.dir.join("ssl").join(file)
    }
}

#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Lay out a configuration directory as `layout` says.
pub fn make_conf_dir(layout: &Layout) -> TestConfDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("conf");
    let ssl = dir.join("ssl");
    fs::create_dir_all(&ssl).unwrap();
    let mut files = Vec::new();
    if let Some(ora) = &layout.ora {
        fs::write(dir.join("okvclient.ora"), ora).unwrap();
        files.push(dir.join("okvclient.ora"));
    }
    for (src, name) in [
        (&layout.ca, "CA.pem"),
        (&layout.cert, "cert.pem"),
        (&layout.key, "key.pem"),
    ] {
        if let Some(src) = src {
            fs::copy(src, ssl.join(name)).unwrap();
            files.push(ssl.join(name));
        }
    }
    if let Some(pw) = &layout.password {
        fs::write(ssl.join("password.txt"), pw).unwrap();
        files.push(ssl.join("password.txt"));
    }
    #[cfg(unix)]
    {
        for f in &files {
            set_mode(f, layout.file_mode);
        }
        set_mode(&ssl, layout.dir_mode);
        set_mode(&dir, layout.dir_mode);
    }
    TestConfDir { tmp, dir }
}

/// A rustls server config from PEM files, requiring a client certificate from `client_ca`.
pub fn rustls_server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = okv_core::config::provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(client_ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(cfg)
}
