//! Typed request builders and response payload parsers for the KMIP 1.1 subset the keyring
//! uses. Parsers take the Response Payload returned by [`decode_response`](super::decode_response),
//! skip tags they do not know and keep unknown enumeration values as numbers.

use zeroize::Zeroizing;

use super::KmipError;
use super::message::Request;
use super::tags::{
    self, attr, cryptographic_algorithm, key_format_type, name_type, object_type, operation,
    revocation_reason_code, secret_data_type, usage_mask,
};
use super::ttlv::{Ttlv, Value};

pub use super::tags::query_function::{QUERY_OBJECTS, QUERY_OPERATIONS, QUERY_SERVER_INFORMATION};

/// Usage mask set on every object we create or register: Encrypt | Decrypt (12).
pub const DEFAULT_USAGE_MASK: i32 = usage_mask::ENCRYPT | usage_mask::DECRYPT;

/// Default Revocation Reason Code: Cessation of Operation (6).
pub const DEFAULT_REVOCATION_REASON: u32 = revocation_reason_code::CESSATION_OF_OPERATION;

fn malformed(what: &str) -> KmipError {
    KmipError::Malformed(what.to_owned())
}

fn uid_item(uid: &str) -> Ttlv {
    Ttlv::text(tags::UNIQUE_IDENTIFIER, uid)
}

/// An `Attribute` structure: Attribute Name, optional Attribute Index, Attribute Value.
pub fn attribute(name: &str, index: Option<i32>, value: Value) -> Ttlv {
    let mut v = vec![Ttlv::text(tags::ATTRIBUTE_NAME, name)];
    if let Some(i) = index {
        v.push(Ttlv::integer(tags::ATTRIBUTE_INDEX, i));
    }
    v.push(Ttlv::new(tags::ATTRIBUTE_VALUE, value));
    Ttlv::structure(tags::ATTRIBUTE, v)
}

/// The Name attribute with Name Type Uninterpreted Text String.
pub fn name_attribute(name: &str) -> Ttlv {
    attribute(
        attr::NAME,
        None,
        Value::Structure(vec![
            Ttlv::text(tags::NAME_VALUE, name),
            Ttlv::enumeration(tags::NAME_TYPE, name_type::UNINTERPRETED_TEXT_STRING),
        ]),
    )
}

fn usage_mask_attribute() -> Ttlv {
    attribute(
        attr::CRYPTOGRAPHIC_USAGE_MASK,
        None,
        Value::Integer(DEFAULT_USAGE_MASK),
    )
}

fn template_attribute(attrs: Vec<Ttlv>) -> Ttlv {
    Ttlv::structure(tags::TEMPLATE_ATTRIBUTE, attrs)
}

