//! STUB (uncommitted) of the agreed kmip API.
use zeroize::Zeroizing;
#[derive(Debug, thiserror::Error)]
pub enum TtlvError { #[error("ttlv")] X }
#[derive(Debug, thiserror::Error)]
pub enum KmipError {
    #[error("ttlv {0}")] Ttlv(#[from] TtlvError),
    #[error("server")] Server { operation: u32, status: u32, reason: Option<u32>, message: Option<String> },
    #[error("malformed {0}")] Malformed(String),
}
impl KmipError { pub fn is_item_not_found(&self) -> bool { false } }
#[derive(Debug, Clone)]
pub struct Ttlv { pub tag: u32 }
pub struct Request { pub operation: u32, pub payload: Vec<Ttlv> }
pub const HEADER_LEN: usize = 8;
pub fn encode_request(_r: &Request) -> Vec<u8> { vec![] }
pub fn response_len(_h: &[u8; 8], _cap: usize) -> Result<usize, TtlvError> { Ok(0) }
pub fn decode_response(_b: &[u8], _cap: usize) -> Result<Ttlv, KmipError> { Err(KmipError::Malformed(String::new())) }
pub struct ManagedObject { pub uid: String, pub object_type: u32, pub algorithm: Option<u32>, pub length_bits: Option<i32>, pub secret_data_type: Option<u32>, pub material: Zeroizing<Vec<u8>> }
pub struct LocateFilter<'a> { pub name: Option<&'a str>, pub object_type: Option<u32> }
pub struct Attribute { pub name: String, pub index: Option<i32>, pub value: Ttlv }
pub struct ServerInfo { pub operations: Vec<u32>, pub object_types: Vec<u32>, pub vendor: Option<String> }
pub mod ops {
    use super::*;
    pub fn create_aes(_bits: i32, _name: &str) -> Request { todo!() }
    pub fn parse_create(_p: &Ttlv) -> Result<String, KmipError> { todo!() }
    pub fn register_aes(_m: &[u8], _name: &str) -> Request { todo!() }
    pub fn register_secret(_m: &[u8], _name: &str) -> Request { todo!() }
    pub fn parse_register(_p: &Ttlv) -> Result<String, KmipError> { todo!() }
    pub fn get(_uid: &str) -> Request { todo!() }
    pub fn parse_get(_p: &Ttlv) -> Result<ManagedObject, KmipError> { todo!() }
    pub fn locate(_f: &LocateFilter<'_>, _max: Option<i32>) -> Request { todo!() }
    pub fn parse_locate(_p: &Ttlv) -> Result<Vec<String>, KmipError> { todo!() }
    pub fn activate(_uid: &str) -> Request { todo!() }
    pub fn revoke(_uid: &str, _code: u32) -> Request { todo!() }
    pub fn destroy(_uid: &str) -> Request { todo!() }
    pub fn get_attributes(_uid: &str, _names: &[&str]) -> Request { todo!() }
    pub fn parse_get_attributes(_p: &Ttlv) -> Result<Vec<Attribute>, KmipError> { todo!() }
    pub fn discover_versions() -> Request { todo!() }
    pub fn parse_discover_versions(_p: &Ttlv) -> Result<Vec<(i32, i32)>, KmipError> { todo!() }
    pub fn query(_f: &[u32]) -> Request { todo!() }
    pub fn parse_query(_p: &Ttlv) -> Result<ServerInfo, KmipError> { todo!() }
}
pub mod tags {
    pub const OPERATION_CREATE: u32 = 1; pub const OPERATION_REGISTER: u32 = 3; pub const OPERATION_LOCATE: u32 = 8; pub const OPERATION_GET: u32 = 0xA; pub const OPERATION_GET_ATTRIBUTES: u32 = 0xB; pub const OPERATION_ACTIVATE: u32 = 0x12; pub const OPERATION_REVOKE: u32 = 0x13; pub const OPERATION_DESTROY: u32 = 0x14; pub const QUERY_OPERATIONS: u32 = 1; pub const QUERY_OBJECTS: u32 = 2; pub const QUERY_SERVER_INFORMATION: u32 = 3;
}
pub fn attribute_enum(_a: &Attribute) -> Option<u32> { None }
pub fn attribute_integer(_a: &Attribute) -> Option<i32> { None }
pub fn attribute_name_value(_a: &Attribute) -> Option<String> { None }
pub mod tags2 {}
