//! Borrowed views of encoded OTLP messages: the fields a block stores, read straight from the bytes a client
//! sent (the head keeps requests as received), so writing a block decodes no span into structs.
//!
//! The bytes were checked by `clew_model::wire::scan` on their way in (or produced by prost), so a parse
//! failure means a bug, not bad input; it is still reported rather than trusted. Repeated singular fields
//! behave as prost decodes them: the last scalar wins, a repeated `status` merges.

use std::borrow::Cow;

use clew_model::otlp::{AnyValue, KeyValue};
use clew_model::proto::{FIXED32, FIXED64, LEN, Reader, VARINT};
use prost::Message;

/// Why a view could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0}")]
pub struct ViewError(&'static str);

fn text<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, ViewError> {
    std::str::from_utf8(bytes).map_err(|_| ViewError(what))
}

/// One encoded `Span`.
#[derive(Debug, Clone, Default)]
pub struct SpanView<'a> {
    pub bytes: &'a [u8],
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub parent_span_id: &'a [u8],
    pub flags: u32,
    pub name: &'a str,
    pub kind: i32,
    pub start: u64,
    pub end: u64,
    pub dropped_attributes_count: u32,
    pub dropped_events_count: u32,
    pub dropped_links_count: u32,
    pub status: Option<StatusView<'a>>,
    pub has_events: bool,
    pub has_links: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusView<'a> {
    pub code: i32,
    pub message: &'a str,
}

impl<'a> SpanView<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ViewError> {
        let bad = || ViewError("span");
        let mut view = SpanView { bytes, ..Default::default() };
        let mut r = Reader::new(bytes);
        while let Some((field, wire)) = r.next_key().ok_or_else(bad)? {
            match (field, wire) {
                (1, LEN) => view.trace_id = r.len_delimited().ok_or_else(bad)?,
                (2, LEN) => view.span_id = r.len_delimited().ok_or_else(bad)?,
                (3, LEN) => view.trace_state = text(r.len_delimited().ok_or_else(bad)?, "trace state")?,
                (4, LEN) => view.parent_span_id = r.len_delimited().ok_or_else(bad)?,
                (5, LEN) => view.name = text(r.len_delimited().ok_or_else(bad)?, "span name")?,
                (6, VARINT) => view.kind = r.varint().ok_or_else(bad)? as i32,
                (7, FIXED64) => view.start = r.fixed64().ok_or_else(bad)?,
                (8, FIXED64) => view.end = r.fixed64().ok_or_else(bad)?,
                (10, VARINT) => view.dropped_attributes_count = r.varint().ok_or_else(bad)? as u32,
                (11, LEN) => {
                    r.len_delimited().ok_or_else(bad)?;
                    view.has_events = true;
                }
                (12, VARINT) => view.dropped_events_count = r.varint().ok_or_else(bad)? as u32,
                (13, LEN) => {
                    r.len_delimited().ok_or_else(bad)?;
                    view.has_links = true;
                }
                (14, VARINT) => view.dropped_links_count = r.varint().ok_or_else(bad)? as u32,
                (15, LEN) => {
                    let status = view.status.get_or_insert_default();
                    merge_status(status, r.len_delimited().ok_or_else(bad)?)?;
                }
                (16, FIXED32) => view.flags = r.fixed32().ok_or_else(bad)?,
                _ => r.skip(wire).ok_or_else(bad)?,
            }
        }
        Ok(view)
    }

    /// The span's attributes (field 9), in order.
    pub fn attributes(&self) -> impl Iterator<Item = Result<KeyValueView<'a>, ViewError>> + 'a {
        fields(self.bytes, 9).map(|bytes| bytes.and_then(KeyValueView::parse))
    }

    /// The span's encoded attributes (field 9), in order.
    pub fn attribute_bytes(&self) -> impl Iterator<Item = Result<&'a [u8], ViewError>> + 'a {
        fields(self.bytes, 9)
    }

    /// The span's encoded events (field 11) or links (field 13), in order.
    pub fn messages(&self, field: u32) -> impl Iterator<Item = Result<&'a [u8], ViewError>> + 'a {
        fields(self.bytes, field)
    }
}

