//! `component_keyring_okv.cnf`: the component's JSON configuration.
//!
//! The keys are those documented for Oracle's `component_keyring_kmip` (so its file works after a
//! rename) plus our own: `cache_ttl_seconds` and the okvclient.ora extensions without their
//! `KEYRING_OKV_` prefix. Every problem is one line naming the file (and the line and column of
//! a JSON syntax error) and the fix; unknown keys are warnings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{MAX_STANDBY_SERVERS, Options, ServerAddr};

/// The component's configuration file name, in the plugin directory (and with
/// `read_local_config`, in the data directory).
pub const FILE_NAME: &str = "component_keyring_okv.cnf";

/// Read in place of the plugin directory's file when that one does not exist: the Debian
/// package's conffile. The package owns nothing in the plugin directory, so that a file a DBA
/// writes there is never replaced by an upgrade; and this path is under `/etc/mysql/`, which
/// the AppArmor profile of Debian's and Ubuntu's mysqld lets it read (the plugin directory only
/// for `*.so`).
pub const SYSTEM_FILE: &str = "/etc/mysql/keyring-okv/component_keyring_okv.cnf";

/// Default `cache_ttl_seconds`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// Largest configuration file read.
const MAX_FILE_SIZE: u64 = 1 << 20;

/// Longest accepted timeout, as in okvclient.ora.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error(
        "{}: the configuration file is missing{}; create it with at least {{\"kmip_configuration_directory\": \"/path/to/dir\"}}, then run ALTER INSTANCE RELOAD KEYRING",
        path.display(),
        match instead { Some(p) => format!(" and so is {} (read in its place)", p.display()), None => String::new() }
    )]
    Missing {
        path: PathBuf,
        /// The file that would have been read in its place ([`SYSTEM_FILE`]).
        instead: Option<PathBuf>,
    },
    #[error("{}: cannot read the configuration file: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "{}:{line}:{column}: invalid JSON: {reason}; fix the file, then run ALTER INSTANCE RELOAD KEYRING",
        path.display()
    )]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error(
        "{}: the configuration must be a JSON object, e.g. {{\"kmip_configuration_directory\": \"/path/to/dir\"}}",
        path.display()
    )]
    NotAnObject { path: PathBuf },
    #[error("{}: \"{key}\" must be {expected}; {fix}", path.display())]
    WrongType {
        path: PathBuf,
        key: String,
        expected: &'static str,
        fix: &'static str,
    },
    #[error("{}: \"{key}\": {reason}", path.display())]
    BadValue {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error(
        "{}: \"kmip_configuration_directory\" is missing; add the directory that holds ssl/ (CA.pem, cert.pem, key.pem) and okvclient.ora",
        path.display()
    )]
    NoDirectory { path: PathBuf },
}

/// What the JSON file says; the directory itself is read by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The file these settings came from.
    pub file: PathBuf,
    pub kmip_configuration_directory: PathBuf,
    /// `server` then the `standby_server`s; None = take them from okvclient.ora.
    pub servers: Option<Vec<ServerAddr>>,
    pub cache_keys: bool,
    /// None = until reload or unload.
    pub cache_ttl: Option<Duration>,
    /// `sealed_cache_max_age_hours`: 0 = no sealed key cache.
    pub sealed_cache_max_age_hours: u64,
    /// `sealed_cache_user_keys`: keep keys with an owner (keyring_udf) in it too.
    pub sealed_cache_user_keys: bool,
    /// `sealed_cache_dir`: where the sealed file is kept (default `sealed::DEFAULT_DIR`).
    pub sealed_cache_dir: PathBuf,
    /// `key_state_poll_seconds` and `key_state_action`: the key-state guard (`crate::guard`).
    pub key_state: crate::guard::Settings,
    pub connect_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
    pub failover_stagger: Option<Duration>,
    pub verify_server_name: Option<bool>,
    /// Unknown keys and similar, one line each.
    pub warnings: Vec<String>,
}

