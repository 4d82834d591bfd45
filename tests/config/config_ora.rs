//! okvclient.ora parser tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use okv_core::config::{ConfigError, Host, OkvClientOra, Options, ServerAddr, parse_okvclient_ora};
use proptest::prelude::*;

const FILE: &str = "/etc/okv/okvclient.ora";

fn parse(text: &str) -> Result<OkvClientOra, ConfigError> {
    parse_okvclient_ora(Path::new(FILE), text.as_bytes())
}

fn ip4(a: u8, b: u8, c: u8, d: u8, port: u16) -> ServerAddr {
    ServerAddr {
        host: Host::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
        port,
    }
}

#[test]
fn valid_files() {
    let v6 = ServerAddr {
        host: Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        port: 5696,
    };
    let dns = ServerAddr {
        host: Host::Dns("kms.example.com".into()),
        port: 9002,
    };
    let cases: &[(&str, &str, ServerAddr, Vec<ServerAddr>)] = &[
        (
            "minimal",
            "SERVER=10.0.0.1:5696\n",
            ip4(10, 0, 0, 1, 5696),
            vec![],
        ),
        (
            "no trailing newline",
            "SERVER=10.0.0.1:5696",
            ip4(10, 0, 0, 1, 5696),
            vec![],
        ),
        (
            "spec example",
            "SERVER=198.51.100.20:9002\nSTANDBY_SERVER=203.0.113.125:8041\n",
            ip4(198, 51, 100, 20, 9002),
            vec![ip4(203, 0, 113, 125, 8041)],
        ),
        (
            "crlf",
            "SERVER=10.0.0.1:5696\r\nSTANDBY_SERVER=10.0.0.2:5696\r\n",
            ip4(10, 0, 0, 1, 5696),
            vec![ip4(10, 0, 0, 2, 5696)],
        ),
        (
            "bom",
            "\u{feff}SERVER=10.0.0.1:5696\n",
            ip4(10, 0, 0, 1, 5696),
            vec![],
        ),
        (
            "comments, blanks, unknown keys (Oracle installer output)",
            "# Oracle Key Vault client configuration\n\nSSL_WALLET_LOC=/opt/okv/ssl\n  # indented comment\nSERVER=10.0.0.1:5696\nVERBOSE=TRUE\nOKV_CLIENT_CONFIG_VERSION=18.1.0.0.0\n\n",
            ip4(10, 0, 0, 1, 5696),
            vec![],
        ),
        (
            "lower-case keys",
            "server=10.0.0.1:5696\nStandby_Server=10.0.0.2:1\n",
            ip4(10, 0, 0, 1, 5696),
            vec![ip4(10, 0, 0, 2, 1)],
        ),
        (
            "spaces around = and commas",
            "  SERVER  =  10.0.0.1:5696  \nSTANDBY_SERVER = 10.0.0.2:5696 , 10.0.0.3:65535 ,kms.example.com:9002\n",
            ip4(10, 0, 0, 1, 5696),
            vec![ip4(10, 0, 0, 2, 5696), ip4(10, 0, 0, 3, 65535), dns.clone()],
        ),
        ("ipv6 bracketed", "SERVER=[::1]:5696\n", v6.clone(), vec![]),
        (
            "dns name (lower-cased)",
            "SERVER=KMS.Example.COM:9002\n",
            dns.clone(),
            vec![],
        ),
        (
            "standby on several lines accumulates",
            "STANDBY_SERVER=10.0.0.2:1,10.0.0.3:2\nSERVER=10.0.0.1:5696\nSTANDBY_SERVER=[::1]:5696\n",
            ip4(10, 0, 0, 1, 5696),
            vec![ip4(10, 0, 0, 2, 1), ip4(10, 0, 0, 3, 2), v6.clone()],
        ),
        (
            "empty STANDBY_SERVER",
            "SERVER=10.0.0.1:5696\nSTANDBY_SERVER=\n",
            ip4(10, 0, 0, 1, 5696),
            vec![],
        ),
        (
            "trailing comment",
            "SERVER=10.0.0.1:5696 # primary\n",
            ip4(10, 0, 0, 1, 5696),
            vec![],
        ),
        (
            "line without = ignored",
            "OKV CLIENT\nSERVER=10.0.0.1:5696\n",
            ip4(10, 0, 0, 1, 5696),
            vec![],
        ),
    ];
    for (name, text, server, standby) in cases {
        let ora = parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&ora.server, server, "{name}");
        assert_eq!(&ora.standby, standby, "{name}");
        assert_eq!(ora.options, Options::default(), "{name}");
    }
}

