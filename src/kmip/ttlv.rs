//! Generic TTLV (Tag, Type, Length, Value) tree with a strict, bounded decoder.
//!
//! Wire format (KMIP 1.1 §9.1): 3-byte tag, 1-byte type, 4-byte big-endian length, value,
//! then zero padding up to the next multiple of 8. The length does not include the padding.
//!
//! Decoder policy:
//! * every length must fit in the remaining buffer, fixed-size types must carry their exact
//!   length, padding must be present (its content is not checked);
//! * a Structure's length must be exactly filled by its children;
//! * nesting deeper than [`Limits::max_depth`] and inputs larger than [`Limits::max_size`] are
//!   rejected before any allocation proportional to them;
//! * a Text String that is not valid UTF-8 is an error (not replaced lossily): a key name
//!   that silently changes would match the wrong key;
//! * bytes after the outermost item are an error.

use std::fmt;

use zeroize::Zeroize;

/// One TTLV item.
#[derive(Clone, PartialEq, Eq)]
pub struct Ttlv {
    /// Tag, e.g. `0x42_0094` (Unique Identifier). Only the low 24 bits are encoded.
    pub tag: u32,
    /// Typed value.
    pub value: Value,
}

/// A TTLV value. Byte strings print only their length in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Structure(Vec<Ttlv>),
    Integer(i32),
    LongInteger(i64),
    /// Big-endian two's complement; the encoder sign-extends to a multiple of 8 bytes.
    BigInteger(Vec<u8>),
    Enumeration(u32),
    Boolean(bool),
    TextString(String),
    ByteString(Vec<u8>),
    /// Seconds since the Unix epoch.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
}

/// Type byte values (KMIP 1.1 §9.1.1.2).
pub mod item_type {
    pub const STRUCTURE: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const LONG_INTEGER: u8 = 0x03;
    pub const BIG_INTEGER: u8 = 0x04;
    pub const ENUMERATION: u8 = 0x05;
    pub const BOOLEAN: u8 = 0x06;
    pub const TEXT_STRING: u8 = 0x07;
    pub const BYTE_STRING: u8 = 0x08;
    pub const DATE_TIME: u8 = 0x09;
    pub const INTERVAL: u8 = 0x0A;
}

impl Value {
    /// The TTLV type byte of this value.
    pub fn type_byte(&self) -> u8 {
        use item_type::*;
        match self {
            Value::Structure(_) => STRUCTURE,
            Value::Integer(_) => INTEGER,
            Value::LongInteger(_) => LONG_INTEGER,
            Value::BigInteger(_) => BIG_INTEGER,
            Value::Enumeration(_) => ENUMERATION,
            Value::Boolean(_) => BOOLEAN,
            Value::TextString(_) => TEXT_STRING,
            Value::ByteString(_) => BYTE_STRING,
            Value::DateTime(_) => DATE_TIME,
            Value::Interval(_) => INTERVAL,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Structure(v) => f.debug_list().entries(v).finish(),
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::LongInteger(v) => write!(f, "LongInteger({v})"),
            Value::BigInteger(v) => write!(f, "BigInteger(<{} bytes>)", v.len()),
            Value::Enumeration(v) => write!(f, "Enumeration(0x{v:08X})"),
            Value::Boolean(v) => write!(f, "Boolean({v})"),
            Value::TextString(v) => write!(f, "TextString({v:?})"),
            Value::ByteString(v) => write!(f, "ByteString(<{} bytes>)", v.len()),
            Value::DateTime(v) => write!(f, "DateTime({v})"),
            Value::Interval(v) => write!(f, "Interval({v})"),
        }
    }
}

impl fmt::Debug for Ttlv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:06X}:{:?}", self.tag, self.value)
    }
}

