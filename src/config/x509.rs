//! The two things the configuration reads from a certificate itself: its subject, for messages
//! and `keyring-okv check`, and its validity dates. rustls and webpki do the verifying; this only
//! reads. Written over `der` (MIT or Apache-2.0) rather than with x509-cert, whose dependency
//! flagset is Apache-2.0 only (docs/licensing.md); the subject reads as x509-cert's did (RFC
//! 4514 order and escaping), and the structure is checked as strictly (DER, RDN sets sorted).

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use der::asn1::{
    AnyRef, BitStringRef, GeneralizedTime, Ia5StringRef, ObjectIdentifier, PrintableStringRef,
    SetOfVec, TeletexStringRef, UtcTime, Utf8StringRef,
};
use der::{Choice, Decode, Sequence, Tag, Tagged, ValueOrd};

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } (RFC 5280).
#[derive(Sequence)]
struct Certificate<'a> {
    tbs: TbsCertificate<'a>,
    _algorithm: AnyRef<'a>,
    _signature: BitStringRef<'a>,
}

/// TBSCertificate, with what is not read kept as undecoded values.
#[derive(Sequence)]
struct TbsCertificate<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    _version: Option<u8>,
    _serial_number: AnyRef<'a>,
    _signature: AnyRef<'a>,
    _issuer: AnyRef<'a>,
    validity: Validity,
    subject: Vec<SetOfVec<AttributeTypeAndValue<'a>>>,
    _subject_public_key_info: AnyRef<'a>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    _issuer_unique_id: Option<BitStringRef<'a>>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    _subject_unique_id: Option<BitStringRef<'a>>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    _extensions: Option<AnyRef<'a>>,
}

#[derive(Sequence)]
struct Validity {
    not_before: Time,
    not_after: Time,
}

#[derive(Choice)]
enum Time {
    #[asn1(type = "UTCTime")]
    Utc(UtcTime),
    #[asn1(type = "GeneralizedTime")]
    General(GeneralizedTime),
}

impl Time {
    fn to_system_time(&self) -> SystemTime {
        match self {
            Time::Utc(t) => t.to_system_time(),
            Time::General(t) => t.to_system_time(),
        }
    }
}

#[derive(Sequence, ValueOrd)]
struct AttributeTypeAndValue<'a> {
    oid: ObjectIdentifier,
    value: AnyRef<'a>,
}

/// A certificate's subject (RFC 4514 string) and validity.
pub(crate) struct CertInfo {
    pub subject: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// Reads one DER certificate; the error says what in it is malformed.
pub(crate) fn read(der_bytes: &[u8]) -> Result<CertInfo, der::Error> {
    let cert = Certificate::from_der(der_bytes)?;
    let tbs = &cert.tbs;
    Ok(CertInfo {
        subject: rfc4514(&tbs.subject),
        not_before: tbs.validity.not_before.to_system_time(),
        not_after: tbs.validity.not_after.to_system_time(),
    })
}

/// RFC 4514: the last RDN first, RDNs joined by ',', attributes of one RDN by '+'.
fn rfc4514(name: &[SetOfVec<AttributeTypeAndValue<'_>>]) -> String {
    let mut out = String::new();
    for (i, rdn) in name.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            // Writing to a String cannot fail.
            let _ = write_atv(&mut out, atv);
        }
    }
    out
}

