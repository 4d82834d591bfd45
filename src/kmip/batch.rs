//! Several operations in one request message (KMIP batch items), so that a listing asks for
//! the names and states of hundreds of objects in one round trip.
//!
//! Every item carries a Unique Batch Item ID (its index), and the header asks the server to
//! continue after a failed item: one object destroyed in the meantime must not cost the
//! answers for the others. Answers are matched by that ID, not by position, and an item the
//! server left out (a server that stops at the first error after all) comes back as `None`
//! so the caller can ask again.

use super::KmipError;
use super::message::{HEADER_LEN, PROTOCOL_VERSION, Request, protocol_version};
use super::tags::{self, batch_error_continuation, result_status};
use super::ttlv::{self, Limits, Ttlv, Value};

/// The answer to one batch item: its response payload, or the server's refusal.
pub type ItemResult = Result<Ttlv, KmipError>;

fn item_id(index: usize) -> Vec<u8> {
    u32::try_from(index)
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec()
}

/// The Request Message for `requests` (at least one). A single request is sent exactly as
/// [`encode_request`](super::encode_request) sends it.
pub fn batch_message(requests: &[Request]) -> Ttlv {
    batch_message_as(requests, PROTOCOL_VERSION)
}

/// As [`batch_message`], with `version` in the header.
pub fn batch_message_as(requests: &[Request], version: (i32, i32)) -> Ttlv {
    if let [single] = requests {
        return super::message::request_message_as(single, version);
    }
    let mut header = vec![
        protocol_version(version),
        Ttlv::enumeration(
            tags::BATCH_ERROR_CONTINUATION_OPTION,
            batch_error_continuation::CONTINUE,
        ),
    ];
    header.push(Ttlv::integer(
        tags::BATCH_COUNT,
        i32::try_from(requests.len()).unwrap_or(i32::MAX),
    ));
    let mut children = vec![Ttlv::structure(tags::REQUEST_HEADER, header)];
    children.extend(requests.iter().enumerate().map(|(i, r)| {
        Ttlv::structure(
            tags::BATCH_ITEM,
            vec![
                Ttlv::enumeration(tags::OPERATION, r.operation),
                Ttlv::bytes(tags::UNIQUE_BATCH_ITEM_ID, item_id(i)),
                Ttlv::structure(tags::REQUEST_PAYLOAD, r.payload.clone()),
            ],
        )
    }));
    Ttlv::structure(tags::REQUEST_MESSAGE, children)
}

/// Encodes `requests` as one message. The copy of the payloads is wiped.
pub fn encode_batch(requests: &[Request]) -> Vec<u8> {
    encode_batch_as(requests, PROTOCOL_VERSION)
}

/// As [`encode_batch`], with `version` in the header.
pub fn encode_batch_as(requests: &[Request], version: (i32, i32)) -> Vec<u8> {
    let mut msg = batch_message_as(requests, version);
    let out = msg.encode();
    msg.zeroize();
    out
}

/// Decodes the answer to a batch of requests whose operations are `operations`, in request
/// order. The outer error is for a message that cannot be trusted at all; per item, `None`
/// means the server did not answer that item.
pub fn decode_batch_response(
    bytes: &[u8],
    cap: usize,
    operations: &[u32],
) -> Result<Vec<Option<ItemResult>>, KmipError> {
    let limits = Limits {
        max_size: cap.saturating_add(HEADER_LEN),
        ..Limits::default()
    };
    let mut msg = ttlv::decode_with(bytes, &limits)?;
    if msg.tag != tags::RESPONSE_MESSAGE || !msg.is_structure() {
        return Err(KmipError::Malformed(format!(
            "outer item is {}, not a Response Message",
            tags::name_of_tag(msg.tag)
        )));
    }
    let header = msg
        .find(tags::RESPONSE_HEADER)
        .filter(|h| h.is_structure())
        .ok_or_else(|| KmipError::Malformed("Response Header missing".into()))?;
    let batch_count = header
        .find(tags::BATCH_COUNT)
        .and_then(Ttlv::as_int)
        .ok_or_else(|| KmipError::Malformed("Batch Count missing in Response Header".into()))?;
    let Value::Structure(children) = &mut msg.value else {
        unreachable!("checked to be a structure");
    };
    let items: Vec<Ttlv> = children
        .drain(..)
        .filter(|c| c.tag == tags::BATCH_ITEM && c.is_structure())
        .collect();
    let count_ok = usize::try_from(batch_count).is_ok_and(|n| n == items.len());
    if !count_ok || items.is_empty() || items.len() > operations.len() {
        let mut items = items;
        items.iter_mut().for_each(Ttlv::zeroize);
        return Err(KmipError::Malformed(format!(
            "{} batch items were asked for; the answer has Batch Count {batch_count} and {} items",
            operations.len(),
            items.len()
        )));
    }
    let indexes: Option<Vec<usize>> = if operations.len() == 1 {
        Some(vec![0])
    } else {
        items
            .iter()
            .map(|i| item_index(i, operations.len()))
            .collect()
    };
    let mut seen = vec![false; operations.len()];
    let valid = indexes.filter(|indexes| {
        indexes
            .iter()
            .all(|&i| !std::mem::replace(&mut seen[i], true))
    });
    let Some(indexes) = valid else {
        let mut items = items;
        items.iter_mut().for_each(Ttlv::zeroize);
        return Err(KmipError::Malformed(
            "a batch item's Unique Batch Item ID is missing, repeated or was never sent".into(),
        ));
    };
    let mut out: Vec<Option<ItemResult>> = (0..operations.len()).map(|_| None).collect();
    for (item, index) in items.into_iter().zip(indexes) {
        out[index] = Some(item_result(item, operations[index]));
    }
    Ok(out)
}

