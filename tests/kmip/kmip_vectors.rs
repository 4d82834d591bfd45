//! Conformance against the OASIS KMIP 1.0 / 1.1 test-case byte vectors in `tests/vectors/`
//! (each file names its source). Requests we build are compared byte for byte; where the
//! vector is KMIP 1.0, only the Protocol Version Minor in the header is changed to 1 before
//! comparing (we always send 1.1). Responses are decoded and parsed.

use okv_core::kmip::tags::{
    self, cryptographic_algorithm, object_type, operation, result_reason, state,
};
use okv_core::kmip::{self, KmipError, LocateFilter, Ttlv, Value, ttlv};

#[path = "../common/mod.rs"]
mod common;

use common::vectors::{unhex, vector};

const CAP: usize = 1 << 20;

/// Decode a request vector and set its Protocol Version Minor to 1.
fn as_v11(bytes: &[u8]) -> Vec<u8> {
    let mut msg = ttlv::decode(bytes).unwrap();
    let Value::Structure(items) = &mut msg.value else {
        panic!()
    };
    let Value::Structure(header) = &mut items[0].value else {
        panic!()
    };
    let Value::Structure(version) = &mut header[0].value else {
        panic!()
    };
    assert_eq!(version[1].tag, tags::PROTOCOL_VERSION_MINOR);
    version[1].value = Value::Integer(1);
    msg.encode()
}

fn batch_item(msg: &Ttlv) -> &Ttlv {
    msg.find(tags::BATCH_ITEM).unwrap()
}

#[test]
fn every_vector_decodes_and_reencodes_identically() {
    let dir = format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = unhex(&std::fs::read_to_string(&path).unwrap());
        let tree = ttlv::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(tree.encode(), bytes, "{}", path.display());
        n += 1;
    }
    assert!(n >= 70, "only {n} vectors");
}

#[test]
fn create_request_matches_1_1_test_case_17_1() {
    let expected = vector("1_1_testcase_17_1_time_0_create_symmetric_key_request");
    // The test case adds a second Name and a Contact Information after our attributes.
    let mut req = kmip::create_aes(256, "FirstTestName");
    let Value::Structure(attrs) = &mut req.payload[1].value else {
        panic!()
    };
    attrs.push(kmip::name_attribute("SecondTestName"));
    attrs.push(kmip::attribute(
        "Contact Information",
        None,
        Value::TextString("admin@localhost".into()),
    ));
    assert_eq!(kmip::encode_request(&req), expected);
}

#[test]
fn create_response_1_1() {
    let bytes = vector("1_1_testcase_17_1_time_0_create_symmetric_key_response");
    let payload = kmip::decode_response_for(&bytes, CAP, operation::CREATE).unwrap();
    assert_eq!(
        kmip::parse_create(&payload).unwrap(),
        "28c7bad1-bc9b-41df-b439-1ba04a6fd982"
    );
}

#[test]
fn register_aes_key_block_matches_get_response_of_use_case_4_1() {
    // Use case 4.1 step 6 returns a Raw AES-128 key; our Register must carry the same
    // Symmetric Key structure for the same material.
    let response = ttlv::decode(&vector(
        "1_0_usecase_4_1_step_6_client_b_get_symmetric_key_response",
    ))
    .unwrap();
    let vector_key = batch_item(&response)
        .find(tags::RESPONSE_PAYLOAD)
        .unwrap()
        .find(tags::SYMMETRIC_KEY)
        .unwrap();
    let material = vector_key
        .find(tags::KEY_BLOCK)
        .unwrap()
        .find(tags::KEY_VALUE)
        .unwrap()
        .find(tags::KEY_MATERIAL)
        .unwrap()
        .as_bytes()
        .unwrap()
        .to_vec();
    let mut req = kmip::register_aes(&material, "Key1");
    assert_eq!(req.operation, operation::REGISTER);
    assert_eq!(
        req.payload[0],
        Ttlv::enumeration(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY)
    );
    assert_eq!(req.payload[2].encode(), vector_key.encode());
    req.zeroize();
    assert_eq!(
        req.payload[2]
            .find(tags::KEY_BLOCK)
            .unwrap()
            .find(tags::KEY_VALUE)
            .unwrap()
            .find(tags::KEY_MATERIAL)
            .unwrap()
            .as_bytes(),
        Some(&[][..])
    );
}

#[test]
fn register_response_1_0_use_case_3_1_2() {
    let req = ttlv::decode(&vector("1_0_usecase_3_1_2_step_1_register_request")).unwrap();
    assert_eq!(
        batch_item(&req).find(tags::OPERATION).unwrap().as_enum(),
        Some(operation::REGISTER)
    );
    let bytes = vector("1_0_usecase_3_1_2_step_1_register_response");
    let payload = kmip::decode_response_for(&bytes, CAP, operation::REGISTER).unwrap();
    assert!(!kmip::parse_register(&payload).unwrap().is_empty());
}