/// Create an AES key of `bits` bits named `name` (usage Encrypt|Decrypt).
pub fn create_aes(bits: i32, name: &str) -> Request {
    Request {
        operation: operation::CREATE,
        payload: vec![
            Ttlv::enumeration(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            template_attribute(vec![
                attribute(
                    attr::CRYPTOGRAPHIC_ALGORITHM,
                    None,
                    Value::Enumeration(cryptographic_algorithm::AES),
                ),
                attribute(attr::CRYPTOGRAPHIC_LENGTH, None, Value::Integer(bits)),
                usage_mask_attribute(),
                name_attribute(name),
            ]),
        ],
    }
}

fn required_uid(payload: &Ttlv) -> Result<String, KmipError> {
    payload
        .find(tags::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .map(str::to_owned)
        .ok_or_else(|| malformed("Unique Identifier missing in response payload"))
}

/// Unique Identifier of the created object.
pub fn parse_create(payload: &Ttlv) -> Result<String, KmipError> {
    required_uid(payload)
}

fn key_block(format: u32, material: &[u8], algorithm_bits: Option<(u32, i32)>) -> Ttlv {
    let mut v = vec![
        Ttlv::enumeration(tags::KEY_FORMAT_TYPE, format),
        Ttlv::structure(
            tags::KEY_VALUE,
            vec![Ttlv::bytes(tags::KEY_MATERIAL, material)],
        ),
    ];
    if let Some((alg, bits)) = algorithm_bits {
        v.push(Ttlv::enumeration(tags::CRYPTOGRAPHIC_ALGORITHM, alg));
        v.push(Ttlv::integer(tags::CRYPTOGRAPHIC_LENGTH, bits));
    }
    Ttlv::structure(tags::KEY_BLOCK, v)
}

/// Register an AES key (Key Format Type Raw). Algorithm and length go in the Key Block;
/// the template carries the usage mask and the Name. Wipe the returned request with
/// [`Request::zeroize`] after encoding.
pub fn register_aes(material: &[u8], name: &str) -> Request {
    let bits = i32::try_from(material.len().saturating_mul(8)).unwrap_or(i32::MAX);
    Request {
        operation: operation::REGISTER,
        payload: vec![
            Ttlv::enumeration(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            template_attribute(vec![usage_mask_attribute(), name_attribute(name)]),
            Ttlv::structure(
                tags::SYMMETRIC_KEY,
                vec![key_block(
                    key_format_type::RAW,
                    material,
                    Some((cryptographic_algorithm::AES, bits)),
                )],
            ),
        ],
    }
}

/// Register opaque bytes as Secret Data (Secret Data Type Password, Key Format Type Opaque).
/// Wipe the returned request with [`Request::zeroize`] after encoding.
pub fn register_secret(material: &[u8], name: &str) -> Request {
    Request {
        operation: operation::REGISTER,
        payload: vec![
            Ttlv::enumeration(tags::OBJECT_TYPE, object_type::SECRET_DATA),
            template_attribute(vec![usage_mask_attribute(), name_attribute(name)]),
            Ttlv::structure(
                tags::SECRET_DATA,
                vec![
                    Ttlv::enumeration(tags::SECRET_DATA_TYPE, secret_data_type::PASSWORD),
                    key_block(key_format_type::OPAQUE, material, None),
                ],
            ),
        ],
    }
}

impl Request {
    /// Wipe any key material held in the payload.
    pub fn zeroize(&mut self) {
        self.payload.iter_mut().for_each(Ttlv::zeroize);
    }
}

/// Unique Identifier of the registered object.
pub fn parse_register(payload: &Ttlv) -> Result<String, KmipError> {
    required_uid(payload)
}

fn uid_request(op: u32, uid: &str) -> Request {
    Request {
        operation: op,
        payload: vec![uid_item(uid)],
    }
}

/// Get the object `uid` (server's default key format).
pub fn get(uid: &str) -> Request {
    uid_request(operation::GET, uid)
}

/// Get of the object the Locate before it in the same message found: no Unique Identifier, so
/// the server takes its ID Placeholder, which KMIP 1.1 (section 4) has Locate set. Servers that
/// do not set it from Locate answer with an error or with another object.
pub fn get_placeholder() -> Request {
    Request {
        operation: operation::GET,
        payload: Vec::new(),
    }
}

/// Get Attributes of the object the Locate before it found (see [`get_placeholder`]).
pub fn get_attributes_placeholder(names: &[&str]) -> Request {
    Request {
        operation: operation::GET_ATTRIBUTES,
        payload: names
            .iter()
            .map(|n| Ttlv::text(tags::ATTRIBUTE_NAME, *n))
            .collect(),
    }
}

/// A managed object returned by Get. The key material is wiped on drop and never shown by
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagedObject {
    pub uid: String,
    pub object_type: u32,
    pub algorithm: Option<u32>,
    pub length_bits: Option<i32>,
    pub secret_data_type: Option<u32>,
    pub key_format_type: u32,
    pub material: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ManagedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedObject")
            .field("uid", &self.uid)
            .field("object_type", &self.object_type)
            .field("algorithm", &self.algorithm)
            .field("length_bits", &self.length_bits)
            .field("secret_data_type", &self.secret_data_type)
            .field("key_format_type", &self.key_format_type)
            .field("material", &format_args!("<{} bytes>", self.material.len()))
            .finish()
    }
}

/// Parse a Get response payload holding a Symmetric Key or Secret Data (or another object
/// with a Key Block) in Raw, Opaque or Transparent Symmetric Key format. Wrapped keys and
/// other formats are errors. The material is copied: wipe `payload` with
/// [`Ttlv::zeroize`] afterwards.
pub fn parse_get(payload: &Ttlv) -> Result<ManagedObject, KmipError> {
    let object_type = payload
        .find(tags::OBJECT_TYPE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| malformed("Object Type missing in Get response"))?;
    let uid = required_uid(payload)?;
    // The object is the structure child that carries a Key Block (Symmetric Key, Secret
    // Data, Private Key, ...); its tag is not checked so that any such object parses.
    let object = payload
        .children()
        .iter()
        .find(|c| c.find(tags::KEY_BLOCK).is_some())
        .ok_or_else(|| {
            malformed(&format!(
                "no object with a Key Block in Get response ({})",
                tags::name_of_object_type(object_type)
            ))
        })?;
    let secret_data_type = object.find(tags::SECRET_DATA_TYPE).and_then(Ttlv::as_enum);
    let block = object
        .find(tags::KEY_BLOCK)
        .ok_or_else(|| malformed("Key Block missing"))?;
    if block.find(tags::KEY_WRAPPING_DATA).is_some() {
        return Err(malformed("wrapped key material is not supported"));
    }
    let format = block
        .find(tags::KEY_FORMAT_TYPE)
        .and_then(Ttlv::as_enum)
        .ok_or_else(|| malformed("Key Format Type missing"))?;
    let value = block
        .find(tags::KEY_VALUE)
        .ok_or_else(|| malformed("Key Value missing"))?;
    let key_material = value
        .find(tags::KEY_MATERIAL)
        .ok_or_else(|| malformed("Key Material missing (or Key Value is wrapped)"))?;
    let material = match format {
        key_format_type::RAW | key_format_type::OPAQUE => key_material.as_bytes(),
        key_format_type::TRANSPARENT_SYMMETRIC_KEY => {
            key_material.find(tags::KEY).and_then(Ttlv::as_bytes)
        }
        other => {
            return Err(KmipError::Malformed(format!(
                "unsupported Key Format Type {}",
                tags::name_of_key_format_type(other)
            )));
        }
    }
    .ok_or_else(|| malformed("Key Material is not a Byte String"))?;
    Ok(ManagedObject {
        uid,
        object_type,
        algorithm: block
            .find(tags::CRYPTOGRAPHIC_ALGORITHM)
            .and_then(Ttlv::as_enum),
        length_bits: block
            .find(tags::CRYPTOGRAPHIC_LENGTH)
            .and_then(Ttlv::as_int),
        secret_data_type,
        key_format_type: format,
        material: Zeroizing::new(material.to_vec()),
    })
}

/// Locate filter; `None` fields are not sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocateFilter<'a> {
    pub name: Option<&'a str>,
    pub object_type: Option<u32>,
}

/// Locate objects matching `filter`, at most `maximum_items` of them.
pub fn locate(filter: &LocateFilter<'_>, maximum_items: Option<i32>) -> Request {
    locate_where(filter, None, None, maximum_items)
}

/// Locate with a State (KMIP 1.1 allows one) and an inclusive Initial Date range, sent as two
/// Initial Date attributes.
pub fn locate_where(
    filter: &LocateFilter<'_>,
    state: Option<u32>,
    initial_date: Option<(i64, i64)>,
    maximum_items: Option<i32>,
) -> Request {
    locate_from(filter, state, initial_date, maximum_items, None)
}

/// One page of a Locate: at most `maximum_items` identifiers after skipping `offset_items`
/// (KMIP 1.3; send it only in a message of version 1.3 or later).
pub fn locate_page(
    filter: &LocateFilter<'_>,
    state: Option<u32>,
    offset_items: i32,
    maximum_items: i32,
) -> Request {
    locate_from(filter, state, None, Some(maximum_items), Some(offset_items))
}

fn locate_from(
    filter: &LocateFilter<'_>,
    state: Option<u32>,
    initial_date: Option<(i64, i64)>,
    maximum_items: Option<i32>,
    offset_items: Option<i32>,
) -> Request {
    // The specification's field order: Maximum Items, Offset Items, then the attributes.
    let mut payload = Vec::new();
    if let Some(m) = maximum_items {
        payload.push(Ttlv::integer(tags::MAXIMUM_ITEMS, m));
    }
    if let Some(o) = offset_items {
        payload.push(Ttlv::integer(tags::OFFSET_ITEMS, o));
    }
    if let Some(t) = filter.object_type {
        payload.push(attribute(attr::OBJECT_TYPE, None, Value::Enumeration(t)));
    }
    if let Some(n) = filter.name {
        payload.push(name_attribute(n));
    }
    if let Some(s) = state {
        payload.push(attribute(attr::STATE, None, Value::Enumeration(s)));
    }
    if let Some((from, to)) = initial_date {
        payload.push(attribute(attr::INITIAL_DATE, None, Value::DateTime(from)));
        payload.push(attribute(attr::INITIAL_DATE, None, Value::DateTime(to)));
    }
    Request {
        operation: operation::LOCATE,
        payload,
    }
}

/// Unique Identifiers found (possibly none).
pub fn parse_locate(payload: &Ttlv) -> Result<Vec<String>, KmipError> {
    payload
        .find_all(tags::UNIQUE_IDENTIFIER)
        .map(|t| {
            t.as_text()
                .map(str::to_owned)
                .ok_or_else(|| malformed("Unique Identifier is not a Text String"))
        })
        .collect()
}

/// The Located Items count of a Locate answer (KMIP 1.3: how many objects matched, whatever
/// Maximum Items and Offset Items cut from the answer), if the server sent one. A negative or
/// non-Integer value is malformed.
pub fn parse_located_items(payload: &Ttlv) -> Result<Option<usize>, KmipError> {
    payload
        .find(tags::LOCATED_ITEMS)
        .map(|t| {
            t.as_int()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| malformed("Located Items is not a non-negative Integer"))
        })
        .transpose()
}