impl Settings {
    /// The okvclient.ora options with this file's overrides applied.
    pub fn apply_options(&self, options: &mut Options) -> Result<(), SettingsError> {
        if let Some(t) = self.connect_timeout {
            options.connect_timeout = t;
        }
        if let Some(t) = self.request_timeout {
            options.request_timeout = t;
        }
        if let Some(t) = self.failover_stagger {
            options.failover_stagger = t;
        }
        if let Some(v) = self.verify_server_name {
            options.verify_server_name = v;
        }
        if options.failover_stagger > options.connect_timeout {
            return Err(SettingsError::BadValue {
                path: self.file.clone(),
                key: "failover_stagger".into(),
                reason: format!(
                    "{} s is larger than the connect timeout ({} s); use a value between 0 and connect_timeout",
                    options.failover_stagger.as_secs_f64(),
                    options.connect_timeout.as_secs_f64()
                ),
            });
        }
        Ok(())
    }
}

/// Where the configuration is read from: `component_dir`/component_keyring_okv.cnf, or
/// [`SYSTEM_FILE`] when that does not exist; when the file read says `"read_local_config": true`,
/// the one in `instance_dir` (the data directory; the current directory when the server gives
/// none, as in migration mode).
pub fn load(component_dir: &str, instance_dir: Option<&str>) -> Result<Settings, SettingsError> {
    load_with(component_dir, instance_dir, Path::new(SYSTEM_FILE))
}

fn load_with(
    component_dir: &str,
    instance_dir: Option<&str>,
    system_file: &Path,
) -> Result<Settings, SettingsError> {
    let in_plugin_dir = Path::new(component_dir).join(FILE_NAME);
    // symlink_metadata: a dangling link in the plugin directory is the DBA's mistake to be
    // named, not a reason to read another file.
    let global = match std::fs::symlink_metadata(&in_plugin_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Only an absent file is "missing": one mysqld may not read is named as unreadable
            // by `read_object` below, with the reason.
            if std::fs::symlink_metadata(system_file)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            {
                return Err(SettingsError::Missing {
                    path: in_plugin_dir,
                    instead: Some(system_file.to_path_buf()),
                });
            }
            system_file.to_path_buf()
        }
        _ => in_plugin_dir,
    };
    let object = read_object(&global)?;
    if let Some(value) = object.get("read_local_config") {
        let local = value.as_bool().ok_or_else(|| SettingsError::WrongType {
            path: global.clone(),
            key: "read_local_config".into(),
            expected: "true or false",
            fix: "write \"read_local_config\": true to read the file in the data directory",
        })?;
        if local {
            let path = match instance_dir {
                Some(dir) if !dir.is_empty() => Path::new(dir).join(FILE_NAME),
                _ => PathBuf::from(FILE_NAME),
            };
            let object = read_object(&path)?;
            let mut settings = parse(&path, &object)?;
            if object.contains_key("read_local_config") {
                settings.warnings.push(format!(
                    "{}: \"read_local_config\" is only read in the global file {}; ignored here",
                    path.display(),
                    global.display()
                ));
            }
            return Ok(settings);
        }
    }
    parse(&global, &object)
}

fn read_object(path: &Path) -> Result<Map<String, Value>, SettingsError> {
    use std::io::Read;
    let unreadable = |reason: String| SettingsError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SettingsError::Missing {
                path: path.to_path_buf(),
                instead: None,
            });
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    if !meta.is_file() {
        return Err(unreadable("it is not a regular file".into()));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(|e| unreadable(e.to_string()))?
        .take(MAX_FILE_SIZE + 1)
        .read_to_string(&mut text)
        .map_err(|e| unreadable(e.to_string()))?;
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(unreadable(format!(
            "larger than {MAX_FILE_SIZE} bytes, not a configuration file"
        )));
    }
    parse_text(path, &text)
}

/// Parses the file's text as one JSON object.
pub fn parse_text(path: &Path, text: &str) -> Result<Map<String, Value>, SettingsError> {
    let value: Value = serde_json::from_str(text).map_err(|e| SettingsError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        reason: strip_position(&e.to_string()),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(SettingsError::NotAnObject {
            path: path.to_path_buf(),
        }),
    }
}

/// serde_json appends " at line L column C"; we print the position ourselves.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

const KNOWN_KEYS: &[&str] = &[
    "read_local_config",
    "kmip_configuration_directory",
    "server",
    "standby_server",
    "cache_keys",
    "cache_ttl_seconds",
    "sealed_cache_max_age_hours",
    "sealed_cache_user_keys",
    "sealed_cache_dir",
    "key_state_poll_seconds",
    "key_state_action",
    "connect_timeout",
    "request_timeout",
    "failover_stagger",
    "verify_server_name",
];