fn item_index(item: &Ttlv, count: usize) -> Option<usize> {
    let id = item.find(tags::UNIQUE_BATCH_ITEM_ID)?.as_bytes()?;
    let id: [u8; 4] = id.try_into().ok()?;
    let index = usize::try_from(u32::from_be_bytes(id)).ok()?;
    (index < count).then_some(index)
}

fn item_result(mut item: Ttlv, expected: u32) -> ItemResult {
    let operation = item.find(tags::OPERATION).and_then(Ttlv::as_enum);
    if let Some(got) = operation.filter(|&got| got != expected) {
        item.zeroize();
        return Err(KmipError::Malformed(format!(
            "response is for operation {}, request was {}",
            tags::name_of_operation(got),
            tags::name_of_operation(expected)
        )));
    }
    let Some(status) = item.find(tags::RESULT_STATUS).and_then(Ttlv::as_enum) else {
        item.zeroize();
        return Err(KmipError::Malformed(
            "Result Status missing in Batch Item".into(),
        ));
    };
    if status != result_status::SUCCESS {
        return Err(KmipError::Server {
            operation: operation.unwrap_or(expected),
            status,
            reason: item.find(tags::RESULT_REASON).and_then(Ttlv::as_enum),
            message: item
                .find(tags::RESULT_MESSAGE)
                .and_then(Ttlv::as_text)
                .map(str::to_owned),
        });
    }
    let Value::Structure(children) = &mut item.value else {
        unreachable!("batch items are structures");
    };
    // Moved out, not copied: a Get payload holds key material.
    Ok(
        match children
            .iter()
            .position(|c| c.tag == tags::RESPONSE_PAYLOAD && c.is_structure())
        {
            Some(pos) => children.swap_remove(pos),
            None => Ttlv::new(tags::RESPONSE_PAYLOAD, Value::Structure(Vec::new())),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmip::ops;
    use crate::kmip::tags::{operation, result_reason};

    fn header_version(msg: &Ttlv) -> (i32, i32) {
        let v = msg
            .find(tags::REQUEST_HEADER)
            .and_then(|h| h.find(tags::PROTOCOL_VERSION))
            .unwrap();
        (
            v.find(tags::PROTOCOL_VERSION_MAJOR)
                .and_then(Ttlv::as_int)
                .unwrap(),
            v.find(tags::PROTOCOL_VERSION_MINOR)
                .and_then(Ttlv::as_int)
                .unwrap(),
        )
    }

    #[test]
    fn a_paged_locate_goes_in_the_version_asked_and_everything_else_in_1_1() {
        let filter = ops::LocateFilter {
            name: None,
            object_type: Some(tags::object_type::SYMMETRIC_KEY),
        };
        let page = ops::locate_page(&filter, None, 999, 1000);
        // Maximum Items, then Offset Items, then the attributes: the specification's order.
        assert_eq!(page.payload[0].tag, tags::MAXIMUM_ITEMS);
        assert_eq!(page.payload[1].tag, tags::OFFSET_ITEMS);
        assert_eq!(page.payload[1].as_int(), Some(999));
        assert_eq!(page.payload[2].tag, tags::ATTRIBUTE);
        for requests in [vec![page.clone()], vec![page.clone(), page.clone()]] {
            assert_eq!(header_version(&batch_message_as(&requests, (1, 4))), (1, 4));
            assert_eq!(header_version(&batch_message(&requests)), (1, 1));
        }
        assert!(
            ops::locate(&filter, Some(10))
                .payload
                .iter()
                .all(|t| t.tag != tags::OFFSET_ITEMS)
        );
    }

    #[test]
    fn pages_only_in_a_1_x_version_with_offset_items() {
        assert_eq!(ops::paging_version(&[(1, 1), (1, 0)]), None);
        assert_eq!(ops::paging_version(&[]), None);
        assert_eq!(ops::paging_version(&[(2, 1), (2, 0), (1, 2)]), None);
        assert_eq!(
            ops::paging_version(&[(2, 0), (1, 4), (1, 3), (1, 1)]),
            Some((1, 4))
        );
        assert_eq!(ops::paging_version(&[(1, 1), (1, 3)]), Some((1, 3)));
    }

    fn item(op: u32, id: Option<usize>, ok: bool, uid: &str) -> Ttlv {
        let mut v = vec![Ttlv::enumeration(tags::OPERATION, op)];
        if let Some(i) = id {
            v.push(Ttlv::bytes(tags::UNIQUE_BATCH_ITEM_ID, item_id(i)));
        }
        if ok {
            v.push(Ttlv::enumeration(
                tags::RESULT_STATUS,
                result_status::SUCCESS,
            ));
            v.push(Ttlv::structure(
                tags::RESPONSE_PAYLOAD,
                vec![Ttlv::text(tags::UNIQUE_IDENTIFIER, uid)],
            ));
        } else {
            v.push(Ttlv::enumeration(
                tags::RESULT_STATUS,
                result_status::OPERATION_FAILED,
            ));
            v.push(Ttlv::enumeration(
                tags::RESULT_REASON,
                result_reason::OBJECT_DESTROYED,
            ));
        }
        Ttlv::structure(tags::BATCH_ITEM, v)
    }

    fn response(items: Vec<Ttlv>) -> Vec<u8> {
        let mut v = vec![Ttlv::structure(
            tags::RESPONSE_HEADER,
            vec![Ttlv::integer(tags::BATCH_COUNT, items.len() as i32)],
        )];
        v.extend(items);
        Ttlv::structure(tags::RESPONSE_MESSAGE, v).encode()
    }

    const OPS: [u32; 3] = [operation::GET_ATTRIBUTES; 3];

    #[test]
    fn batch_request_asks_to_continue_and_numbers_items() {
        let requests: Vec<Request> = ["1", "2"]
            .iter()
            .map(|u| ops::get_attributes(u, &[]))
            .collect();
        let msg = batch_message(&requests);
        let header = msg.find(tags::REQUEST_HEADER).unwrap();
        assert_eq!(
            header.find(tags::BATCH_COUNT).and_then(Ttlv::as_int),
            Some(2)
        );
        assert_eq!(
            header
                .find(tags::BATCH_ERROR_CONTINUATION_OPTION)
                .and_then(Ttlv::as_enum),
            Some(batch_error_continuation::CONTINUE)
        );
        let ids: Vec<&[u8]> = msg
            .find_all(tags::BATCH_ITEM)
            .map(|i| {
                i.find(tags::UNIQUE_BATCH_ITEM_ID)
                    .unwrap()
                    .as_bytes()
                    .unwrap()
            })
            .collect();
        assert_eq!(ids, [&[0, 0, 0, 0][..], &[0, 0, 0, 1][..]]);
        // One request is sent as before, without batch fields.
        let single = batch_message(&requests[..1]);
        assert!(
            single
                .find(tags::REQUEST_HEADER)
                .unwrap()
                .find(tags::BATCH_ERROR_CONTINUATION_OPTION)
                .is_none()
        );
    }

    #[test]
    fn answers_are_matched_by_id_and_missing_ones_are_none() {
        let bytes = response(vec![
            item(operation::GET_ATTRIBUTES, Some(2), true, "c"),
            item(operation::GET_ATTRIBUTES, Some(0), false, ""),
        ]);
        let out = decode_batch_response(&bytes, 1 << 20, &OPS).unwrap();
        assert!(out[0].as_ref().unwrap().as_ref().unwrap_err().is_absent());
        assert!(out[1].is_none());
        let c = out[2].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(
            c.find(tags::UNIQUE_IDENTIFIER).and_then(Ttlv::as_text),
            Some("c")
        );
    }

    #[test]
    fn bad_batches_are_refused() {
        for items in [
            vec![
                item(operation::GET_ATTRIBUTES, None, true, "a"),
                item(operation::GET_ATTRIBUTES, None, true, "b"),
            ],
            vec![
                item(operation::GET_ATTRIBUTES, Some(1), true, "a"),
                item(operation::GET_ATTRIBUTES, Some(1), true, "b"),
            ],
            vec![item(operation::GET_ATTRIBUTES, Some(7), true, "a")],
            (0..4)
                .map(|i| item(operation::GET_ATTRIBUTES, Some(i % 3), true, "a"))
                .collect(),
        ] {
            assert!(decode_batch_response(&response(items), 1 << 20, &OPS).is_err());
        }
        let wrong_op = response(vec![item(operation::GET, Some(0), true, "a")]);
        let out = decode_batch_response(&wrong_op, 1 << 20, &OPS).unwrap();
        assert!(matches!(out[0], Some(Err(KmipError::Malformed(_)))));
    }
}