fn merge_status<'a>(status: &mut StatusView<'a>, bytes: &'a [u8]) -> Result<(), ViewError> {
    let bad = || ViewError("status");
    let mut r = Reader::new(bytes);
    while let Some((field, wire)) = r.next_key().ok_or_else(bad)? {
        match (field, wire) {
            (2, LEN) => status.message = text(r.len_delimited().ok_or_else(bad)?, "status message")?,
            (3, VARINT) => status.code = r.varint().ok_or_else(bad)? as i32,
            _ => r.skip(wire).ok_or_else(bad)?,
        }
    }
    Ok(())
}

/// The payloads of every occurrence of length-delimited field `wanted` of a message.
fn fields(bytes: &[u8], wanted: u32) -> impl Iterator<Item = Result<&[u8], ViewError>> {
    let mut r = Reader::new(bytes);
    let mut failed = false;
    std::iter::from_fn(move || {
        while !failed {
            let Some(next) = r.next_key() else {
                failed = true;
                return Some(Err(ViewError("span")));
            };
            let (field, wire) = next?;
            if field == wanted && wire == LEN {
                return Some(r.len_delimited().ok_or(ViewError("span")));
            }
            if r.skip(wire).is_none() {
                failed = true;
                return Some(Err(ViewError("span")));
            }
        }
        None
    })
}

/// One encoded `KeyValue`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValueView<'a> {
    pub key: Cow<'a, str>,
    pub value: AttrValue<'a>,
}

