//! Writing a block: read the spans' sort keys from their bytes, slice the traces into row groups by start
//! time, then encode `spans.parquet`, `attrs.parquet` and `traces.parquet` one row group at a time, the RED
//! summaries, and `meta.json` last.
//!
//! Spans are read from the bytes they arrived in (see [`super::span_view`]): nothing is decoded into structs but
//! resources and scopes (once per distinct one), events and links.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use clew_model::{SamplingDecision, Tenant, TraceId};
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutMultipartOptions, PutOptions, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::file::metadata::ParquetMetaData;

use super::columns::{
    AttrEntries, DecodedOrigin, EncodedOrigin, KeyCounts, KeyTable, SpanColumns, TraceRow, choose_dedicated, invalid,
    traces_batch, type_slot,
};
use super::filter::TraceIdFilter;
use super::input::SpanSource;
use super::meta::{BlockMeta, FileMeta, RowGroupMeta};
use super::red_summary::RedSpan;
use super::span_view::{SpanView, peek_attribute};
use super::{ATTRS_FILE, BlockError, BlockOptions, FORMAT_VERSION, META_FILE, SPANS_FILE, TRACES_FILE, schema};

/// Parts of a multipart upload (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 8 << 20;

/// A span's place in block order: by trace id, start and span id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    trace: u128,
    start: u64,
    span: u64,
    index: u32,
}

/// The spans of one trace: a run of the sorted keys, and when the trace starts.
struct TraceRun {
    keys: Range<usize>,
    start: u64,
}

