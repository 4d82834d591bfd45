//! KMIP 1.1 tag and enumeration values (KMIP 1.1 specification §9.1.3).
//!
//! Every value here was checked against two public transcriptions of the specification:
//! PyKMIP `kmip/core/enums.py` and the tag map / enumerations of NLnetLabs kmip-protocol.
//! `name_of_*` functions give the specification name; unknown values print as `0x…`.

use std::borrow::Cow;

fn unknown(v: u32) -> Cow<'static, str> {
    Cow::Owned(format!("0x{v:08X}"))
}

macro_rules! named_values {
    ($(#[$m:meta])* $module:ident, $func:ident { $($konst:ident = $val:expr => $name:expr,)* }) => {
        $(#[$m])*
        pub mod $module {
            $(pub const $konst: u32 = $val;)*
        }
        /// Specification name of the value, or its number in hex when unknown.
        pub fn $func(v: u32) -> Cow<'static, str> {
            match v {
                $($module::$konst => Cow::Borrowed($name),)*
                _ => unknown(v),
            }
        }
    };
}

macro_rules! tags {
    ($($konst:ident = $val:expr => $name:expr,)*) => {
        $(pub const $konst: u32 = $val;)*
        /// Specification name of a tag, or `0x42XXXX` when unknown.
        pub fn name_of_tag(t: u32) -> Cow<'static, str> {
            match t {
                $($konst => Cow::Borrowed($name),)*
                _ => Cow::Owned(format!("0x{t:06X}")),
            }
        }
    };
}

tags! {
    ATTRIBUTE = 0x42_0008 => "Attribute",
    ATTRIBUTE_INDEX = 0x42_0009 => "Attribute Index",
    ATTRIBUTE_NAME = 0x42_000A => "Attribute Name",
    ATTRIBUTE_VALUE = 0x42_000B => "Attribute Value",
    BATCH_COUNT = 0x42_000D => "Batch Count",
    BATCH_ERROR_CONTINUATION_OPTION = 0x42_000E => "Batch Error Continuation Option",
    BATCH_ITEM = 0x42_000F => "Batch Item",
    CRYPTOGRAPHIC_ALGORITHM = 0x42_0028 => "Cryptographic Algorithm",
    CRYPTOGRAPHIC_LENGTH = 0x42_002A => "Cryptographic Length",
    CRYPTOGRAPHIC_USAGE_MASK = 0x42_002C => "Cryptographic Usage Mask",
    INITIAL_DATE = 0x42_0039 => "Initial Date",
    KEY = 0x42_003F => "Key",
    KEY_BLOCK = 0x42_0040 => "Key Block",
    KEY_COMPRESSION_TYPE = 0x42_0041 => "Key Compression Type",
    KEY_FORMAT_TYPE = 0x42_0042 => "Key Format Type",
    KEY_MATERIAL = 0x42_0043 => "Key Material",
    KEY_VALUE = 0x42_0045 => "Key Value",
    KEY_WRAPPING_DATA = 0x42_0046 => "Key Wrapping Data",
    MAXIMUM_ITEMS = 0x42_004F => "Maximum Items",
    MAXIMUM_RESPONSE_SIZE = 0x42_0050 => "Maximum Response Size",
    NAME = 0x42_0053 => "Name",
    NAME_TYPE = 0x42_0054 => "Name Type",
    NAME_VALUE = 0x42_0055 => "Name Value",
    OBJECT_GROUP = 0x42_0056 => "Object Group",
    OBJECT_TYPE = 0x42_0057 => "Object Type",
    OPAQUE_OBJECT = 0x42_005B => "Opaque Object",
    OPERATION = 0x42_005C => "Operation",
    PROTOCOL_VERSION = 0x42_0069 => "Protocol Version",
    PROTOCOL_VERSION_MAJOR = 0x42_006A => "Protocol Version Major",
    PROTOCOL_VERSION_MINOR = 0x42_006B => "Protocol Version Minor",
    QUERY_FUNCTION = 0x42_0074 => "Query Function",
    REQUEST_HEADER = 0x42_0077 => "Request Header",
    REQUEST_MESSAGE = 0x42_0078 => "Request Message",
    REQUEST_PAYLOAD = 0x42_0079 => "Request Payload",
    RESPONSE_HEADER = 0x42_007A => "Response Header",
    RESPONSE_MESSAGE = 0x42_007B => "Response Message",
    RESPONSE_PAYLOAD = 0x42_007C => "Response Payload",
    RESULT_MESSAGE = 0x42_007D => "Result Message",
    RESULT_REASON = 0x42_007E => "Result Reason",
    RESULT_STATUS = 0x42_007F => "Result Status",
    REVOCATION_MESSAGE = 0x42_0080 => "Revocation Message",
    REVOCATION_REASON = 0x42_0081 => "Revocation Reason",
    REVOCATION_REASON_CODE = 0x42_0082 => "Revocation Reason Code",
    SECRET_DATA = 0x42_0085 => "Secret Data",
    SECRET_DATA_TYPE = 0x42_0086 => "Secret Data Type",
    SERVER_INFORMATION = 0x42_0088 => "Server Information",
    STATE = 0x42_008D => "State",
    STORAGE_STATUS_MASK = 0x42_008E => "Storage Status Mask",
    SYMMETRIC_KEY = 0x42_008F => "Symmetric Key",
    TEMPLATE_ATTRIBUTE = 0x42_0091 => "Template-Attribute",
    TIME_STAMP = 0x42_0092 => "Time Stamp",
    UNIQUE_BATCH_ITEM_ID = 0x42_0093 => "Unique Batch Item ID",
    UNIQUE_IDENTIFIER = 0x42_0094 => "Unique Identifier",
    VENDOR_IDENTIFICATION = 0x42_009D => "Vendor Identification",
    // KMIP 1.3: paging a Locate.
    OFFSET_ITEMS = 0x42_00D4 => "Offset Items",
    LOCATED_ITEMS = 0x42_00D5 => "Located Items",
}

