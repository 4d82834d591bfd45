//! Parser for `okvclient.ora`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use super::{ConfigError, Host, OkvClientOra, Options, ServerAddr};

/// Most standby servers accepted (MySQL 8.0.29+ limit).
pub const MAX_STANDBY_SERVERS: usize = 64;
/// Upper bound of every timeout option, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 3600.0;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Key {
    Server,
    Standby,
    ConnectTimeout,
    RequestTimeout,
    FailoverStagger,
    VerifyServerName,
    FailbackInterval,
    CertExpiryWarning,
}

impl Key {
    fn from_name(name: &str) -> Option<Key> {
        const KEYS: [(&str, Key); 8] = [
            ("SERVER", Key::Server),
            ("STANDBY_SERVER", Key::Standby),
            ("KEYRING_OKV_CONNECT_TIMEOUT", Key::ConnectTimeout),
            ("KEYRING_OKV_REQUEST_TIMEOUT", Key::RequestTimeout),
            ("KEYRING_OKV_FAILOVER_STAGGER", Key::FailoverStagger),
            ("KEYRING_OKV_VERIFY_SERVER_NAME", Key::VerifyServerName),
            ("KEYRING_OKV_FAILBACK_INTERVAL", Key::FailbackInterval),
            ("KEYRING_OKV_CERT_EXPIRY_WARNING", Key::CertExpiryWarning),
        ];
        KEYS.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, k)| *k)
    }

    fn name(self) -> &'static str {
        match self {
            Key::Server => "SERVER",
            Key::Standby => "STANDBY_SERVER",
            Key::ConnectTimeout => "KEYRING_OKV_CONNECT_TIMEOUT",
            Key::RequestTimeout => "KEYRING_OKV_REQUEST_TIMEOUT",
            Key::FailoverStagger => "KEYRING_OKV_FAILOVER_STAGGER",
            Key::VerifyServerName => "KEYRING_OKV_VERIFY_SERVER_NAME",
            Key::FailbackInterval => "KEYRING_OKV_FAILBACK_INTERVAL",
            Key::CertExpiryWarning => "KEYRING_OKV_CERT_EXPIRY_WARNING",
        }
    }
}