#[test]
fn sixty_four_standbys_ok_sixty_five_rejected() {
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("10.0.1.{}:5696", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ora = parse(&format!(
        "SERVER=10.0.0.1:5696\nSTANDBY_SERVER={}\n",
        list(64)
    ))
    .unwrap();
    assert_eq!(ora.standby.len(), 64);
    assert_eq!(ora.standby[63], ip4(10, 0, 1, 64, 5696));

    let e = parse(&format!(
        "SERVER=10.0.0.1:5696\nSTANDBY_SERVER={}\n",
        list(65)
    ))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with(&format!("{FILE}:2:")), "{e}");
    assert!(e.contains("64"), "{e}");

    // Across lines: 40 + 25.
    let e = parse(&format!(
        "SERVER=10.0.0.1:5696\nSTANDBY_SERVER={}\n\nSTANDBY_SERVER={}\n",
        list(40),
        list(25)
    ))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with(&format!("{FILE}:4:")), "{e}");
    assert!(e.contains("more than 64"), "{e}");
}

#[test]
fn malformed_files_name_file_and_line() {
    // (name, text, line, fragments the message must contain)
    let cases: &[(&str, &str, usize, &[&str])] = &[
        (
            "port 0",
            "SERVER=10.0.0.1:0\n",
            1,
            &["port 0", "1 to 65535"],
        ),
        (
            "port 65536",
            "# c\nSERVER=10.0.0.1:65536\n",
            2,
            &["65536", "1 to 65535"],
        ),
        (
            "port abc",
            "SERVER=10.0.0.1:abc\n",
            1,
            &["'abc'", "1 to 65535"],
        ),
        ("no port", "SERVER=10.0.0.1\n", 1, &["no ':port'"]),
        ("empty port", "SERVER=10.0.0.1:\n", 1, &["port ''"]),
        ("empty host", "SERVER=:5696\n", 1, &["empty host"]),
        ("empty value", "SERVER=\n", 1, &["SERVER", "empty"]),
        ("bad ipv4", "SERVER=300.1.1.1:5696\n", 1, &["IPv4"]),
        (
            "ipv6 without brackets",
            "SERVER=::1:5696\n",
            1,
            &["brackets"],
        ),
        ("ipv6 unclosed bracket", "SERVER=[::1:5696\n", 1, &["']'"]),
        (
            "ipv6 no port after bracket",
            "SERVER=[::1]5696\n",
            1,
            &["':port'"],
        ),
        ("ipv6 invalid", "SERVER=[zz::1]:5696\n", 1, &["not an IPv6"]),
        ("stray bracket", "SERVER=::1]:5696\n", 1, &["brackets"]),
        (
            "bad dns",
            "SERVER=kms_bad name!:5696\n",
            1,
            &["not a valid host"],
        ),
        (
            "empty standby entry",
            "SERVER=10.0.0.1:1\nSTANDBY_SERVER=10.0.0.2:1,,10.0.0.3:1\n",
            2,
            &["entry #2", "empty"],
        ),
        (
            "bad standby port",
            "SERVER=10.0.0.1:1\nSTANDBY_SERVER=10.0.0.2:99999\n",
            2,
            &["STANDBY_SERVER", "99999"],
        ),
        (
            "repeated SERVER",
            "SERVER=10.0.0.1:1\n\nserver=10.0.0.2:1\n",
            3,
            &["repeated", "line 1"],
        ),
        (
            "SERVER without =",
            "SERVER 10.0.0.1:5696\n",
            1,
            &["no '='", "SERVER="],
        ),
        (
            "connect timeout 0",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_CONNECT_TIMEOUT=0\n",
            2,
            &["KEYRING_OKV_CONNECT_TIMEOUT", "not more than 0"],
        ),
        (
            "connect timeout too big",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_CONNECT_TIMEOUT=3601\n",
            2,
            &["3600"],
        ),
        (
            "request timeout negative",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_REQUEST_TIMEOUT=-1\n",
            2,
            &["KEYRING_OKV_REQUEST_TIMEOUT", "not a number"],
        ),
        (
            "request timeout text",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_REQUEST_TIMEOUT=20s\n",
            2,
            &["not a number"],
        ),
        (
            "timeout nan",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_REQUEST_TIMEOUT=NaN\n",
            2,
            &["not a number"],
        ),
        (
            "stagger > timeout",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_CONNECT_TIMEOUT=1\nKEYRING_OKV_FAILOVER_STAGGER=2\n",
            3,
            &["larger than KEYRING_OKV_CONNECT_TIMEOUT"],
        ),
        (
            "default stagger > short timeout",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_CONNECT_TIMEOUT=0.1\n",
            2,
            &["STAGGER"],
        ),
        (
            "verify bad value",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_VERIFY_SERVER_NAME=maybe\n",
            2,
            &["'maybe'", "YES or NO"],
        ),
        (
            "repeated option",
            "SERVER=10.0.0.1:1\nKEYRING_OKV_REQUEST_TIMEOUT=1\nkeyring_okv_request_timeout=2\n",
            3,
            &["KEYRING_OKV_REQUEST_TIMEOUT", "line 2"],
        ),
    ];
    for (name, text, line, fragments) in cases {
        let e = parse(text).expect_err(name).to_string();
        let prefix = format!("{FILE}:{line}: ");
        assert!(e.starts_with(&prefix), "{name}: {e}");
        for f in *fragments {
            assert!(e.contains(f), "{name}: {e:?} lacks {f:?}");
        }
        assert!(!e.contains('\n'), "{name}: one line: {e}");
    }
}