/// `TYPE=value` with the type's shortest registered name in capitals and RFC 4514 escapes; an
/// unknown type or a value that is not a string is written as `OID=#hex` of its DER.
fn write_atv(out: &mut String, atv: &AttributeTypeAndValue<'_>) -> fmt::Result {
    let value = atv.value;
    let text = match value.tag() {
        Tag::PrintableString => value
            .decode_as::<PrintableStringRef<'_>>()
            .ok()
            .map(|s| s.as_str()),
        Tag::Utf8String => value
            .decode_as::<Utf8StringRef<'_>>()
            .ok()
            .map(|s| s.as_str()),
        Tag::Ia5String => value
            .decode_as::<Ia5StringRef<'_>>()
            .ok()
            .map(|s| s.as_str()),
        Tag::TeletexString => value
            .decode_as::<TeletexStringRef<'_>>()
            .ok()
            .map(|s| s.as_str()),
        _ => None,
    };
    // The first of the shortest names the OID database has ("CN", not "commonName").
    let name = const_oid::db::DB
        .find_names_for_oid(atv.oid)
        .reduce(|best, n| if n.len() < best.len() { n } else { best });
    if let (Some(name), Some(text)) = (name, text) {
        write!(out, "{}=", name.to_ascii_uppercase())?;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '#' if i == 0 => out.push_str("\\#"),
                ' ' if i == 0 || chars.peek().is_none() => out.push_str("\\ "),
                '"' | '+' | ',' | ';' | '<' | '>' | '\\' => write!(out, "\\{c}")?,
                '\x00'..='\x1f' | '\x7f' => write!(out, "\\{:02x}", c as u8)?,
                _ => out.push(c),
            }
        }
    } else {
        write!(out, "{}=#", atv.oid)?;
        let mut encoded = Vec::new();
        der::Encode::encode_to_vec(&value, &mut encoded).map_err(|_| fmt::Error)?;
        for byte in encoded {
            write!(out, "{byte:02x}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    // openssl req -x509 -subj "/C=DE/ST=Berlin/O=Example\, Inc./OU=#ops;x<y>/CN= lead space
    // /emailAddress=a@b.example/DC=example/UID=u1" -days 30 (UTCTime, v3 extensions).
    const ESCAPES: &str = "-----BEGIN CERTIFICATE-----\n\
MIICqjCCAlGgAwIBAgIUbvRtThrzn+5Wa6i4sQ43S4sY3wUwCgYIKoZIzj0EAwIw\n\
gaoxCzAJBgNVBAYTAkRFMQ8wDQYDVQQIDAZCZXJsaW4xFjAUBgNVBAoMDUV4YW1w\n\
bGUsIEluYy4xEjAQBgNVBAsMCSNvcHM7eDx5PjEVMBMGA1UEAwwMIGxlYWQgc3Bh\n\
Y2UgMRowGAYJKoZIhvcNAQkBFgthQGIuZXhhbXBsZTEXMBUGCgmSJomT8ixkARkW\n\
B2V4YW1wbGUxEjAQBgoJkiaJk/IsZAEBDAJ1MTAeFw0yNjEyMDcwNjIzMzhaFw0y\n\
NzAxMDYwNjIzMzhaMIGqMQswCQYDVQQGEwJERTEPMA0GA1UECAwGQmVybGluMRYw\n\
FAYDVQQKDA1FeGFtcGxlLCBJbmMuMRIwEAYDVQQLDAkjb3BzO3g8eT4xFTATBgNV\n\
BAMMDCBsZWFkIHNwYWNlIDEaMBgGCSqGSIb3DQEJARYLYUBiLmV4YW1wbGUxFzAV\n\
BgoJkiaJk/IsZAEZFgdleGFtcGxlMRIwEAYKCZImiZPyLGQBAQwCdTEwWTATBgcq\n\
hkjOPQIBBggqhkjOPQMBBwNCAAQD67nt9adevfOUMVKg9awCpaln/3YRKs8FsRFG\n\
WmJ3xgCz1nht5ivTSP9I43lO8ApAqDhU/qI+nARld6YykGG3o1MwUTAdBgNVHQ4E\n\
FgQUYcY6qWkoIwZoP1iIhWpzm6aZUkwwHwYDVR0jBBgwFoAUYcY6qWkoIwZoP1iI\n\
hWpzm6aZUkwwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiA0dldP\n\
5yf1bcGIgcjo124cb03EKW7DnncUl/SHfarFRAIgOSlBPlMXltfU4zzTY0CxrHMA\n\
q/kP1cxNePStTiuCAdA=\n\
-----END CERTIFICATE-----";
    // openssl req -x509 -multivalue-rdn -subj "/CN=a+OU=b/O=c\"q\\z" -days 15000 (notAfter in
    // 2068: GeneralizedTime).
    const MULTI_VALUED: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBojCCAUmgAwIBAgIUbGWwYA+/PfmGmx8ZedU6etosPU8wCgYIKoZIzj0EAwIw\n\
JjEUMAgGA1UEAwwBYTAIBgNVBAsMAWIxDjAMBgNVBAoMBWMicVx6MCAXDTI2MTIw\n\
NzA2MjMzOFoYDzIwNjgwMTAxMDYyMzM4WjAmMRQwCAYDVQQDDAFhMAgGA1UECwwB\n\
YjEOMAwGA1UECgwFYyJxXHowWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQD67nt\n\
9adevfOUMVKg9awCpaln/3YRKs8FsRFGWmJ3xgCz1nht5ivTSP9I43lO8ApAqDhU\n\
/qI+nARld6YykGG3o1MwUTAdBgNVHQ4EFgQUYcY6qWkoIwZoP1iIhWpzm6aZUkww\n\
HwYDVR0jBBgwFoAUYcY6qWkoIwZoP1iIhWpzm6aZUkwwDwYDVR0TAQH/BAUwAwEB\n\
/zAKBggqhkjOPQQDAgNHADBEAiA+fETFTLUrzoUFwsWy79wu39Z0V6BS7nHSZtPY\n\
lJEM7gIgdFDXVYcZbVsFCUQQdN4me9g+D6UOSiDjVVRQ+PGEdzE=\n\
-----END CERTIFICATE-----";

    fn der(pem_text: &str) -> Vec<u8> {
        pem::parse(pem_text).expect("test PEM").into_contents()
    }

    // The expected strings are what x509-cert 0.2.5 printed for the same certificates.
    #[test]
    fn subjects_read_as_rfc4514_with_its_escapes() {
        let c = read(&der(ESCAPES)).expect("certificate");
        assert_eq!(
            c.subject,
            r"UID=u1,DC=example,EMAIL=a@b.example,CN=\ lead space\ ,OU=\#ops\;x\<y\>,O=Example\, Inc.,ST=Berlin,C=DE"
        );
        assert_eq!(c.not_after, UNIX_EPOCH + Duration::from_secs(1_799_216_618));
        assert_eq!(
            c.not_after.duration_since(c.not_before).unwrap(),
            Duration::from_secs(30 * 86400)
        );
    }

    #[test]
    fn multi_valued_rdns_and_generalized_time() {
        let c = read(&der(MULTI_VALUED)).expect("certificate");
        assert_eq!(c.subject, r#"O=c\"q\\z,CN=a+OU=b"#);
        assert_eq!(c.not_after, UNIX_EPOCH + Duration::from_secs(3_092_624_618));
    }

    #[test]
    fn truncated_or_trailing_bytes_are_refused() {
        let full = der(ESCAPES);
        for cut in [0, 1, 10, full.len() / 2, full.len() - 1] {
            assert!(
                read(&full[..cut]).is_err(),
                "{cut} bytes read as a certificate"
            );
        }
        let mut longer = full.clone();
        longer.push(0);
        assert!(read(&longer).is_err());
        assert!(read(b"not DER at all").is_err());
    }
}
