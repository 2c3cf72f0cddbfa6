//! Writing a block: sort, choose dedicated columns, encode `spans.parquet` and `traces.parquet` row group by
//! row group, then put `meta.json`.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, FixedSizeBinaryBuilder, Int32Builder, StringBuilder, UInt32Builder};
use arrow_array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray, UInt32Array,
    UInt64Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, SchemaRef};
use bytes::Bytes;
use clew_model::otlp::span::{Event, Link};
use clew_model::otlp::{KeyValue, Resource, any_value::Value};
use clew_model::{SamplingDecision, Tenant, TraceId};
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutMultipartOptions, PutOptions, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::file::metadata::ParquetMetaData;
use prost::Message;

use super::attrs::{AttrListBuilder, DedicatedBuilder, scalar_type};
use super::filter::TraceIdFilter;
use super::meta::{AttrType, BlockMeta, DedicatedColumn, DedicatedColumns, FileMeta, RowGroupMeta};
use super::schema;
use super::{BlockError, BlockOptions, BlockSpan, FORMAT_VERSION, META_FILE, SPANS_FILE, ScopeOrigin, TRACES_FILE};

/// Rows per Arrow batch handed to the Parquet writer (a row group is several batches).
const BATCH_ROWS: usize = 64 * 1024;
/// Parts of a multipart upload (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 8 << 20;
const SERVICE_NAME_KEY: &str = "service.name";
/// `STATUS_CODE_ERROR`.
const STATUS_ERROR: i32 = 2;

pub async fn write_block(
    store: &dyn ObjectStore,
    tenant: &Tenant,
    spans: Vec<BlockSpan>,
    decisions: &HashMap<TraceId, Arc<SamplingDecision>>,
    options: &BlockOptions,
) -> Result<BlockMeta, BlockError> {
    if spans.is_empty() {
        return Err(BlockError::NoSpans);
    }
    for s in &spans {
        if s.span.trace_id.len() != 16 || s.span.span_id.len() != 8 {
            return Err(BlockError::InvalidSpan(format!(
                "trace id of {} bytes and span id of {} bytes (16 and 8 needed)",
                s.span.trace_id.len(),
                s.span.span_id.len()
            )));
        }
    }
    let spans = sorted(spans);

    let (origin_of, origin_rows) = origins(&spans);
    let traces = trace_runs(&spans);
    let groups = cut_row_groups(&traces, options.row_group_spans);
    let group_keys: Vec<KeyCounts> =
        groups.iter().map(|g| KeyCounts::of(&spans[traces[g.start].start..traces[g.end - 1].end])).collect();
    let dedicated = choose_dedicated(spans.len(), &group_keys, &origin_of, &origin_rows, options);
    let origins = origin_rows.iter().map(|o| EncodedOrigin::new(o, &dedicated.resource)).collect::<Vec<_>>();
    let block_id = ulid::Ulid::generate().to_string();
    let tenant = tenant.as_str();

    // spans.parquet
    let schema = schema::spans_schema(&dedicated);
    let sink = ObjectSink::new(store, super::block_path(tenant, &block_id, SPANS_FILE));
    let mut writer = AsyncArrowWriter::try_new(sink, Arc::clone(&schema), Some(schema::spans_properties(options)))?;
    let mut encoder = SpanEncoder::new(&dedicated);
    let mut row_groups = Vec::with_capacity(groups.len());
    let mut filter = TraceIdFilter::with_capacity(traces.len(), options.filter_false_positive_rate);
    for (group, keys) in groups.iter().zip(&group_keys) {
        let rows = traces[group.start].start..traces[group.end - 1].end;
        for start in rows.clone().step_by(BATCH_ROWS) {
            let end = (start + BATCH_ROWS).min(rows.end);
            let batch = encoder.batch(&schema, &spans[start..end], &origin_of[start..end], &origins)?;
            writer.write(&batch).await?;
        }
        writer.flush().await?;
        row_groups.push(summarize(&spans[rows.clone()], &origin_of[rows], &origins, keys, group.len(), options));
    }
    let parquet_meta = writer.finish().await?;
    let spans_file = file_meta(writer.bytes_written() as u64, &parquet_meta);

    // traces.parquet
    let mut summaries = Vec::with_capacity(traces.len());
    for run in &traces {
        let mut summary = summarize_trace(&spans[run.clone()], &origin_of[run.clone()], &origins);
        summary.decision = decisions.get(&summary.trace_id).map(Arc::as_ref);
        filter.insert(&summary.trace_id);
        summaries.push(summary);
    }
    let traces_schema = schema::traces_schema();
    let sink = ObjectSink::new(store, super::block_path(tenant, &block_id, TRACES_FILE));
    let mut writer =
        AsyncArrowWriter::try_new(sink, Arc::clone(&traces_schema), Some(schema::traces_properties(options)))?;
    for chunk in summaries.chunks(BATCH_ROWS) {
        writer.write(&traces_batch(&traces_schema, chunk)?).await?;
    }
    let parquet_meta = writer.finish().await?;
    let traces_file = file_meta(writer.bytes_written() as u64, &parquet_meta);

    let red_summary_bucket_nanos = super::red_summary::write_summaries(store, tenant, &block_id, &spans).await?;
    let meta = BlockMeta {
        format_version: FORMAT_VERSION,
        tenant: tenant.to_owned(),
        block_id,
        span_count: spans.len() as u64,
        trace_count: traces.len() as u64,
        min_start_unix_nano: spans.iter().map(|s| s.span.start_time_unix_nano).min().unwrap_or(0),
        max_end_unix_nano: spans.iter().map(|s| s.span.end_time_unix_nano).max().unwrap_or(0),
        min_trace_id: summaries.first().map(|t| t.trace_id).unwrap_or_default(),
        max_trace_id: summaries.last().map(|t| t.trace_id).unwrap_or_default(),
        spans_file,
        traces_file,
        row_groups,
        dedicated,
        trace_filter: filter,
        red_summary_bucket_nanos,
    };
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|source| BlockError::Meta { path: meta.path(META_FILE).to_string(), source })?;
    if let Some(point) = options.crash_point_before_meta {
        crate::crash::reached(point);
    }
    store.put_opts(&meta.path(META_FILE), PutPayload::from(json), PutOptions::default()).await?;
    Ok(meta)
}