/// Activate `uid` (Pre-Active → Active).
pub fn activate(uid: &str) -> Request {
    uid_request(operation::ACTIVATE, uid)
}

/// Revoke `uid` with `reason_code` (see [`DEFAULT_REVOCATION_REASON`]).
pub fn revoke(uid: &str, reason_code: u32) -> Request {
    Request {
        operation: operation::REVOKE,
        payload: vec![
            uid_item(uid),
            Ttlv::structure(
                tags::REVOCATION_REASON,
                vec![Ttlv::enumeration(tags::REVOCATION_REASON_CODE, reason_code)],
            ),
        ],
    }
}

/// Destroy `uid`.
pub fn destroy(uid: &str) -> Request {
    uid_request(operation::DESTROY, uid)
}

/// The Unique Identifier echoed by Activate, Revoke or Destroy, if the server sent one.
pub fn parse_uid_echo(payload: &Ttlv) -> Option<String> {
    payload
        .find(tags::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .map(str::to_owned)
}

/// Destroy response: the echoed Unique Identifier (tolerated absent).
pub fn parse_destroy(payload: &Ttlv) -> Option<String> {
    parse_uid_echo(payload)
}

/// Get the named attributes of `uid` (all attributes when `names` is empty).
pub fn get_attributes(uid: &str, names: &[&str]) -> Request {
    let mut payload = vec![uid_item(uid)];
    payload.extend(names.iter().map(|n| Ttlv::text(tags::ATTRIBUTE_NAME, *n)));
    Request {
        operation: operation::GET_ATTRIBUTES,
        payload,
    }
}

/// One attribute from Get Attributes. `value` is the Attribute Value item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub index: Option<i32>,
    pub value: Ttlv,
}

