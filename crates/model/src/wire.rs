//! A borrowing scan of an encoded OTLP `ExportTraceServiceRequest`.
//!
//! Decoding every span into prost structs costs a dozen small allocations per span and dominates ingest. The
//! write path needs much less: where each span's bytes are, which resource and scope it belongs to, its trace
//! id and times, and a few facts for validation. [`scan`] walks the bytes once, checks that they are well formed
//! (so that decoding them later cannot fail: wire types, lengths, UTF-8, nesting depth) and records exactly
//! that. Resources and scopes, one per group rather than per span, are checked by decoding them.

use std::ops::Range;

use prost::Message;

use crate::otlp::{InstrumentationScope, Resource};

/// Nesting limit for attribute values, the same as prost's recursion limit.
const MAX_DEPTH: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScanError(String);

impl ScanError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Where everything is in one encoded request. Ranges are byte offsets into that request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestIndex {
    /// One per `ScopeSpans`, in order.
    pub groups: Vec<ScopeGroup>,
    /// One per span, in order.
    pub spans: Vec<SpanFacts>,
}

/// A `ScopeSpans` and the `ResourceSpans` around it, without their spans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeGroup {
    /// Index of the enclosing `ResourceSpans` in the request.
    pub resource_index: u32,
    /// The encoded `Resource` message, if present.
    pub resource: Option<Range<u32>>,
    pub resource_schema_url: Range<u32>,
    /// The encoded `InstrumentationScope` message, if present.
    pub scope: Option<Range<u32>>,
    pub scope_schema_url: Range<u32>,
}

/// One span: where its encoded `Span` message is, and what validation and indexing need to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanFacts {
    pub range: Range<u32>,
    pub group: u32,
    /// The trace id when it is 16 bytes, else zeros (see `trace_id_len`).
    pub trace_id: [u8; 16],
    pub trace_id_len: u32,
    pub span_id: [u8; 8],
    pub span_id_len: u32,
    pub parent_span_id_len: u32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attribute_count: u32,
    /// The longest string or bytes value in any attribute of the span, its events or its links, at any depth.
    pub longest_value: u32,
}

/// Scans an encoded `ExportTraceServiceRequest` (equally a `TracesData`: both are `repeated ResourceSpans = 1`).
pub fn scan(request: &[u8]) -> Result<RequestIndex, ScanError> {
    let mut index = RequestIndex::default();
    let mut reader = Reader::new(request, 0);
    let mut resource_index = 0u32;
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, LEN) => {
                let inner = reader.sub()?;
                scan_resource_spans(inner, resource_index, &mut index)?;
                resource_index += 1;
            }
            _ => reader.skip(wire)?,
        }
    }
    Ok(index)
}

fn scan_resource_spans(mut reader: Reader, resource_index: u32, index: &mut RequestIndex) -> Result<(), ScanError> {
    let mut resource = None;
    let mut schema_url = 0..0;
    // Scope groups are recorded as found; the resource fields may come after them in the bytes.
    let first_group = index.groups.len();
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, LEN) => {
                let inner = reader.sub()?;
                Resource::decode(inner.bytes_of()).map_err(|e| ScanError::new(format!("invalid resource: {e}")))?;
                resource = Some(inner.range());
            }
            (2, LEN) => {
                let inner = reader.sub()?;
                scan_scope_spans(inner, resource_index, index)?;
            }
            (3, LEN) => schema_url = reader.string()?,
            (1..=3, _) => return Err(wrong_wire_type("ResourceSpans", field, wire)),
            _ => reader.skip(wire)?,
        }
    }
    for group in &mut index.groups[first_group..] {
        group.resource = resource.clone();
        group.resource_schema_url = schema_url.clone();
    }
    Ok(())
}

fn scan_scope_spans(mut reader: Reader, resource_index: u32, index: &mut RequestIndex) -> Result<(), ScanError> {
    let group = index.groups.len() as u32;
    index.groups.push(ScopeGroup { resource_index, ..Default::default() });
    let mut scope = None;
    let mut schema_url = 0..0;
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, LEN) => {
                let inner = reader.sub()?;
                InstrumentationScope::decode(inner.bytes_of())
                    .map_err(|e| ScanError::new(format!("invalid instrumentation scope: {e}")))?;
                scope = Some(inner.range());
            }
            (2, LEN) => {
                let inner = reader.sub()?;
                let facts = scan_span(inner, group)?;
                index.spans.push(facts);
            }
            (3, LEN) => schema_url = reader.string()?,
            (1..=3, _) => return Err(wrong_wire_type("ScopeSpans", field, wire)),
            _ => reader.skip(wire)?,
        }
    }
    let entry = &mut index.groups[group as usize];
    entry.scope = scope;
    entry.scope_schema_url = schema_url;
    Ok(())
}

