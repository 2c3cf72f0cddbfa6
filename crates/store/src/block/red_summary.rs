//! RED summaries: what historical RED needs from a block, pre-aggregated when the block is written, so a RED
//! query over a long range reads a few small objects instead of every span.
//!
//! For each summary width (see [`SUMMARY_BUCKET_NANOS`]) the block gets one object `red-<seconds>s.pb`, written
//! before `meta.json` (which lists the widths in `red_summary_bucket_nanos`; a block without the list predates
//! summaries and is scanned instead). It holds, per (service, span name, span kind, status is error) and per
//! time bucket of that width by span start: the span count and the span durations bucketed by
//! [`clew_model::latency_buckets`] (the scheme of the analysis sketch, so a summary becomes a sketch exactly).
//! The encoding is protobuf in sections, one per service and run of 64 time buckets, each compressed with zstd,
//! with an index at the end, so a reader fetches and decodes only the services and times it asks for; latency
//! bucket indexes are delta-encoded.
//!
//! [`scan_spans`] is the fallback: the same facts per span, read from only the columns they need.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use arrow_array::{Array, Int32Array, Int64Array, RecordBatch, UInt64Array};
use clew_model::latency_buckets::bucket_of_nanos;
use clew_model::otlp::Span;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::push_decoder::ParquetPushDecoderBuilder;
use prost::Message;

use super::attrs::{StrValues, corrupt, downcast};
use super::meta::BlockMeta;
use super::read::{decode, project_columns};
use super::{BlockError, BlockSpan, ResourceOrigin, SPANS_FILE, schema};

/// The summary widths written for each block, finest first; each divides the next. A query uses the coarsest
/// one its step and start are multiples of.
pub const SUMMARY_BUCKET_NANOS: [u64; 3] = [60_000_000_000, 3_600_000_000_000, 86_400_000_000_000];

/// `STATUS_CODE_ERROR`.
const STATUS_ERROR: i32 = 2;
/// Rows per decoded batch of the fallback scan.
const BATCH_ROWS: usize = 8 * 1024;

/// The object name of the summary of one width: `red-60s.pb`.
pub fn summary_file(bucket_nanos: u64) -> String {
    format!("red-{}s.pb", bucket_nanos / 1_000_000_000)
}

/// A summary as read: the series of the services asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedSummary {
    /// Width of a time bucket, nanoseconds.
    pub bucket_nanos: u64,
    /// Sorted by (service, name, kind, error) when written; as read, a series can come in parts (see
    /// [`read_summary`]).
    pub series: Vec<RedSummarySeries>,
}

/// The index at the end of the object (followed by its length, u32 little-endian): where each section is.
/// A section holds the series of one service over a run of [`SECTION_BUCKETS`] time buckets, encoded apart so
/// a reader fetches and decodes only the services and times it wants.
#[derive(Clone, PartialEq, Message)]
struct SummaryIndex {
    #[prost(uint64, tag = "1")]
    bucket_nanos: u64,
    /// Sorted by service (none first), then time.
    #[prost(message, repeated, tag = "2")]
    sections: Vec<SectionRef>,
}

#[derive(Clone, PartialEq, Message)]
struct SectionRef {
    #[prost(string, optional, tag = "1")]
    service: Option<String>,
    /// Time buckets `[first_bucket, first_bucket + SECTION_BUCKETS)`.
    #[prost(uint64, tag = "2")]
    first_bucket: u64,
    /// Byte range of an encoded [`SeriesList`] in the object.
    #[prost(uint64, tag = "3")]
    offset: u64,
    #[prost(uint64, tag = "4")]
    length: u64,
}

