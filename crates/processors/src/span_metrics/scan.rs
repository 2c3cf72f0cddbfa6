//! Reads what span metrics need from an encoded OTLP `Span` or `Resource` (name, kind, parent, status code and
//! the values of a few attribute keys) without decoding the rest; strings are borrowed from the request.
//! The batch was checked by the write path's scan, so malformed bytes only end a scan early.

use std::borrow::Cow;

use clew_model::proto::{FIXED64, LEN, Reader, VARINT};

/// The span fields the metrics use.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SpanFields<'a> {
    pub name: &'a str,
    pub kind: i32,
    pub parent_span_id: &'a [u8],
    pub status_code: i32,
}

/// Fills `found[i]` with the value of the attribute `wanted[i]` (first occurrence wins; later attributes with
/// the same key are ignored) and returns the span's fields. The first `client_only` wanted keys matter only for
/// CLIENT and PRODUCER spans: when the kind comes before the attributes (as encoders write it), other spans skip
/// looking for them, and skip their attributes altogether if nothing else is wanted.
pub fn scan_span<'a>(
    bytes: &'a [u8],
    wanted: &[&str],
    client_only: usize,
    found: &mut [Option<Cow<'a, str>>],
) -> SpanFields<'a> {
    let mut fields = SpanFields::default();
    let mut from = 0;
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key() {
        let ok = match (field, wire) {
            (4, LEN) => reader.len_delimited().map(|b| fields.parent_span_id = b),
            (5, LEN) => reader.len_delimited().map(|b| fields.name = std::str::from_utf8(b).unwrap_or("")),
            (6, VARINT) => reader.varint().map(|v| {
                fields.kind = v as i32;
                from = if matches!(fields.kind, 3 | 4) { 0 } else { client_only.min(wanted.len()) };
            }),
            (9, LEN) => reader.len_delimited().map(|kv| {
                if from < wanted.len() {
                    attribute(kv, &wanted[from..], &mut found[from..]);
                }
            }),
            (15, LEN) => reader.len_delimited().map(|s| fields.status_code = status_code(s)),
            _ => reader.skip(wire),
        };
        if ok.is_none() {
            break;
        }
    }
    fields
}

/// Like [`scan_span`] for the attributes of an encoded `Resource`.
pub fn scan_resource<'a>(bytes: &'a [u8], wanted: &[&str], found: &mut [Option<Cow<'a, str>>]) {
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key() {
        let ok = match (field, wire) {
            (1, LEN) => reader.len_delimited().map(|kv| attribute(kv, wanted, found)),
            _ => reader.skip(wire),
        };
        if ok.is_none() {
            break;
        }
    }
}

/// One encoded `KeyValue`: records its value if its key is wanted and not yet found.
fn attribute<'a>(kv: &'a [u8], wanted: &[&str], found: &mut [Option<Cow<'a, str>>]) {
    let mut reader = Reader::new(kv);
    let mut slot = None;
    let mut value = None;
    while let Some((field, wire)) = reader.key() {
        match (field, wire) {
            (1, LEN) => {
                let Some(key) = reader.len_delimited() else { return };
                slot = wanted.iter().position(|w| w.as_bytes() == key).filter(|&i| found[i].is_none());
                if slot.is_none() {
                    return;
                }
            }
            (2, LEN) => value = reader.len_delimited(),
            _ => {
                if reader.skip(wire).is_none() {
                    return;
                }
            }
        }
    }
    if let (Some(i), Some(value)) = (slot, value) {
        found[i] = any_value_text(value);
    }
}

/// A scalar `AnyValue` as text (strings borrowed); arrays, maps and bytes count as absent.
fn any_value_text(bytes: &[u8]) -> Option<Cow<'_, str>> {
    let mut reader = Reader::new(bytes);
    let mut text = None;
    while let Some((field, wire)) = reader.key() {
        text = match (field, wire) {
            (1, LEN) => Some(Cow::Borrowed(std::str::from_utf8(reader.len_delimited()?).ok()?)),
            (2, VARINT) => Some(Cow::Borrowed(if reader.varint()? != 0 { "true" } else { "false" })),
            (3, VARINT) => Some(Cow::Owned((reader.varint()? as i64).to_string())),
            (4, FIXED64) => Some(Cow::Owned(f64::from_le_bytes(reader.take(8)?.try_into().ok()?).to_string())),
            _ => {
                reader.skip(wire)?;
                None
            }
        };
    }
    text
}

/// `Status.code` (field 3); absent means UNSET.
fn status_code(status: &[u8]) -> i32 {
    let mut reader = Reader::new(status);
    let mut code = 0;
    while let Some((field, wire)) = reader.key() {
        let ok =
            if (field, wire) == (3, VARINT) { reader.varint().map(|v| code = v as i32) } else { reader.skip(wire) };
        if ok.is_none() {
            break;
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::{AnyValue, KeyValue, Resource, Span, Status, any_value::Value};
    use prost::Message;

    use super::*;

    fn attr(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
    }

    #[test]
    fn reads_fields_and_wanted_attributes_only() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "GET /x".into(),
            kind: 3,
            attributes: vec![
                attr("a", Value::IntValue(1)),
                attr("db.system", Value::StringValue("postgresql".into())),
                attr("http.status_code", Value::IntValue(-503)),
                attr("db.system", Value::StringValue("second".into())),
                attr("flag", Value::BoolValue(true)),
            ],
            status: Some(Status { code: 2, message: "boom".into() }),
            ..Span::default()
        };
        let bytes = span.encode_to_vec();
        let wanted = ["db.system", "http.status_code", "flag", "missing"];
        let mut found = vec![None; wanted.len()];
        let fields = scan_span(&bytes, &wanted, 1, &mut found);
        assert_eq!(fields, SpanFields { name: "GET /x", kind: 3, parent_span_id: &[3; 8], status_code: 2 });
        assert_eq!(found, vec![Some("postgresql".into()), Some("-503".into()), Some("true".into()), None]);
        // A server span does not look for the client-only keys.
        let server = Span { kind: 2, ..span }.encode_to_vec();
        let mut found = vec![None; wanted.len()];
        assert_eq!(scan_span(&server, &wanted, 1, &mut found).kind, 2);
        assert_eq!(found, vec![None, Some("-503".into()), Some("true".into()), None]);
    }

    #[test]
    fn reads_resource_attributes() {
        let resource = Resource {
            attributes: vec![
                attr("service.name", Value::StringValue("api".into())),
                attr("x", Value::DoubleValue(1.5)),
            ],
            ..Resource::default()
        };
        let bytes = resource.encode_to_vec();
        let mut found = vec![None; 2];
        scan_resource(&bytes, &["x", "service.name"], &mut found);
        assert_eq!(found, vec![Some("1.5".into()), Some("api".into())]);
    }
}