pub async fn write_block(
    store: &dyn ObjectStore,
    tenant: &Tenant,
    source: &SpanSource<'_>,
    decisions: &HashMap<TraceId, Arc<SamplingDecision>>,
    options: &BlockOptions,
) -> Result<BlockMeta, BlockError> {
    if source.spans.is_empty() {
        return Err(BlockError::NoSpans);
    }
    // 1. Sort keys, and what choosing dedicated columns needs: key counts per value type, spans per origin.
    let mut keys = Vec::with_capacity(source.spans.len());
    let mut key_counts = KeyCounts::default();
    let mut spans_per_origin = vec![0u64; source.origins.len()];
    for (index, span) in source.spans.iter().enumerate() {
        let view = SpanView::parse(span.bytes).map_err(invalid)?;
        let (Ok(trace), Ok(span_id)) = (<[u8; 16]>::try_from(view.trace_id), <[u8; 8]>::try_from(view.span_id)) else {
            return Err(BlockError::InvalidSpan(format!(
                "trace id of {} bytes and span id of {} bytes (16 and 8 needed)",
                view.trace_id.len(),
                view.span_id.len()
            )));
        };
        keys.push(SortKey {
            trace: u128::from_be_bytes(trace),
            start: view.start,
            span: u64::from_be_bytes(span_id),
            index: index as u32,
        });
        spans_per_origin[span.origin as usize] += 1;
        for kv in view.attribute_bytes() {
            let (key, ty) = kv.ok().and_then(peek_attribute).ok_or_else(|| invalid("malformed attribute"))?;
            key_counts.entry(key).or_default()[type_slot(ty)] += 1;
        }
    }
    keys.sort_unstable();
    let origins: Vec<DecodedOrigin> = source.origins.iter().map(DecodedOrigin::decode).collect::<Result<_, _>>()?;
    let dedicated = choose_dedicated(keys.len(), &key_counts, &origins, &spans_per_origin, options);
    drop(key_counts);
    let encoded_origins: Vec<EncodedOrigin<'_>> =
        origins.iter().map(|o| EncodedOrigin::new(o, &dedicated.resource)).collect();

    // 2. Traces, and row groups as slices of them by start time, each in trace-id order.
    let traces = trace_runs(&keys);
    let groups = slice_by_start(&traces, options.row_group_spans);

    // 3. The files, one row group at a time.
    let block_id = ulid::Ulid::generate().to_string();
    let tenant = tenant.as_str();
    let spans_schema = schema::spans_schema(&dedicated);
    let attrs_schema = schema::attrs_schema();
    let traces_schema = schema::traces_schema();
    let mut spans_writer = AsyncArrowWriter::try_new(
        ObjectSink::new(store, super::block_path(tenant, &block_id, SPANS_FILE)),
        Arc::clone(&spans_schema),
        Some(schema::spans_properties(options)),
    )?;
    let mut traces_writer = AsyncArrowWriter::try_new(
        ObjectSink::new(store, super::block_path(tenant, &block_id, TRACES_FILE)),
        Arc::clone(&traces_schema),
        Some(schema::traces_properties(options)),
    )?;
    let mut attrs_writer: Option<AsyncArrowWriter<ObjectSink<'_>>> = None;
    let mut attrs_row_groups = 0u32;
    let mut attr_keys = KeyTable::default();
    let mut attr_counts: Vec<Vec<(u32, u32)>> = Vec::with_capacity(groups.len());
    let mut filter = TraceIdFilter::with_capacity(traces.len(), options.filter_false_positive_rate);
    let mut red = super::red_summary::Summarizer::default();
    let mut row_groups = Vec::with_capacity(groups.len());
    let mut first_row = 0u64;
    for group in &groups {
        let rows: usize = group.iter().map(|&t| traces[t].keys.len()).sum();
        let mut columns = SpanColumns::new(&dedicated, rows);
        let mut attrs = AttrEntries::default();
        let mut trace_rows = Vec::with_capacity(group.len());
        let mut stats = GroupStats::new(options.max_summary_values);
        let mut row = first_row as u32;
        for &t in group {
            let run = &traces[t];
            let trace_id = TraceId(keys[run.keys.start].trace.to_be_bytes());
            filter.insert(&trace_id);
            let decision = decisions.get(&trace_id).map(Arc::as_ref);
            let mut trace = TraceRow::new(trace_id.0, decision);
            for key in &keys[run.keys.clone()] {
                let span = &source.spans[key.index as usize];
                let view = SpanView::parse(span.bytes).map_err(invalid)?;
                let origin = &encoded_origins[span.origin as usize];
                columns.append(&view, origin, decision, row, &mut attr_keys, &mut attrs)?;
                trace.add(&view, origin.service_name);
                stats.add(&view, span.origin, origin);
                red.add(RedSpan::of_view(origin.service_name, &view));
                row += 1;
            }
            stats.trace(run.start);
            trace_rows.push(trace);
        }
        spans_writer.write(&columns.finish(&spans_schema)?).await?;
        spans_writer.flush().await?;
        traces_writer.write(&traces_batch(&traces_schema, &mut trace_rows)?).await?;
        traces_writer.flush().await?;
        let attrs_row_group = if attrs.is_empty() {
            attr_counts.push(Vec::new());
            None
        } else {
            let (batch, counts) = attrs.finish(&attrs_schema, &attr_keys)?;
            attr_counts.push(counts);
            if attrs_writer.is_none() {
                attrs_writer = Some(AsyncArrowWriter::try_new(
                    ObjectSink::new(store, super::block_path(tenant, &block_id, ATTRS_FILE)),
                    Arc::clone(&attrs_schema),
                    Some(schema::attrs_properties(options)),
                )?);
            }
            let writer = attrs_writer.as_mut().expect("just created");
            writer.write(&batch).await?;
            writer.flush().await?;
            attrs_row_groups += 1;
            Some(attrs_row_groups - 1)
        };
        let first = TraceId(keys[traces[group[0]].keys.start].trace.to_be_bytes());
        let last = TraceId(keys[traces[group[group.len() - 1]].keys.start].trace.to_be_bytes());
        row_groups.push(stats.finish(rows, group.len(), first_row, (first, last), attrs_row_group));
        first_row += rows as u64;
    }
    let spans_meta = spans_writer.finish().await?;
    let spans_file = file_meta(spans_writer.bytes_written() as u64, &spans_meta);
    let traces_meta = traces_writer.finish().await?;
    let traces_file = file_meta(traces_writer.bytes_written() as u64, &traces_meta);
    let attrs_file = match attrs_writer.as_mut() {
        Some(writer) => {
            let meta = writer.finish().await?;
            Some(file_meta(writer.bytes_written() as u64, &meta))
        }
        None => None,
    };

    // The key table in key order, and each row group's counts along it.
    let mut order: Vec<u32> = (0..attr_keys.keys.len() as u32).collect();
    order.sort_unstable_by(|a, b| attr_keys.keys[*a as usize].cmp(&attr_keys.keys[*b as usize]));
    let mut rank = vec![0usize; order.len()];
    for (r, &id) in order.iter().enumerate() {
        rank[id as usize] = r;
    }
    for (rg, counts) in row_groups.iter_mut().zip(attr_counts) {
        if !counts.is_empty() {
            rg.attr_entries = vec![0; order.len()];
            for (key, count) in counts {
                rg.attr_entries[rank[key as usize]] = count;
            }
        }
    }
    let attr_keys: Vec<String> = order.iter().map(|&id| attr_keys.keys[id as usize].to_string()).collect();

    let red_summary_bucket_nanos =
        super::red_summary::write_summaries(store, tenant, &block_id, red.finish(), keys.len()).await?;
    let first_key = keys.first().expect("not empty");
    let last_key = keys.last().expect("not empty");
    let meta = BlockMeta {
        format_version: FORMAT_VERSION,
        tenant: tenant.to_owned(),
        block_id,
        span_count: keys.len() as u64,
        trace_count: traces.len() as u64,
        min_start_unix_nano: row_groups.iter().map(|rg| rg.min_start_unix_nano).min().unwrap_or(0),
        max_end_unix_nano: row_groups.iter().map(|rg| rg.max_end_unix_nano).max().unwrap_or(0),
        min_trace_id: TraceId(first_key.trace.to_be_bytes()),
        max_trace_id: TraceId(last_key.trace.to_be_bytes()),
        spans_file,
        traces_file,
        attrs_file,
        attr_keys,
        row_groups,
        dedicated,
        trace_filter: filter,
        red_summary_bucket_nanos,
    };
    let json = serde_json::to_vec(&meta)
        .map_err(|source| BlockError::Meta { path: meta.path(META_FILE).to_string(), source })?;
    if let Some(point) = options.crash_point_before_meta {
        crate::crash::reached(point);
    }
    store.put_opts(&meta.path(META_FILE), PutPayload::from(json), PutOptions::default()).await?;
    Ok(meta)
}