fn trace_id_of(span: &BlockSpan) -> TraceId {
    TraceId::from_slice(&span.span.trace_id).expect("validated: 16 bytes")
}

/// The spans in block order: by trace id, start and span id. Sorted through compact keys and moved once: comparing
/// the spans' heap-allocated ids directly, and moving the large span structs at every swap, cost several times more.
/// The ids' lengths are checked before.
fn sorted(spans: Vec<BlockSpan>) -> Vec<BlockSpan> {
    let key = |s: &BlockSpan| {
        let id = |bytes: &[u8]| bytes.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        (id(&s.span.trace_id), s.span.start_time_unix_nano, id(&s.span.span_id) as u64)
    };
    let mut order: Vec<((u128, u64, u64), usize)> = spans.iter().map(key).zip(0..).collect();
    order.sort_unstable();
    let mut slots: Vec<Option<BlockSpan>> = spans.into_iter().map(Some).collect();
    order.iter().filter_map(|&(_, i)| slots[i].take()).collect()
}

/// Row ranges of the traces of the sorted spans.
fn trace_runs(spans: &[BlockSpan]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=spans.len() {
        if i == spans.len() || spans[i].span.trace_id != spans[start].span.trace_id {
            runs.push(start..i);
            start = i;
        }
    }
    runs
}

/// Row groups as ranges of traces: each closes at the first trace boundary after `target` spans.
fn cut_row_groups(traces: &[Range<usize>], target: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let (mut first, mut rows) = (0, 0);
    for (i, run) in traces.iter().enumerate() {
        rows += run.len();
        if rows >= target.max(1) {
            groups.push(first..i + 1);
            (first, rows) = (i + 1, 0);
        }
    }
    if first < traces.len() {
        groups.push(first..traces.len());
    }
    groups
}