named_values! {
    /// Operation (§9.1.3.2.26).
    operation, name_of_operation {
        CREATE = 0x01 => "Create",
        CREATE_KEY_PAIR = 0x02 => "Create Key Pair",
        REGISTER = 0x03 => "Register",
        REKEY = 0x04 => "Re-key",
        DERIVE_KEY = 0x05 => "Derive Key",
        CERTIFY = 0x06 => "Certify",
        RECERTIFY = 0x07 => "Re-certify",
        LOCATE = 0x08 => "Locate",
        CHECK = 0x09 => "Check",
        GET = 0x0A => "Get",
        GET_ATTRIBUTES = 0x0B => "Get Attributes",
        GET_ATTRIBUTE_LIST = 0x0C => "Get Attribute List",
        ADD_ATTRIBUTE = 0x0D => "Add Attribute",
        MODIFY_ATTRIBUTE = 0x0E => "Modify Attribute",
        DELETE_ATTRIBUTE = 0x0F => "Delete Attribute",
        OBTAIN_LEASE = 0x10 => "Obtain Lease",
        GET_USAGE_ALLOCATION = 0x11 => "Get Usage Allocation",
        ACTIVATE = 0x12 => "Activate",
        REVOKE = 0x13 => "Revoke",
        DESTROY = 0x14 => "Destroy",
        ARCHIVE = 0x15 => "Archive",
        RECOVER = 0x16 => "Recover",
        VALIDATE = 0x17 => "Validate",
        QUERY = 0x18 => "Query",
        CANCEL = 0x19 => "Cancel",
        POLL = 0x1A => "Poll",
        NOTIFY = 0x1B => "Notify",
        PUT = 0x1C => "Put",
        REKEY_KEY_PAIR = 0x1D => "Re-key Key Pair",
        DISCOVER_VERSIONS = 0x1E => "Discover Versions",
    }
}

named_values! {
    /// Object Type (§9.1.3.2.12).
    object_type, name_of_object_type {
        CERTIFICATE = 0x01 => "Certificate",
        SYMMETRIC_KEY = 0x02 => "Symmetric Key",
        PUBLIC_KEY = 0x03 => "Public Key",
        PRIVATE_KEY = 0x04 => "Private Key",
        SPLIT_KEY = 0x05 => "Split Key",
        TEMPLATE = 0x06 => "Template",
        SECRET_DATA = 0x07 => "Secret Data",
        OPAQUE_OBJECT = 0x08 => "Opaque Object",
    }
}

