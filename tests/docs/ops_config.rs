//! The okvclient.ora extension for failback, and the manual's list of the plugin's status
//! variables (in the order the plugin declares them).

use std::path::Path;
use std::time::Duration;

use okv_core::config::parse_okvclient_ora;

fn failback(text: &str) -> Result<Duration, String> {
    parse_okvclient_ora(Path::new("/etc/okv/okvclient.ora"), text.as_bytes())
        .map(|ora| ora.options.failback_interval)
        .map_err(|e| e.to_string())
}

#[test]
fn failback_interval_defaults_to_a_minute_and_zero_turns_it_off() {
    assert_eq!(
        failback("SERVER=10.0.0.1:5696\n"),
        Ok(Duration::from_secs(60))
    );
    assert_eq!(
        failback("SERVER=10.0.0.1:5696\nkeyring_okv_failback_interval = 2.5\n"),
        Ok(Duration::from_millis(2500))
    );
    assert_eq!(
        failback("SERVER=10.0.0.1:5696\nKEYRING_OKV_FAILBACK_INTERVAL=0\n"),
        Ok(Duration::ZERO)
    );
}

#[test]
fn a_bad_failback_interval_names_the_key_the_line_and_an_example() {
    for bad in ["-1", "soon", "3601"] {
        let err = failback(&format!(
            "SERVER=10.0.0.1:5696\nKEYRING_OKV_FAILBACK_INTERVAL={bad}\n"
        ))
        .unwrap_err();
        assert!(err.contains("KEYRING_OKV_FAILBACK_INTERVAL"), "{err}");
        assert!(err.contains("KEYRING_OKV_FAILBACK_INTERVAL=60"), "{err}");
        assert!(err.contains('2'), "names line 2: {err}");
    }
}

/// Every status variable the plugin declares has a row in the manual's operations page, in the
/// same order, and every row is a variable the plugin declares.
#[test]
fn the_manual_lists_every_status_variable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("boundary/plugin/src/status.rs")).unwrap();
    let declared: Vec<&str> = source
        .split("c\"Keyring_okv_")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let declared: Vec<String> = declared
        .iter()
        .map(|n| format!("Keyring_okv_{n}"))
        .collect();
    assert!(declared.len() >= 13, "{declared:?}");
    let page = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let section = page
        .split("## Status variables of the plugin")
        .nth(1)
        .expect("docs/operations.md has a section for the plugin's status variables");
    let section = section.split("\n## ").next().unwrap();
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert_eq!(listed, declared);
}