/// Distinct origins (by `Arc`) in order of first use, and each span's origin.
fn origins(spans: &[BlockSpan]) -> (Vec<u32>, Vec<&ScopeOrigin>) {
    let mut index: HashMap<*const ScopeOrigin, u32> = HashMap::new();
    let mut rows = Vec::new();
    let origin_of = spans
        .iter()
        .map(|s| {
            *index.entry(Arc::as_ptr(&s.origin)).or_insert_with(|| {
                rows.push(s.origin.as_ref());
                rows.len() as u32 - 1
            })
        })
        .collect();
    (origin_of, rows)
}

/// How often each span attribute key occurs in some spans, by value type.
struct KeyCounts<'a>(HashMap<&'a str, [u64; 5], foldhash::fast::RandomState>);

impl<'a> KeyCounts<'a> {
    fn of(spans: &'a [BlockSpan]) -> Self {
        let mut counts: HashMap<&str, [u64; 5], foldhash::fast::RandomState> = HashMap::default();
        for s in spans {
            for kv in &s.span.attributes {
                let slot = match scalar_type(kv) {
                    Some(AttrType::String) => 0,
                    Some(AttrType::Int) => 1,
                    Some(AttrType::Double) => 2,
                    Some(AttrType::Bool) => 3,
                    None => 4,
                };
                counts.entry(kv.key.as_str()).or_default()[slot] += 1;
            }
        }
        Self(counts)
    }
}

const SCALAR_TYPES: [AttrType; 4] = [AttrType::String, AttrType::Int, AttrType::Double, AttrType::Bool];

fn choose_dedicated(
    span_count: usize,
    group_keys: &[KeyCounts<'_>],
    origin_of: &[u32],
    origins: &[&ScopeOrigin],
    options: &BlockOptions,
) -> DedicatedColumns {
    let threshold = ((span_count as f64 * options.dedicated_min_fraction).ceil() as u64).max(1);
    let mut span_counts: HashMap<(&str, AttrType), u64> = HashMap::new();
    for keys in group_keys {
        for (key, counts) in &keys.0 {
            for (ty, &n) in SCALAR_TYPES.iter().zip(counts) {
                if n > 0 {
                    *span_counts.entry((key, *ty)).or_default() += n;
                }
            }
        }
    }
    let mut spans_per_origin = vec![0u64; origins.len()];
    for &o in origin_of {
        spans_per_origin[o as usize] += 1;
    }
    let mut resource_counts: HashMap<(&str, AttrType), u64> = HashMap::new();
    for (origin, &n) in origins.iter().zip(&spans_per_origin) {
        let attrs = origin.resource.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
        for kv in attrs {
            if let Some(ty) = scalar_type(kv)
                && kv.key != SERVICE_NAME_KEY
            {
                *resource_counts.entry((kv.key.as_str(), ty)).or_default() += n;
            }
        }
    }
    let pick = |counts: HashMap<(&str, AttrType), u64>, max: usize, prefix: &str| {
        // An empty key would make a column named like the prefix: it stays generic.
        let mut frequent: Vec<_> =
            counts.into_iter().filter(|&((key, _), n)| n >= threshold && !key.is_empty()).collect();
        frequent.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut keys = BTreeSet::new();
        let mut chosen: Vec<DedicatedColumn> = Vec::new();
        for ((key, ty), _) in frequent {
            // One type per key: the most frequent.
            if chosen.len() < max && keys.insert(key) {
                chosen.push(DedicatedColumn { key: key.to_owned(), ty, column: format!("{prefix}{key}") });
            }
        }
        chosen.sort_by(|a, b| a.key.cmp(&b.key));
        chosen
    };
    DedicatedColumns {
        span: pick(span_counts, options.max_dedicated_span_columns, schema::SPAN_ATTR_PREFIX),
        resource: pick(resource_counts, options.max_dedicated_resource_columns, schema::RESOURCE_ATTR_PREFIX),
    }
}

/// Splits attributes into dedicated slots (first attribute with the column's key and type) and the rest,
/// which is sorted by key (similar lists compress better).
fn split_attrs<'a>(
    attrs: &'a [KeyValue],
    columns: &HashMap<&str, (usize, AttrType)>,
    slots: &mut [Option<&'a KeyValue>],
    generic: &mut Vec<&'a KeyValue>,
) {
    slots.iter_mut().for_each(|s| *s = None);
    generic.clear();
    if columns.is_empty() {
        generic.extend(attrs);
        generic.sort_by(|a, b| a.key.cmp(&b.key));
        return;
    }
    for kv in attrs {
        if let Some(&(i, ty)) = columns.get(kv.key.as_str())
            && slots[i].is_none()
            && scalar_type(kv) == Some(ty)
        {
            slots[i] = Some(kv);
            continue;
        }
        generic.push(kv);
    }
    generic.sort_by(|a, b| a.key.cmp(&b.key));
}

fn column_lookup(columns: &[DedicatedColumn]) -> HashMap<&str, (usize, AttrType)> {
    columns.iter().enumerate().map(|(i, c)| (c.key.as_str(), (i, c.ty))).collect()
}

/// The per-span columns of one origin (resource and scope), computed once.
struct EncodedOrigin<'a> {
    service_name: Option<&'a str>,
    resource_dedicated: Vec<Option<&'a KeyValue>>,
    resource_generic: Vec<&'a KeyValue>,
    resource_dropped: Option<u32>,
    resource_entity_refs: Option<Vec<u8>>,
    resource_schema_url: &'a str,
    resource_keys: Vec<&'a str>,
    scope_name: Option<&'a str>,
    scope_version: Option<&'a str>,
    scope_attrs: Vec<&'a KeyValue>,
    scope_dropped: Option<u32>,
    scope_schema_url: &'a str,
}