/// A summary finer than the coarsest is written only if its cells hold this many spans on average (a cell's
/// latency histogram has about as many buckets as a few dozen spans fill: thinner cells cost as much as the
/// spans' own durations, and RED scans those instead)...
const MIN_SPANS_PER_CELL: usize = 32;
/// ...or it is this small.
const SMALL_SUMMARY_BYTES: usize = 256 << 10;
/// zstd level of a section.
const SECTION_ZSTD_LEVEL: i32 = 3;
/// Time buckets per section: an hour of minutes, 64 hours, or 64 days.
const SECTION_BUCKETS: u64 = 64;
/// Bytes fetched from the end of an object first, in the hope that they hold the whole index.
const INDEX_GUESS_BYTES: u64 = 64 << 10;

#[derive(Clone, PartialEq, Message)]
struct SeriesList {
    #[prost(message, repeated, tag = "1")]
    series: Vec<RedSummarySeries>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RedSummarySeries {
    /// The resource's `service.name`; absent when it has none.
    #[prost(string, optional, tag = "1")]
    pub service: Option<String>,
    #[prost(string, tag = "2")]
    pub name: String,
    /// OTLP span kind.
    #[prost(int32, tag = "3")]
    pub kind: i32,
    /// Whether the spans have status code ERROR.
    #[prost(bool, tag = "4")]
    pub error: bool,
    /// By time bucket.
    #[prost(message, repeated, tag = "5")]
    pub cells: Vec<RedCell>,
}

/// The spans of a series that started in one time bucket.
#[derive(Clone, PartialEq, Message)]
pub struct RedCell {
    /// Spans that started in `[bucket × bucket_nanos, (bucket + 1) × bucket_nanos)` (Unix nanoseconds).
    #[prost(uint64, tag = "1")]
    pub bucket: u64,
    #[prost(uint64, tag = "2")]
    pub count: u64,
    /// Durations in no latency bucket (zero, or end before start).
    #[prost(uint64, tag = "3")]
    pub zeros: u64,
    /// Sum of the durations, nanoseconds (saturating).
    #[prost(uint64, tag = "4")]
    pub sum_nanos: u64,
    /// Latency bucket indexes, ascending, each but the first as the difference to the one before.
    #[prost(sint32, repeated, tag = "5")]
    pub latency_bucket_deltas: Vec<i32>,
    /// Spans in each of those latency buckets.
    #[prost(uint64, repeated, tag = "6")]
    pub latency_counts: Vec<u64>,
}

impl RedCell {
    /// (latency bucket index, count) pairs, ascending.
    pub fn latency_buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.latency_bucket_deltas
            .iter()
            .scan(0i32, |index, delta| {
                *index = index.wrapping_add(*delta);
                Some(*index)
            })
            .zip(self.latency_counts.iter().copied())
    }
}

/// The facts RED needs about one span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedSpan<'a> {
    pub service: Option<&'a str>,
    pub name: &'a str,
    pub kind: i32,
    pub error: bool,
    pub start_unix_nano: u64,
    /// End − start, 0 when the end is before the start.
    pub duration_nanos: u64,
}

impl<'a> RedSpan<'a> {
    pub(crate) fn of_view(service: Option<&'a str>, span: &super::span_view::SpanView<'a>) -> Self {
        Self {
            service,
            name: span.name,
            kind: span.kind,
            error: span.status.is_some_and(|s| s.code == STATUS_ERROR),
            start_unix_nano: span.start,
            duration_nanos: span.end.saturating_sub(span.start),
        }
    }

    pub fn of(service: Option<&'a str>, span: &'a Span) -> Self {
        Self {
            service,
            name: &span.name,
            kind: span.kind,
            error: span.status.as_ref().is_some_and(|s| s.code == STATUS_ERROR),
            start_unix_nano: span.start_time_unix_nano,
            duration_nanos: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
        }
    }
}

type SeriesKey<'a> = (Option<&'a str>, &'a str, i32, bool);

/// One span as the summary sees it: series (rank of its key), finest time bucket, latency bucket
/// ([`ZERO`] for none), duration in nanoseconds.
type Entry = (u32, u64, i32, u64);

/// The latency "bucket" of durations in none (sorts first).
const ZERO: i32 = i32::MIN;

