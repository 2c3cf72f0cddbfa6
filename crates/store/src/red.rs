//! What historical RED reads from the store: per block either its pre-aggregated RED summary or, for blocks
//! without a usable one, the RED facts of each span; and the same facts from the head.

use std::collections::HashMap;

use clew_model::Tenant;
use clew_model::otlp::Resource;
use prost::Message;

use crate::block::red_summary::{self, RedSpan, RedSummary};
use crate::block::{BlockError, BlockMeta};
use crate::{Store, StoreError};

impl Store {
    /// The block's RED summary of width `bucket_nanos` with the series of `services` (all when empty) and at
    /// least the cells that start in `range`; `None` when the block has none of that width (written before
    /// summaries existed) or its summary is corrupt. A block that compaction or retention retired meanwhile gives an empty one:
    /// its spans are in another block by then, or gone.
    pub async fn red_summary(
        &self,
        tenant: &Tenant,
        meta: &BlockMeta,
        bucket_nanos: u64,
        services: &[String],
        range: (u64, u64),
    ) -> Result<Option<RedSummary>, StoreError> {
        match red_summary::read_summary(self.objects.as_ref(), meta, bucket_nanos, services, range).await {
            Ok(summary) => Ok(summary),
            // The spans are still there: RED scans them instead.
            Err(err @ BlockError::Corrupt { .. }) => {
                tracing::warn!(block = %meta.block_id, %err, "unreadable RED summary; scanning the block instead");
                Ok(None)
            }
            Err(_) if !self.still_lists(tenant, meta) => Ok(Some(RedSummary { bucket_nanos, series: Vec::new() })),
            Err(err) => Err(StoreError::Block(format!("reading a RED summary: {err}"))),
        }
    }