impl<'a> EncodedOrigin<'a> {
    fn new(origin: &'a ScopeOrigin, dedicated: &[DedicatedColumn]) -> Self {
        let resource = origin.resource.resource.as_ref();
        let mut attrs: Vec<&KeyValue> = resource.map(|r| r.attributes.iter().collect()).unwrap_or_default();
        let service = attrs.iter().position(|kv| {
            kv.key == SERVICE_NAME_KEY
                && kv.key_strindex == 0
                && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(Value::StringValue(_)))
        });
        let service_name = service.map(|i| match attrs.remove(i).value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => s.as_str(),
            _ => unreachable!("checked above"),
        });
        let mut resource_dedicated = vec![None; dedicated.len()];
        let mut resource_generic = Vec::new();
        let lookup = column_lookup(dedicated);
        for kv in attrs {
            if let Some(&(i, ty)) = lookup.get(kv.key.as_str())
                && resource_dedicated[i].is_none()
                && scalar_type(kv) == Some(ty)
            {
                resource_dedicated[i] = Some(kv);
            } else {
                resource_generic.push(kv);
            }
        }
        resource_generic.sort_by(|a, b| a.key.cmp(&b.key));
        let resource_entity_refs = resource
            .filter(|r| !r.entity_refs.is_empty())
            .map(|r| Resource { entity_refs: r.entity_refs.clone(), ..Default::default() }.encode_to_vec());
        let scope = origin.scope.as_ref();
        let mut scope_attrs: Vec<&KeyValue> = scope.map(|s| s.attributes.iter().collect()).unwrap_or_default();
        scope_attrs.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            service_name,
            resource_dedicated,
            resource_generic,
            resource_dropped: resource.map(|r| r.dropped_attributes_count),
            resource_entity_refs,
            resource_schema_url: &origin.resource.schema_url,
            resource_keys: resource
                .map(|r| r.attributes.iter().map(|kv| kv.key.as_str()).collect())
                .unwrap_or_default(),
            scope_name: scope.map(|s| s.name.as_str()),
            scope_version: scope.map(|s| s.version.as_str()),
            scope_attrs,
            scope_dropped: scope.map(|s| s.dropped_attributes_count),
            scope_schema_url: &origin.schema_url,
        }
    }
}

/// Encodes spans into record batches of the spans schema.
struct SpanEncoder<'d> {
    dedicated: &'d DedicatedColumns,
    span_lookup: HashMap<&'d str, (usize, AttrType)>,
}

impl<'d> SpanEncoder<'d> {
    fn new(dedicated: &'d DedicatedColumns) -> Self {
        Self { dedicated, span_lookup: column_lookup(&dedicated.span) }
    }