/// Parse the bytes of an `okvclient.ora` file. `path` is only used in error messages.
///
/// Rules: `KEY=value` lines; keys are case-insensitive; blank lines, `#` comment lines,
/// CRLF line ends, a UTF-8 BOM and spaces around `=` and `,` are accepted; unknown keys are
/// ignored. `STANDBY_SERVER` may repeat (entries accumulate, at most 64 in total); any other
/// recognised key may appear once.
pub fn parse_okvclient_ora(path: &Path, bytes: &[u8]) -> Result<OkvClientOra, ConfigError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let err = |line: usize, message: String| ConfigError::Ora {
        path: path.to_path_buf(),
        line,
        message,
    };

    let mut seen: HashMap<Key, usize> = HashMap::new();
    let mut server: Option<ServerAddr> = None;
    let mut standby: Vec<ServerAddr> = Vec::new();
    let mut options = Options::default();
    let mut connect_line = None;
    let mut stagger_line = None;

    for (idx, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = idx + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let Some((name, value)) = text.split_once('=') else {
            // A bare word: harmless unless it looks like one of our keys with the '=' forgotten.
            let first = text.split_whitespace().next().unwrap_or("");
            if let Some(key) = Key::from_name(first) {
                return Err(err(
                    line_no,
                    format!(
                        "expected {}=value, found no '='; write e.g. {}",
                        key.name(),
                        example(key)
                    ),
                ));
            }
            tracing::debug!(file = %path.display(), line = line_no, "okvclient.ora: ignoring line without '='");
            continue;
        };
        let name = name.trim();
        let Some(key) = Key::from_name(name) else {
            tracing::debug!(file = %path.display(), line = line_no, key = %name, "okvclient.ora: ignoring unknown key");
            continue;
        };
        // A '#' starts a trailing comment in the values we read (no value of ours contains '#').
        let value = value.split_once('#').map_or(value, |(v, _)| v).trim();

        if key != Key::Standby {
            if let Some(first) = seen.get(&key) {
                return Err(ConfigError::OraRepeatedKey {
                    path: path.to_path_buf(),
                    key: key.name(),
                    first_line: *first,
                    line: line_no,
                });
            }
            seen.insert(key, line_no);
        }

        match key {
            Key::Server => {
                let addr = parse_server_addr(value).map_err(|m| {
                    err(line_no, format!("SERVER: {m}; write e.g. {}", example(key)))
                })?;
                server = Some(addr);
            }
            Key::Standby => {
                if value.is_empty() {
                    continue;
                }
                for entry in value.split(',') {
                    let entry = entry.trim();
                    if standby.len() == MAX_STANDBY_SERVERS {
                        return Err(err(
                            line_no,
                            format!(
                                "STANDBY_SERVER: more than {MAX_STANDBY_SERVERS} standby servers (the limit); remove the servers that are no longer valid"
                            ),
                        ));
                    }
                    let addr = parse_server_addr(entry).map_err(|m| {
                        err(
                            line_no,
                            format!(
                                "STANDBY_SERVER entry #{}: {m}; write host:port entries separated by commas, e.g. {}",
                                standby.len() + 1,
                                example(key)
                            ),
                        )
                    })?;
                    standby.push(addr);
                }
            }
            Key::ConnectTimeout | Key::RequestTimeout | Key::FailoverStagger => {
                let allow_zero = key == Key::FailoverStagger;
                let d = parse_seconds(value, allow_zero).map_err(|m| {
                    err(
                        line_no,
                        format!("{}: {m}; write e.g. {}", key.name(), example(key)),
                    )
                })?;
                match key {
                    Key::ConnectTimeout => {
                        options.connect_timeout = d;
                        connect_line = Some(line_no);
                    }
                    Key::RequestTimeout => options.request_timeout = d,
                    _ => {
                        options.failover_stagger = d;
                        stagger_line = Some(line_no);
                    }
                }
            }
            Key::FailbackInterval => {
                // 0 turns failback off: stay on the standby until its connection breaks.
                options.failback_interval = parse_seconds(value, true).map_err(|m| {
                    err(
                        line_no,
                        format!("{}: {m}; write e.g. {}", key.name(), example(key)),
                    )
                })?;
            }
            Key::CertExpiryWarning => {
                options.cert_expiry_warning = parse_whole_seconds(value).map_err(|m| {
                    err(
                        line_no,
                        format!("{}: {m}; write e.g. {}", key.name(), example(key)),
                    )
                })?;
            }
            Key::VerifyServerName => {
                options.verify_server_name = parse_bool(value).ok_or_else(|| {
                    err(
                        line_no,
                        format!(
                            "KEYRING_OKV_VERIFY_SERVER_NAME: '{value}' is not YES or NO (ON/OFF, TRUE/FALSE, 1/0 also accepted)"
                        ),
                    )
                })?;
            }
        }
    }

    if options.failover_stagger > options.connect_timeout {
        let line = stagger_line.or(connect_line).unwrap_or(0);
        return Err(err(
            line,
            format!(
                "KEYRING_OKV_FAILOVER_STAGGER ({} s) is larger than KEYRING_OKV_CONNECT_TIMEOUT ({} s); the stagger must be between 0 and the connect timeout",
                options.failover_stagger.as_secs_f64(),
                options.connect_timeout.as_secs_f64()
            ),
        ));
    }

    let Some(server) = server else {
        return Err(ConfigError::OraMissingServer {
            path: path.to_path_buf(),
        });
    };
    Ok(OkvClientOra {
        server,
        standby,
        options,
    })
}