/// Builds the summaries of a block's spans, fed one span at a time: a flat entry per span, then at the end one
/// sort and runs (no allocation per cell).
#[derive(Default)]
pub(crate) struct Summarizer<'a> {
    ids: HashMap<SeriesKey<'a>, u32>,
    keys: Vec<SeriesKey<'a>>,
    entries: Vec<Entry>,
}

impl<'a> Summarizer<'a> {
    pub fn add(&mut self, span: RedSpan<'a>) {
        let key = (span.service, span.name, span.kind, span.error);
        let id = *self.ids.entry(key).or_insert_with(|| {
            self.keys.push(key);
            self.keys.len() as u32 - 1
        });
        let latency = bucket_of_nanos(span.duration_nanos).unwrap_or(ZERO);
        self.entries.push((id, span.start_unix_nano / SUMMARY_BUCKET_NANOS[0], latency, span.duration_nanos));
    }

    /// The summaries, one per width of [`SUMMARY_BUCKET_NANOS`], in that order.
    pub fn finish(self) -> Vec<RedSummary> {
        let Self { keys, mut entries, .. } = self;
        let finest = SUMMARY_BUCKET_NANOS[0];
        // Series in key order: replace each id by its key's rank.
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_unstable_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
        let mut rank = vec![0u32; keys.len()];
        for (r, id) in order.iter().enumerate() {
            rank[*id as usize] = r as u32;
        }
        for entry in &mut entries {
            entry.0 = rank[entry.0 as usize];
        }
        entries.sort_unstable_by_key(|&(series, bucket, latency, _)| (series, bucket, latency));
        let mut scratch = Vec::new();
        SUMMARY_BUCKET_NANOS
            .iter()
            .map(|&width| {
                let ratio = width / finest;
                let series = entries
                    .chunk_by(|a, b| a.0 == b.0)
                    .map(|run| {
                        let (service, name, kind, error) = keys[order[run[0].0 as usize] as usize];
                        let cells = run
                            .chunk_by(|a, b| a.1 / ratio == b.1 / ratio)
                            .map(|cell| summarize_cell(cell, ratio, &mut scratch))
                            .collect();
                        RedSummarySeries {
                            service: service.map(str::to_owned),
                            name: name.to_owned(),
                            kind,
                            error,
                            cells,
                        }
                    })
                    .collect();
                RedSummary { bucket_nanos: width, series }
            })
            .collect()
    }
}

/// The summaries of decoded spans (tests compare them with what blocks store).
pub fn summarize(spans: &[BlockSpan]) -> Vec<RedSummary> {
    let mut services: HashMap<*const ResourceOrigin, Option<&str>> = HashMap::new();
    let mut summarizer = Summarizer::default();
    for s in spans {
        let resource = &s.origin.resource;
        let service = *services
            .entry(Arc::as_ptr(resource))
            .or_insert_with(|| clew_model::service_name(resource.resource.as_ref()));
        summarizer.add(RedSpan::of(service, &s.span));
    }
    summarizer.finish()
}

/// The cell of a run of entries of one series and time bucket (finest buckets `ratio` at a time).
fn summarize_cell(entries: &[Entry], ratio: u64, scratch: &mut Vec<i32>) -> RedCell {
    scratch.clear();
    scratch.extend(entries.iter().map(|e| e.2));
    if ratio > 1 {
        // Sorted by latency within each finest bucket only.
        scratch.sort_unstable();
    }
    let zeros = scratch.iter().take_while(|l| **l == ZERO).count();
    let (mut latency_bucket_deltas, mut latency_counts, mut previous) = (Vec::new(), Vec::new(), 0i32);
    for run in scratch[zeros..].chunk_by(|a, b| a == b) {
        latency_bucket_deltas.push(run[0].wrapping_sub(previous));
        latency_counts.push(run.len() as u64);
        previous = run[0];
    }
    RedCell {
        bucket: entries[0].1 / ratio,
        count: entries.len() as u64,
        zeros: zeros as u64,
        sum_nanos: entries.iter().fold(0u64, |sum, e| sum.saturating_add(e.3)),
        latency_bucket_deltas,
        latency_counts,
    }
}