    fn batch(
        &mut self,
        schema: &SchemaRef,
        spans: &[BlockSpan],
        origin_of: &[u32],
        origins: &[EncodedOrigin<'_>],
    ) -> Result<RecordBatch, BlockError> {
        let n = spans.len();
        let mut trace_id = FixedSizeBinaryBuilder::with_capacity(n, 16);
        let mut span_id = FixedSizeBinaryBuilder::with_capacity(n, 8);
        let mut parent = BinaryBuilder::with_capacity(n, n * 8);
        let mut start = Vec::with_capacity(n);
        let mut duration = Vec::with_capacity(n);
        let mut name = StringBuilder::with_capacity(n, n * 16);
        let mut kind = Vec::with_capacity(n);
        let mut service = StringBuilder::with_capacity(n, n * 8);
        let mut trace_state = StringBuilder::with_capacity(n, 0);
        let mut flags = Vec::with_capacity(n);
        let mut status_code = Int32Builder::with_capacity(n);
        let mut status_message = StringBuilder::with_capacity(n, 0);
        let mut dropped_attrs = Vec::with_capacity(n);
        let mut dropped_events = Vec::with_capacity(n);
        let mut dropped_links = Vec::with_capacity(n);
        let mut span_dedicated: Vec<_> = self.dedicated.span.iter().map(|c| DedicatedBuilder::new(c.ty)).collect();
        let mut span_attrs = AttrListBuilder::new();
        let mut events = EventsBuilder::default();
        let mut links = LinksBuilder::default();
        let mut resource_dedicated: Vec<_> =
            self.dedicated.resource.iter().map(|c| DedicatedBuilder::new(c.ty)).collect();
        let mut resource_attrs = AttrListBuilder::new();
        let mut resource_dropped = UInt32Builder::with_capacity(n);
        let mut entity_refs = BinaryBuilder::new();
        let mut resource_schema = StringBuilder::with_capacity(n, 0);
        let mut scope_name = StringBuilder::with_capacity(n, n * 8);
        let mut scope_version = StringBuilder::with_capacity(n, n * 4);
        let mut scope_attrs = AttrListBuilder::new();
        let mut scope_dropped = UInt32Builder::with_capacity(n);
        let mut scope_schema = StringBuilder::with_capacity(n, 0);

        let mut slots = vec![None; self.dedicated.span.len()];
        let mut generic = Vec::new();
        for (s, &o) in spans.iter().zip(origin_of) {
            let span = &s.span;
            let origin = &origins[o as usize];
            trace_id.append_value(&span.trace_id)?;
            span_id.append_value(&span.span_id)?;
            parent.append_value(&span.parent_span_id);
            start.push(span.start_time_unix_nano);
            duration.push(span.end_time_unix_nano.wrapping_sub(span.start_time_unix_nano) as i64);
            name.append_value(&span.name);
            kind.push(span.kind);
            service.append_option(origin.service_name);
            trace_state.append_value(&span.trace_state);
            flags.push(span.flags);
            status_code.append_option(span.status.as_ref().map(|st| st.code));
            status_message.append_option(span.status.as_ref().map(|st| st.message.as_str()));
            dropped_attrs.push(span.dropped_attributes_count);
            dropped_events.push(span.dropped_events_count);
            dropped_links.push(span.dropped_links_count);

            split_attrs(&span.attributes, &self.span_lookup, &mut slots, &mut generic);
            for (b, slot) in span_dedicated.iter_mut().zip(&slots) {
                b.append(*slot);
            }
            span_attrs.append(generic.iter().copied());
            events.append(&span.events);
            links.append(&span.links);

            for (b, slot) in resource_dedicated.iter_mut().zip(&origin.resource_dedicated) {
                b.append(*slot);
            }
            resource_attrs.append(origin.resource_generic.iter().copied());
            resource_dropped.append_option(origin.resource_dropped);
            entity_refs.append_option(origin.resource_entity_refs.as_deref());
            resource_schema.append_value(origin.resource_schema_url);
            scope_name.append_option(origin.scope_name);
            scope_version.append_option(origin.scope_version);
            scope_attrs.append(origin.scope_attrs.iter().copied());
            scope_dropped.append_option(origin.scope_dropped);
            scope_schema.append_value(origin.scope_schema_url);
        }

        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(trace_id.finish()),
            Arc::new(span_id.finish()),
            Arc::new(parent.finish()),
            Arc::new(UInt64Array::from(start)),
            Arc::new(Int64Array::from(duration)),
            Arc::new(name.finish()),
            Arc::new(Int32Array::from(kind)),
            Arc::new(service.finish()),
            Arc::new(trace_state.finish()),
            Arc::new(UInt32Array::from(flags)),
            Arc::new(status_code.finish()),
            Arc::new(status_message.finish()),
            Arc::new(UInt32Array::from(dropped_attrs)),
            Arc::new(UInt32Array::from(dropped_events)),
            Arc::new(UInt32Array::from(dropped_links)),
        ];
        columns.extend(span_dedicated.iter_mut().map(|b| b.finish()));
        columns.push(span_attrs.finish());
        columns.push(events.finish());
        columns.push(links.finish());
        columns.extend(resource_dedicated.iter_mut().map(|b| b.finish()));
        columns.extend([
            resource_attrs.finish(),
            Arc::new(resource_dropped.finish()) as ArrayRef,
            Arc::new(entity_refs.finish()),
            Arc::new(resource_schema.finish()),
            Arc::new(scope_name.finish()),
            Arc::new(scope_version.finish()),
            scope_attrs.finish(),
            Arc::new(scope_dropped.finish()),
            Arc::new(scope_schema.finish()),
        ]);
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

fn list_array(fields: arrow_schema::Fields, columns: Vec<ArrayRef>, offsets: Vec<i32>) -> ArrayRef {
    let values = StructArray::new(fields.clone(), columns, None);
    let item = Arc::new(Field::new("element", DataType::Struct(fields), false));
    Arc::new(ListArray::new(item, OffsetBuffer::new(offsets.into()), Arc::new(values), None))
}

#[derive(Default)]
struct EventsBuilder {
    offsets: Vec<i32>,
    times: Vec<u64>,
    names: StringBuilder,
    attrs: Option<AttrListBuilder>,
    dropped: Vec<u32>,
}

impl EventsBuilder {
    fn append(&mut self, events: &[Event]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let attrs = self.attrs.get_or_insert_with(AttrListBuilder::new);
        for e in events {
            self.times.push(e.time_unix_nano);
            self.names.append_value(&e.name);
            attrs.append(&e.attributes);
            self.dropped.push(e.dropped_attributes_count);
        }
        self.offsets.push(self.times.len() as i32);
    }

    fn finish(&mut self) -> ArrayRef {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(std::mem::take(&mut self.times))),
            Arc::new(self.names.finish()),
            self.attrs.get_or_insert_with(AttrListBuilder::new).finish(),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.dropped))),
        ];
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0);
        }
        list_array(schema::event_fields(), columns, offsets)
    }
}