/// An attribute value as a block stores it: scalars as themselves, arrays and key-value lists as their
/// protobuf `AnyValue` bytes (see `attrs::ValueType`).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue<'a> {
    /// The `KeyValue` has no value at all.
    None,
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Cow<'a, [u8]>),
    /// The encoded `AnyValue` of an array.
    Array(Cow<'a, [u8]>),
    /// The encoded `AnyValue` of a key-value list.
    KvList(Cow<'a, [u8]>),
    /// The encoded `AnyValue` of anything else (an empty `AnyValue`, a profiles-only string reference).
    Other(Cow<'a, [u8]>),
    /// The whole encoded `KeyValue`, when it uses the profiles-only `key_strindex`.
    KeyValueProto(Cow<'a, [u8]>),
}

/// The key of an encoded `KeyValue` and the scalar type of its value, without checking or copying anything:
/// enough to count keys when choosing dedicated columns.
pub fn peek_attribute(bytes: &[u8]) -> Option<(&[u8], Option<super::AttrType>)> {
    use super::AttrType;
    let mut r = Reader::new(bytes);
    let (mut key, mut ty, mut strindex) = (&[][..], None, false);
    while let Some((field, wire)) = r.next_key()? {
        match (field, wire) {
            (1, LEN) => key = r.len_delimited()?,
            (2, LEN) => {
                let mut value = Reader::new(r.len_delimited()?);
                ty = None;
                while let Some((member, wire)) = value.next_key()? {
                    ty = match member {
                        1 => Some(AttrType::String),
                        2 => Some(AttrType::Bool),
                        3 => Some(AttrType::Int),
                        4 => Some(AttrType::Double),
                        _ => None,
                    };
                    value.skip(wire)?;
                }
            }
            (3, VARINT) => strindex = r.varint()? != 0,
            _ => r.skip(wire)?,
        }
    }
    Some((key, if strindex { None } else { ty }))
}

impl<'a> KeyValueView<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ViewError> {
        let bad = || ViewError("attribute");
        let mut r = Reader::new(bytes);
        let (mut key, mut value, mut values, mut strindex) = ("", None, 0, false);
        while let Some((field, wire)) = r.next_key().ok_or_else(bad)? {
            match (field, wire) {
                (1, LEN) => key = text(r.len_delimited().ok_or_else(bad)?, "attribute key")?,
                (2, LEN) => {
                    value = Some(r.len_delimited().ok_or_else(bad)?);
                    values += 1;
                }
                (3, VARINT) => strindex = r.varint().ok_or_else(bad)? as i32 != 0,
                _ => r.skip(wire).ok_or_else(bad)?,
            }
        }
        if strindex {
            return Ok(Self { key: Cow::Borrowed(key), value: AttrValue::KeyValueProto(Cow::Borrowed(bytes)) });
        }
        let value = match value {
            None => AttrValue::None,
            Some(any) if values == 1 => match AttrValue::parse_any(any)? {
                Some(value) => value,
                None => Self::decoded(bytes)?.value,
            },
            // A value sent in several parts is merged by protobuf rules: let prost do it.
            Some(_) => return Self::decoded(bytes),
        };
        Ok(Self { key: Cow::Borrowed(key), value })
    }

    /// The slow path for unusual encodings: decode with prost, keep the owned result.
    fn decoded(bytes: &[u8]) -> Result<KeyValueView<'static>, ViewError> {
        let kv = KeyValue::decode(bytes).map_err(|_| ViewError("attribute"))?;
        Ok(KeyValueView::from_key_value(&kv).into_owned())
    }

    /// The view of a decoded attribute (blocks written from decoded spans, and the slow path).
    pub fn from_key_value(kv: &'a KeyValue) -> Self {
        use clew_model::otlp::any_value::Value;
        if kv.key_strindex != 0 {
            return Self {
                key: Cow::Borrowed(&kv.key),
                value: AttrValue::KeyValueProto(Cow::Owned(kv.encode_to_vec())),
            };
        }
        let encoded = |any: &AnyValue| Cow::Owned(any.encode_to_vec());
        let value = match &kv.value {
            None => AttrValue::None,
            Some(any) => match &any.value {
                Some(Value::StringValue(s)) => AttrValue::Str(Cow::Borrowed(s)),
                Some(Value::BoolValue(b)) => AttrValue::Bool(*b),
                Some(Value::IntValue(i)) => AttrValue::Int(*i),
                Some(Value::DoubleValue(d)) => AttrValue::Double(*d),
                Some(Value::BytesValue(b)) => AttrValue::Bytes(Cow::Borrowed(b)),
                Some(Value::ArrayValue(_)) => AttrValue::Array(encoded(any)),
                Some(Value::KvlistValue(_)) => AttrValue::KvList(encoded(any)),
                _ => AttrValue::Other(encoded(any)),
            },
        };
        Self { key: Cow::Borrowed(&kv.key), value }
    }

    fn into_owned(self) -> KeyValueView<'static> {
        KeyValueView { key: Cow::Owned(self.key.into_owned()), value: self.value.into_owned() }
    }
}

