//! Malformed TTLV table, size/depth limits, framing, message-level tolerance, and property
//! tests (the decoder never panics; encode → decode round-trips).

use okv_core::kmip::tags::{self, operation, result_reason, result_status};
use okv_core::kmip::ttlv::{self, Limits, TtlvErrorKind};
use okv_core::kmip::{self, KmipError, Ttlv, Value};
use proptest::prelude::*;

#[path = "../common/mod.rs"]
mod common;

use common::vectors::vector;

const CAP: usize = 1 << 20;

fn item(tag: u32, ty: u8, len: u32, value: &[u8]) -> Vec<u8> {
    let mut v = tag.to_be_bytes()[1..].to_vec();
    v.push(ty);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn depth_bomb(depth: usize) -> Vec<u8> {
    let mut inner = item(0x42_0001, 2, 4, &[0, 0, 0, 1, 0, 0, 0, 0]);
    for _ in 0..depth {
        inner = item(0x42_0001, 1, inner.len() as u32, &inner);
    }
    inner
}

fn kind(bytes: &[u8]) -> TtlvErrorKind {
    ttlv::decode(bytes).expect_err("must fail").kind
}

#[test]
fn malformed_table() {
    let int_ok = item(0x42_0002, 2, 4, &[0, 0, 0, 7, 0, 0, 0, 0]);
    let cases: Vec<(&str, Vec<u8>, TtlvErrorKind)> = vec![
        ("empty", vec![], TtlvErrorKind::TruncatedHeader),
        (
            "truncated header",
            vec![0x42, 0, 0x7B, 1, 0, 0],
            TtlvErrorKind::TruncatedHeader,
        ),
        (
            "length past buffer",
            item(0x42_007B, 1, 64, &[0; 8]),
            TtlvErrorKind::LengthPastBuffer {
                length: 64,
                available: 8,
            },
        ),
        (
            "integer with length 8",
            item(0x42_0002, 2, 8, &[0; 8]),
            TtlvErrorKind::BadFixedLength {
                item_type: 2,
                length: 8,
            },
        ),
        (
            "boolean with length 4",
            item(0x42_0002, 6, 4, &[0; 8]),
            TtlvErrorKind::BadFixedLength {
                item_type: 6,
                length: 4,
            },
        ),
        (
            "enumeration with length 2",
            item(0x42_0002, 5, 2, &[0; 8]),
            TtlvErrorKind::BadFixedLength {
                item_type: 5,
                length: 2,
            },
        ),
        (
            "date-time with length 4",
            item(0x42_0002, 9, 4, &[0; 8]),
            TtlvErrorKind::BadFixedLength {
                item_type: 9,
                length: 4,
            },
        ),
        (
            "boolean value 2",
            item(0x42_0002, 6, 8, &[0, 0, 0, 0, 0, 0, 0, 2]),
            TtlvErrorKind::InvalidBoolean(2),
        ),
        (
            "integer without padding",
            item(0x42_0002, 2, 4, &[0, 0, 0, 7]),
            TtlvErrorKind::MissingPadding,
        ),
        (
            "text without padding",
            item(0x42_0002, 7, 3, b"abc"),
            TtlvErrorKind::MissingPadding,
        ),
        (
            "invalid type 0x00",
            item(0x42_0002, 0, 4, &[0; 8]),
            TtlvErrorKind::InvalidType(0),
        ),
        (
            "invalid type 0x0B",
            item(0x42_0002, 0x0B, 4, &[0; 8]),
            TtlvErrorKind::InvalidType(0x0B),
        ),
        (
            "invalid utf-8",
            item(0x42_0002, 7, 2, &[0xC3, 0x28, 0, 0, 0, 0, 0, 0]),
            TtlvErrorKind::InvalidUtf8,
        ),
        (
            "big integer length 5",
            item(0x42_0002, 4, 5, &[0; 8]),
            TtlvErrorKind::BadLength {
                item_type: 4,
                length: 5,
            },
        ),
        (
            "structure length 12",
            item(0x42_0001, 1, 12, &[0; 16]),
            TtlvErrorKind::BadLength {
                item_type: 1,
                length: 12,
            },
        ),
        (
            "child runs past the structure",
            // Structure length 8 holds only the child's header; its value lies outside.
            item(0x42_0001, 1, 8, &int_ok),
            TtlvErrorKind::LengthPastBuffer {
                length: 4,
                available: 0,
            },
        ),
        (
            "trailing bytes",
            [int_ok.clone(), vec![0; 8]].concat(),
            TtlvErrorKind::TrailingBytes { count: 8 },
        ),
        (
            "trailing partial header",
            [int_ok.clone(), vec![0; 3]].concat(),
            TtlvErrorKind::TrailingBytes { count: 3 },
        ),
        (
            "depth bomb",
            depth_bomb(100),
            TtlvErrorKind::TooDeep { max_depth: 16 },
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(kind(&bytes), expected, "{name}");
    }
}

#[test]
fn error_carries_offset_and_tag_path() {
    let inner = item(0x42_0094, 7, 2, &[0xFF, 0xFE, 0, 0, 0, 0, 0, 0]);
    let bytes = item(0x42_007C, 1, inner.len() as u32, &inner);
    let err = ttlv::decode(&bytes).unwrap_err();
    assert_eq!(err.kind, TtlvErrorKind::InvalidUtf8);
    assert_eq!(err.offset, 16);
    assert_eq!(err.path, vec![0x42_007C, 0x42_0094]);
    assert_eq!(
        err.to_string(),
        "TTLV: text string is not valid UTF-8 at byte 16 (tags: 0x42007C > 0x420094)"
    );
}

#[test]
fn depth_limit_boundary() {
    // 15 nested structures around an integer = depth 16: accepted; one more: rejected.
    assert!(ttlv::decode(&depth_bomb(15)).is_ok());
    assert_eq!(
        kind(&depth_bomb(16)),
        TtlvErrorKind::TooDeep { max_depth: 16 }
    );
}

#[test]
fn size_cap() {
    let bytes = item(0x42_0002, 8, 16, &[0; 16]);
    let limits = Limits {
        max_size: 16,
        ..Limits::default()
    };
    assert_eq!(
        ttlv::decode_with(&bytes, &limits).unwrap_err().kind,
        TtlvErrorKind::TooLarge {
            length: 24,
            cap: 16
        }
    );
}

#[test]
fn response_len_framing() {
    let ok = [0x42, 0x00, 0x7B, 0x01, 0, 0, 0x01, 0x00];
    assert_eq!(kmip::response_len(&ok, 4096), Ok(256));
    assert_eq!(
        kmip::response_len(&ok, 255).unwrap_err().kind,
        TtlvErrorKind::TooLarge {
            length: 256,
            cap: 255
        }
    );
    let huge = [0x42, 0x00, 0x7B, 0x01, 0xFF, 0xFF, 0xFF, 0xF8];
    assert!(matches!(
        kmip::response_len(&huge, CAP).unwrap_err().kind,
        TtlvErrorKind::TooLarge { .. }
    ));
    let request = [0x42, 0x00, 0x78, 0x01, 0, 0, 0, 8];
    assert_eq!(
        kmip::response_len(&request, CAP).unwrap_err().kind,
        TtlvErrorKind::UnexpectedTag {
            expected: 0x42_007B,
            found: 0x42_0078
        }
    );
    let not_struct = [0x42, 0x00, 0x7B, 0x07, 0, 0, 0, 8];
    assert_eq!(
        kmip::response_len(&not_struct, CAP).unwrap_err().kind,
        TtlvErrorKind::NotStructure { found: 7 }
    );
    let odd = [0x42, 0x00, 0x7B, 0x01, 0, 0, 0, 12];
    assert!(matches!(
        kmip::response_len(&odd, CAP).unwrap_err().kind,
        TtlvErrorKind::BadLength { .. }
    ));
}

#[test]
fn decode_response_respects_cap() {
    let bytes = vector("1_1_testcase_17_1_time_5_destroy_response");
    let body = bytes.len() - kmip::HEADER_LEN;
    assert!(kmip::decode_response(&bytes, body).is_ok());
    assert!(matches!(
        kmip::decode_response(&bytes, body - 8),
        Err(KmipError::Ttlv(_))
    ));
}

// ---- message-level tolerance ----

fn response(header_extra: Vec<Ttlv>, item: Vec<Ttlv>) -> Vec<u8> {
    let mut header = vec![
        Ttlv::structure(
            tags::PROTOCOL_VERSION,
            vec![
                Ttlv::integer(tags::PROTOCOL_VERSION_MAJOR, 1),
                Ttlv::integer(tags::PROTOCOL_VERSION_MINOR, 1),
            ],
        ),
        Ttlv::date_time(tags::TIME_STAMP, 1_335_514_341),
    ];
    header.extend(header_extra);
    header.push(Ttlv::integer(tags::BATCH_COUNT, 1));
    Ttlv::structure(
        tags::RESPONSE_MESSAGE,
        vec![
            Ttlv::structure(tags::RESPONSE_HEADER, header),
            Ttlv::structure(tags::BATCH_ITEM, item),
        ],
    )
    .encode()
}

#[test]
fn unknown_result_reason_keeps_number_and_message() {
    // Same bytes as fed to kmip-protocol 0.4.3 in docs/kmip-notes.md.
    let bytes = vector("tolerance_err_reason_1a");
    let err = kmip::decode_response_for(&bytes, CAP, operation::GET).unwrap_err();
    assert_eq!(
        err,
        KmipError::Server {
            operation: operation::GET,
            status: result_status::OPERATION_FAILED,
            reason: Some(0x1A),
            message: Some("Could not locate object: 4".into()),
        }
    );
    assert!(!err.is_item_not_found());
    assert_eq!(
        err.to_string(),
        "KMIP Get: Operation Failed / 0x0000001A: \"Could not locate object: 4\""
    );
}

#[test]
fn item_not_found_is_classified() {
    let err = kmip::decode_response(&vector("tolerance_err_reason_1_known"), CAP).unwrap_err();
    assert!(err.is_item_not_found());
    assert_eq!(err.server_message(), Some("Could not locate object: 4"));
    assert_eq!(
        err.to_string(),
        "KMIP Get: Operation Failed / Item Not Found: \"Could not locate object: 4\""
    );
    // Unknown header tag and an error: still the server's message.
    let err = kmip::decode_response(&vector("tolerance_err_unknown_hdr_tag"), CAP).unwrap_err();
    assert!(err.is_item_not_found());
}

#[test]
fn unknown_tags_in_header_and_payload_are_skipped() {
    let payload = kmip::decode_response_for(
        &vector("tolerance_ok_unknown_hdr_tag"),
        CAP,
        operation::DESTROY,
    )
    .unwrap();
    assert_eq!(kmip::parse_destroy(&payload).as_deref(), Some("4"));

    let bytes = response(
        vec![
            Ttlv::text(0x42_0150, "vendor header extension"),
            Ttlv::boolean(0x54_0001, true),
        ],
        vec![
            Ttlv::enumeration(tags::OPERATION, operation::LOCATE),
            Ttlv::enumeration(tags::RESULT_STATUS, result_status::SUCCESS),
            Ttlv::structure(
                tags::RESPONSE_PAYLOAD,
                vec![
                    Ttlv::integer(0x42_00D5, 2), // a KMIP 1.3 tag (Located Items)
                    Ttlv::text(tags::UNIQUE_IDENTIFIER, "a"),
                    Ttlv::structure(0x54_0002, vec![Ttlv::bytes(0x54_0003, vec![1, 2])]),
                    Ttlv::text(tags::UNIQUE_IDENTIFIER, "b"),
                ],
            ),
        ],
    );
    let payload = kmip::decode_response_for(&bytes, CAP, operation::LOCATE).unwrap();
    assert_eq!(
        kmip::parse_locate(&payload).unwrap(),
        vec!["a".to_string(), "b".to_string()]
    );
}

#[test]
fn unknown_enum_values_in_query_are_kept() {
    let bytes = response(
        vec![],
        vec![
            Ttlv::enumeration(tags::OPERATION, operation::QUERY),
            Ttlv::enumeration(tags::RESULT_STATUS, result_status::SUCCESS),
            Ttlv::structure(
                tags::RESPONSE_PAYLOAD,
                vec![
                    Ttlv::enumeration(tags::OPERATION, operation::GET),
                    Ttlv::enumeration(tags::OPERATION, 0x2A),
                    Ttlv::enumeration(tags::OBJECT_TYPE, 0x0A),
                ],
            ),
        ],
    );
    let info = kmip::parse_query(&kmip::decode_response(&bytes, CAP).unwrap()).unwrap();
    assert_eq!(info.operations, vec![operation::GET, 0x2A]);
    assert_eq!(info.object_types, vec![0x0A]);
    assert_eq!(info.vendor, None);
    assert_eq!(tags::name_of_operation(0x2A), "0x0000002A");
}

#[test]
fn pending_and_undone_are_errors() {
    for status in [
        result_status::OPERATION_PENDING,
        result_status::OPERATION_UNDONE,
    ] {
        let bytes = response(
            vec![],
            vec![
                Ttlv::enumeration(tags::OPERATION, operation::CREATE),
                Ttlv::enumeration(tags::RESULT_STATUS, status),
            ],
        );
        match kmip::decode_response(&bytes, CAP).unwrap_err() {
            KmipError::Server {
                status: s,
                reason: None,
                message: None,
                ..
            } => assert_eq!(s, status),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn batch_and_operation_checks() {
    let ok_item = vec![
        Ttlv::enumeration(tags::OPERATION, operation::GET),
        Ttlv::enumeration(tags::RESULT_STATUS, result_status::SUCCESS),
    ];
    let bytes = response(vec![], ok_item.clone());
    assert!(matches!(
        kmip::decode_response_for(&bytes, CAP, operation::LOCATE),
        Err(KmipError::Malformed(_))
    ));
    // Success without payload → empty Response Payload.
    let payload = kmip::decode_response_for(&bytes, CAP, operation::GET).unwrap();
    assert_eq!(payload, Ttlv::structure(tags::RESPONSE_PAYLOAD, vec![]));
    assert!(matches!(
        kmip::parse_get(&payload),
        Err(KmipError::Malformed(_))
    ));

    // Two batch items.
    let two = Ttlv::structure(
        tags::RESPONSE_MESSAGE,
        vec![
            Ttlv::structure(
                tags::RESPONSE_HEADER,
                vec![Ttlv::integer(tags::BATCH_COUNT, 2)],
            ),
            Ttlv::structure(tags::BATCH_ITEM, ok_item.clone()),
            Ttlv::structure(tags::BATCH_ITEM, ok_item.clone()),
        ],
    );
    assert!(matches!(
        kmip::decode_response(&two.encode(), CAP),
        Err(KmipError::Malformed(_))
    ));
    // Missing Result Status.
    let bytes = response(
        vec![],
        vec![Ttlv::enumeration(tags::OPERATION, operation::GET)],
    );
    assert!(matches!(
        kmip::decode_response(&bytes, CAP),
        Err(KmipError::Malformed(_))
    ));
    // A request is not a response.
    let req = kmip::encode_request(&kmip::get("1"));
    assert!(matches!(
        kmip::decode_response(&req, CAP),
        Err(KmipError::Malformed(_))
    ));
}

#[test]
fn get_secret_data_and_wrapped_key() {
    let secret = b"p\x00ssw\xFFrd".to_vec();
    let mut req = kmip::register_secret(&secret, "s");
    // Build the Get response a server returns for it: same Secret Data structure.
    let object = req.payload[2].clone();
    let get_payload = |object: Ttlv| {
        Ttlv::structure(
            tags::RESPONSE_PAYLOAD,
            vec![
                Ttlv::enumeration(tags::OBJECT_TYPE, tags::object_type::SECRET_DATA),
                Ttlv::text(tags::UNIQUE_IDENTIFIER, "9"),
                object,
            ],
        )
    };
    let obj = kmip::parse_get(&get_payload(object.clone())).unwrap();
    assert_eq!(&obj.material[..], &secret[..]);
    assert_eq!(obj.secret_data_type, Some(tags::secret_data_type::PASSWORD));
    assert_eq!(obj.key_format_type, tags::key_format_type::OPAQUE);
    assert_eq!(obj.algorithm, None);
    assert_eq!(obj.uid, "9");
    req.zeroize();

    // A wrapped key block is refused.
    let mut wrapped = object;
    let Value::Structure(children) = &mut wrapped.value else {
        panic!()
    };
    let Value::Structure(block) = &mut children[1].value else {
        panic!()
    };
    block.push(Ttlv::structure(tags::KEY_WRAPPING_DATA, vec![]));
    assert!(matches!(
        kmip::parse_get(&get_payload(wrapped)),
        Err(KmipError::Malformed(_))
    ));
}

#[test]
fn ttlv_zeroize_wipes_byte_strings_recursively() {
    let mut t = Ttlv::structure(
        1,
        vec![
            Ttlv::structure(2, vec![Ttlv::bytes(3, vec![9; 32])]),
            Ttlv::text(4, "keep"),
        ],
    );
    t.zeroize();
    assert_eq!(t.children()[0].children()[0].as_bytes(), Some(&[][..]));
    assert_eq!(t.children()[1].as_text(), Some("keep"));
    // Debug output never shows byte string content.
    assert!(!format!("{:?}", Ttlv::bytes(3, vec![0xAB; 4])).contains("171"));
}

// ---- property tests ----

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::LongInteger),
        (0usize..4)
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 8))
            .prop_map(Value::BigInteger),
        any::<u32>().prop_map(Value::Enumeration),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,20}".prop_map(Value::TextString),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::ByteString),
        any::<i64>().prop_map(Value::DateTime),
        any::<u32>().prop_map(Value::Interval),
    ]
}