#[derive(Default)]
struct LinksBuilder {
    offsets: Vec<i32>,
    trace_ids: BinaryBuilder,
    span_ids: BinaryBuilder,
    trace_states: StringBuilder,
    flags: Vec<u32>,
    attrs: Option<AttrListBuilder>,
    dropped: Vec<u32>,
}

impl LinksBuilder {
    fn append(&mut self, links: &[Link]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let attrs = self.attrs.get_or_insert_with(AttrListBuilder::new);
        for l in links {
            self.trace_ids.append_value(&l.trace_id);
            self.span_ids.append_value(&l.span_id);
            self.trace_states.append_value(&l.trace_state);
            self.flags.push(l.flags);
            attrs.append(&l.attributes);
            self.dropped.push(l.dropped_attributes_count);
        }
        self.offsets.push(self.flags.len() as i32);
    }

    fn finish(&mut self) -> ArrayRef {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_ids.finish()),
            Arc::new(self.span_ids.finish()),
            Arc::new(self.trace_states.finish()),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.flags))),
            self.attrs.get_or_insert_with(AttrListBuilder::new).finish(),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.dropped))),
        ];
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0);
        }
        list_array(schema::link_fields(), columns, offsets)
    }
}

/// Distinct values, sorted, unless there are more than `max`.
struct Distinct<'a> {
    values: Option<BTreeSet<&'a str>>,
    max: usize,
}