fn example(key: Key) -> &'static str {
    match key {
        Key::Server => "SERVER=192.0.2.10:5696",
        Key::Standby => "STANDBY_SERVER=192.0.2.11:5696,[2001:db8::1]:5696,kms2.example.com:5696",
        Key::ConnectTimeout => "KEYRING_OKV_CONNECT_TIMEOUT=20",
        Key::RequestTimeout => "KEYRING_OKV_REQUEST_TIMEOUT=20",
        Key::FailoverStagger => "KEYRING_OKV_FAILOVER_STAGGER=0.25",
        Key::VerifyServerName => "KEYRING_OKV_VERIFY_SERVER_NAME=YES",
        Key::FailbackInterval => "KEYRING_OKV_FAILBACK_INTERVAL=60",
        Key::CertExpiryWarning => "KEYRING_OKV_CERT_EXPIRY_WARNING=604800",
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["YES", "ON", "TRUE", "1"];
    const FALSE: [&str; 4] = ["NO", "OFF", "FALSE", "0"];
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(value)) {
        Some(true)
    } else if FALSE.iter().any(|f| f.eq_ignore_ascii_case(value)) {
        Some(false)
    } else {
        None
    }
}

/// Seconds as `N` or `N.fff`; must be > 0 (or >= 0 when `allow_zero`) and <= 3600.
fn parse_seconds(value: &str, allow_zero: bool) -> Result<Duration, String> {
    if value.is_empty() {
        return Err("no value".into());
    }
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || int.len() > 6 {
        return Err(format!("'{value}' is not a number of seconds"));
    }
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("'{value}' is not a number of seconds"))?;
    if secs > MAX_TIMEOUT_SECS {
        return Err(format!("{value} s is more than the maximum of 3600 s"));
    }
    let d = Duration::from_secs_f64(secs);
    if d.is_zero() && !allow_zero {
        return Err(format!("{value} s is not more than 0"));
    }
    Ok(d)
}

/// A whole number of seconds up to a year (0 allowed).
fn parse_whole_seconds(value: &str) -> Result<Duration, String> {
    const YEAR: u64 = 366 * 86_400;
    match value.parse::<u64>() {
        Ok(secs) if secs <= YEAR && value.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Duration::from_secs(secs))
        }
        Ok(_) => Err(format!(
            "{value} s is more than the maximum of {YEAR} s (a year)"
        )),
        Err(_) => Err(format!("'{value}' is not a whole number of seconds")),
    }
}

/// Parse `host:port` with host = IPv4, `[IPv6]` or a DNS name.
pub(crate) fn parse_server_addr(s: &str) -> Result<ServerAddr, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty entry, expected host:port".into());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err(format!(
                "'{s}': '[' without the closing ']' of an IPv6 address"
            ));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("'{s}': expected ':port' after ']'"));
        };
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("'{s}': '{inner}' is not an IPv6 address"))?;
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!("'{s}' has no ':port'"));
        };
        if host.contains(':') {
            return Err(format!(
                "'{s}': an IPv6 address must be written in brackets, e.g. [2001:db8::1]:5696"
            ));
        }
        if host.contains(']') {
            return Err(format!("'{s}': ']' without the opening '['"));
        }
        (parse_host(host).map_err(|m| format!("'{s}': {m}"))?, port)
    };
    let port = port.trim();
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{s}': port '{port}' is not a number from 1 to 65535"
        ));
    }
    let port: u32 = port
        .parse()
        .map_err(|_| format!("'{s}': port '{port}' is not a number from 1 to 65535"))?;
    if port == 0 || port > 65535 {
        return Err(format!("'{s}': port {port} is not from 1 to 65535"));
    }
    Ok(ServerAddr {
        host,
        port: port as u16,
    })
}

fn parse_host(host: &str) -> Result<Host, String> {
    let host = host.trim();
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .map_err(|_| format!("'{host}' is not a valid IPv4 address"));
    }
    match rustls_pki_types::DnsName::try_from(host) {
        Ok(_) => Ok(Host::Dns(host.to_ascii_lowercase())),
        Err(_) => Err(format!("'{host}' is not a valid host name or IP address")),
    }
}
