//! Blocks: the immutable, columnar on-disk form that the head's spans are cut into.
//!
//! A block lives in an [`ObjectStore`] under `<tenant>/blocks/<block id>/` as a few objects; block ids are
//! ULIDs, so they sort by creation time.
//!
//! Row groups are slices of the block's traces by start time (a trace never straddles two), oldest first: a
//! search for the newest matches reads the newest row group of each block first and stops once older ones
//! cannot change the answer. Inside a row group, rows are sorted by trace id then start.
//!
//! `spans.parquet`, one row per span, sorted by (trace id, start time, span id) in each row group:
//!
//! | column | type | note |
//! |---|---|---|
//! | `trace_id`, `span_id` | FixedSizeBinary(16), (8) | |
//! | `parent_span_id` | Binary | empty for a root |
//! | `start_unix_nano` | UInt64 | |
//! | `duration_nano` | Int64 | end − start (wrapping, so any end round-trips) |
//! | `name`, `kind`, `trace_state`, `flags` | Utf8, Int32, Utf8, UInt32 | |
//! | `service_name` | Utf8, null | the resource's `service.name` (first string one) |
//! | `status_code`, `status_message` | Int32, Utf8, null | null: no status |
//! | `dropped_{attributes,events,links}_count` | UInt32 | |
//! | `span.attr.<key>` | Utf8/Int64/Float64/Boolean, null | dedicated columns, chosen per block |
//! | `events` | `List<Struct{time_unix_nano, name, attrs, dropped_attributes_count}>` | |
//! | `links` | `List<Struct{trace_id, span_id, trace_state, flags, attrs, dropped_attributes_count}>` | ids as Binary, kept as sent |
//! | `resource.attr.<key>` | as `span.attr.<key>` | dedicated resource columns |
//! | `resource.attrs` | generic attribute list | the other resource attributes |
//! | `resource.dropped_attributes_count` | UInt32, null | null: the span had no resource |
//! | `resource.entity_refs` | Binary, null | protobuf `Resource` holding only `entity_refs` |
//! | `resource.schema_url` | Utf8 | of the `ResourceSpans` |
//! | `scope.name`, `scope.version` | Utf8, null | null name: no scope |
//! | `scope.attrs`, `scope.dropped_attributes_count`, `scope.schema_url` | | `schema_url` of the `ScopeSpans` |
//!
//! `attrs.parquet` holds every span attribute without a dedicated column, one row per attribute, grouped by key:
//! its row groups match those of `spans.parquet` (one for each that has such attributes, see
//! `RowGroupMeta::attrs_row_group`), each sorted by (key, span row). Columns: `key` (Utf8), `row_delta`
//! (UInt32: the span's row number in `spans.parquet` minus that of the key's previous entry in the row group;
//! the first is the row number itself) and the value fields below. `meta.json` counts each key's entries per
//! row group, so a search on one attribute reads that key's run and nothing else, whether the key is frequent
//! or rare.
//!
//! The generic attribute layout (rows of `attrs.parquet`, elements of `List<Struct{key, type, str, int,
//! double, bool, bytes}>` lists): `type` says which field holds the value (see `attrs::ValueType`: arrays,
//! key-value lists and anything unusual are protobuf `AnyValue` bytes, so nothing is lost).
//!
//! `traces.parquet`, one row per trace, with the row groups of `spans.parquet` and its traces in the same order:
//! `trace_id`, `start_unix_nano`, `duration_nano` (latest span end − start), `root_service`, `root_name` (null
//! when no span has an empty parent), `span_count`, `error_count` (status code ERROR), `services`
//! (`List<Utf8>`, sorted), and why tail sampling kept the trace: `sampling_policy` (Utf8), `sampling_weight`
//! (Float64, adjusted count), `sampling_threshold` (Utf8, OTEP 235 `th`), all null when no decision was recorded.
//!
//! `red-60s.pb`, `red-3600s.pb`, `red-86400s.pb`: RED summaries (span counts and latency histograms per service,
//! span name, kind, error and time bucket), see [`red_summary`].
//!
//! `meta.json` ([`BlockMeta`]) is written last: a block without it does not exist. It holds what readers need
//! to skip work without opening the block: counts, time range, per-row-group time and trace-id ranges and
//! summaries, where each attribute key's entries are, the dedicated-column mapping and a bloom filter of the
//! trace ids.
//!
//! The Parquet files are plain Parquet (zstd, dictionaries, page index; `row_delta` and `duration_nano` use
//! BYTE_STREAM_SPLIT, which readers following Parquet format 2.11 read on integers). Attribute order inside a
//! span is not kept (dedicated columns come first, then the rest by key); resources and scopes are regrouped by
//! value.