impl<'a> Distinct<'a> {
    fn new(max: usize) -> Self {
        Self { values: Some(BTreeSet::new()), max }
    }

    fn add(&mut self, value: &'a str) {
        if let Some(values) = &mut self.values
            && values.insert(value)
            && values.len() > self.max
        {
            self.values = None;
        }
    }

    fn finish(self) -> Option<Vec<String>> {
        self.values.map(|v| v.into_iter().map(str::to_owned).collect())
    }
}

fn summarize(
    spans: &[BlockSpan],
    origin_of: &[u32],
    origins: &[EncodedOrigin<'_>],
    keys: &KeyCounts<'_>,
    traces: usize,
    options: &BlockOptions,
) -> RowGroupMeta {
    let max = options.max_summary_values;
    let (mut services, mut names, mut span_keys, mut resource_keys) =
        (Distinct::new(max), Distinct::new(max), Distinct::new(max), Distinct::new(max));
    let mut seen_origins = vec![false; origins.len()];
    let (mut min_start, mut max_start, mut max_end) = (u64::MAX, 0, 0);
    let (mut min_duration, mut max_duration) = (i64::MAX, i64::MIN);
    for (s, &o) in spans.iter().zip(origin_of) {
        let span = &s.span;
        min_start = min_start.min(span.start_time_unix_nano);
        max_start = max_start.max(span.start_time_unix_nano);
        max_end = max_end.max(span.end_time_unix_nano);
        let duration = span.end_time_unix_nano.wrapping_sub(span.start_time_unix_nano) as i64;
        min_duration = min_duration.min(duration);
        max_duration = max_duration.max(duration);
        names.add(&span.name);
        if !std::mem::replace(&mut seen_origins[o as usize], true) {
            let origin = &origins[o as usize];
            if let Some(service) = origin.service_name {
                services.add(service);
            }
            for key in &origin.resource_keys {
                resource_keys.add(key);
            }
        }
    }
    for key in keys.0.keys() {
        span_keys.add(key);
    }
    RowGroupMeta {
        rows: spans.len() as u64,
        traces: traces as u64,
        min_trace_id: spans.first().map(trace_id_of).unwrap_or_default(),
        max_trace_id: spans.last().map(trace_id_of).unwrap_or_default(),
        min_start_unix_nano: min_start,
        max_start_unix_nano: max_start,
        max_end_unix_nano: max_end,
        min_duration_nano: min_duration,
        max_duration_nano: max_duration,
        services: services.finish(),
        span_names: names.finish(),
        span_attribute_keys: span_keys.finish(),
        resource_attribute_keys: resource_keys.finish(),
    }
}

struct TraceSummary<'a> {
    trace_id: TraceId,
    start: u64,
    end: u64,
    root_service: Option<&'a str>,
    root_name: Option<&'a str>,
    spans: u32,
    errors: u32,
    services: BTreeSet<&'a str>,
    decision: Option<&'a SamplingDecision>,
}