named_values! {
    /// Result Status (§9.1.3.2.28).
    result_status, name_of_result_status {
        SUCCESS = 0x00 => "Success",
        OPERATION_FAILED = 0x01 => "Operation Failed",
        OPERATION_PENDING = 0x02 => "Operation Pending",
        OPERATION_UNDONE = 0x03 => "Operation Undone",
    }
}

named_values! {
    /// Result Reason (§9.1.3.2.29).
    result_reason, name_of_result_reason {
        ITEM_NOT_FOUND = 0x01 => "Item Not Found",
        RESPONSE_TOO_LARGE = 0x02 => "Response Too Large",
        AUTHENTICATION_NOT_SUCCESSFUL = 0x03 => "Authentication Not Successful",
        INVALID_MESSAGE = 0x04 => "Invalid Message",
        OPERATION_NOT_SUPPORTED = 0x05 => "Operation Not Supported",
        MISSING_DATA = 0x06 => "Missing Data",
        INVALID_FIELD = 0x07 => "Invalid Field",
        FEATURE_NOT_SUPPORTED = 0x08 => "Feature Not Supported",
        OPERATION_CANCELED_BY_REQUESTER = 0x09 => "Operation Canceled By Requester",
        CRYPTOGRAPHIC_FAILURE = 0x0A => "Cryptographic Failure",
        ILLEGAL_OPERATION = 0x0B => "Illegal Operation",
        PERMISSION_DENIED = 0x0C => "Permission Denied",
        OBJECT_ARCHIVED = 0x0D => "Object Archived",
        INDEX_OUT_OF_BOUNDS = 0x0E => "Index Out of Bounds",
        APPLICATION_NAMESPACE_NOT_SUPPORTED = 0x0F => "Application Namespace Not Supported",
        KEY_FORMAT_TYPE_NOT_SUPPORTED = 0x10 => "Key Format Type Not Supported",
        KEY_COMPRESSION_TYPE_NOT_SUPPORTED = 0x11 => "Key Compression Type Not Supported",
        // Later KMIP versions; some servers send them inside 1.1 responses.
        ENCODING_OPTION_ERROR = 0x12 => "Encoding Option Error",
        KEY_VALUE_NOT_PRESENT = 0x13 => "Key Value Not Present",
        OBJECT_ALREADY_EXISTS = 0x18 => "Object Already Exists",
        OBJECT_DESTROYED = 0x36 => "Object Destroyed",
        OBJECT_NOT_FOUND = 0x37 => "Object Not Found",
        GENERAL_FAILURE = 0x100 => "General Failure",
    }
}

named_values! {
    /// Cryptographic Algorithm (§9.1.3.2.13), the first entries.
    cryptographic_algorithm, name_of_cryptographic_algorithm {
        DES = 0x01 => "DES",
        TRIPLE_DES = 0x02 => "3DES",
        AES = 0x03 => "AES",
        RSA = 0x04 => "RSA",
        DSA = 0x05 => "DSA",
        ECDSA = 0x06 => "ECDSA",
        HMAC_SHA1 = 0x07 => "HMAC-SHA1",
        HMAC_SHA224 = 0x08 => "HMAC-SHA224",
        HMAC_SHA256 = 0x09 => "HMAC-SHA256",
        HMAC_SHA384 = 0x0A => "HMAC-SHA384",
        HMAC_SHA512 = 0x0B => "HMAC-SHA512",
    }
}

named_values! {
    /// Key Format Type (§9.1.3.2.3).
    key_format_type, name_of_key_format_type {
        RAW = 0x01 => "Raw",
        OPAQUE = 0x02 => "Opaque",
        PKCS1 = 0x03 => "PKCS#1",
        PKCS8 = 0x04 => "PKCS#8",
        X509 = 0x05 => "X.509",
        EC_PRIVATE_KEY = 0x06 => "ECPrivateKey",
        TRANSPARENT_SYMMETRIC_KEY = 0x07 => "Transparent Symmetric Key",
    }
}

named_values! {
    /// Name Type (§9.1.3.2.10).
    name_type, name_of_name_type {
        UNINTERPRETED_TEXT_STRING = 0x01 => "Uninterpreted Text String",
        URI = 0x02 => "URI",
    }
}

named_values! {
    /// Secret Data Type (§9.1.3.2.9).
    secret_data_type, name_of_secret_data_type {
        PASSWORD = 0x01 => "Password",
        SEED = 0x02 => "Seed",
    }
}