pub(crate) mod attrs;
mod columns;
mod decisions;
mod filter;
mod input;
mod meta;
pub(crate) mod read;
pub mod red_summary;
pub(crate) mod schema;
pub(crate) mod span_view;
mod write;

use std::sync::Arc;

use clew_model::otlp::{InstrumentationScope, Resource, ResourceSpans, ScopeSpans, Span};
use clew_model::{Tenant, TraceId};
use object_store::ObjectStore;
use object_store::path::Path;

pub use filter::TraceIdFilter;
pub use input::{EncodedSpans, OriginBytes, SpanBytes, SpanSource};
pub use meta::{AttrType, BlockMeta, DedicatedColumn, DedicatedColumns, FileMeta, RowGroupMeta};

/// Version of the block layout written by this code, recorded in `meta.json`. Format 1 (row groups by trace-id
/// range, span attributes in a list column) is not read by this build.
pub const FORMAT_VERSION: u32 = 2;

/// Names of the objects of a block, inside its directory.
pub const SPANS_FILE: &str = "spans.parquet";
pub const TRACES_FILE: &str = "traces.parquet";
pub const ATTRS_FILE: &str = "attrs.parquet";
pub const META_FILE: &str = "meta.json";

/// The `ResourceSpans` a span arrived in, minus its scopes (the same shape as the head's).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceOrigin {
    pub resource: Option<Resource>,
    pub schema_url: String,
}

/// The `ScopeSpans` a span arrived in, minus its spans (the same shape as the head's).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScopeOrigin {
    pub resource: Arc<ResourceOrigin>,
    pub scope: Option<InstrumentationScope>,
    pub schema_url: String,
}

/// One span with the resource and scope it belongs to. Spans that came in one `ScopeSpans` share one `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSpan {
    pub origin: Arc<ScopeOrigin>,
    pub span: Span,
}

impl BlockSpan {
    /// Flattens OTLP's resource → scope → span nesting (one `Arc` per resource and per scope).
    pub fn from_resource_spans(resource_spans: Vec<ResourceSpans>) -> Vec<BlockSpan> {
        let mut out = Vec::new();
        for rs in resource_spans {
            let resource = Arc::new(ResourceOrigin { resource: rs.resource, schema_url: rs.schema_url });
            for ss in rs.scope_spans {
                let origin = Arc::new(ScopeOrigin {
                    resource: Arc::clone(&resource),
                    scope: ss.scope,
                    schema_url: ss.schema_url,
                });
                out.extend(ss.spans.into_iter().map(|span| BlockSpan { origin: Arc::clone(&origin), span }));
            }
        }
        out
    }
}