/// The traces of the sorted keys, in trace-id order.
fn trace_runs(keys: &[SortKey]) -> Vec<TraceRun> {
    let mut runs = Vec::new();
    let mut first = 0;
    for i in 1..=keys.len() {
        if i == keys.len() || keys[i].trace != keys[first].trace {
            runs.push(TraceRun { keys: first..i, start: keys[first].start });
            first = i;
        }
    }
    runs
}

/// Row groups as lists of traces (indexes into `traces`, in trace-id order): the traces ordered by start, cut
/// into slices of about `target` spans (at trace boundaries), oldest first. A search for the newest matches
/// then reads the newest row groups of each block first and can stop early.
fn slice_by_start(traces: &[TraceRun], target: usize) -> Vec<Vec<usize>> {
    let mut by_start: Vec<usize> = (0..traces.len()).collect();
    by_start.sort_unstable_by_key(|&t| (traces[t].start, t));
    let mut group_of = vec![0u32; traces.len()];
    let (mut group, mut spans) = (0u32, 0usize);
    for &t in &by_start {
        if spans >= target.max(1) {
            (group, spans) = (group + 1, 0);
        }
        group_of[t] = group;
        spans += traces[t].keys.len();
    }
    let mut groups = vec![Vec::new(); group as usize + 1];
    for (t, &g) in group_of.iter().enumerate() {
        groups[g as usize].push(t);
    }
    groups
}

