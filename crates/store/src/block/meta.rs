//! `meta.json`: what a reader needs to know about a block without opening its Parquet files.

use clew_model::TraceId;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::filter::TraceIdFilter;

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Layout version ([`super::FORMAT_VERSION`] when written by this code).
    pub format_version: u32,
    pub tenant: String,
    /// A ULID: sorts by creation time.
    pub block_id: String,
    pub span_count: u64,
    pub trace_count: u64,
    /// Earliest span start and latest span end in the block.
    pub min_start_unix_nano: u64,
    pub max_end_unix_nano: u64,
    #[serde(with = "hex_id")]
    pub min_trace_id: TraceId,
    #[serde(with = "hex_id")]
    pub max_trace_id: TraceId,
    pub spans_file: FileMeta,
    pub traces_file: FileMeta,
    /// `attrs.parquet`, absent when no span attribute needed it (all in dedicated columns, or none at all).
    pub attrs_file: Option<FileMeta>,
    /// The span attribute keys in `attrs.parquet`, sorted; [`RowGroupMeta::attr_entries`] counts by this order.
    pub attr_keys: Vec<String>,
    /// Row groups of `spans.parquet`, in file order: slices of the block's traces by start time, oldest first
    /// (their trace-id ranges overlap). `traces.parquet` has the same row groups, with the same traces in the
    /// same order.
    pub row_groups: Vec<RowGroupMeta>,
    /// Attribute keys that have columns of their own in `spans.parquet`.
    pub dedicated: DedicatedColumns,
    /// Bloom filter of the block's trace ids.
    pub trace_filter: TraceIdFilter,
    /// Widths (nanoseconds) of the RED summaries written with the block (`red-<seconds>s.pb`, see
    /// `red_summary`); empty for blocks written before summaries existed, which RED scans instead.
    #[serde(default)]
    pub red_summary_bucket_nanos: Vec<u64>,
}

/// One Parquet file of a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    pub bytes: u64,
    /// How many bytes at the end of the file hold the footer and the page index: one read of this suffix gets
    /// everything a reader needs before reading data pages.
    pub tail_bytes: u64,
}

/// A row group of `spans.parquet` (and the same of `traces.parquet`). Traces never straddle row groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowGroupMeta {
    pub rows: u64,
    pub traces: u64,
    /// Row number of the row group's first span in `spans.parquet`.
    pub first_row: u64,
    /// Earliest and latest start of its traces (each the start of the trace's earliest span in this block).
    pub min_trace_start_unix_nano: u64,
    pub max_trace_start_unix_nano: u64,
    #[serde(with = "hex_id")]
    pub min_trace_id: TraceId,
    #[serde(with = "hex_id")]
    pub max_trace_id: TraceId,
    pub min_start_unix_nano: u64,
    pub max_start_unix_nano: u64,
    pub max_end_unix_nano: u64,
    pub min_duration_nano: i64,
    pub max_duration_nano: i64,
    /// Distinct values present in the row group, sorted; `None` when there are more than the writer lists.
    pub services: Option<Vec<String>>,
    pub span_names: Option<Vec<String>>,
    pub resource_attribute_keys: Option<Vec<String>>,
    /// The row group of `attrs.parquet` holding this one's span attributes, if it has any there.
    pub attrs_row_group: Option<u32>,
    /// Entries per key of [`BlockMeta::attr_keys`] in that row group (empty: none); the entries are sorted by
    /// key, so a key's run starts where the counts of the keys before it end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attr_entries: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DedicatedColumns {
    /// Span attributes: columns `span.attr.<key>`.
    pub span: Vec<DedicatedColumn>,
    /// Resource attributes: columns `resource.attr.<key>` (`service.name` is always the column `service_name`).
    pub resource: Vec<DedicatedColumn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedicatedColumn {
    pub key: String,
    #[serde(rename = "type")]
    pub ty: AttrType,
    /// The Parquet column name.
    pub column: String,
}

/// The scalar attribute types that dedicated columns hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    String,
    Int,
    Double,
    Bool,
}

impl BlockMeta {
    /// Whether the block may hold the trace: its id is inside the block's range and passes the filter.
    /// No I/O. False positives at about the filter's rate; no false negatives.
    pub fn may_contain(&self, trace_id: &TraceId) -> bool {
        self.span_count > 0
            && self.min_trace_id <= *trace_id
            && *trace_id <= self.max_trace_id
            && self.trace_filter.may_contain(trace_id)
    }

    /// The range of entries of `key` in the `attrs.parquet` row group of row group `rg`, if it has any.
    pub fn attr_entries(&self, rg: usize, key: &str) -> Option<std::ops::Range<usize>> {
        let k = self.attr_keys.binary_search_by(|k| k.as_str().cmp(key)).ok()?;
        let counts = &self.row_groups.get(rg)?.attr_entries;
        let count = *counts.get(k)? as usize;
        let start: usize = counts[..k].iter().map(|&c| c as usize).sum();
        (count > 0).then_some(start..start + count)
    }

    /// Indexes of the row groups whose trace-id range holds the id.
    pub fn row_groups_for(&self, trace_id: &TraceId) -> Vec<usize> {
        self.row_groups
            .iter()
            .enumerate()
            .filter(|(_, rg)| rg.min_trace_id <= *trace_id && *trace_id <= rg.max_trace_id)
            .map(|(i, _)| i)
            .collect()
    }

    /// Path of one of the block's objects (`spans.parquet`, `traces.parquet`, `meta.json`).
    pub fn path(&self, file: &str) -> Path {
        super::block_path(&self.tenant, &self.block_id, file)
    }
}

/// Trace ids as 32 lowercase hex characters.
mod hex_id {
    use clew_model::TraceId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &TraceId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TraceId, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() != 32 {
            return Err(serde::de::Error::custom("trace id must be 32 hex characters"));
        }
        TraceId::parse_hex(&s).map_err(serde::de::Error::custom)
    }
}