/// The stored form: the sections, then the index and its length.
fn encode(summary: &RedSummary) -> Vec<u8> {
    let mut out = Vec::new();
    let mut index = SummaryIndex { bucket_nanos: summary.bucket_nanos, sections: Vec::new() };
    for service in summary.series.chunk_by(|a, b| a.service == b.service) {
        let mut by_section: BTreeMap<u64, Vec<RedSummarySeries>> = BTreeMap::new();
        for series in service {
            for cells in series.cells.chunk_by(|a, b| a.bucket / SECTION_BUCKETS == b.bucket / SECTION_BUCKETS) {
                // Stored with each time bucket as the difference to the cell before (the first absolute).
                let mut previous = 0;
                let cells = cells
                    .iter()
                    .map(|c| {
                        let delta = c.bucket - previous;
                        previous = c.bucket;
                        RedCell { bucket: delta, ..c.clone() }
                    })
                    .collect();
                let part = RedSummarySeries {
                    service: series.service.clone(),
                    name: series.name.clone(),
                    kind: series.kind,
                    error: series.error,
                    cells,
                };
                by_section.entry(part.cells[0].bucket / SECTION_BUCKETS).or_default().push(part);
            }
        }
        for (section, series) in by_section {
            // Latency buckets are small deltas and counts mostly 1: zstd takes a section to about a quarter.
            let bytes = zstd::bulk::compress(&SeriesList { series }.encode_to_vec(), SECTION_ZSTD_LEVEL)
                .expect("zstd compresses into a Vec");
            index.sections.push(SectionRef {
                service: service[0].service.clone(),
                first_bucket: section * SECTION_BUCKETS,
                offset: out.len() as u64,
                length: bytes.len() as u64,
            });
            out.extend_from_slice(&bytes);
        }
    }
    let index = index.encode_to_vec();
    out.extend_from_slice(&index);
    out.extend_from_slice(&(index.len() as u32).to_le_bytes());
    out
}

/// Computes and puts the summaries of a block being written; returns their widths for `meta.json`.
pub(crate) async fn write_summaries(
    store: &dyn ObjectStore,
    tenant: &str,
    block_id: &str,
    summaries: Vec<RedSummary>,
    span_count: usize,
) -> Result<Vec<u64>, BlockError> {
    let mut widths = Vec::new();
    let coarsest = summaries.len() - 1;
    for (i, summary) in summaries.iter().enumerate() {
        let cells: usize = summary.series.iter().map(|s| s.cells.len()).sum();
        // A cell takes at least a few bytes: past this many, a summary that hardly aggregates is large anyway.
        if i < coarsest && cells * MIN_SPANS_PER_CELL > span_count && cells * 4 > SMALL_SUMMARY_BYTES {
            continue;
        }
        let bytes = encode(summary);
        // A finer summary that hardly aggregates (spans spread thinly over time) costs about as much as the spans
        // it stands for: RED scans such a block for fine steps instead. The coarsest is always written.
        if i < coarsest && cells * MIN_SPANS_PER_CELL > span_count && bytes.len() > SMALL_SUMMARY_BYTES {
            continue;
        }
        let path = super::block_path(tenant, block_id, &summary_file(summary.bucket_nanos));
        store.put(&path, PutPayload::from(bytes)).await?;
        widths.push(summary.bucket_nanos);
    }
    Ok(widths)
}