impl<'a> AttrValue<'a> {
    /// Classifies an encoded `AnyValue` as prost would decode it (the last member of the oneof wins); `None`
    /// when one message member appears twice (prost merges those: the caller decodes instead).
    fn parse_any(bytes: &'a [u8]) -> Result<Option<Self>, ViewError> {
        let bad = || ViewError("attribute value");
        let mut r = Reader::new(bytes);
        let mut last: Option<AttrValue<'a>> = None;
        let (mut arrays, mut lists, mut members) = (0, 0, 0);
        while let Some((field, wire)) = r.next_key().ok_or_else(bad)? {
            members += 1;
            last = Some(match (field, wire) {
                (1, LEN) => AttrValue::Str(Cow::Borrowed(text(r.len_delimited().ok_or_else(bad)?, "string value")?)),
                (2, VARINT) => AttrValue::Bool(r.varint().ok_or_else(bad)? != 0),
                (3, VARINT) => AttrValue::Int(r.varint().ok_or_else(bad)? as i64),
                (4, FIXED64) => AttrValue::Double(f64::from_bits(r.fixed64().ok_or_else(bad)?)),
                (5, LEN) => {
                    r.len_delimited().ok_or_else(bad)?;
                    arrays += 1;
                    AttrValue::Array(Cow::Borrowed(bytes))
                }
                (6, LEN) => {
                    r.len_delimited().ok_or_else(bad)?;
                    lists += 1;
                    AttrValue::KvList(Cow::Borrowed(bytes))
                }
                (7, LEN) => AttrValue::Bytes(Cow::Borrowed(r.len_delimited().ok_or_else(bad)?)),
                (8, VARINT) => {
                    r.varint().ok_or_else(bad)?;
                    AttrValue::Other(Cow::Borrowed(bytes))
                }
                _ => {
                    r.skip(wire).ok_or_else(bad)?;
                    members -= 1;
                    continue;
                }
            });
        }
        if arrays > 1 || lists > 1 {
            return Ok(None);
        }
        Ok(Some(match last {
            // Arrays and lists are kept as the whole `AnyValue`; a value with other members besides them (which
            // prost would drop) is re-encoded so the stored bytes hold exactly what a decoder keeps.
            Some(AttrValue::Array(_) | AttrValue::KvList(_) | AttrValue::Other(_)) if members > 1 => {
                let any = AnyValue::decode(bytes).map_err(|_| bad())?;
                match &any.value {
                    Some(clew_model::otlp::any_value::Value::ArrayValue(_)) => {
                        AttrValue::Array(Cow::Owned(any.encode_to_vec()))
                    }
                    Some(clew_model::otlp::any_value::Value::KvlistValue(_)) => {
                        AttrValue::KvList(Cow::Owned(any.encode_to_vec()))
                    }
                    _ => AttrValue::Other(Cow::Owned(any.encode_to_vec())),
                }
            }
            Some(value) => value,
            None => AttrValue::Other(Cow::Borrowed(bytes)),
        }))
    }