/// Distinct values, sorted, unless there are more than `max`.
struct Distinct<'a> {
    values: Option<std::collections::BTreeSet<&'a str>>,
    max: usize,
}

impl<'a> Distinct<'a> {
    fn new(max: usize) -> Self {
        Self { values: Some(Default::default()), max }
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

/// What `meta.json` says of a row group, gathered span by span.
struct GroupStats<'a> {
    min_start: u64,
    max_start: u64,
    max_end: u64,
    min_duration: i64,
    max_duration: i64,
    min_trace_start: u64,
    max_trace_start: u64,
    services: Distinct<'a>,
    names: Distinct<'a>,
    resource_keys: Distinct<'a>,
    seen_origins: Vec<u32>,
}

impl<'a> GroupStats<'a> {
    fn new(max: usize) -> Self {
        Self {
            min_start: u64::MAX,
            max_start: 0,
            max_end: 0,
            min_duration: i64::MAX,
            max_duration: i64::MIN,
            min_trace_start: u64::MAX,
            max_trace_start: 0,
            services: Distinct::new(max),
            names: Distinct::new(max),
            resource_keys: Distinct::new(max),
            seen_origins: Vec::new(),
        }
    }

    fn add(&mut self, view: &SpanView<'a>, origin_index: u32, origin: &EncodedOrigin<'a>) {
        self.min_start = self.min_start.min(view.start);
        self.max_start = self.max_start.max(view.start);
        self.max_end = self.max_end.max(view.end);
        let duration = view.end.wrapping_sub(view.start) as i64;
        self.min_duration = self.min_duration.min(duration);
        self.max_duration = self.max_duration.max(duration);
        self.names.add(view.name);
        if let Err(at) = self.seen_origins.binary_search(&origin_index) {
            self.seen_origins.insert(at, origin_index);
            if let Some(service) = origin.service_name {
                self.services.add(service);
            }
            for key in &origin.resource_keys {
                self.resource_keys.add(key);
            }
        }
    }

    fn trace(&mut self, start: u64) {
        self.min_trace_start = self.min_trace_start.min(start);
        self.max_trace_start = self.max_trace_start.max(start);
    }

    fn finish(
        self,
        rows: usize,
        traces: usize,
        first_row: u64,
        (min_trace_id, max_trace_id): (TraceId, TraceId),
        attrs_row_group: Option<u32>,
    ) -> RowGroupMeta {
        RowGroupMeta {
            rows: rows as u64,
            traces: traces as u64,
            first_row,
            min_trace_start_unix_nano: self.min_trace_start,
            max_trace_start_unix_nano: self.max_trace_start,
            min_trace_id,
            max_trace_id,
            min_start_unix_nano: self.min_start,
            max_start_unix_nano: self.max_start,
            max_end_unix_nano: self.max_end,
            min_duration_nano: self.min_duration,
            max_duration_nano: self.max_duration,
            services: self.services.finish(),
            span_names: self.names.finish(),
            resource_attribute_keys: self.resource_keys.finish(),
            attrs_row_group,
            attr_entries: Vec::new(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, spans: usize) -> TraceRun {
        TraceRun { keys: 0..spans, start }
    }

    #[test]
    fn row_groups_slice_traces_by_start_and_keep_id_order_inside() {
        // Traces in id order with these starts, 2 spans each.
        let traces: Vec<TraceRun> = [50, 10, 40, 20, 30, 60].iter().map(|&s| run(s, 2)).collect();
        let groups = slice_by_start(&traces, 4);
        // By start: 10 (1), 20 (3) | 30 (4), 40 (2) | 50 (0), 60 (5).
        assert_eq!(groups, vec![vec![1, 3], vec![2, 4], vec![0, 5]]);
        assert_eq!(slice_by_start(&traces, 100), vec![vec![0, 1, 2, 3, 4, 5]]);
        assert_eq!(slice_by_start(&traces[..1], 1), vec![vec![0]]);
    }
}
