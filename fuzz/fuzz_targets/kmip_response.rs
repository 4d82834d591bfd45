//! Everything a KMIP server's answer goes through: framing, the single-item and batch
//! response decoders, and every payload parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okv_core::kmip::{self, Ttlv, ops, tags::operation};

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

fuzz_target!(|data: &[u8]| {
    let cap = 1 << 16;
    if let Ok(header) =
        <[u8; kmip::HEADER_LEN]>::try_from(data.get(..kmip::HEADER_LEN).unwrap_or(&[]))
    {
        let _ = kmip::response_len(&header, cap);
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
});