/// `spans`: one trace, sorted by start time.
fn summarize_trace<'a>(spans: &'a [BlockSpan], origin_of: &[u32], origins: &[EncodedOrigin<'a>]) -> TraceSummary<'a> {
    let root = spans.iter().position(|s| s.span.parent_span_id.is_empty());
    TraceSummary {
        trace_id: trace_id_of(&spans[0]),
        start: spans.iter().map(|s| s.span.start_time_unix_nano).min().unwrap_or(0),
        end: spans.iter().map(|s| s.span.end_time_unix_nano).max().unwrap_or(0),
        root_service: root.and_then(|i| origins[origin_of[i] as usize].service_name),
        root_name: root.map(|i| spans[i].span.name.as_str()),
        spans: spans.len() as u32,
        errors: spans.iter().filter(|s| s.span.status.as_ref().is_some_and(|st| st.code == STATUS_ERROR)).count()
            as u32,
        services: origin_of.iter().filter_map(|&o| origins[o as usize].service_name).collect(),
        decision: None,
    }
}

fn traces_batch(schema: &SchemaRef, traces: &[TraceSummary<'_>]) -> Result<RecordBatch, BlockError> {
    let n = traces.len();
    let mut trace_id = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut root_service = StringBuilder::new();
    let mut root_name = StringBuilder::new();
    let mut services = StringBuilder::new();
    let mut offsets = vec![0i32];
    for t in traces {
        trace_id.append_value(t.trace_id.0)?;
        root_service.append_option(t.root_service);
        root_name.append_option(t.root_name);
        for s in &t.services {
            services.append_value(s);
        }
        offsets.push(offsets.last().copied().unwrap_or(0) + t.services.len() as i32);
    }
    let item = Arc::new(Field::new("element", DataType::Utf8, false));
    let services: StringArray = services.finish();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(trace_id.finish()),
        Arc::new(UInt64Array::from_iter_values(traces.iter().map(|t| t.start))),
        Arc::new(Int64Array::from_iter_values(traces.iter().map(|t| t.end.wrapping_sub(t.start) as i64))),
        Arc::new(root_service.finish()),
        Arc::new(root_name.finish()),
        Arc::new(UInt32Array::from_iter_values(traces.iter().map(|t| t.spans))),
        Arc::new(UInt32Array::from_iter_values(traces.iter().map(|t| t.errors))),
        Arc::new(ListArray::new(item, OffsetBuffer::new(offsets.into()), Arc::new(services), None)),
        Arc::new(StringArray::from_iter(traces.iter().map(|t| t.decision.and_then(|d| d.policy.as_deref())))),
        Arc::new(Float64Array::from_iter(traces.iter().map(|t| t.decision.map(|d| d.weight)))),
        Arc::new(StringArray::from_iter(traces.iter().map(|t| t.decision.and_then(|d| d.threshold.as_deref())))),
    ];
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// Size of the file and of its tail: the page index (written before the footer) through the end.
fn file_meta(bytes: u64, metadata: &ParquetMetaData) -> FileMeta {
    let index_start = metadata
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .flat_map(|c| [c.column_index_offset(), c.offset_index_offset()])
        .flatten()
        .min();
    let tail_bytes = match index_start {
        Some(offset) if (offset as u64) < bytes => bytes - offset as u64,
        _ => bytes.min(64 << 10),
    };
    FileMeta { bytes, tail_bytes }
}

/// Uploads what the Parquet writer produces: one `put` for a small file, a multipart upload otherwise.
struct ObjectSink<'a> {
    store: &'a dyn ObjectStore,
    path: Path,
    buffer: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
}

impl<'a> ObjectSink<'a> {
    fn new(store: &'a dyn ObjectStore, path: Path) -> Self {
        Self { store, path, buffer: Vec::new(), upload: None }
    }

    async fn put_part(&mut self, part: Vec<u8>) -> object_store::Result<()> {
        if self.upload.is_none() {
            self.upload = Some(self.store.put_multipart_opts(&self.path, PutMultipartOptions::default()).await?);
        }
        let upload = self.upload.as_mut().expect("just set");
        upload.put_part(PutPayload::from(part)).await
    }
}

impl AsyncFileWriter for ObjectSink<'_> {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            self.buffer.extend_from_slice(&bs);
            while self.buffer.len() >= PART_BYTES {
                let rest = self.buffer.split_off(PART_BYTES);
                let part = std::mem::replace(&mut self.buffer, rest);
                self.put_part(part).await.map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
            }
            Ok(())
        })
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            let external = |e: object_store::Error| parquet::errors::ParquetError::External(Box::new(e));
            let rest = std::mem::take(&mut self.buffer);
            match self.upload.take() {
                None => {
                    self.store
                        .put_opts(&self.path, PutPayload::from(rest), PutOptions::default())
                        .await
                        .map_err(external)?;
                }
                Some(mut upload) => {
                    if !rest.is_empty() {
                        upload.put_part(PutPayload::from(rest)).await.map_err(external)?;
                    }
                    upload.complete().await.map_err(external)?;
                }
            }
            Ok(())
        })
    }
}
