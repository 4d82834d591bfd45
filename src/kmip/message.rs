//! Request envelope, response framing and response checking.
//!
//! Every request carries Protocol Version 1.1 (listings page with KMIP 1.3's Offset Items in a
//! later version, where the server offers one), Batch Count 1 and one Batch Item. Responses
//! are decoded strictly at the TTLV level but tolerantly at the message level: unknown tags
//! are skipped and unknown enumeration values are kept as numbers, so an error response
//! always yields the server's own Result Message.

use super::KmipError;
use super::tags::{self, result_status};
use super::ttlv::{self, Limits, Ttlv, TtlvError, TtlvErrorKind, Value, item_type};

/// Protocol version sent in every request header.
pub const PROTOCOL_VERSION: (i32, i32) = (1, 1);

/// One KMIP operation with its request payload (the children of Request Payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub operation: u32,
    pub payload: Vec<Ttlv>,
}

/// The full Request Message tree for `req`.
pub fn request_message(req: &Request) -> Ttlv {
    request_message_as(req, PROTOCOL_VERSION)
}

/// The Protocol Version structure of a request header.
pub fn protocol_version(version: (i32, i32)) -> Ttlv {
    Ttlv::structure(
        tags::PROTOCOL_VERSION,
        vec![
            Ttlv::integer(tags::PROTOCOL_VERSION_MAJOR, version.0),
            Ttlv::integer(tags::PROTOCOL_VERSION_MINOR, version.1),
        ],
    )
}

/// As [`request_message`], with `version` in the header.
pub fn request_message_as(req: &Request, version: (i32, i32)) -> Ttlv {
    Ttlv::structure(
        tags::REQUEST_MESSAGE,
        vec![
            Ttlv::structure(
                tags::REQUEST_HEADER,
                vec![
                    protocol_version(version),
                    Ttlv::integer(tags::BATCH_COUNT, 1),
                ],
            ),
            Ttlv::structure(
                tags::BATCH_ITEM,
                vec![
                    Ttlv::enumeration(tags::OPERATION, req.operation),
                    Ttlv::structure(tags::REQUEST_PAYLOAD, req.payload.clone()),
                ],
            ),
        ],
    )
}

/// Encode `req` as a complete Request Message.
pub fn encode_request(req: &Request) -> Vec<u8> {
    let mut msg = request_message(req);
    let out = msg.encode();
    // The clone of the payload may hold key material (Register).
    msg.zeroize();
    out
}

/// Length of the TTLV item header that starts every message.
pub const HEADER_LEN: usize = 8;

/// Check the first 8 bytes of a response and return the body length still to be read.
///
/// The outer item must be a Response Message Structure whose length is a multiple of 8 and
/// at most `cap`.
pub fn response_len(header: &[u8; HEADER_LEN], cap: usize) -> Result<usize, TtlvError> {
    let tag = u32::from(header[0]) << 16 | u32::from(header[1]) << 8 | u32::from(header[2]);
    if tag != tags::RESPONSE_MESSAGE {
        return Err(TtlvError::new(
            TtlvErrorKind::UnexpectedTag {
                expected: tags::RESPONSE_MESSAGE,
                found: tag,
            },
            0,
            vec![tag],
        ));
    }
    if header[3] != item_type::STRUCTURE {
        return Err(TtlvError::new(
            TtlvErrorKind::NotStructure { found: header[3] },
            0,
            vec![tag],
        ));
    }
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let len = length as usize;
    if len > cap {
        return Err(TtlvError::new(
            TtlvErrorKind::TooLarge { length: len, cap },
            0,
            vec![tag],
        ));
    }
    if len % 8 != 0 {
        return Err(TtlvError::new(
            TtlvErrorKind::BadLength {
                item_type: item_type::STRUCTURE,
                length,
            },
            0,
            vec![tag],
        ));
    }
    Ok(len)
}

/// Decode a complete Response Message (header included) whose body is at most `cap` bytes,
/// and return the Response Payload of its single batch item (an empty Response Payload
/// Structure when the server sent none).
///
/// A Result Status other than Success (including Operation Pending and Operation Undone)
/// yields [`KmipError::Server`] with the server's reason and message.
pub fn decode_response(bytes: &[u8], cap: usize) -> Result<Ttlv, KmipError> {
    decode_inner(bytes, cap, None)
}

/// As [`decode_response`], and also check that the batch item's Operation, when present,
/// is `operation`.
pub fn decode_response_for(bytes: &[u8], cap: usize, operation: u32) -> Result<Ttlv, KmipError> {
    decode_inner(bytes, cap, Some(operation))
}

fn decode_inner(bytes: &[u8], cap: usize, expected: Option<u32>) -> Result<Ttlv, KmipError> {
    let limits = Limits {
        max_size: cap.saturating_add(HEADER_LEN),
        ..Limits::default()
    };
    let msg = ttlv::decode_with(bytes, &limits)?;
    if msg.tag != tags::RESPONSE_MESSAGE || !msg.is_structure() {
        return Err(KmipError::Malformed(format!(
            "outer item is {} (type 0x{:02X}), not a Response Message",
            tags::name_of_tag(msg.tag),
            msg.value.type_byte()
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
    let items: Vec<&Ttlv> = msg.find_all(tags::BATCH_ITEM).collect();
    if batch_count != 1 || items.len() != 1 {
        return Err(KmipError::Malformed(format!(
            "expected one batch item, Batch Count is {batch_count} and {} present",
            items.len()
        )));
    }
    let item = items[0];
    let operation = item.find(tags::OPERATION).and_then(Ttlv::as_enum);
    if let (Some(exp), Some(got)) = (expected, operation) {
        if exp != got {
            return Err(KmipError::Malformed(format!(
                "response is for operation {}, request was {}",
                tags::name_of_operation(got),
                tags::name_of_operation(exp)
            )));
        }
    }
    let status = item
        .find(tags::RESULT_STATUS)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| KmipError::Malformed("Result Status missing in Batch Item".into()))?;
    if status != result_status::SUCCESS {
        return Err(KmipError::Server {
            operation: operation.or(expected).unwrap_or(0),
            status,
            reason: item.find(tags::RESULT_REASON).and_then(Ttlv::as_enum),
            message: item
                .find(tags::RESULT_MESSAGE)
                .and_then(Ttlv::as_text)
                .map(str::to_owned),
        });
    }
    // Move the payload out instead of copying it: it may hold key material.
    let mut msg = msg;
    let payload = take_payload(&mut msg)
        .unwrap_or_else(|| Ttlv::new(tags::RESPONSE_PAYLOAD, Value::Structure(Vec::new())));
    Ok(payload)
}

fn take_payload(msg: &mut Ttlv) -> Option<Ttlv> {
    let Value::Structure(items) = &mut msg.value else {
        return None;
    };
    let item = items.iter_mut().find(|i| i.tag == tags::BATCH_ITEM)?;
    let Value::Structure(children) = &mut item.value else {
        return None;
    };
    let pos = children
        .iter()
        .position(|c| c.tag == tags::RESPONSE_PAYLOAD && c.is_structure())?;
    Some(children.swap_remove(pos))
}