fn scan_span(mut reader: Reader, group: u32) -> Result<SpanFacts, ScanError> {
    let mut facts = SpanFacts { range: reader.range(), group, ..Default::default() };
    let mut values = ValueStats::default();
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, LEN) => {
                let id = reader.bytes()?;
                facts.trace_id_len = id.len() as u32;
                if let Ok(id) = id.try_into() {
                    facts.trace_id = id;
                }
            }
            (2, LEN) => {
                let id = reader.bytes()?;
                facts.span_id_len = id.len() as u32;
                if let Ok(id) = id.try_into() {
                    facts.span_id = id;
                }
            }
            (4, LEN) => facts.parent_span_id_len = reader.bytes()?.len() as u32,
            (3 | 5, LEN) => {
                reader.string()?;
            }
            (6 | 10 | 12 | 14, VARINT) => {
                reader.varint()?;
            }
            (7, FIXED64) => facts.start_unix_nano = reader.fixed64()?,
            (8, FIXED64) => facts.end_unix_nano = reader.fixed64()?,
            (9, LEN) => {
                facts.attribute_count += 1;
                scan_key_value(reader.sub()?, &mut values, 0)?;
            }
            (11, LEN) => scan_event(reader.sub()?, &mut values)?,
            (13, LEN) => scan_link(reader.sub()?, &mut values)?,
            (15, LEN) => scan_status(reader.sub()?)?,
            (16, FIXED32) => {
                reader.fixed32()?;
            }
            (1..=16, _) => return Err(wrong_wire_type("Span", field, wire)),
            _ => reader.skip(wire)?,
        }
    }
    facts.longest_value = values.longest;
    Ok(facts)
}

#[derive(Default)]
struct ValueStats {
    longest: u32,
}

impl ValueStats {
    fn saw(&mut self, len: usize) {
        self.longest = self.longest.max(len.min(u32::MAX as usize) as u32);
    }
}

fn scan_event(mut reader: Reader, values: &mut ValueStats) -> Result<(), ScanError> {
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, FIXED64) => {
                reader.fixed64()?;
            }
            (2, LEN) => {
                reader.string()?;
            }
            (3, LEN) => scan_key_value(reader.sub()?, values, 0)?,
            (4, VARINT) => {
                reader.varint()?;
            }
            (1..=4, _) => return Err(wrong_wire_type("Span.Event", field, wire)),
            _ => reader.skip(wire)?,
        }
    }
    Ok(())
}

fn scan_link(mut reader: Reader, values: &mut ValueStats) -> Result<(), ScanError> {
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1 | 2, LEN) => {
                reader.bytes()?;
            }
            (3, LEN) => {
                reader.string()?;
            }
            (4, LEN) => scan_key_value(reader.sub()?, values, 0)?,
            (5, VARINT) => {
                reader.varint()?;
            }
            (6, FIXED32) => {
                reader.fixed32()?;
            }
            (1..=6, _) => return Err(wrong_wire_type("Span.Link", field, wire)),
            _ => reader.skip(wire)?,
        }
    }
    Ok(())
}

fn scan_status(mut reader: Reader) -> Result<(), ScanError> {
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (2, LEN) => {
                reader.string()?;
            }
            (3, VARINT) => {
                reader.varint()?;
            }
            (2 | 3, _) => return Err(wrong_wire_type("Status", field, wire)),
            _ => reader.skip(wire)?,
        }
    }
    Ok(())
}

fn scan_key_value(mut reader: Reader, values: &mut ValueStats, depth: u32) -> Result<(), ScanError> {
    if depth > MAX_DEPTH {
        return Err(ScanError::new("attribute values nested too deeply"));
    }
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, LEN) => {
                reader.string()?;
            }
            (2, LEN) => scan_any_value(reader.sub()?, values, depth + 1)?,
            (3, VARINT) => {
                reader.varint()?;
            }
            (1..=3, _) => return Err(wrong_wire_type("KeyValue", field, wire)),
            _ => reader.skip(wire)?,
        }
    }
    Ok(())
}