impl Attribute {
    /// Name Value of a Name attribute.
    pub fn name_value(&self) -> Option<&str> {
        self.value.find(tags::NAME_VALUE).and_then(Ttlv::as_text)
    }
    /// Enumeration value (State, Object Type, Cryptographic Algorithm, ...).
    pub fn enum_value(&self) -> Option<u32> {
        self.value.as_enum()
    }
    /// Integer value (Cryptographic Length, Cryptographic Usage Mask, ...).
    pub fn int_value(&self) -> Option<i32> {
        self.value.as_int()
    }
    /// Text value.
    pub fn text_value(&self) -> Option<&str> {
        self.value.as_text()
    }
}

/// Parse a Get Attributes payload. Attributes with a missing name or value are skipped.
pub fn parse_get_attributes(payload: &Ttlv) -> Result<Vec<Attribute>, KmipError> {
    Ok(payload
        .find_all(tags::ATTRIBUTE)
        .filter_map(|a| {
            Some(Attribute {
                name: a.find(tags::ATTRIBUTE_NAME)?.as_text()?.to_owned(),
                index: a.find(tags::ATTRIBUTE_INDEX).and_then(Ttlv::as_int),
                value: a.find(tags::ATTRIBUTE_VALUE)?.clone(),
            })
        })
        .collect())
}

fn first<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name == name)
}