#[test]
fn get_request_and_response_use_case_4_1() {
    let expected = as_v11(&vector(
        "1_0_usecase_4_1_step_6_client_b_get_symmetric_key_request",
    ));
    assert_eq!(
        kmip::encode_request(&kmip::get("21d28b8a-06df-43c0-b72f-2a161633ada9")),
        expected
    );
    let bytes = vector("1_0_usecase_4_1_step_6_client_b_get_symmetric_key_response");
    let obj =
        kmip::parse_get(&kmip::decode_response_for(&bytes, CAP, operation::GET).unwrap()).unwrap();
    assert_eq!(obj.uid, "21d28b8a-06df-43c0-b72f-2a161633ada9");
    assert_eq!(obj.object_type, object_type::SYMMETRIC_KEY);
    assert_eq!(obj.algorithm, Some(cryptographic_algorithm::AES));
    assert_eq!(obj.length_bits, Some(128));
    assert_eq!(obj.secret_data_type, None);
    assert_eq!(
        &obj.material[..],
        &unhex("ef7833ab15f5a1ee5874bc0d9bbc4be7")[..]
    );
}

#[test]
fn locate_request_and_response_use_case_4_1() {
    let expected = as_v11(&vector(
        "1_0_usecase_4_1_step_5_client_b_locate_symmetric_key_by_name_request",
    ));
    let filter = LocateFilter {
        name: Some("Key1"),
        object_type: Some(object_type::SYMMETRIC_KEY),
    };
    assert_eq!(kmip::encode_request(&kmip::locate(&filter, None)), expected);
    let bytes = vector("1_0_usecase_4_1_step_5_client_b_locate_symmetric_key_by_name_response");
    let uids =
        kmip::parse_locate(&kmip::decode_response_for(&bytes, CAP, operation::LOCATE).unwrap())
            .unwrap();
    assert_eq!(
        uids,
        vec!["21d28b8a-06df-43c0-b72f-2a161633ada9".to_string()]
    );
}

#[test]
fn locate_with_maximum_items_puts_it_first() {
    let req = kmip::locate(
        &LocateFilter {
            name: Some("k"),
            object_type: None,
        },
        Some(10),
    );
    assert_eq!(req.payload[0], Ttlv::integer(tags::MAXIMUM_ITEMS, 10));
    assert_eq!(req.payload.len(), 2);
}

#[test]
fn activate_and_revoke_use_case_4_1() {
    let uid = "21d28b8a-06df-43c0-b72f-2a161633ada9";
    let expected = as_v11(&vector("1_0_usecase_4_1_step_3_client_a_activate_request"));
    assert_eq!(kmip::encode_request(&kmip::activate(uid)), expected);
    let bytes = vector("1_0_usecase_4_1_step_3_client_a_activate_response");
    let payload = kmip::decode_response_for(&bytes, CAP, operation::ACTIVATE).unwrap();
    assert_eq!(kmip::parse_uid_echo(&payload).as_deref(), Some(uid));

    // The test case also sends a Compromise Occurrence Date after the Revocation Reason.
    let vector_req = ttlv::decode(&vector(
        "1_0_usecase_4_1_step_7_client_b_revoke_symmetric_key_compromised_request",
    ))
    .unwrap();
    let vector_payload = batch_item(&vector_req)
        .find(tags::REQUEST_PAYLOAD)
        .unwrap()
        .children();
    let ours = kmip::revoke(uid, tags::revocation_reason_code::KEY_COMPROMISE);
    assert_eq!(ours.operation, operation::REVOKE);
    assert_eq!(&ours.payload[..], &vector_payload[..2]);
    let bytes = vector("1_0_usecase_4_1_step_7_client_b_revoke_symmetric_key_compromised_response");
    kmip::decode_response_for(&bytes, CAP, operation::REVOKE).unwrap();
    assert_eq!(kmip::DEFAULT_REVOCATION_REASON, 6);
}

#[test]
fn destroy_matches_1_1_test_case_17_1() {
    let uid = "28c7bad1-bc9b-41df-b439-1ba04a6fd982";
    assert_eq!(
        kmip::encode_request(&kmip::destroy(uid)),
        vector("1_1_testcase_17_1_time_5_destroy_request")
    );
    let bytes = vector("1_1_testcase_17_1_time_5_destroy_response");
    let payload = kmip::decode_response_for(&bytes, CAP, operation::DESTROY).unwrap();
    assert_eq!(kmip::parse_destroy(&payload).as_deref(), Some(uid));
    // Absent echo is tolerated.
    assert_eq!(
        kmip::parse_destroy(&Ttlv::structure(tags::RESPONSE_PAYLOAD, vec![])),
        None
    );
}