fn arb_ttlv() -> impl Strategy<Value = Ttlv> {
    let leaf = (0u32..0x100_0000, arb_leaf()).prop_map(|(tag, value)| Ttlv { tag, value });
    leaf.prop_recursive(6, 64, 8, |inner| {
        (0u32..0x100_0000, proptest::collection::vec(inner, 0..8))
            .prop_map(|(tag, c)| Ttlv::structure(tag, c))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ttlv::decode(&bytes);
        let _ = kmip::decode_response(&bytes, CAP);
        if bytes.len() >= 8 {
            let mut h = [0u8; 8];
            h.copy_from_slice(&bytes[..8]);
            let _ = kmip::response_len(&h, CAP);
        }
    }

    #[test]
    fn decoder_never_panics_on_mutated_vectors(idx in 0usize..4096, byte in any::<u8>(), cut in 0usize..4096) {
        let mut bytes = vector("1_0_usecase_4_1_step_6_client_b_get_symmetric_key_response");
        let i = idx % bytes.len();
        bytes[i] = byte;
        let _ = kmip::decode_response(&bytes, CAP).map(|p| kmip::parse_get(&p));
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = kmip::decode_response(&bytes, CAP);
    }

    #[test]
    fn encode_decode_round_trip(t in arb_ttlv()) {
        let bytes = t.encode();
        prop_assert_eq!(bytes.len(), t.encoded_len());
        prop_assert_eq!(bytes.len() % 8, 0);
        let back = ttlv::decode_with(&bytes, &Limits { max_depth: 16, max_size: usize::MAX }).unwrap();
        prop_assert_eq!(back, t);
    }
}

#[test]
fn result_reason_names() {
    assert_eq!(
        tags::name_of_result_reason(result_reason::ITEM_NOT_FOUND),
        "Item Not Found"
    );
    assert_eq!(tags::name_of_result_reason(0x43), "0x00000043");
    assert_eq!(
        tags::name_of_tag(tags::UNIQUE_IDENTIFIER),
        "Unique Identifier"
    );
}