    /// Calls `visit` with the RED facts of each span of the block that started in `[start, end)` and belongs
    /// to one of `services` (any, when empty).
    pub async fn scan_red_spans(
        &self,
        tenant: &Tenant,
        meta: &BlockMeta,
        range: (u64, u64),
        services: &[String],
        visit: impl FnMut(RedSpan<'_>),
    ) -> Result<(), StoreError> {
        match red_summary::scan_spans(self.objects.as_ref(), meta, range, services, visit).await {
            Ok(()) => Ok(()),
            Err(_) if !self.still_lists(tenant, meta) => Ok(()),
            Err(err) => Err(StoreError::Block(format!("scanning a block for RED: {err}"))),
        }
    }

    fn still_lists(&self, tenant: &Tenant, meta: &BlockMeta) -> bool {
        self.blocks.of(tenant).iter().any(|m| m.block_id == meta.block_id)
    }

    /// [`Store::scan_red_spans`] over the head (spans not yet in a block, and those being written). Reads the
    /// few fields RED needs from the encoded spans, decoding each resource once.
    pub fn scan_head_red_spans(
        &self,
        tenant: &Tenant,
        (start, end): (u64, u64),
        services: &[String],
        mut visit: impl FnMut(RedSpan<'_>),
    ) {
        let mut service_of: HashMap<*const u8, Option<String>> = HashMap::new();
        self.head.for_each_encoded_span(tenant, |span, resource| {
            let Some(fields) = SpanFields::read(span) else {
                tracing::error!("a span in the head failed to decode; skipping it");
                return;
            };
            if !(start..end).contains(&fields.start) {
                return;
            }
            // Spans of one request share its resource bytes.
            let service = service_of.entry(resource.map_or(std::ptr::null(), <[u8]>::as_ptr)).or_insert_with(|| {
                let resource = resource.and_then(|r| Resource::decode(r).ok());
                clew_model::service_name(resource.as_ref()).map(str::to_owned)
            });
            let service = service.as_deref();
            if !services.is_empty() && !service.is_some_and(|s| services.iter().any(|w| w == s)) {
                return;
            }
            visit(RedSpan {
                service,
                name: fields.name,
                kind: fields.kind,
                error: fields.error,
                start_unix_nano: fields.start,
                duration_nanos: fields.end.saturating_sub(fields.start),
            });
        });
    }
}

/// The fields of an encoded OTLP `Span` that RED needs, read without decoding the rest (attributes, events,
/// links). Protobuf semantics: the last value of a field wins; `status` occurrences merge.
#[derive(Debug, Default, PartialEq)]
struct SpanFields<'a> {
    name: &'a str,
    kind: i32,
    start: u64,
    end: u64,
    error: bool,
}

impl<'a> SpanFields<'a> {
    fn read(mut bytes: &'a [u8]) -> Option<Self> {
        let mut fields = SpanFields::default();
        while !bytes.is_empty() {
            let key = varint(&mut bytes)?;
            match (key >> 3, key & 7) {
                (5, 2) => fields.name = std::str::from_utf8(length_delimited(&mut bytes)?).ok()?,
                (6, 0) => fields.kind = varint(&mut bytes)? as i32,
                (7, 1) => fields.start = fixed64(&mut bytes)?,
                (8, 1) => fields.end = fixed64(&mut bytes)?,
                (15, 2) => {
                    // `Status`: `code = 3`.
                    let mut status = length_delimited(&mut bytes)?;
                    while !status.is_empty() {
                        let key = varint(&mut status)?;
                        match (key >> 3, key & 7) {
                            (3, 0) => fields.error = varint(&mut status)? as i32 == STATUS_ERROR,
                            (_, wire_type) => skip(&mut status, wire_type)?,
                        }
                    }
                }
                (_, wire_type) => skip(&mut bytes, wire_type)?,
            }
        }
        Some(fields)
    }
}

/// `STATUS_CODE_ERROR`.
const STATUS_ERROR: i32 = 2;

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

fn fixed64(bytes: &mut &[u8]) -> Option<u64> {
    let (value, rest) = bytes.split_first_chunk::<8>()?;
    *bytes = rest;
    Some(u64::from_le_bytes(*value))
}

fn length_delimited<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(varint(bytes)?).ok()?;
    let value = bytes.get(..len)?;
    *bytes = &bytes[len..];
    Some(value)
}

fn skip(bytes: &mut &[u8], wire_type: u64) -> Option<()> {
    match wire_type {
        0 => varint(bytes).map(drop),
        1 => fixed64(bytes).map(drop),
        2 => length_delimited(bytes).map(drop),
        5 => {
            *bytes = bytes.get(4..)?;
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::{KeyValue, Span, Status, span::Event};
    use prost::Message;

    use super::*;

    #[test]
    fn span_fields_are_read_as_prost_decodes_them() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /ünïcode".into(),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_123_456_789,
            end_time_unix_nano: 1_700_000_001_000_000_000,
            attributes: vec![KeyValue { key: "a".into(), ..Default::default() }],
            events: vec![Event { name: "e".into(), ..Default::default() }],
            dropped_attributes_count: 7,
            flags: 0x301,
            status: Some(Status { code: 2, message: "boom".into() }),
            ..Default::default()
        };
        let bytes = span.encode_to_vec();
        let fields = SpanFields::read(&bytes).unwrap();
        assert_eq!(
            fields,
            SpanFields {
                name: "GET /ünïcode",
                kind: 3,
                start: 1_700_000_000_123_456_789,
                end: 1_700_000_001_000_000_000,
                error: true
            }
        );
        let ok = Span { status: Some(Status { code: 1, message: String::new() }), ..span.clone() }.encode_to_vec();
        assert!(!SpanFields::read(&ok).unwrap().error);
        assert_eq!(SpanFields::read(&Span::default().encode_to_vec()), Some(SpanFields::default()));
        // Truncated input is refused, not misread.
        assert_eq!(SpanFields::read(&bytes[..bytes.len() - 3]), None);
    }
}