named_values! {
    /// State (§9.1.3.2.17).
    state, name_of_state {
        PRE_ACTIVE = 0x01 => "Pre-Active",
        ACTIVE = 0x02 => "Active",
        DEACTIVATED = 0x03 => "Deactivated",
        COMPROMISED = 0x04 => "Compromised",
        DESTROYED = 0x05 => "Destroyed",
        DESTROYED_COMPROMISED = 0x06 => "Destroyed Compromised",
    }
}

named_values! {
    /// Revocation Reason Code (§9.1.3.2.19).
    revocation_reason_code, name_of_revocation_reason_code {
        UNSPECIFIED = 0x01 => "Unspecified",
        KEY_COMPROMISE = 0x02 => "Key Compromise",
        CA_COMPROMISE = 0x03 => "CA Compromise",
        AFFILIATION_CHANGED = 0x04 => "Affiliation Changed",
        SUPERSEDED = 0x05 => "Superseded",
        CESSATION_OF_OPERATION = 0x06 => "Cessation of Operation",
        PRIVILEGE_WITHDRAWN = 0x07 => "Privilege Withdrawn",
    }
}

named_values! {
    /// Query Function (§9.1.3.2.23).
    query_function, name_of_query_function {
        QUERY_OPERATIONS = 0x01 => "Query Operations",
        QUERY_OBJECTS = 0x02 => "Query Objects",
        QUERY_SERVER_INFORMATION = 0x03 => "Query Server Information",
        QUERY_APPLICATION_NAMESPACES = 0x04 => "Query Application Namespaces",
        QUERY_EXTENSION_LIST = 0x05 => "Query Extension List",
        QUERY_EXTENSION_MAP = 0x06 => "Query Extension Map",
    }
}

/// Cryptographic Usage Mask bits (§9.1.3.3.1); the attribute is an Integer.
pub mod usage_mask {
    pub const SIGN: i32 = 0x0001;
    pub const VERIFY: i32 = 0x0002;
    pub const ENCRYPT: i32 = 0x0004;
    pub const DECRYPT: i32 = 0x0008;
    pub const WRAP_KEY: i32 = 0x0010;
    pub const UNWRAP_KEY: i32 = 0x0020;
    pub const EXPORT: i32 = 0x0040;
    pub const MAC_GENERATE: i32 = 0x0080;
    pub const MAC_VERIFY: i32 = 0x0100;
    pub const DERIVE_KEY: i32 = 0x0200;
    pub const CONTENT_COMMITMENT: i32 = 0x0400;
    pub const KEY_AGREEMENT: i32 = 0x0800;
    pub const CERTIFICATE_SIGN: i32 = 0x1000;
    pub const CRL_SIGN: i32 = 0x2000;
    pub const GENERATE_CRYPTOGRAM: i32 = 0x4000;
    pub const VALIDATE_CRYPTOGRAM: i32 = 0x8000;
    pub const TRANSLATE_ENCRYPT: i32 = 0x1_0000;
    pub const TRANSLATE_DECRYPT: i32 = 0x2_0000;
    pub const TRANSLATE_WRAP: i32 = 0x4_0000;
    pub const TRANSLATE_UNWRAP: i32 = 0x8_0000;
}

/// Attribute names used with Template-Attribute, Locate and Get Attributes.
pub mod attr {
    pub const NAME: &str = "Name";
    pub const OBJECT_TYPE: &str = "Object Type";
    pub const CRYPTOGRAPHIC_ALGORITHM: &str = "Cryptographic Algorithm";
    pub const CRYPTOGRAPHIC_LENGTH: &str = "Cryptographic Length";
    pub const CRYPTOGRAPHIC_USAGE_MASK: &str = "Cryptographic Usage Mask";
    pub const STATE: &str = "State";
    pub const UNIQUE_IDENTIFIER: &str = "Unique Identifier";
    pub const OBJECT_GROUP: &str = "Object Group";
    pub const INITIAL_DATE: &str = "Initial Date";
}

/// Batch Error Continuation Option (§9.1.3.2.30).
pub mod batch_error_continuation {
    pub const CONTINUE: u32 = 0x01;
    pub const STOP: u32 = 0x02;
}