#[test]
fn get_attributes_matches_1_1_test_case_17_1() {
    let uid = "28c7bad1-bc9b-41df-b439-1ba04a6fd982";
    assert_eq!(
        kmip::encode_request(&kmip::get_attributes(uid, &["Object Type"])),
        vector("1_1_testcase_17_1_time_2_get_attributes_request")
    );
    let bytes = vector("1_1_testcase_17_1_time_2_get_attributes_response");
    let attrs = kmip::parse_get_attributes(&kmip::decode_response(&bytes, CAP).unwrap()).unwrap();
    assert_eq!(attrs.len(), 1);
    assert_eq!(
        kmip::attr_object_type(&attrs),
        Some(object_type::SYMMETRIC_KEY)
    );

    // Error response of the same test case: Invalid Field with the server's message.
    let bytes = vector("1_1_testcase_17_1_time_1_get_attributes_response");
    let err = kmip::decode_response_for(&bytes, CAP, operation::GET_ATTRIBUTES).unwrap_err();
    assert_eq!(err.result_reason(), Some(result_reason::INVALID_FIELD));
    assert_eq!(
        err.to_string(),
        "KMIP Get Attributes: Operation Failed / Invalid Field: \"Attribute Name specified more than once: Object Type\""
    );
}

#[test]
fn get_attributes_use_case_4_1_name_and_state() {
    let bytes = vector("1_0_usecase_4_1_step_4_client_a_get_attribute_response");
    let attrs = kmip::parse_get_attributes(&kmip::decode_response(&bytes, CAP).unwrap()).unwrap();
    assert_eq!(kmip::attr_state(&attrs), Some(state::ACTIVE));
    let bytes = vector("1_0_usecase_4_1_step_2_client_a_get_attribute_response");
    let attrs = kmip::parse_get_attributes(&kmip::decode_response(&bytes, CAP).unwrap()).unwrap();
    assert!(!attrs.is_empty());
}

#[test]
fn discover_versions_matches_1_1_test_case_16_1() {
    assert_eq!(
        kmip::encode_request(&kmip::discover_versions()),
        vector("1_1_testcase_16_1_time_0_discover_versions_no_versions_provided_request")
    );
    let bytes = vector("1_1_testcase_16_1_time_0_discover_versions_v11_v10_response");
    let payload = kmip::decode_response_for(&bytes, CAP, operation::DISCOVER_VERSIONS).unwrap();
    assert_eq!(
        kmip::parse_discover_versions(&payload).unwrap(),
        vec![(1, 1), (1, 0)]
    );
    let bytes = vector("1_1_testcase_16_1_time_3_discover_versions_no_versions_response");
    let payload = kmip::decode_response(&bytes, CAP).unwrap();
    assert_eq!(kmip::parse_discover_versions(&payload).unwrap(), vec![]);
}

#[test]
fn query_matches_1_1_test_case_12_1() {
    // The test case header also carries Maximum Response Size; compare the batch item.
    let vector_req = ttlv::decode(&vector(
        "1_1_testcase_time_1_query_operations_objects_max_response_size_2048_request",
    ))
    .unwrap();
    let req = kmip::query(&[
        kmip::QUERY_OPERATIONS,
        kmip::QUERY_OBJECTS,
        kmip::QUERY_SERVER_INFORMATION,
    ]);
    assert_eq!(
        batch_item(&kmip::request_message(&req)),
        batch_item(&vector_req)
    );

    let bytes = vector("1_1_testcase_time_1_query_operation_succeeded_response");
    let info =
        kmip::parse_query(&kmip::decode_response_for(&bytes, CAP, operation::QUERY).unwrap())
            .unwrap();
    assert!(info.operations.contains(&operation::CREATE));
    assert!(info.operations.contains(&operation::DISCOVER_VERSIONS));
    assert!(info.object_types.contains(&object_type::SYMMETRIC_KEY));
    assert_eq!(
        info.vendor.as_deref(),
        Some("IBM test server, not-TKLM 2.0.1.1 KMIP 2.0.0.1")
    );

    let bytes = vector("1_1_testcase_time_0_query_operation_failed_response_too_large_response");
    match kmip::decode_response_for(&bytes, CAP, operation::QUERY).unwrap_err() {
        KmipError::Server {
            operation: op,
            status,
            reason,
            message,
        } => {
            assert_eq!(op, operation::QUERY); // absent in the response: taken from the request
            assert_eq!(status, tags::result_status::OPERATION_FAILED);
            assert_eq!(reason, Some(result_reason::RESPONSE_TOO_LARGE));
            assert!(message.unwrap().starts_with("Response size: 648"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_request_has_version_1_1_and_one_batch_item() {
    for req in [
        kmip::create_aes(128, "a"),
        kmip::register_secret(b"pw", "b"),
        kmip::get("1"),
        kmip::query(&[kmip::QUERY_OPERATIONS]),
        kmip::discover_versions(),
    ] {
        let msg = ttlv::decode(&kmip::encode_request(&req)).unwrap();
        assert_eq!(msg.tag, tags::REQUEST_MESSAGE);
        let header = msg.find(tags::REQUEST_HEADER).unwrap();
        let v = header.find(tags::PROTOCOL_VERSION).unwrap();
        assert_eq!(
            v.find(tags::PROTOCOL_VERSION_MAJOR).unwrap().as_int(),
            Some(1)
        );
        assert_eq!(
            v.find(tags::PROTOCOL_VERSION_MINOR).unwrap().as_int(),
            Some(1)
        );
        assert_eq!(header.find(tags::BATCH_COUNT).unwrap().as_int(), Some(1));
        assert_eq!(msg.find_all(tags::BATCH_ITEM).count(), 1);
    }
}
