//! The component's JSON configuration (component_keyring_okv.cnf) on any bytes: the text the
//! loader accepts (UTF-8, as it reads the file), then the settings and their overrides of the
//! okvclient.ora options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okv_core::products::mysql_component::settings::{Settings, parse, parse_text};
use okv_core::config::{MAX_STANDBY_SERVERS, Options};

fn check(settings: &Settings) {
    assert!(settings.kmip_configuration_directory.is_absolute());
    if let Some(servers) = &settings.servers {
        assert!(!servers.is_empty() && servers.len() <= 1 + MAX_STANDBY_SERVERS);
    }
    let mut options = Options::default();
    if settings.apply_options(&mut options).is_ok() {
        assert!(options.failover_stagger <= options.connect_timeout);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("component_keyring_okv.cnf");
    match parse_text(path, text).and_then(|object| parse(path, &object)) {
        Ok(settings) => check(&settings),
        Err(e) => assert!(e.to_string().starts_with("component_keyring_okv.cnf")),
    }
});