#[test]
fn missing_server() {
    for text in [
        "",
        "\n\n",
        "# only comments\n",
        "STANDBY_SERVER=10.0.0.2:1\n",
        "\u{feff}",
    ] {
        let e = parse(text).unwrap_err();
        assert!(matches!(e, ConfigError::OraMissingServer { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.starts_with(FILE) && e.contains("SERVER=host:port"), "{e}");
    }
}

#[test]
fn options() {
    let ora = parse(
        "SERVER=10.0.0.1:5696\n\
         keyring_okv_connect_timeout = 0.5\n\
         KEYRING_OKV_REQUEST_TIMEOUT=3600\n\
         KEYRING_OKV_FAILOVER_STAGGER=0\n\
         KEYRING_OKV_VERIFY_SERVER_NAME=off\n\
         KEYRING_OKV_CERT_EXPIRY_WARNING=7200\n",
    )
    .unwrap();
    assert_eq!(
        ora.options,
        Options {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(3600),
            failover_stagger: Duration::ZERO,
            verify_server_name: false,
            failback_interval: Duration::from_secs(60),
            cert_expiry_warning: Duration::from_secs(7200),
        }
    );
    for (v, b) in [
        ("YES", true),
        ("no", false),
        ("On", true),
        ("OFF", false),
        ("true", true),
        ("FALSE", false),
        ("1", true),
        ("0", false),
    ] {
        let ora = parse(&format!(
            "SERVER=10.0.0.1:1\nKEYRING_OKV_VERIFY_SERVER_NAME={v}\n"
        ))
        .unwrap();
        assert_eq!(ora.options.verify_server_name, b, "{v}");
    }
    let ora = parse("SERVER=10.0.0.1:1\nKEYRING_OKV_FAILOVER_STAGGER=.5\n").unwrap();
    assert_eq!(ora.options.failover_stagger, Duration::from_millis(500));
    let d = Options::default();
    assert_eq!(
        (
            d.connect_timeout,
            d.request_timeout,
            d.failover_stagger,
            d.verify_server_name
        ),
        (
            Duration::from_secs(20),
            Duration::from_secs(20),
            Duration::from_millis(250),
            true
        )
    );
}

#[test]
fn server_addr_display_and_name() {
    for (text, shown) in [
        ("10.0.0.1:5696", "10.0.0.1:5696"),
        ("[::1]:5696", "[::1]:5696"),
        ("[2001:DB8::1]:1", "[2001:db8::1]:1"),
        ("kms.example:5696", "kms.example:5696"),
    ] {
        let a: ServerAddr = text.parse().unwrap();
        assert_eq!(a.to_string(), shown);
    }
    use rustls_pki_types::ServerName;
    let a: ServerAddr = "10.0.0.1:5696".parse().unwrap();
    assert!(matches!(a.server_name(), ServerName::IpAddress(_)));
    let a: ServerAddr = "kms.example:5696".parse().unwrap();
    assert_eq!(
        a.server_name(),
        ServerName::try_from("kms.example").unwrap()
    );
}

#[test]
fn invalid_utf8_is_tolerated_in_ignored_lines() {
    let mut bytes = b"# \xff\xfe comment\nOTHER=\xc3\x28\nSERVER=10.0.0.1:5696\n".to_vec();
    let ora = parse_okvclient_ora(Path::new(FILE), &bytes).unwrap();
    assert_eq!(ora.server, ip4(10, 0, 0, 1, 5696));
    bytes.extend_from_slice(b"STANDBY_SERVER=\xff:1\n");
    let e = parse_okvclient_ora(Path::new(FILE), &bytes)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{FILE}:4:")), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_okvclient_ora(Path::new(FILE), &bytes);
    }

    #[test]
    fn never_panics_on_keyish_lines(
        lines in proptest::collection::vec(
            (prop_oneof![
                Just("SERVER"), Just("STANDBY_SERVER"), Just("KEYRING_OKV_CONNECT_TIMEOUT"),
                Just("KEYRING_OKV_REQUEST_TIMEOUT"), Just("KEYRING_OKV_FAILOVER_STAGGER"),
                Just("KEYRING_OKV_VERIFY_SERVER_NAME"), Just("x"),
            ], "[ -~]{0,40}"),
            0..8,
        )
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        if let Err(e) = parse_okvclient_ora(Path::new(FILE), text.as_bytes()) {
            let e = e.to_string();
            prop_assert!(e.starts_with(FILE));
        }
    }
}