/// The settings of one JSON object read from `path`.
pub fn parse(path: &Path, object: &Map<String, Value>) -> Result<Settings, SettingsError> {
    let wrong = |key: &str, expected: &'static str, fix: &'static str| SettingsError::WrongType {
        path: path.to_path_buf(),
        key: key.to_string(),
        expected,
        fix,
    };
    let bad = |key: &str, reason: String| SettingsError::BadValue {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason,
    };
    let mut warnings = Vec::new();
    for key in object.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            warnings.push(format!(
                "{}: unknown key \"{key}\" is ignored; the keys are {}",
                path.display(),
                KNOWN_KEYS.join(", ")
            ));
        }
    }

    let dir = match object.get("kmip_configuration_directory") {
        None => {
            return Err(SettingsError::NoDirectory {
                path: path.to_path_buf(),
            });
        }
        Some(Value::String(s)) if !s.trim().is_empty() => PathBuf::from(s),
        Some(_) => {
            return Err(wrong(
                "kmip_configuration_directory",
                "a non-empty string",
                "write the absolute path of the directory that holds ssl/",
            ));
        }
    };
    if dir.is_relative() {
        return Err(bad(
            "kmip_configuration_directory",
            format!(
                "'{}' is a relative path; write the absolute path (the server's working directory is not a reliable base)",
                dir.display()
            ),
        ));
    }

    let addr = |key: &str, text: &str| -> Result<ServerAddr, SettingsError> {
        text.trim()
            .parse::<ServerAddr>()
            .map_err(|e| bad(key, format!("'{text}': {e}")))
    };
    let servers = match object.get("server") {
        None | Some(Value::Null) => {
            if object.contains_key("standby_server") {
                return Err(bad(
                    "standby_server",
                    "is given without \"server\"; add \"server\": \"host:port\" or take both from okvclient.ora".into(),
                ));
            }
            None
        }
        Some(Value::String(s)) => {
            let mut servers = vec![addr("server", s)?];
            let standby: Vec<String> = match object.get("standby_server") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => s
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                Some(Value::Array(items)) => {
                    let mut out = Vec::new();
                    for item in items {
                        match item {
                            Value::String(s) => out.push(s.clone()),
                            _ => {
                                return Err(wrong(
                                    "standby_server",
                                    "a string of comma-separated host:port entries or an array of \"host:port\" strings",
                                    "e.g. \"standby_server\": [\"kms2:5696\", \"kms3:5696\"]",
                                ));
                            }
                        }
                    }
                    out
                }
                Some(_) => {
                    return Err(wrong(
                        "standby_server",
                        "a string of comma-separated host:port entries or an array of \"host:port\" strings",
                        "e.g. \"standby_server\": [\"kms2:5696\", \"kms3:5696\"]",
                    ));
                }
            };
            if standby.len() > MAX_STANDBY_SERVERS {
                return Err(bad(
                    "standby_server",
                    format!(
                        "{} entries; at most {MAX_STANDBY_SERVERS} standby servers are allowed",
                        standby.len()
                    ),
                ));
            }
            for s in &standby {
                servers.push(addr("standby_server", s)?);
            }
            Some(servers)
        }
        Some(_) => {
            return Err(wrong(
                "server",
                "a string \"host:port\"",
                "e.g. \"server\": \"kms1.example.com:5696\"",
            ));
        }
    };

    let boolean = |key: &str| -> Result<Option<bool>, SettingsError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong(
                key,
                "true or false (without quotes)",
                "write the JSON literal true or false",
            )),
        }
    };
    let seconds = |key: &str, allow_zero: bool| -> Result<Option<Duration>, SettingsError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(-1.0);
                let ok = if allow_zero { v >= 0.0 } else { v > 0.0 };
                if !ok || v > MAX_TIMEOUT_SECS || !v.is_finite() {
                    return Err(bad(
                        key,
                        format!(
                            "{n} is out of range; use seconds {} 0 and at most {MAX_TIMEOUT_SECS}",
                            if allow_zero { ">=" } else { ">" }
                        ),
                    ));
                }
                Ok(Some(Duration::from_secs_f64(v)))
            }
            Some(_) => Err(wrong(
                key,
                "a number of seconds (without quotes)",
                "e.g. 20 or 0.5",
            )),
        }
    };

    let cache_keys = boolean("cache_keys")?.unwrap_or(false);
    let cache_ttl = match object.get("cache_ttl_seconds") {
        None | Some(Value::Null) => Some(DEFAULT_CACHE_TTL),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => None,
            Some(s) if s <= 86_400 * 365 => Some(Duration::from_secs(s)),
            _ => {
                return Err(bad(
                    "cache_ttl_seconds",
                    format!(
                        "{n} is not a whole number of seconds from 0 to 31536000 (0 = until reload)"
                    ),
                ));
            }
        },
        Some(_) => {
            return Err(wrong(
                "cache_ttl_seconds",
                "a whole number of seconds (without quotes)",
                "e.g. 300; 0 keeps cached keys until ALTER INSTANCE RELOAD KEYRING",
            ));
        }
    };
    let sealed_cache_max_age_hours = match object.get("sealed_cache_max_age_hours") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(h) if h <= 24 * 365 => h,
            _ => {
                return Err(bad(
                    "sealed_cache_max_age_hours",
                    format!("{n} is not a whole number of hours from 0 to 8760 (0 = off)"),
                ));
            }
        },
        Some(_) => {
            return Err(wrong(
                "sealed_cache_max_age_hours",
                "a whole number of hours (without quotes)",
                "e.g. 72; 0 or absent keeps no sealed key cache",
            ));
        }
    };
    let sealed_cache_dir = match object.get("sealed_cache_dir") {
        None | Some(Value::Null) => PathBuf::from(crate::sealed::DEFAULT_DIR),
        Some(Value::String(s)) if Path::new(s).is_absolute() => PathBuf::from(s),
        Some(_) => {
            return Err(wrong(
                "sealed_cache_dir",
                "an absolute path (a string)",
                "a directory the server's account can write, e.g. /var/lib/mysql-keyring (the default)",
            ));
        }
    };
    let key_state_poll = match object.get("key_state_poll_seconds") {
        None | Some(Value::Null) => crate::guard::DEFAULT_POLL_SECONDS,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if s <= 7 * 24 * 3600 => s,
            _ => {
                return Err(bad(
                    "key_state_poll_seconds",
                    format!("{n} is not a whole number of seconds from 0 to 604800 (0 = off)"),
                ));
            }
        },
        Some(_) => {
            return Err(wrong(
                "key_state_poll_seconds",
                "a whole number of seconds (without quotes)",
                "e.g. 300 (the default); 0 turns the key state guard off",
            ));
        }
    };
    let key_state_action = match object.get("key_state_action") {
        None | Some(Value::Null) => crate::guard::Action::Warn,
        Some(Value::String(a)) => match crate::guard::Action::parse(a) {
            Some(action) if action != crate::guard::Action::Rotate => action,
            _ => {
                return Err(bad(
                    "key_state_action",
                    format!("\"{a}\" is not \"warn\" or \"refuse\""),
                ));
            }
        },
        Some(_) => {
            return Err(wrong(
                "key_state_action",
                "a string",
                "\"warn\" (the default) or \"refuse\"",
            ));
        }
    };
    if object.contains_key("cache_ttl_seconds") && !cache_keys {
        warnings.push(format!(
            "{}: \"cache_ttl_seconds\" has no effect while \"cache_keys\" is false",
            path.display()
        ));
    }

    Ok(Settings {
        file: path.to_path_buf(),
        kmip_configuration_directory: dir,
        servers,
        cache_keys,
        cache_ttl,
        sealed_cache_max_age_hours,
        sealed_cache_user_keys: boolean("sealed_cache_user_keys")?.unwrap_or(false),
        sealed_cache_dir,
        key_state: crate::guard::Settings {
            poll: Duration::from_secs(key_state_poll),
            action: key_state_action,
        },
        connect_timeout: seconds("connect_timeout", false)?,
        request_timeout: seconds("request_timeout", false)?,
        failover_stagger: seconds("failover_stagger", true)?,
        verify_server_name: boolean("verify_server_name")?,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Settings, SettingsError> {
        let path = Path::new("/p/component_keyring_okv.cnf");
        parse(path, &parse_text(path, text)?)
    }

    #[test]
    fn key_state_settings() {
        let s = parse_str(r#"{"kmip_configuration_directory": "/d"}"#).unwrap();
        assert_eq!(s.key_state, crate::guard::Settings::default());
        let s = parse_str(
            r#"{"kmip_configuration_directory": "/d", "key_state_poll_seconds": 0, "key_state_action": "refuse"}"#,
        )
        .unwrap();
        assert!(!s.key_state.is_on());
        assert_eq!(s.key_state.action, crate::guard::Action::Refuse);
        for bad in [
            r#""key_state_action": "rotate""#,
            r#""key_state_action": 1"#,
            r#""key_state_poll_seconds": -1"#,
            r#""key_state_poll_seconds": "300""#,
        ] {
            let text = format!(r#"{{"kmip_configuration_directory": "/d", {bad}}}"#);
            let e = parse_str(&text).unwrap_err().to_string();
            assert!(e.contains("key_state_"), "{bad}: {e}");
        }
    }

    #[test]
    fn minimal_file_takes_servers_from_okvclient_ora() {
        let s = parse_str(r#"{"kmip_configuration_directory": "/etc/okv"}"#).unwrap();
        assert_eq!(s.kmip_configuration_directory, Path::new("/etc/okv"));
        assert_eq!(s.servers, None);
        assert!(!s.cache_keys);
        assert_eq!(s.cache_ttl, Some(DEFAULT_CACHE_TTL));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn oracle_style_file_with_servers_and_cache() {
        let s = parse_str(
            r#"{"kmip_configuration_directory": "/etc/okv", "server": "127.0.0.1:5696",
                "standby_server": "127.0.0.2:5696, kms.example:5697", "cache_keys": true,
                "cache_ttl_seconds": 0}"#,
        )
        .unwrap();
        let servers: Vec<String> = s.servers.unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(
            servers,
            ["127.0.0.1:5696", "127.0.0.2:5696", "kms.example:5697"]
        );
        assert!(s.cache_keys);
        assert_eq!(s.cache_ttl, None);
    }

    #[test]
    fn standby_as_array() {
        let s = parse_str(
            r#"{"kmip_configuration_directory": "/d", "server": "a:1", "standby_server": ["b:2", "c:3"]}"#,
        )
        .unwrap();
        assert_eq!(s.servers.unwrap().len(), 3);
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e =
            parse_str("{\n  \"kmip_configuration_directory\": \"/d\"\n  \"cache_keys\": true\n}")
                .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("/p/component_keyring_okv.cnf:3:3: invalid JSON: expected `,`"),
            "{text}"
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let e = parse_str(r#"{"kmip_configuration_directory": "/d", "cache_keys": "yes"}"#)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("\"cache_keys\" must be true or false"),
            "{e}"
        );
        let e = parse_str(r#"{"kmip_configuration_directory": 5}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"kmip_configuration_directory\" must be"),
            "{e}"
        );
        let e = parse_str(r#"{"kmip_configuration_directory": "/d", "server": 5696}"#).unwrap_err();
        assert!(e.to_string().contains("\"server\" must be a string"), "{e}");
    }

    #[test]
    fn missing_directory_key_and_not_an_object() {
        assert!(matches!(
            parse_str(r#"{"cache_keys": true}"#),
            Err(SettingsError::NoDirectory { .. })
        ));
        assert!(matches!(
            parse_str("[1]"),
            Err(SettingsError::NotAnObject { .. })
        ));
        assert!(matches!(
            parse_str(r#"{"kmip_configuration_directory": "rel/dir"}"#),
            Err(SettingsError::BadValue { .. })
        ));
    }

    #[test]
    fn unknown_key_is_a_warning_naming_it() {
        let s = parse_str(r#"{"kmip_configuration_directory": "/d", "cache_key": true}"#).unwrap();
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].contains("unknown key \"cache_key\""),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn bad_server_and_too_many_standbys() {
        let e =
            parse_str(r#"{"kmip_configuration_directory": "/d", "server": "host"}"#).unwrap_err();
        assert!(e.to_string().contains("\"server\": 'host'"), "{e}");
        let many: Vec<String> = (0..65).map(|i| format!("\"h{i}:1\"")).collect();
        let e = parse_str(&format!(
            r#"{{"kmip_configuration_directory": "/d", "server": "a:1", "standby_server": [{}]}}"#,
            many.join(",")
        ))
        .unwrap_err();
        assert!(e.to_string().contains("at most 64"), "{e}");
    }

    #[test]
    fn timeouts_override_options_and_are_checked() {
        let s = parse_str(
            r#"{"kmip_configuration_directory": "/d", "connect_timeout": 2, "request_timeout": 0.5, "failover_stagger": 3}"#,
        )
        .unwrap();
        let mut o = Options::default();
        assert!(s.apply_options(&mut o).is_err());
        let s = parse_str(
            r#"{"kmip_configuration_directory": "/d", "connect_timeout": 2, "request_timeout": 0.5, "verify_server_name": false}"#,
        )
        .unwrap();
        let mut o = Options::default();
        s.apply_options(&mut o).unwrap();
        assert_eq!(o.connect_timeout, Duration::from_secs(2));
        assert_eq!(o.request_timeout, Duration::from_millis(500));
        assert!(!o.verify_server_name);
        assert!(
            parse_str(r#"{"kmip_configuration_directory": "/d", "connect_timeout": 0}"#).is_err()
        );
    }

    #[test]
    fn read_local_config_switches_to_the_data_directory() {
        let plugin = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        std::fs::write(
            plugin.path().join(FILE_NAME),
            r#"{"read_local_config": true}"#,
        )
        .unwrap();
        std::fs::write(
            data.path().join(FILE_NAME),
            r#"{"kmip_configuration_directory": "/srv/okv", "cache_keys": true}"#,
        )
        .unwrap();
        let s = load(
            plugin.path().to_str().unwrap(),
            Some(data.path().to_str().unwrap()),
        )
        .unwrap();
        assert_eq!(s.file, data.path().join(FILE_NAME));
        assert!(s.cache_keys);
        // A global file without read_local_config is used as is.
        std::fs::write(
            plugin.path().join(FILE_NAME),
            r#"{"read_local_config": false, "kmip_configuration_directory": "/g"}"#,
        )
        .unwrap();
        let s = load(plugin.path().to_str().unwrap(), None).unwrap();
        assert_eq!(s.kmip_configuration_directory, Path::new("/g"));
        // Missing file.
        let e = load(data.path().join("nothing").to_str().unwrap(), None).unwrap_err();
        assert!(matches!(e, SettingsError::Missing { .. }));
    }

    #[test]
    fn the_system_file_is_read_when_the_plugin_directory_has_none() {
        let plugin = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let etc = tempfile::tempdir().unwrap();
        let system = etc.path().join(FILE_NAME);
        let dirs = |s: &Path| {
            load_with(
                plugin.path().to_str().unwrap(),
                Some(data.path().to_str().unwrap()),
                s,
            )
        };
        // Neither file: the error names both.
        let e = dirs(&system).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}: the configuration file is missing and so is {} (read in its place);",
                plugin.path().join(FILE_NAME).display(),
                system.display()
            )),
            "{e}"
        );
        // The system file alone is read, and its read_local_config defers to the data directory
        // as the plugin directory's would.
        std::fs::write(&system, r#"{"kmip_configuration_directory": "/etc/okv"}"#).unwrap();
        let s = dirs(&system).unwrap();
        assert_eq!(s.file, system);
        assert_eq!(s.kmip_configuration_directory, Path::new("/etc/okv"));
        std::fs::write(&system, r#"{"read_local_config": true}"#).unwrap();
        std::fs::write(
            data.path().join(FILE_NAME),
            r#"{"kmip_configuration_directory": "/data/okv"}"#,
        )
        .unwrap();
        let s = dirs(&system).unwrap();
        assert_eq!(s.file, data.path().join(FILE_NAME));
        assert_eq!(s.kmip_configuration_directory, Path::new("/data/okv"));
        // A file in the plugin directory wins over the system file.
        std::fs::write(
            plugin.path().join(FILE_NAME),
            r#"{"kmip_configuration_directory": "/plugin/okv"}"#,
        )
        .unwrap();
        let s = dirs(&system).unwrap();
        assert_eq!(s.file, plugin.path().join(FILE_NAME));
        assert_eq!(s.kmip_configuration_directory, Path::new("/plugin/okv"));
        // So does a dangling link there: named as what is wrong, not skipped.
        std::fs::remove_file(plugin.path().join(FILE_NAME)).unwrap();
        std::os::unix::fs::symlink(etc.path().join("gone"), plugin.path().join(FILE_NAME)).unwrap();
        let e = dirs(&system).unwrap_err();
        assert_eq!(
            e,
            SettingsError::Missing {
                path: plugin.path().join(FILE_NAME),
                instead: None
            }
        );
    }
}