/// What went wrong while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtlvErrorKind {
    /// Fewer than 8 bytes left for an item header.
    TruncatedHeader,
    /// The declared length (plus padding) runs past the end of the buffer or enclosing structure.
    LengthPastBuffer { length: u32, available: usize },
    /// A fixed-size type with the wrong length.
    BadFixedLength { item_type: u8, length: u32 },
    /// Big Integer length not a multiple of 8, or Structure length not a multiple of 8.
    BadLength { item_type: u8, length: u32 },
    /// The padding after a value is missing.
    MissingPadding,
    /// Unknown type byte.
    InvalidType(u8),
    /// Boolean other than 0 or 1.
    InvalidBoolean(u64),
    /// Text String not valid UTF-8.
    InvalidUtf8,
    /// Nesting deeper than the limit.
    TooDeep { max_depth: usize },
    /// Message larger than the cap.
    TooLarge { length: usize, cap: usize },
    /// Bytes after the outermost item.
    TrailingBytes { count: usize },
    /// Framing: the outer item is not the expected tag.
    UnexpectedTag { expected: u32, found: u32 },
    /// Framing: the outer item is not a Structure.
    NotStructure { found: u8 },
}

impl fmt::Display for TtlvErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TruncatedHeader => write!(f, "truncated item header"),
            Self::LengthPastBuffer { length, available } => {
                write!(
                    f,
                    "length {length} runs past the end ({available} bytes available)"
                )
            }
            Self::BadFixedLength { item_type, length } => {
                write!(f, "wrong length {length} for type 0x{item_type:02X}")
            }
            Self::BadLength { item_type, length } => {
                write!(
                    f,
                    "length {length} not a multiple of 8 for type 0x{item_type:02X}"
                )
            }
            Self::MissingPadding => write!(f, "missing padding"),
            Self::InvalidType(t) => write!(f, "invalid item type 0x{t:02X}"),
            Self::InvalidBoolean(v) => write!(f, "invalid boolean value {v}"),
            Self::InvalidUtf8 => write!(f, "text string is not valid UTF-8"),
            Self::TooDeep { max_depth } => write!(f, "nesting deeper than {max_depth}"),
            Self::TooLarge { length, cap } => {
                write!(f, "message of {length} bytes exceeds cap {cap}")
            }
            Self::TrailingBytes { count } => write!(f, "{count} trailing bytes"),
            Self::UnexpectedTag { expected, found } => {
                write!(f, "expected tag 0x{expected:06X}, found 0x{found:06X}")
            }
            Self::NotStructure { found } => {
                write!(f, "expected a Structure, found type 0x{found:02X}")
            }
        }
    }
}

/// A decoding error: kind, byte offset of the offending item (or byte) and the tag path to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TtlvError {
    pub kind: TtlvErrorKind,
    pub offset: usize,
    /// Tags from the outermost item down to the offending one (when its tag was read).
    pub path: Vec<u32>,
}

impl fmt::Display for TtlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TTLV: {} at byte {}", self.kind, self.offset)?;
        if !self.path.is_empty() {
            write!(f, " (tags: ")?;
            for (i, t) in self.path.iter().enumerate() {
                if i > 0 {
                    write!(f, " > ")?;
                }
                write!(f, "0x{t:06X}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl TtlvError {
    pub fn new(kind: TtlvErrorKind, offset: usize, path: Vec<u32>) -> Self {
        Self { kind, offset, path }
    }
}

/// Decoder limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of Structures (the outermost item is depth 1).
    pub max_depth: usize,
    /// Maximum total input size in bytes.
    pub max_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 16,
            max_size: 1 << 20,
        }
    }
}

const fn padded(len: usize) -> usize {
    (len + 7) & !7
}

impl Ttlv {
    pub fn new(tag: u32, value: Value) -> Self {
        Self { tag, value }
    }
    pub fn structure(tag: u32, children: Vec<Ttlv>) -> Self {
        Self::new(tag, Value::Structure(children))
    }
    pub fn integer(tag: u32, v: i32) -> Self {
        Self::new(tag, Value::Integer(v))
    }
    pub fn long_integer(tag: u32, v: i64) -> Self {
        Self::new(tag, Value::LongInteger(v))
    }
    pub fn enumeration(tag: u32, v: u32) -> Self {
        Self::new(tag, Value::Enumeration(v))
    }
    pub fn boolean(tag: u32, v: bool) -> Self {
        Self::new(tag, Value::Boolean(v))
    }
    pub fn text(tag: u32, v: impl Into<String>) -> Self {
        Self::new(tag, Value::TextString(v.into()))
    }
    pub fn bytes(tag: u32, v: impl Into<Vec<u8>>) -> Self {
        Self::new(tag, Value::ByteString(v.into()))
    }
    pub fn date_time(tag: u32, v: i64) -> Self {
        Self::new(tag, Value::DateTime(v))
    }
    pub fn interval(tag: u32, v: u32) -> Self {
        Self::new(tag, Value::Interval(v))
    }