fn scan_any_value(mut reader: Reader, values: &mut ValueStats, depth: u32) -> Result<(), ScanError> {
    if depth > MAX_DEPTH {
        return Err(ScanError::new("attribute values nested too deeply"));
    }
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, LEN) => {
                let s = reader.string()?;
                values.saw(s.len());
            }
            (7, LEN) => values.saw(reader.bytes()?.len()),
            (2 | 3 | 8, VARINT) => {
                reader.varint()?;
            }
            (4, FIXED64) => {
                reader.fixed64()?;
            }
            (5, LEN) => {
                // ArrayValue { repeated AnyValue values = 1 }
                let mut array = reader.sub()?;
                while let Some((field, wire)) = array.key()? {
                    match (field, wire) {
                        (1, LEN) => scan_any_value(array.sub()?, values, depth + 1)?,
                        (1, _) => return Err(wrong_wire_type("ArrayValue", field, wire)),
                        _ => array.skip(wire)?,
                    }
                }
            }
            (6, LEN) => {
                // KeyValueList { repeated KeyValue values = 1 }
                let mut list = reader.sub()?;
                while let Some((field, wire)) = list.key()? {
                    match (field, wire) {
                        (1, LEN) => scan_key_value(list.sub()?, values, depth + 1)?,
                        (1, _) => return Err(wrong_wire_type("KeyValueList", field, wire)),
                        _ => list.skip(wire)?,
                    }
                }
            }
            (1..=8, _) => return Err(wrong_wire_type("AnyValue", field, wire)),
            _ => reader.skip(wire)?,
        }
    }
    Ok(())
}

fn wrong_wire_type(message: &str, field: u32, wire: u8) -> ScanError {
    ScanError::new(format!("invalid wire type {wire} for {message} field {field}"))
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// A cursor over one message's bytes; `base` is the message's offset in the whole request.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    fn bytes(&mut self) -> Result<&'a [u8], ScanError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ScanError::new("length overflows"))?;
        let end =
            self.pos.checked_add(len).filter(|&end| end <= self.buf.len()).ok_or_else(|| {
                ScanError::new(format!("truncated message: a field of {len} bytes runs past the end"))
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A length-delimited submessage as its own reader.
    fn sub(&mut self) -> Result<Reader<'a>, ScanError> {
        let bytes = self.bytes()?;
        let base = self.base + self.pos - bytes.len();
        Ok(Reader::new(bytes, base))
    }

    /// A string field, UTF-8 checked; returns its range in the request.
    fn string(&mut self) -> Result<Range<u32>, ScanError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| ScanError::new("a string field is not valid UTF-8"))?;
        let end = self.base + self.pos;
        Ok(offset(end - bytes.len())..offset(end))
    }

    /// The whole of this reader's message as a range in the request.
    fn range(&self) -> Range<u32> {
        offset(self.base)..offset(self.base + self.buf.len())
    }

    fn key(&mut self) -> Result<Option<(u32, u8)>, ScanError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| ScanError::new("field number overflows"))?;
        if field == 0 {
            return Err(ScanError::new("invalid field number 0"));
        }
        Ok(Some((field, (key & 7) as u8)))
    }

    fn varint(&mut self) -> Result<u64, ScanError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or_else(|| ScanError::new("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == 9 && byte > 1 {
                    return Err(ScanError::new("varint overflows 64 bits"));
                }
                return Ok(value);
            }
        }
        Err(ScanError::new("varint longer than 10 bytes"))
    }

    fn fixed64(&mut self) -> Result<u64, ScanError> {
        let bytes = self.buf.get(self.pos..self.pos + 8).ok_or_else(|| ScanError::new("truncated fixed64"))?;
        self.pos += 8;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn fixed32(&mut self) -> Result<u32, ScanError> {
        let bytes = self.buf.get(self.pos..self.pos + 4).ok_or_else(|| ScanError::new("truncated fixed32"))?;
        self.pos += 4;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    fn skip(&mut self, wire: u8) -> Result<(), ScanError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.fixed32().map(drop),
            other => Err(ScanError::new(format!("unsupported wire type {other}"))),
        }
    }
}

impl<'a> Reader<'a> {
    /// The bytes of this reader's message (for decoding it whole).
    fn bytes_of(&self) -> &'a [u8] {
        self.buf
    }
}

