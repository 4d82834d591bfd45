//! Fills a KMIP server with Active AES-256 keys for the benchmarks: Create and Activate, 100
//! per request.

use okv_core::connector::{KmipClient, Retry};
use okv_core::keyring::object_name;
use okv_core::kmip::ops;

/// Makes the keys `{prefix}{have:05}` .. `{prefix}{want - 1:05}` (server keys, no owner).
pub fn make_keys(client: &KmipClient, prefix: &str, have: usize, want: usize) {
    let mut next = have;
    while next < want {
        let end = (next + 100).min(want);
        let creates: Vec<_> = (next..end)
            .map(|i| ops::create_aes(256, &object_name(&format!("{prefix}{i:05}"), "")))
            .collect();
        let answer = client
            .request_batch(&creates, Retry::Never)
            .expect("create");
        let activates: Vec<_> = answer
            .items
            .into_iter()
            .map(|item| {
                let payload = item.expect("answered").expect("created");
                ops::activate(&ops::parse_create(&payload).expect("uid"))
            })
            .collect();
        client
            .request_batch(&activates, Retry::Never)
            .expect("activate");
        next = end;
    }
}