/// The block's summary of width `bucket_nanos`, with the series of `services` only (all when empty; a span
/// without a service name is in no named service) and at least the cells that start in `[start, end)` (whole
/// sections are read, so some outside may come too), or `None` when the block has no summary of that width.
/// A series over several sections comes in as many parts, by service then time, sorted by key in each.
pub async fn read_summary(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    bucket_nanos: u64,
    services: &[String],
    (start, end): (u64, u64),
) -> Result<Option<RedSummary>, BlockError> {
    if !meta.red_summary_bucket_nanos.contains(&bucket_nanos) {
        return Ok(None);
    }
    let path: Path = meta.path(&summary_file(bucket_nanos));
    let corrupt =
        |reason: String| BlockError::Corrupt { block: meta.block_id.clone(), reason: format!("{path}: {reason}") };
    let tail =
        store.get_opts(&path, GetOptions { range: Some(GetRange::Suffix(INDEX_GUESS_BYTES)), ..Default::default() });
    let tail = tail.await?;
    let size = tail.meta.size;
    let mut tail = tail.bytes().await?;
    if tail.len() < 4 {
        return Err(corrupt("too short".into()));
    }
    let index_len = u32::from_le_bytes(tail[tail.len() - 4..].try_into().expect("4 bytes")) as u64;
    let index_end = size - 4;
    let index_start = index_end.checked_sub(index_len).ok_or_else(|| corrupt("index longer than the object".into()))?;
    if index_len + 4 > tail.len() as u64 {
        tail = store.get_range(&path, index_start..size).await?;
    }
    if (tail.len() as u64) < index_len + 4 {
        return Err(corrupt("shorter than its index".into()));
    }
    let index_bytes = tail.slice(tail.len() - 4 - index_len as usize..tail.len() - 4);
    let index = SummaryIndex::decode(index_bytes).map_err(|e| corrupt(e.to_string()))?;
    if index.bucket_nanos != bucket_nanos {
        return Err(corrupt(format!("buckets of {} ns", index.bucket_nanos)));
    }
    let section_nanos = bucket_nanos.saturating_mul(SECTION_BUCKETS);
    let wanted: Vec<&SectionRef> = index
        .sections
        .iter()
        .filter(|s| services.is_empty() || s.service.as_ref().is_some_and(|name| services.contains(name)))
        .filter(|s| {
            let from = s.first_bucket.saturating_mul(bucket_nanos);
            from < end && from.saturating_add(section_nanos) > start
        })
        .collect();
    let ranges: Vec<Range<u64>> = wanted.iter().map(|s| s.offset..s.offset.saturating_add(s.length)).collect();
    if ranges.iter().any(|r| r.end > index_start) {
        return Err(corrupt("a section runs into the index".into()));
    }
    let sections = if ranges.is_empty() { Vec::new() } else { store.get_ranges(&path, &ranges).await? };
    let mut series = Vec::new();
    for bytes in sections {
        let bytes = zstd::decode_all(&bytes[..]).map_err(|e| corrupt(format!("a RED summary section: {e}")))?;
        for mut part in SeriesList::decode(&bytes[..]).map_err(|e| corrupt(e.to_string()))?.series {
            let mut bucket = 0u64;
            for cell in &mut part.cells {
                bucket = bucket.checked_add(cell.bucket).ok_or_else(|| corrupt("time bucket overflow".into()))?;
                cell.bucket = bucket;
            }
            series.push(part);
        }
    }
    Ok(Some(RedSummary { bucket_nanos, series }))
}