fn offset(position: usize) -> u32 {
    // Requests are limited far below 4 GiB; saturate rather than wrap if one ever is not.
    u32::try_from(position).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::{
        AnyValue, ArrayValue, ExportTraceServiceRequest, KeyValue, KeyValueList, ResourceSpans, ScopeSpans, Span,
        any_value, span,
    };

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    fn request() -> ExportTraceServiceRequest {
        let nested = any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("deep", any_value::Value::StringValue("x".repeat(300)))],
                })),
            }],
        });
        let span = |id: u8, start: u64| Span {
            trace_id: vec![7; 16],
            span_id: vec![id; 8],
            parent_span_id: if id == 1 { vec![] } else { vec![1; 8] },
            name: "op".into(),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 10,
            attributes: vec![kv("a", any_value::Value::IntValue(1)), kv("n", nested.clone())],
            events: vec![span::Event {
                name: "e".into(),
                attributes: vec![kv("b", any_value::Value::BytesValue(vec![0; 500]))],
                ..Default::default()
            }],
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", any_value::Value::StringValue("svc".into()))],
                        ..Default::default()
                    }),
                    scope_spans: vec![
                        ScopeSpans {
                            scope: Some(InstrumentationScope { name: "lib".into(), ..Default::default() }),
                            spans: vec![span(1, 100), span(2, 200)],
                            schema_url: "s".into(),
                        },
                        ScopeSpans { spans: vec![span(3, 300)], ..Default::default() },
                    ],
                    schema_url: "r".into(),
                },
                ResourceSpans {
                    scope_spans: vec![ScopeSpans { spans: vec![span(4, 400)], ..Default::default() }],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn indexes_spans_groups_and_facts() {
        let req = request();
        let bytes = req.encode_to_vec();
        let index = scan(&bytes).unwrap();
        assert_eq!(index.groups.len(), 3);
        assert_eq!(index.spans.len(), 4);
        assert_eq!(index.groups[1].resource_index, 0);
        assert_eq!(index.groups[2].resource_index, 1);
        assert!(index.groups[2].resource.is_none() && index.groups[1].scope.is_none());
        let at = |r: &Range<u32>| &bytes[r.start as usize..r.end as usize];
        assert_eq!(
            Resource::decode(at(index.groups[0].resource.as_ref().unwrap())).unwrap(),
            req.resource_spans[0].resource.clone().unwrap()
        );
        assert_eq!(at(&index.groups[0].resource_schema_url), b"r");
        assert_eq!(at(&index.groups[0].scope_schema_url), b"s");
        for (facts, expected) in index.spans.iter().zip([(0, 0, 100), (0, 1, 200), (1, 0, 300), (2, 0, 400)]) {
            let (group, _, start) = expected;
            assert_eq!(facts.group, group);
            assert_eq!(facts.start_unix_nano, start);
            assert_eq!(facts.end_unix_nano, start + 10);
            assert_eq!(facts.trace_id, [7; 16]);
            assert_eq!(facts.attribute_count, 2);
            assert_eq!(facts.longest_value, 500);
            let decoded = Span::decode(at(&facts.range)).unwrap();
            assert_eq!(decoded.start_time_unix_nano, start);
        }
        assert_eq!(index.spans[0].parent_span_id_len, 0);
        assert_eq!(index.spans[1].parent_span_id_len, 8);
    }

    #[test]
    fn rejects_what_prost_would_reject() {
        let bytes = request().encode_to_vec();
        // Every truncation either fails to scan, or scans a prefix prost also accepts.
        for cut in 0..bytes.len() {
            let prefix = &bytes[..cut];
            let scanned = scan(prefix);
            let decoded = ExportTraceServiceRequest::decode(prefix);
            assert_eq!(scanned.is_ok(), decoded.is_ok(), "cut at {cut}: scan {scanned:?}");
        }
        assert!(scan(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn rejects_invalid_utf8_in_a_span_name() {
        let mut span = Span { trace_id: vec![1; 16], span_id: vec![1; 8], name: "ab".into(), ..Default::default() };
        span.name = "\u{e9}".into();
        let mut bytes = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        // "é" is C3 A9: make it C3 28, invalid UTF-8.
        let at = bytes.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
        bytes[at + 1] = 0x28;
        assert!(ExportTraceServiceRequest::decode(&bytes[..]).is_err());
        assert!(scan(&bytes).is_err());
    }
}
