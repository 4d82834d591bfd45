//! Every input a fuzz target once failed on (tests/fuzz_regressions/<target>/), run on the
//! stable toolchain through the same code the target runs (fuzz/fuzz_targets/).

use std::path::{Path, PathBuf};

use okv_core::config::{MAX_STANDBY_SERVERS, Options, parse_okvclient_ora};
use okv_core::kmip::ttlv::{Limits, decode_with};
use okv_core::kmip::{self, Ttlv, ops, tags::operation};
use okv_core::products::mysql_component::settings::{self, Settings};

/// Every input of `target`'s folder. A folder missing or empty is an error: the test would
/// then check nothing and could not fail.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; every fuzz target keeps its inputs there",
            dir.display()
        )
    });
    let inputs: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert!(
        !inputs.is_empty(),
        "{} holds no input: every fuzz target keeps at least its seed there",
        dir.display()
    );
    inputs
}

fn ttlv_decode(data: &[u8]) {
    let limits = Limits {
        max_size: 1 << 16,
        ..Limits::default()
    };
    if let Ok(tree) = decode_with(data, &limits) {
        let again = decode_with(&tree.encode(), &limits).expect("re-encoded tree decodes");
        assert_eq!(tree, again);
    }
}

fn parse_all(payload: &Ttlv) {
    let _ = ops::parse_get(payload);
    let _ = ops::parse_locate(payload);
    let _ = ops::parse_located_items(payload);
    let _ = ops::parse_create(payload);
    let _ = ops::parse_register(payload);
    let _ = ops::parse_discover_versions(payload);
    let _ = ops::parse_query(payload);
    let _ = ops::parse_destroy(payload);
    if let Ok(attributes) = ops::parse_get_attributes(payload) {
        let _ = ops::attr_names(&attributes);
        let _ = ops::attr_state(&attributes);
        let _ = ops::attr_initial_date(&attributes);
        let _ = ops::attr_cryptographic_length(&attributes);
    }
}

fn kmip_response(data: &[u8]) {
    let cap = 1 << 16;
    if let Some(header) = data.get(..kmip::HEADER_LEN) {
        let _ = kmip::response_len(header.try_into().unwrap(), cap);
    }
    if let Ok(payload) = kmip::decode_response(data, cap) {
        parse_all(&payload);
    }
    let operations = [
        operation::GET_ATTRIBUTES,
        operation::GET,
        operation::LOCATE,
        operation::CREATE,
    ];
    for count in [1, operations.len()] {
        if let Ok(items) = kmip::decode_batch_response(data, cap, &operations[..count]) {
            assert_eq!(items.len(), count);
            for payload in items.iter().flatten().flatten() {
                parse_all(payload);
            }
        }
    }
}

fn okvclient_ora(data: &[u8]) {
    if let Ok(ora) = parse_okvclient_ora(Path::new("okvclient.ora"), data) {
        assert!(ora.standby.len() <= MAX_STANDBY_SERVERS);
    }
}

fn component_cnf_settings(settings: &Settings) {
    assert!(settings.kmip_configuration_directory.is_absolute());
    if let Some(servers) = &settings.servers {
        assert!(!servers.is_empty() && servers.len() <= 1 + MAX_STANDBY_SERVERS);
    }
    let mut options = Options::default();
    if settings.apply_options(&mut options).is_ok() {
        assert!(options.failover_stagger <= options.connect_timeout);
    }
}

fn component_cnf(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("component_keyring_okv.cnf");
    match settings::parse_text(path, text).and_then(|object| settings::parse(path, &object)) {
        Ok(settings) => component_cnf_settings(&settings),
        Err(e) => assert!(e.to_string().starts_with("component_keyring_okv.cnf")),
    }
}

#[test]
fn past_fuzz_failures_stay_fixed() {
    type Target = (&'static str, fn(&[u8]));
    let targets: [Target; 4] = [
        ("ttlv_decode", ttlv_decode),
        ("kmip_response", kmip_response),
        ("okvclient_ora", okvclient_ora),
        ("component_cnf", component_cnf),
    ];
    for (target, run) in targets {
        for (path, bytes) in inputs(target) {
            eprintln!("{}", path.display());
            run(&bytes);
        }
    }
}

#[test]
fn the_seeds_are_what_their_names_say() {
    let read = |target: &str, name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fuzz_regressions")
                .join(target)
                .join(name),
        )
        .unwrap()
    };
    let cap = 1 << 16;
    let payload =
        kmip::decode_response(&read("kmip_response", "locate-located-items"), cap).unwrap();
    assert_eq!(ops::parse_located_items(&payload).unwrap(), Some(2));
    assert_eq!(ops::parse_locate(&payload).unwrap(), ["1", "2"]);
    let payload =
        kmip::decode_response(&read("kmip_response", "located-items-negative"), cap).unwrap();
    assert!(ops::parse_located_items(&payload).is_err());
    let limits = Limits::default();
    assert!(decode_with(&read("ttlv_decode", "nested-300-deep"), &limits).is_err());
    assert!(decode_with(&read("ttlv_decode", "integer"), &limits).is_ok());
    assert!(decode_with(&read("ttlv_decode", "text-not-utf8"), &limits).is_err());
    assert!(
        parse_okvclient_ora(
            Path::new("okvclient.ora"),
            &read("okvclient_ora", "too-many-standby")
        )
        .is_err()
    );
}

#[test]
fn the_oasis_vectors_pass_every_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let hex: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(str::chars)
            .filter(|c| !c.is_whitespace())
            .collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        ttlv_decode(&bytes);
        kmip_response(&bytes);
    }
}