/// Calls `visit` with every span of the block that started in `[start, end)` (Unix nanoseconds) and, when
/// `services` is not empty, belongs to one of them. Reads only the columns RED needs, and only row groups
/// whose start times and services may match.
pub async fn scan_spans(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    (start, end): (u64, u64),
    services: &[String],
    mut visit: impl FnMut(RedSpan<'_>),
) -> Result<(), BlockError> {
    let wanted_services: HashSet<&str> = services.iter().map(String::as_str).collect();
    let row_groups: Vec<usize> = meta
        .row_groups
        .iter()
        .enumerate()
        .filter(|(_, rg)| rg.min_start_unix_nano < end && rg.max_start_unix_nano >= start)
        .filter(|(_, rg)| {
            wanted_services.is_empty()
                || rg.services.as_ref().is_none_or(|list| list.iter().any(|s| wanted_services.contains(s.as_str())))
        })
        .map(|(i, _)| i)
        .collect();
    if row_groups.is_empty() || meta.span_count == 0 {
        return Ok(());
    }
    let path = meta.path(SPANS_FILE);
    // Service and span names as dictionaries: the service is judged once per distinct value, names are not
    // copied per span.
    let reader =
        super::read::arrow_reader(store, &path, &meta.spans_file, &[schema::SERVICE_NAME, schema::NAME]).await?;
    let metadata = Arc::clone(reader.metadata());
    if metadata.num_row_groups() != meta.row_groups.len() {
        return Err(corrupt(format!(
            "spans.parquet has {} row groups, meta.json lists {}",
            metadata.num_row_groups(),
            meta.row_groups.len()
        )));
    }
    let columns =
        [schema::START, schema::DURATION, schema::NAME, schema::SERVICE_NAME, schema::KIND, schema::STATUS_CODE];
    let projection = project_columns(&metadata, &columns.into());
    let decoder = ParquetPushDecoderBuilder::new_with_metadata(reader)
        .with_projection(projection)
        .with_row_groups(row_groups)
        .with_batch_size(BATCH_ROWS)
        .build()?;
    decode(store, &path, decoder, |batch| {
        let starts: &UInt64Array = column(&batch, schema::START)?;
        let durations: &Int64Array = column(&batch, schema::DURATION)?;
        let names = StrValues::of(any_column(&batch, schema::NAME)?, schema::NAME)?;
        let service_names = StrValues::of(any_column(&batch, schema::SERVICE_NAME)?, schema::SERVICE_NAME)?;
        let kinds: &Int32Array = column(&batch, schema::KIND)?;
        let statuses: &Int32Array = column(&batch, schema::STATUS_CODE)?;
        // Which services are wanted, once per dictionary value when the column is a dictionary.
        let wanted_keys: Option<Vec<bool>> = match service_names {
            StrValues::Dictionary { values, .. } if !wanted_services.is_empty() => {
                Some(values.iter().map(|v| v.is_some_and(|v| wanted_services.contains(v))).collect())
            }
            _ => None,
        };
        for row in 0..batch.num_rows() {
            let span_start = starts.value(row);
            if span_start < start || span_start >= end {
                continue;
            }
            let service = match (&service_names, &wanted_keys) {
                (StrValues::Dictionary { keys, .. }, Some(wanted)) => {
                    if !keys.is_valid(row) || !wanted[keys.value(row) as usize] {
                        continue;
                    }
                    Some(service_names.value(row))
                }
                _ => {
                    let service = service_names.is_valid(row).then(|| service_names.value(row));
                    if !wanted_services.is_empty() && !service.is_some_and(|s| wanted_services.contains(s)) {
                        continue;
                    }
                    service
                }
            };
            // The column holds end − start wrapped to i64: wrapping back gives the end exactly.
            let span_end = span_start.wrapping_add(durations.value(row) as u64);
            visit(RedSpan {
                service,
                name: names.value(row),
                kind: kinds.value(row),
                error: statuses.is_valid(row) && statuses.value(row) == STATUS_ERROR,
                start_unix_nano: span_start,
                duration_nanos: span_end.saturating_sub(span_start),
            });
        }
        Ok(())
    })
    .await
    .map_err(|e| match e {
        BlockError::Corrupt { reason, .. } => BlockError::Corrupt { block: meta.block_id.clone(), reason },
        e => e,
    })
}

fn any_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn arrow_array::Array, BlockError> {
    batch.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| corrupt(format!("spans.parquet lacks {name}")))
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, BlockError> {
    let array = batch.column_by_name(name).ok_or_else(|| corrupt(format!("spans.parquet lacks the column {name}")))?;
    downcast(array.as_ref(), name)
}
