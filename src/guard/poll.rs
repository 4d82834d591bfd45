//! One poll: every key in use asked about at the server that named it, in batches (one message
//! for many keys), all under one deadline.

use std::collections::BTreeMap;
use std::time::Instant;

use super::verdict::{self, Verdict};
use super::watched::WatchedKey;
use crate::connector::{KmipClient, Retry, with_deadline};
use crate::kmip::{LocateFilter, ops, tags};

/// The most keys asked about in one message (two batch items each).
pub const KEYS_PER_MESSAGE: usize = 50;

/// The verdict on each key of `keys`, in their order. A server that cannot be asked (down, a
/// timeout, TLS refused, the connection on another server) leaves its keys `Unknown`.
pub fn ask(client: &KmipClient, keys: &[WatchedKey], deadline: Instant) -> Vec<Verdict> {
    let mut verdicts = vec![Verdict::Unknown(String::new()); keys.len()];
    let mut by_server: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        by_server.entry(k.server.as_str()).or_default().push(i);
    }
    with_deadline(deadline, || {
        for (server, indexes) in by_server {
            for chunk in indexes.chunks(KEYS_PER_MESSAGE) {
                ask_server(client, server, keys, chunk, &mut verdicts);
            }
        }
    });
    verdicts
}

fn ask_server(
    client: &KmipClient,
    server: &str,
    keys: &[WatchedKey],
    chunk: &[usize],
    verdicts: &mut [Verdict],
) {
    let mut requests = Vec::with_capacity(chunk.len() * 2);
    for &i in chunk {
        let key = &keys[i];
        requests.push(ops::get_attributes(
            &key.uid,
            &[tags::attr::STATE, tags::attr::NAME],
        ));
        let filter = LocateFilter {
            name: Some(&key.name),
            object_type: None,
        };
        requests.push(ops::locate_where(
            &filter,
            Some(tags::state::ACTIVE),
            None,
            None,
        ));
    }
    match client.request_batch_on(server, &requests, Retry::Idempotent) {
        Ok(answer) => {
            for (n, &i) in chunk.iter().enumerate() {
                let key = &keys[i];
                verdicts[i] = verdict::judge(
                    &answer.server,
                    &key.uid,
                    &key.name,
                    answer.items.get(2 * n).and_then(Option::as_ref),
                    answer.items.get(2 * n + 1).and_then(Option::as_ref),
                );
            }
        }
        Err(e) => {
            // The whole message failed: nothing was said about any object.
            let why = e.to_string();
            for &i in chunk {
                verdicts[i] = Verdict::Unknown(why.clone());
            }
        }
    }
}
