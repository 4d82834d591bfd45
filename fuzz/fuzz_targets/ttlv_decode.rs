//! The TTLV decoder on any bytes: it returns an error or a tree, and a tree it accepted encodes
//! back to bytes it decodes to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okv_core::kmip::ttlv::{Limits, decode_with};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_size: 1 << 16,
        ..Limits::default()
    };
    if let Ok(tree) = decode_with(data, &limits) {
        let again = decode_with(&tree.encode(), &limits).expect("re-encoded tree decodes");
        assert_eq!(tree, again);
    }
});