/// All Name values.
pub fn attr_names(attrs: &[Attribute]) -> Vec<&str> {
    attrs
        .iter()
        .filter(|a| a.name == attr::NAME)
        .filter_map(Attribute::name_value)
        .collect()
}
/// State value.
pub fn attr_state(attrs: &[Attribute]) -> Option<u32> {
    first(attrs, attr::STATE).and_then(Attribute::enum_value)
}
/// Cryptographic Length value.
pub fn attr_cryptographic_length(attrs: &[Attribute]) -> Option<i32> {
    first(attrs, attr::CRYPTOGRAPHIC_LENGTH).and_then(Attribute::int_value)
}
/// Object Type value.
pub fn attr_object_type(attrs: &[Attribute]) -> Option<u32> {
    first(attrs, attr::OBJECT_TYPE).and_then(Attribute::enum_value)
}
/// Initial Date value (seconds since the epoch).
pub fn attr_initial_date(attrs: &[Attribute]) -> Option<i64> {
    first(attrs, attr::INITIAL_DATE).and_then(|a| a.value.as_date_time())
}
/// Cryptographic Algorithm value.
pub fn attr_cryptographic_algorithm(attrs: &[Attribute]) -> Option<u32> {
    first(attrs, attr::CRYPTOGRAPHIC_ALGORITHM).and_then(Attribute::enum_value)
}

/// Discover Versions with no client list: the server returns all versions it supports.
pub fn discover_versions() -> Request {
    Request {
        operation: operation::DISCOVER_VERSIONS,
        payload: Vec::new(),
    }
}

/// Protocol versions (major, minor), in the server's order of preference.
pub fn parse_discover_versions(payload: &Ttlv) -> Result<Vec<(i32, i32)>, KmipError> {
    payload
        .find_all(tags::PROTOCOL_VERSION)
        .map(|v| {
            let major = v.find(tags::PROTOCOL_VERSION_MAJOR).and_then(Ttlv::as_int);
            let minor = v.find(tags::PROTOCOL_VERSION_MINOR).and_then(Ttlv::as_int);
            major
                .zip(minor)
                .ok_or_else(|| malformed("incomplete Protocol Version"))
        })
        .collect()
}

/// The version a paged Locate is sent in: the newest 1.x from 1.3 on that the server offers
/// (Offset Items came with 1.3; 2.0 changed how Locate carries attributes), if any.
pub fn paging_version(offered: &[(i32, i32)]) -> Option<(i32, i32)> {
    offered
        .iter()
        .copied()
        .filter(|&(major, minor)| major == 1 && (3..=4).contains(&minor))
        .max()
}

/// Query with the given Query Function values.
pub fn query(functions: &[u32]) -> Request {
    Request {
        operation: operation::QUERY,
        payload: functions
            .iter()
            .map(|f| Ttlv::enumeration(tags::QUERY_FUNCTION, *f))
            .collect(),
    }
}

/// What Query reported. Unknown operation / object type values are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    pub operations: Vec<u32>,
    pub object_types: Vec<u32>,
    pub vendor: Option<String>,
}

/// Parse a Query response payload.
pub fn parse_query(payload: &Ttlv) -> Result<ServerInfo, KmipError> {
    Ok(ServerInfo {
        operations: payload
            .find_all(tags::OPERATION)
            .filter_map(Ttlv::as_enum)
            .collect(),
        object_types: payload
            .find_all(tags::OBJECT_TYPE)
            .filter_map(Ttlv::as_enum)
            .collect(),
        vendor: payload
            .find(tags::VENDOR_IDENTIFICATION)
            .and_then(Ttlv::as_text)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn located_items_is_read_where_sent() {
        let uid = Ttlv::text(tags::UNIQUE_IDENTIFIER, "1");
        let with = |n: i32| {
            Ttlv::structure(
                tags::RESPONSE_PAYLOAD,
                vec![Ttlv::integer(tags::LOCATED_ITEMS, n), uid.clone()],
            )
        };
        assert_eq!(parse_located_items(&with(7)).unwrap(), Some(7));
        assert!(parse_located_items(&with(-1)).is_err());
        let without = Ttlv::structure(tags::RESPONSE_PAYLOAD, vec![uid.clone()]);
        assert_eq!(parse_located_items(&without).unwrap(), None);
        // The identifiers are read as before: the count is no identifier.
        assert_eq!(parse_locate(&with(7)).unwrap(), vec!["1".to_string()]);
    }
}
