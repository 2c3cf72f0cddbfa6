//! Reads the few fields of an encoded OTLP `Span` that sampling conditions look at (tracestate, flags, status
//! code, attributes with wanted keys) without decoding the rest: no allocation unless a wanted key is present.

use clew_model::otlp::KeyValue;
use prost::Message;

use clew_model::proto::{FIXED32, LEN, Reader, VARINT};

/// What conditions need from one span.
#[derive(Debug, Default, PartialEq)]
pub struct ScannedSpan<'a> {
    pub trace_state: &'a str,
    pub flags: u32,
    pub status_code: i32,
    /// Only the attributes whose key was wanted, decoded.
    pub attributes: Vec<KeyValue>,
}

/// Scans a span; `None` if the bytes are not a well-formed span (the caller then ignores its contents).
pub fn scan_span<'a>(bytes: &'a [u8], wanted: &dyn Fn(&[u8]) -> bool) -> Option<ScannedSpan<'a>> {
    let mut out = ScannedSpan::default();
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.next_key()? {
        match (field, wire) {
            (3, LEN) => out.trace_state = std::str::from_utf8(reader.len_delimited()?).ok()?,
            (16, FIXED32) => out.flags = u32::from_le_bytes(reader.take(4)?.try_into().ok()?),
            (9, LEN) => {
                let kv = reader.len_delimited()?;
                if key_of(kv).is_some_and(wanted) {
                    out.attributes.push(KeyValue::decode(kv).ok()?);
                }
            }
            (15, LEN) => out.status_code = status_code(reader.len_delimited()?)?,
            _ => reader.skip(wire)?,
        }
    }
    Some(out)
}

/// The key of an encoded `KeyValue` (field 1), borrowed.
fn key_of(kv: &[u8]) -> Option<&[u8]> {
    let mut reader = Reader::new(kv);
    while let Some((field, wire)) = reader.next_key()? {
        if (field, wire) == (1, LEN) {
            return reader.len_delimited();
        }
        reader.skip(wire)?;
    }
    None
}

/// `Status.code` (field 3); absent means UNSET.
fn status_code(status: &[u8]) -> Option<i32> {
    let mut reader = Reader::new(status);
    let mut code = 0;
    while let Some((field, wire)) = reader.next_key()? {
        if (field, wire) == (3, VARINT) {
            code = reader.varint()? as i32;
        } else {
            reader.skip(wire)?;
        }
    }
    Some(code)
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::{AnyValue, Span, Status, any_value::Value, span::Event};

    use super::*;

    #[test]
    fn reads_the_condition_fields_and_only_wanted_attributes() {
        let attr = |k: &str, v: i64| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(Value::IntValue(v)) }),
            ..KeyValue::default()
        };
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: "ot=th:8".into(),
            name: "GET /x".into(),
            flags: 0x301,
            attributes: vec![attr("a", 1), attr("http.status_code", 503), attr("b", 2)],
            events: vec![Event { name: "e".into(), attributes: vec![attr("http.status_code", 1)], ..Event::default() }],
            status: Some(Status { code: 2, message: "boom".into() }),
            start_time_unix_nano: 5,
            end_time_unix_nano: 9,
            ..Span::default()
        };
        let bytes = span.encode_to_vec();
        let scanned = scan_span(&bytes, &|k| k == b"http.status_code").unwrap();
        assert_eq!(scanned.trace_state, "ot=th:8");
        assert_eq!(scanned.flags, 0x301);
        assert_eq!(scanned.status_code, 2);
        assert_eq!(scanned.attributes, vec![attr("http.status_code", 503)]);
        let plain = Span { trace_id: vec![1; 16], ..Span::default() }.encode_to_vec();
        assert_eq!(scan_span(&plain, &|_| true).unwrap(), ScannedSpan::default());
        assert_eq!(scan_span(&bytes[..bytes.len() - 3], &|_| true), None);
    }
}