    /// Children of a Structure (empty for other types).
    pub fn children(&self) -> &[Ttlv] {
        match &self.value {
            Value::Structure(v) => v,
            _ => &[],
        }
    }
    /// First direct child with `tag`.
    pub fn find(&self, tag: u32) -> Option<&Ttlv> {
        self.children().iter().find(|c| c.tag == tag)
    }
    /// All direct children with `tag`, in order.
    pub fn find_all(&self, tag: u32) -> impl Iterator<Item = &Ttlv> {
        self.children().iter().filter(move |c| c.tag == tag)
    }
    pub fn is_structure(&self) -> bool {
        matches!(self.value, Value::Structure(_))
    }
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_long(&self) -> Option<i64> {
        match self.value {
            Value::LongInteger(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Boolean(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_date_time(&self) -> Option<i64> {
        match self.value {
            Value::DateTime(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_interval(&self) -> Option<u32> {
        match self.value {
            Value::Interval(v) => Some(v),
            _ => None,
        }
    }

    /// Overwrite every Byte String and Big Integer in this tree with zeros (then clear them).
    pub fn zeroize(&mut self) {
        match &mut self.value {
            Value::Structure(children) => children.iter_mut().for_each(Ttlv::zeroize),
            Value::ByteString(b) | Value::BigInteger(b) => b.zeroize(),
            _ => {}
        }
    }

    /// Encoded size in bytes, including padding.
    pub fn encoded_len(&self) -> usize {
        8 + padded(self.value_len())
    }

    fn value_len(&self) -> usize {
        match &self.value {
            Value::Structure(c) => c.iter().map(Ttlv::encoded_len).sum(),
            Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
            Value::LongInteger(_) | Value::Boolean(_) | Value::DateTime(_) => 8,
            Value::BigInteger(b) => padded(b.len()),
            Value::TextString(s) => s.len(),
            Value::ByteString(b) => b.len(),
        }
    }

    /// Encode to a new buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Append the encoding to `out`. Values longer than `u32::MAX` bytes cannot be represented
    /// and are not supported (the length field would be truncated).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let tag = self.tag.to_be_bytes();
        out.extend_from_slice(&tag[1..4]);
        out.push(self.value.type_byte());
        let len = self.value_len();
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        match &self.value {
            Value::Structure(c) => c.iter().for_each(|x| x.encode_into(out)),
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) | Value::DateTime(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
            Value::BigInteger(b) => {
                let negative = b.first().is_some_and(|x| x & 0x80 != 0);
                let fill = if negative { 0xFF } else { 0x00 };
                out.resize(out.len() + (len - b.len()), fill);
                out.extend_from_slice(b);
            }
            Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
            Value::ByteString(b) => out.extend_from_slice(b),
        }
        out.resize(out.len() + (padded(len) - len), 0);
    }
}

/// Decode exactly one item spanning all of `bytes`, with default [`Limits`].
pub fn decode(bytes: &[u8]) -> Result<Ttlv, TtlvError> {
    decode_with(bytes, &Limits::default())
}

/// Decode exactly one item spanning all of `bytes`.
pub fn decode_with(bytes: &[u8], limits: &Limits) -> Result<Ttlv, TtlvError> {
    if bytes.len() > limits.max_size {
        return Err(TtlvError::new(
            TtlvErrorKind::TooLarge {
                length: bytes.len(),
                cap: limits.max_size,
            },
            0,
            Vec::new(),
        ));
    }
    let mut d = Decoder {
        buf: bytes,
        limits,
        path: Vec::new(),
    };
    let (item, end) = d.item(0, bytes.len(), 1)?;
    if end != bytes.len() {
        return Err(TtlvError::new(
            TtlvErrorKind::TrailingBytes {
                count: bytes.len() - end,
            },
            end,
            Vec::new(),
        ));
    }
    Ok(item)
}

struct Decoder<'a> {
    buf: &'a [u8],
    limits: &'a Limits,
    path: Vec<u32>,
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

impl Decoder<'_> {
    fn err(&self, kind: TtlvErrorKind, offset: usize) -> TtlvError {
        TtlvError::new(kind, offset, self.path.clone())
    }

    /// Decode the item at `pos`, which must end at or before `limit`. Returns the item and the
    /// offset just past its padding.
    fn item(&mut self, pos: usize, limit: usize, depth: usize) -> Result<(Ttlv, usize), TtlvError> {
        if limit - pos < 8 {
            return Err(self.err(TtlvErrorKind::TruncatedHeader, pos));
        }
        let h = &self.buf[pos..pos + 8];
        let tag = u32::from(h[0]) << 16 | u32::from(h[1]) << 8 | u32::from(h[2]);
        let ty = h[3];
        let length = be_u32(&h[4..8]);
        self.path.push(tag);
        let r = self.value(pos, limit, depth, ty, length);
        if r.is_ok() {
            self.path.pop();
        }
        r.map(|(value, end)| (Ttlv { tag, value }, end))
    }

    fn value(
        &mut self,
        pos: usize,
        limit: usize,
        depth: usize,
        ty: u8,
        length: u32,
    ) -> Result<(Value, usize), TtlvError> {
        use item_type::*;
        let start = pos + 8;
        let available = limit - start;
        let len = length as usize;
        if !(STRUCTURE..=INTERVAL).contains(&ty) {
            return Err(self.err(TtlvErrorKind::InvalidType(ty), pos));
        }
        let fixed = match ty {
            INTEGER | ENUMERATION | INTERVAL => Some(4),
            LONG_INTEGER | BOOLEAN | DATE_TIME => Some(8),
            _ => None,
        };
        if let Some(f) = fixed {
            if len != f {
                return Err(self.err(
                    TtlvErrorKind::BadFixedLength {
                        item_type: ty,
                        length,
                    },
                    pos,
                ));
            }
        }
        if (ty == BIG_INTEGER || ty == STRUCTURE) && len % 8 != 0 {
            return Err(self.err(
                TtlvErrorKind::BadLength {
                    item_type: ty,
                    length,
                },
                pos,
            ));
        }
        if len > available {
            return Err(self.err(TtlvErrorKind::LengthPastBuffer { length, available }, pos));
        }
        let end = start + padded(len);
        if end > limit {
            return Err(self.err(TtlvErrorKind::MissingPadding, start + len));
        }
        let v = &self.buf[start..start + len];
        let value = match ty {
            STRUCTURE => {
                if depth >= self.limits.max_depth && len > 0 {
                    return Err(self.err(
                        TtlvErrorKind::TooDeep {
                            max_depth: self.limits.max_depth,
                        },
                        pos,
                    ));
                }
                let mut children = Vec::new();
                let mut p = start;
                let stop = start + len;
                while p < stop {
                    let (child, next) = self.item(p, stop, depth + 1)?;
                    children.push(child);
                    p = next;
                }
                Value::Structure(children)
            }
            INTEGER => Value::Integer(be_u32(v) as i32),
            ENUMERATION => Value::Enumeration(be_u32(v)),
            INTERVAL => Value::Interval(be_u32(v)),
            LONG_INTEGER => Value::LongInteger(be_u64(v) as i64),
            DATE_TIME => Value::DateTime(be_u64(v) as i64),
            BOOLEAN => match be_u64(v) {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                other => return Err(self.err(TtlvErrorKind::InvalidBoolean(other), pos)),
            },
            BIG_INTEGER => Value::BigInteger(v.to_vec()),
            TEXT_STRING => match std::str::from_utf8(v) {
                Ok(s) => Value::TextString(s.to_owned()),
                Err(_) => return Err(self.err(TtlvErrorKind::InvalidUtf8, start)),
            },
            _ => Value::ByteString(v.to_vec()),
        };
        Ok((value, end))
    }
}