/// How a block is written. The defaults are what Clew uses; tests and experiments tune them.
#[derive(Debug, Clone)]
pub struct BlockOptions {
    /// Row groups are slices of the traces by start time of about this many spans (cut at trace boundaries).
    pub row_group_spans: usize,
    /// Encoded bytes of a data page of `spans.parquet` and `attrs.parquet` (the page index lets a reader skip the
    /// pages of rows it does not want)...
    pub page_bytes: usize,
    /// ...and at most this many rows.
    pub page_rows: usize,
    /// zstd level of every column.
    pub zstd_level: i32,
    /// A span (or resource) attribute key, with one scalar type, becomes a column of its own when at least this
    /// fraction of the block's spans carries it.
    pub dedicated_min_fraction: f64,
    /// At most this many dedicated span attribute columns (the most frequent keys win).
    pub max_dedicated_span_columns: usize,
    /// At most this many dedicated resource attribute columns (`service.name` has its own column on top).
    pub max_dedicated_resource_columns: usize,
    /// False-positive rate of the trace-id filter in `meta.json`.
    pub filter_false_positive_rate: f64,
    /// Per-row-group summaries list distinct values only up to this many (more are left out: `None`).
    pub max_summary_values: usize,
    /// The crash point (see `crate::crash`) between the data files and `meta.json`, named after the caller.
    pub crash_point_before_meta: Option<&'static str>,
}

