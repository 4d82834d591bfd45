//! KMIP 1.1 TTLV codec and typed messages.
//!
//! * [`ttlv`]: generic TTLV tree, encoder and a strict, bounded decoder;
//! * [`tags`]: tag and enumeration values with their specification names;
//! * [`message`]: request envelope (KMIP 1.1, one batch item), response framing and checks;
//! * [`ops`]: typed request builders and response payload parsers.
//!
//! No I/O happens here: the transport writes [`encode_request`] output, reads
//! [`HEADER_LEN`] bytes, asks [`response_len`] how many more to read, and hands the whole
//! message to [`decode_response`].

pub mod batch;
pub mod message;
pub mod ops;
pub mod tags;
pub mod ttlv;

use std::fmt;

pub use batch::{
    ItemResult, decode_batch_response, decode_batch_response_stamped, encode_batch, encode_batch_as,
};
pub use message::{
    HEADER_LEN, PROTOCOL_VERSION, Request, decode_response, decode_response_for, encode_request,
    request_message, response_len,
};
pub use ops::*;
pub use ttlv::{Limits, Ttlv, TtlvError, TtlvErrorKind, Value};

/// Errors of the KMIP message layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KmipError {
    /// The bytes are not valid TTLV (or exceed the size cap). Not retryable on the same
    /// connection: the stream is out of sync.
    #[error(transparent)]
    Ttlv(#[from] TtlvError),
    /// The server answered with a Result Status other than Success. Values are kept as
    /// numbers so that values unknown to this client survive.
    #[error("{}", server_display(*.operation, *.status, *.reason, .message.as_deref()))]
    Server {
        operation: u32,
        status: u32,
        reason: Option<u32>,
        message: Option<String>,
    },
    /// Valid TTLV but not the expected message shape (missing required field, etc.).
    #[error("malformed KMIP response: {0}")]
    Malformed(String),
}

impl KmipError {
    /// The server reported Item Not Found (the object does not exist or is not visible).
    pub fn is_item_not_found(&self) -> bool {
        self.result_reason() == Some(tags::result_reason::ITEM_NOT_FOUND)
    }
    /// The server refused to make an object under a Name an object already carries (Object
    /// Already Exists, KMIP 1.2 and later; servers that keep names unique send it to 1.1
    /// clients too).
    pub fn is_name_in_use(&self) -> bool {
        self.result_reason() == Some(tags::result_reason::OBJECT_ALREADY_EXISTS)
    }
    /// The server says the object is not there, in any KMIP version's words: Item Not Found,
    /// or the newer Object Destroyed, Object Not Found and Key Value Not Present (a destroyed
    /// object whose attributes the server keeps) that some servers send in 1.1 responses.
    pub fn is_absent(&self) -> bool {
        use tags::result_reason as r;
        matches!(
            self.result_reason(),
            Some(
                r::ITEM_NOT_FOUND
                    | r::OBJECT_DESTROYED
                    | r::OBJECT_NOT_FOUND
                    | r::KEY_VALUE_NOT_PRESENT
            )
        )
    }
    /// Result Reason of a server error.
    pub fn result_reason(&self) -> Option<u32> {
        match self {
            KmipError::Server { reason, .. } => *reason,
            _ => None,
        }
    }
    /// Result Message of a server error.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            KmipError::Server { message, .. } => message.as_deref(),
            _ => None,
        }
    }
}

fn server_display(
    operation: u32,
    status: u32,
    reason: Option<u32>,
    message: Option<&str>,
) -> ServerDisplay<'_> {
    ServerDisplay {
        operation,
        status,
        reason,
        message,
    }
}

struct ServerDisplay<'a> {
    operation: u32,
    status: u32,
    reason: Option<u32>,
    message: Option<&'a str>,
}

impl fmt::Display for ServerDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KMIP {}: {}",
            tags::name_of_operation(self.operation),
            tags::name_of_result_status(self.status)
        )?;
        if let Some(r) = self.reason {
            write!(f, " / {}", tags::name_of_result_reason(r))?;
        }
        if let Some(m) = self.message {
            write!(f, ": {m:?}")?;
        }
        Ok(())
    }
}
