//! The okvclient.ora parser on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okv_core::config::parse_okvclient_ora;

fuzz_target!(|data: &[u8]| {
    if let Ok(ora) = parse_okvclient_ora(std::path::Path::new("okvclient.ora"), data) {
        assert!(ora.standby.len() <= okv_core::config::MAX_STANDBY_SERVERS);
    }
});