    fn into_owned(self) -> AttrValue<'static> {
        let own = |c: Cow<'_, [u8]>| Cow::Owned(c.into_owned());
        match self {
            AttrValue::None => AttrValue::None,
            AttrValue::Str(s) => AttrValue::Str(Cow::Owned(s.into_owned())),
            AttrValue::Bool(b) => AttrValue::Bool(b),
            AttrValue::Int(i) => AttrValue::Int(i),
            AttrValue::Double(d) => AttrValue::Double(d),
            AttrValue::Bytes(b) => AttrValue::Bytes(own(b)),
            AttrValue::Array(b) => AttrValue::Array(own(b)),
            AttrValue::KvList(b) => AttrValue::KvList(own(b)),
            AttrValue::Other(b) => AttrValue::Other(own(b)),
            AttrValue::KeyValueProto(b) => AttrValue::KeyValueProto(own(b)),
        }
    }

    /// The scalar type of the value, if it can live in a dedicated column.
    pub fn scalar_type(&self) -> Option<super::AttrType> {
        use super::AttrType;
        match self {
            AttrValue::Str(_) => Some(AttrType::String),
            AttrValue::Bool(_) => Some(AttrType::Bool),
            AttrValue::Int(_) => Some(AttrType::Int),
            AttrValue::Double(_) => Some(AttrType::Double),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::any_value::Value;
    use clew_model::otlp::{ArrayValue, KeyValueList, Span, Status};

    use super::*;

    fn kv(key: &str, value: Option<Value>) -> KeyValue {
        KeyValue { key: key.into(), value: value.map(|v| AnyValue { value: Some(v) }), key_strindex: 0 }
    }

    #[test]
    fn a_span_reads_as_prost_decodes_it() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: "a=b".into(),
            parent_span_id: vec![3; 8],
            flags: 0x301,
            name: "GET /x".into(),
            kind: 3,
            start_time_unix_nano: 10,
            end_time_unix_nano: 25,
            attributes: vec![kv("s", Some(Value::StringValue("v".into()))), kv("i", Some(Value::IntValue(-4)))],
            dropped_attributes_count: 1,
            events: vec![Default::default()],
            dropped_events_count: 2,
            links: Vec::new(),
            dropped_links_count: 3,
            status: Some(Status { message: "boom".into(), code: 2 }),
        };
        let bytes = span.encode_to_vec();
        let view = SpanView::parse(&bytes).unwrap();
        assert_eq!((view.trace_id, view.span_id, view.parent_span_id), (&[1; 16][..], &[2; 8][..], &[3; 8][..]));
        assert_eq!((view.trace_state, view.name, view.kind, view.flags), ("a=b", "GET /x", 3, 0x301));
        assert_eq!((view.start, view.end), (10, 25));
        assert_eq!((view.dropped_attributes_count, view.dropped_events_count, view.dropped_links_count), (1, 2, 3));
        assert_eq!(view.status, Some(StatusView { code: 2, message: "boom" }));
        assert!(view.has_events && !view.has_links);
        let attrs: Vec<_> = view.attributes().collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs[0], KeyValueView { key: "s".into(), value: AttrValue::Str("v".into()) });
        assert_eq!(attrs[1], KeyValueView { key: "i".into(), value: AttrValue::Int(-4) });
    }

    #[test]
    fn every_value_kind_matches_the_decoded_view() {
        let values = [
            None,
            Some(Value::StringValue("x".into())),
            Some(Value::BoolValue(true)),
            Some(Value::IntValue(i64::MIN)),
            Some(Value::DoubleValue(-0.5)),
            Some(Value::BytesValue(vec![0, 255])),
            Some(Value::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(Value::IntValue(1)) }] })),
            Some(Value::KvlistValue(KeyValueList { values: vec![kv("k", Some(Value::BoolValue(false)))] })),
            Some(Value::StringValueStrindex(3)),
        ];
        for value in values {
            let kv = kv("key", value);
            let bytes = kv.encode_to_vec();
            assert_eq!(KeyValueView::parse(&bytes).unwrap(), KeyValueView::from_key_value(&kv), "{kv:?}");
        }
        let empty = KeyValue { key: "e".into(), value: Some(AnyValue { value: None }), key_strindex: 0 };
        assert_eq!(KeyValueView::parse(&empty.encode_to_vec()).unwrap().value, AttrValue::Other(Cow::Borrowed(&[])));
        let strindex = KeyValue { key: String::new(), value: None, key_strindex: 7 };
        let bytes = strindex.encode_to_vec();
        assert_eq!(KeyValueView::parse(&bytes).unwrap().value, AttrValue::KeyValueProto(Cow::Borrowed(&bytes[..])));
    }

    #[test]
    fn unusual_encodings_follow_prost() {
        // A value sent in two parts: prost merges them (two array members: one array of both elements).
        let part = |v: i64| {
            AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue { value: Some(Value::IntValue(v)) }],
                })),
            }
            .encode_to_vec()
        };
        let mut bytes = KeyValue { key: "k".into(), value: None, key_strindex: 0 }.encode_to_vec();
        for v in [1, 2] {
            let encoded = part(v);
            bytes.push(0x12);
            bytes.push(encoded.len() as u8);
            bytes.extend_from_slice(&encoded);
        }
        let decoded = KeyValue::decode(&bytes[..]).unwrap();
        assert_eq!(KeyValueView::parse(&bytes).unwrap(), KeyValueView::from_key_value(&decoded));
        // A string, then an int: the last member wins.
        let mut any = AnyValue { value: Some(Value::StringValue("s".into())) }.encode_to_vec();
        any.extend_from_slice(&AnyValue { value: Some(Value::IntValue(5)) }.encode_to_vec());
        let mut bytes = vec![0x0a, 1, b'k', 0x12, any.len() as u8];
        bytes.extend_from_slice(&any);
        assert_eq!(KeyValueView::parse(&bytes).unwrap().value, AttrValue::Int(5));
        assert!(SpanView::parse(&[0x0a, 5, 1]).is_err(), "a length past the end");
    }
}