impl Default for BlockOptions {
    fn default() -> Self {
        Self {
            row_group_spans: 50_000,
            page_bytes: 32 << 10,
            page_rows: 64 << 10,
            zstd_level: 3,
            dedicated_min_fraction: 0.25,
            max_dedicated_span_columns: 20,
            max_dedicated_resource_columns: 20,
            filter_false_positive_rate: 0.0001,
            max_summary_values: 100,
            crash_point_before_meta: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{path}: {source}")]
    Meta {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A span that a block cannot hold: its trace id is not 16 bytes or its span id not 8.
    #[error("invalid span: {0}")]
    InvalidSpan(String),
    #[error("a block needs at least one span")]
    NoSpans,
    #[error("block {block} is corrupt: {reason}")]
    Corrupt { block: String, reason: String },
    #[error("block {block} has format version {version}, this build reads up to {FORMAT_VERSION}")]
    UnsupportedVersion { block: String, version: u32 },
}

/// `<tenant>/blocks/`
pub fn blocks_dir(tenant: &str) -> Path {
    Path::from_iter([tenant, "blocks"])
}

/// `<tenant>/blocks/<block id>/<file>`
pub fn block_path(tenant: &str, block_id: &str, file: &str) -> Path {
    Path::from_iter([tenant, "blocks", block_id, file])
}

/// Writes one block from `spans` (in any order) and returns its meta. `meta.json` is put last, once the data
/// files are complete, so a crash leaves at most an unlisted directory behind.
///
/// CPU-heavy (sorting, encoding, zstd): run it where blocking a runtime worker for a while is fine.
pub async fn write_block(
    store: &dyn ObjectStore,
    tenant: &Tenant,
    spans: Vec<BlockSpan>,
    options: &BlockOptions,
) -> Result<BlockMeta, BlockError> {
    write_block_with_decisions(store, tenant, spans, &Default::default(), options).await
}

/// [`write_block`], recording in `traces.parquet` why tail sampling kept the traces named in `decisions`.
pub async fn write_block_with_decisions(
    store: &dyn ObjectStore,
    tenant: &Tenant,
    spans: Vec<BlockSpan>,
    decisions: &std::collections::HashMap<TraceId, Arc<clew_model::SamplingDecision>>,
    options: &BlockOptions,
) -> Result<BlockMeta, BlockError> {
    let encoded = input::EncodedSpans::new(&spans);
    drop(spans);
    write::write_block(store, tenant, &encoded.source(), decisions, options).await
}

/// [`write_block_with_decisions`] from spans as encoded OTLP (what the head holds), decoding none of them.
pub async fn write_encoded(
    store: &dyn ObjectStore,
    tenant: &Tenant,
    source: &SpanSource<'_>,
    decisions: &std::collections::HashMap<TraceId, Arc<clew_model::SamplingDecision>>,
    options: &BlockOptions,
) -> Result<BlockMeta, BlockError> {
    write::write_block(store, tenant, source, decisions, options).await
}

pub use decisions::{read_decision, read_decisions};

/// The blocks of a tenant that have a `meta.json`, sorted by block id (oldest first).
pub async fn list_blocks(store: &dyn ObjectStore, tenant: &Tenant) -> Result<Vec<BlockMeta>, BlockError> {
    read::list_blocks(store, tenant).await
}

/// All spans of one trace in a block, grouped into `ResourceSpans`/`ScopeSpans` like the head does: one group
/// per distinct resource (by value), in the order of their first span; scopes likewise inside; spans inside a
/// scope sorted by (start time, span id). Empty if the block lacks the trace. Uses the filter and row-group
/// ranges of `meta` and the page index of `spans.parquet` to read only pages that can hold the trace.
pub async fn read_trace(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    trace_id: &TraceId,
) -> Result<Vec<ResourceSpans>, BlockError> {
    if !meta.may_contain(trace_id) {
        return Ok(Vec::new());
    }
    let spans = read::read_trace_spans(store, meta, trace_id).await?;
    Ok(regroup(spans))
}

/// [`read_trace`] for several traces in one pass over the block; traces the block lacks are absent.
pub async fn read_traces(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    trace_ids: &[TraceId],
) -> Result<std::collections::HashMap<TraceId, Vec<ResourceSpans>>, BlockError> {
    let candidates: Vec<TraceId> = trace_ids.iter().filter(|id| meta.may_contain(id)).copied().collect();
    if candidates.is_empty() {
        return Ok(Default::default());
    }
    let mut by_trace: std::collections::HashMap<TraceId, Vec<BlockSpan>> = Default::default();
    for span in read::read_traces_spans(store, meta, &candidates).await? {
        let Some(id) = TraceId::from_slice(&span.span.trace_id) else { continue };
        by_trace.entry(id).or_default().push(span);
    }
    Ok(by_trace.into_iter().map(|(id, spans)| (id, regroup(spans))).collect())
}

/// Every span of the block, in block order (trace id, start time, span id). Spans of one resource and scope
/// (by value) share their `Arc`s.
pub async fn read_all(store: &dyn ObjectStore, meta: &BlockMeta) -> Result<Vec<BlockSpan>, BlockError> {
    read::read_all(store, meta).await
}

/// Rebuilds OTLP's nesting from spans whose equal origins share `Arc`s: groups in order of their first span,
/// spans inside a scope sorted by (start time, span id).
pub fn regroup(spans: Vec<BlockSpan>) -> Vec<ResourceSpans> {
    use std::collections::HashMap;
    let mut out: Vec<ResourceSpans> = Vec::new();
    let mut resources: HashMap<*const ResourceOrigin, usize> = HashMap::new();
    let mut scopes: HashMap<*const ScopeOrigin, (usize, usize)> = HashMap::new();
    for BlockSpan { span, origin } in spans {
        // The `Arc`s live in `spans` until the loop is done, so their addresses cannot be reused meanwhile.
        let (r, s) = *scopes.entry(Arc::as_ptr(&origin)).or_insert_with(|| {
            let resource = &origin.resource;
            let r = *resources.entry(Arc::as_ptr(resource)).or_insert_with(|| {
                out.push(ResourceSpans {
                    resource: resource.resource.clone(),
                    scope_spans: Vec::new(),
                    schema_url: resource.schema_url.clone(),
                });
                out.len() - 1
            });
            let scope_spans = &mut out[r].scope_spans;
            scope_spans.push(ScopeSpans {
                scope: origin.scope.clone(),
                spans: Vec::new(),
                schema_url: origin.schema_url.clone(),
            });
            (r, scope_spans.len() - 1)
        });
        out[r].scope_spans[s].spans.push(span);
    }
    for ss in out.iter_mut().flat_map(|rs| &mut rs.scope_spans) {
        ss.spans.sort_by(|a, b| (a.start_time_unix_nano, &a.span_id).cmp(&(b.start_time_unix_nano, &b.span_id)));
    }
    out
}
