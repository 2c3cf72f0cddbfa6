//! Reading blocks: listing metas, traces through the filter and the page index, or everything; span
//! attributes come from `attrs.parquet` by row number.
//!
//! Parquet is decoded with the push decoder: this code asks the object store for exactly the byte ranges the
//! decoder needs (footer and page index in one read, then the pages of the selected rows).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, BinaryArray, FixedSizeBinaryArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use clew_model::otlp::span::{Event, Link};
use clew_model::otlp::{
    AnyValue, InstrumentationScope, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value::Value,
};
use clew_model::{Tenant, TraceId};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::DecodeResult;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::arrow::push_decoder::{ParquetPushDecoder, ParquetPushDecoderBuilder, RowGroupSelection};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataPushDecoder};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use prost::Message;

use super::attrs::{AttrListView, DedicatedView, corrupt, downcast};
use super::meta::{BlockMeta, DedicatedColumn, FileMeta};
use super::schema;
use super::{BlockError, BlockSpan, FORMAT_VERSION, META_FILE, ResourceOrigin, SPANS_FILE, ScopeOrigin, blocks_dir};

/// Rows per decoded batch.
const BATCH_ROWS: usize = 8 * 1024;
/// Metas fetched at once by `list_blocks`.
const META_CONCURRENCY: usize = 16;

pub async fn list_blocks(store: &dyn ObjectStore, tenant: &Tenant) -> Result<Vec<BlockMeta>, BlockError> {
    let dir = blocks_dir(tenant.as_str());
    let depth = dir.parts().count() + 2;
    let objects: Vec<_> = match store.list(Some(&dir)).try_collect().await {
        Ok(objects) => objects,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let metas: Vec<Path> = objects
        .into_iter()
        .map(|o| o.location)
        .filter(|p| p.parts().count() == depth && p.filename() == Some(META_FILE))
        .collect();
    let mut blocks: Vec<BlockMeta> = futures::stream::iter(metas)
        .map(|path| async move { read_meta(store, &path).await.map(|m| (path, m)) })
        .buffer_unordered(META_CONCURRENCY)
        .try_filter_map(|(path, meta)| async move {
            match meta {
                Some(meta) if meta.tenant == tenant.as_str() && meta.path(META_FILE) == path => Ok(Some(meta)),
                Some(meta) => {
                    tracing::warn!(%path, block = %meta.block_id, tenant = %meta.tenant, "skipping a block whose meta names another place");
                    Ok(None)
                }
                None => Ok(None),
            }
        })
        .try_collect()
        .await?;
    blocks.sort_by(|a, b| a.block_id.cmp(&b.block_id));
    Ok(blocks)
}

/// A meta that is unreadable or of a newer format is logged and skipped (`None`): one bad block must not
/// hide the others. Store errors are returned.
async fn read_meta(store: &dyn ObjectStore, path: &Path) -> Result<Option<BlockMeta>, BlockError> {
    let bytes = match store.get_opts(path, Default::default()).await {
        Ok(result) => result.bytes().await?,
        // Deleted between listing and reading (compaction): not a block any more.
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let meta: BlockMeta = match serde_json::from_slice(&bytes) {
        Ok(meta) => meta,
        Err(e) => {
            tracing::warn!(%path, error = %e, "skipping a block with an unreadable meta.json");
            return Ok(None);
        }
    };
    if meta.format_version != FORMAT_VERSION {
        tracing::warn!(
            %path,
            version = meta.format_version,
            readable = FORMAT_VERSION,
            "skipping a block of another format version"
        );
        return Ok(None);
    }
    Ok(Some(meta))
}

fn check_version(meta: &BlockMeta) -> Result<(), BlockError> {
    if meta.format_version != FORMAT_VERSION {
        return Err(BlockError::UnsupportedVersion { block: meta.block_id.clone(), version: meta.format_version });
    }
    Ok(())
}

fn with_block(meta: &BlockMeta) -> impl Fn(BlockError) -> BlockError + '_ {
    |e| match e {
        BlockError::Corrupt { reason, .. } => BlockError::Corrupt { block: meta.block_id.clone(), reason },
        e => e,
    }
}

/// A projection of the top-level columns whose names are in `wanted` (a struct or list column comes whole).
pub(crate) fn project_columns(metadata: &ParquetMetaData, wanted: &std::collections::HashSet<&str>) -> ProjectionMask {
    let schema_descr = metadata.file_metadata().schema_descr_ptr();
    let roots = schema_descr
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(f.name()))
        .map(|(i, _)| i);
    ProjectionMask::roots(&schema_descr, roots)
}

/// Footer and page index of a block file, with one read of its tail in the common case.
pub(crate) async fn load_metadata(
    store: &dyn ObjectStore,
    path: &Path,
    file: &FileMeta,
    page_index: PageIndexPolicy,
) -> Result<ParquetMetaData, BlockError> {
    let len = file.bytes;
    let tail = file.tail_bytes.clamp(8.min(len), len);
    let mut decoder = ParquetMetaDataPushDecoder::try_new(len)?.with_page_index_policy(page_index);
    let range = len - tail..len;
    let data = store.get_ranges(path, std::slice::from_ref(&range)).await?;
    decoder.push_ranges(vec![range], data)?;
    loop {
        match decoder.try_decode()? {
            DecodeResult::NeedsData(ranges) => {
                let data = store.get_ranges(path, &ranges).await?;
                decoder.push_ranges(ranges, data)?;
            }
            DecodeResult::Data(metadata) => return Ok(metadata),
            DecodeResult::Finished => return Err(corrupt(format!("{path}: no Parquet metadata"))),
        }
    }
}

/// Footers (with page index) of block files recently read. Block files are immutable and their paths never
/// reused, so a footer stays valid as long as its file exists.
static FOOTERS: std::sync::LazyLock<std::sync::Mutex<FooterCache>> = std::sync::LazyLock::new(Default::default);
/// (path, file size) → footer.
type FooterCache = HashMap<(Path, u64), Arc<ParquetMetaData>>;
/// Footers kept at most (a footer is some kilobytes per row group).
const MAX_FOOTERS: usize = 512;

/// The footer of a block file with its page index (so that reads of a few rows skip the other pages), from the
/// cache or read once.
pub(crate) async fn cached_metadata_with_index(
    store: &dyn ObjectStore,
    path: &Path,
    file: &FileMeta,
) -> Result<Arc<ParquetMetaData>, BlockError> {
    let key = (path.clone(), file.bytes);
    if let Some(found) = FOOTERS.lock().expect("footer cache lock").get(&key) {
        return Ok(found.clone());
    }
    let metadata = Arc::new(load_metadata(store, path, file, PageIndexPolicy::Optional).await?);
    let mut footers = FOOTERS.lock().expect("footer cache lock");
    if footers.len() >= MAX_FOOTERS {
        footers.clear();
    }
    footers.insert(key, metadata.clone());
    Ok(metadata)
}

/// Arrow views of block files (footer, page index and the Arrow schema, some string columns as dictionaries),
/// built once per file and variant: converting a schema costs about as much as decoding a small page.
static READERS: std::sync::LazyLock<std::sync::Mutex<ReaderCache>> = std::sync::LazyLock::new(Default::default);
/// (path, file size, columns read as dictionaries) → reader.
type ReaderCache = HashMap<(Path, u64, String), ArrowReaderMetadata>;

/// A reader for a block file with its page index, reading the named top-level string columns (and the keys and
/// string values of the resource attribute list, if named) as dictionaries: a condition on them is judged once
/// per distinct value, nothing is copied per row.
pub(crate) async fn arrow_reader(
    store: &dyn ObjectStore,
    path: &Path,
    file: &FileMeta,
    dictionaries: &[&str],
) -> Result<ArrowReaderMetadata, BlockError> {
    let key = (path.clone(), file.bytes, dictionaries.join(","));
    if let Some(found) = READERS.lock().expect("reader cache lock").get(&key) {
        return Ok(found.clone());
    }
    let metadata = cached_metadata_with_index(store, path, file).await?;
    let reader = ArrowReaderMetadata::try_new(metadata.clone(), dictionary_strings(&metadata, dictionaries)?)?;
    let mut readers = READERS.lock().expect("reader cache lock");
    if readers.len() >= MAX_FOOTERS {
        readers.clear();
    }
    readers.insert(key, reader.clone());
    Ok(reader)
}

fn dictionary_strings(metadata: &ParquetMetaData, columns: &[&str]) -> Result<ArrowReaderOptions, BlockError> {
    fn dictionary(field: &Field) -> Field {
        let ty = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        field.clone().with_data_type(ty)
    }
    let file = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata())?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match (f.name().as_str(), f.data_type()) {
            (name, DataType::Utf8) if columns.contains(&name) => dictionary(f),
            (name, DataType::List(element)) if columns.contains(&name) => match element.data_type() {
                DataType::Struct(members) => {
                    let members: Vec<Field> = members
                        .iter()
                        .map(|m| match (m.name().as_str(), m.data_type()) {
                            (schema::KEY | schema::STR, DataType::Utf8) => dictionary(m),
                            _ => m.as_ref().clone(),
                        })
                        .collect();
                    let element = element.as_ref().clone().with_data_type(DataType::Struct(members.into()));
                    f.as_ref().clone().with_data_type(DataType::List(Arc::new(element)))
                }
                _ => f.as_ref().clone(),
            },
            _ => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(ArrowReaderOptions::new().with_schema(schema).with_page_index_policy(PageIndexPolicy::Optional))
}

/// Runs a push decoder to the end, fetching what it asks for.
pub(crate) async fn decode(
    store: &dyn ObjectStore,
    path: &Path,
    mut decoder: ParquetPushDecoder,
    mut on_batch: impl FnMut(RecordBatch) -> Result<(), BlockError>,
) -> Result<(), BlockError> {
    loop {
        match decoder.try_decode()? {
            DecodeResult::NeedsData(ranges) => {
                let data: Vec<Bytes> = store.get_ranges(path, &ranges).await?;
                decoder.push_ranges(ranges, data)?;
            }
            DecodeResult::Data(batch) => on_batch(batch)?,
            DecodeResult::Finished => return Ok(()),
        }
    }
}

pub async fn read_all(store: &dyn ObjectStore, meta: &BlockMeta) -> Result<Vec<BlockSpan>, BlockError> {
    check_version(meta)?;
    let path = meta.path(SPANS_FILE);
    let metadata = load_metadata(store, &path, &meta.spans_file, PageIndexPolicy::Skip).await?;
    let decoder =
        ParquetPushDecoderBuilder::try_new_decoder(Arc::new(metadata))?.with_batch_size(BATCH_ROWS).build()?;
    let mut spans = Vec::with_capacity(meta.span_count as usize);
    let mut origins = Origins::default();
    decode(store, &path, decoder, |batch| SpanRows::new(&batch, meta)?.read_all(&mut origins, &mut spans))
        .await
        .map_err(with_block(meta))?;
    let groups: Vec<usize> = (0..meta.row_groups.len()).collect();
    let rows = |row: u64| Some(row as usize);
    read_attrs(store, meta, &groups, 0..u64::MAX, rows, |row, kv| spans[row].span.attributes.push(kv))
        .await
        .map_err(with_block(meta))?;
    Ok(spans)
}

pub async fn read_trace_spans(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    trace_id: &TraceId,
) -> Result<Vec<BlockSpan>, BlockError> {
    read_traces_spans(store, meta, std::slice::from_ref(trace_id)).await
}

/// The spans of several traces in one pass over the block: `traces.parquet` says in which row group and at which
/// rows each trace is (its trace ids are stored uncompressed and sorted in small pages, so the page index
/// narrows a lookup to a page per row group), then only those rows of `spans.parquet` are read, and their
/// entries in `attrs.parquet`.
pub async fn read_traces_spans(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    trace_ids: &[TraceId],
) -> Result<Vec<BlockSpan>, BlockError> {
    check_version(meta)?;
    let located = locate_traces(store, meta, trace_ids).await.map_err(with_block(meta))?;
    if located.is_empty() {
        return Ok(Vec::new());
    }
    let mut groups: Vec<usize> = located.iter().map(|l| l.group).collect();
    groups.sort_unstable();
    groups.dedup();
    let first_rows = trace_first_rows(store, meta, &groups).await.map_err(with_block(meta))?;
    let mut found: Vec<(usize, usize)> = Vec::new();
    for l in &located {
        let rows = &first_rows[groups.binary_search(&l.group).expect("listed")];
        let (first, end) = (rows[l.ordinal] as usize, rows[l.ordinal + 1] as usize);
        found.extend((first..end).map(|row| (l.group, row)));
    }
    found.sort_unstable();
    let path = meta.path(SPANS_FILE);
    let metadata = cached_metadata_with_index(store, &path, &meta.spans_file).await?;
    if metadata.num_row_groups() != meta.row_groups.len() {
        return Err(BlockError::Corrupt {
            block: meta.block_id.clone(),
            reason: format!(
                "spans.parquet has {} row groups, meta.json lists {}",
                metadata.num_row_groups(),
                meta.row_groups.len()
            ),
        });
    }

    // 2. Those rows, every column.
    let mut by_group: Vec<(usize, Vec<usize>)> = Vec::new();
    for (rg, row) in &found {
        match by_group.last_mut() {
            Some((g, rows)) if g == rg => rows.push(*row),
            _ => by_group.push((*rg, vec![*row])),
        }
    }
    let selections: Vec<RowGroupSelection> = by_group
        .iter()
        .map(|(rg, rows)| {
            RowGroupSelection::new(*rg, Some(exact_rows(rows, metadata.row_group(*rg).num_rows() as usize)))
        })
        .collect();
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(metadata)?
        .with_row_group_selections(selections)
        .with_batch_size(BATCH_ROWS)
        .build()?;
    let mut spans = Vec::with_capacity(found.len());
    let mut origins = Origins::default();
    decode(store, &path, decoder, |batch| SpanRows::new(&batch, meta)?.read_all(&mut origins, &mut spans))
        .await
        .map_err(with_block(meta))?;
    if spans.len() != found.len() {
        return Err(BlockError::Corrupt {
            block: meta.block_id.clone(),
            reason: format!("{} rows selected, {} read", found.len(), spans.len()),
        });
    }

    // 3. Their attributes.
    // Spans are in row order: a row's span is found by binary search.
    let rows: Vec<u64> = found.iter().map(|(rg, row)| meta.row_groups[*rg].first_row + *row as u64).collect();
    let groups: Vec<usize> = by_group.iter().map(|(rg, _)| *rg).collect();
    let bounds = rows[0]..rows[rows.len() - 1] + 1;
    read_attrs(
        store,
        meta,
        &groups,
        bounds,
        |row| rows.binary_search(&row).ok(),
        |i, kv| spans[i].span.attributes.push(kv),
    )
    .await
    .map_err(with_block(meta))?;
    Ok(spans)
}

/// The rows (relative to the row group) a selection selects.
pub(crate) fn selected_rows(selection: &RowSelection) -> impl Iterator<Item = usize> + '_ {
    let mut at = 0usize;
    selection.iter().flat_map(move |s| {
        let range = at..at + s.row_count;
        at += s.row_count;
        if s.skip { 0..0 } else { range }
    })
}

/// Where a trace is in a block: its row group, its row there in `traces.parquet`, and its part's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Located {
    pub group: usize,
    pub ordinal: usize,
    pub trace_id: TraceId,
    pub start: u64,
}

/// Where the given traces are in the block (those it holds), from `traces.parquet`: in each row group whose
/// range holds an id, only the pages of the sorted trace id column whose range holds one are read.
pub(crate) async fn locate_traces(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    ids: &[TraceId],
) -> Result<Vec<Located>, BlockError> {
    let mut ids: Vec<TraceId> = ids.iter().filter(|id| meta.may_contain(id)).copied().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    ids.sort_unstable();
    ids.dedup();
    let path = meta.path(super::TRACES_FILE);
    let metadata = cached_metadata_with_index(store, &path, &meta.traces_file).await?;
    if metadata.num_row_groups() != meta.row_groups.len() {
        return Err(corrupt("traces.parquet and meta.json list different row groups".into()));
    }
    let descr = metadata.file_metadata().schema_descr_ptr();
    let id_column = descr
        .columns()
        .iter()
        .position(|c| c.path().parts() == [schema::TRACE_ID])
        .ok_or_else(|| corrupt("traces.parquet has no trace_id".into()))?;
    let mut selections = Vec::new();
    for (g, rg) in meta.row_groups.iter().enumerate() {
        let in_range: Vec<TraceId> =
            ids.iter().filter(|id| rg.min_trace_id <= **id && **id <= rg.max_trace_id).copied().collect();
        if in_range.is_empty() {
            continue;
        }
        let selection = pages_with(&metadata, g, id_column, &in_range)
            .unwrap_or_else(|| RowSelection::from(vec![RowSelector::select(rg.traces as usize)]));
        if selection.selects_any() {
            selections.push((g, selection));
        }
    }
    if selections.is_empty() {
        return Ok(Vec::new());
    }
    let mut positions = selections.iter().flat_map(|(g, selection)| selected_rows(selection).map(move |row| (*g, row)));
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(Arc::clone(&metadata))?
        .with_projection(ProjectionMask::columns(&descr, [schema::TRACE_ID, schema::START]))
        .with_row_group_selections(
            selections.iter().map(|(g, s)| RowGroupSelection::new(*g, Some(s.clone()))).collect(),
        )
        .with_batch_size(BATCH_ROWS)
        .build()?;
    let mut located = Vec::new();
    decode(store, &path, decoder, |batch| {
        let found = batch
            .column_by_name(schema::TRACE_ID)
            .ok_or_else(|| corrupt("traces.parquet lacks trace_id".into()))?
            .as_fixed_size_binary();
        let starts: &UInt64Array = typed(&batch, schema::START)?;
        for row in 0..batch.num_rows() {
            let (group, ordinal) = positions.next().ok_or_else(|| corrupt("more trace ids than selected".into()))?;
            let Some(trace_id) = TraceId::from_slice(found.value(row)) else { continue };
            if ids.binary_search(&trace_id).is_ok() {
                located.push(Located { group, ordinal, trace_id, start: starts.value(row) });
            }
        }
        Ok(())
    })
    .await?;
    Ok(located)
}

/// For each of row groups `groups` (ascending), the row of each trace's first span in the row group and the row
/// count at the end, from the span counts of `traces.parquet`.
pub(crate) async fn trace_first_rows(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    groups: &[usize],
) -> Result<Vec<Vec<u32>>, BlockError> {
    let path = meta.path(super::TRACES_FILE);
    let metadata = cached_metadata_with_index(store, &path, &meta.traces_file).await?;
    let projection = ProjectionMask::columns(metadata.file_metadata().schema_descr(), [schema::SPAN_COUNT]);
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(Arc::clone(&metadata))?
        .with_projection(projection)
        .with_row_groups(groups.to_vec())
        .with_batch_size(64 * 1024)
        .build()?;
    let mut counts: Vec<u32> = Vec::new();
    decode(store, &path, decoder, |batch| {
        counts.extend_from_slice(typed::<UInt32Array>(&batch, schema::SPAN_COUNT)?.values());
        Ok(())
    })
    .await?;
    let mut out = Vec::with_capacity(groups.len());
    let mut at = 0usize;
    for &g in groups {
        let rg = meta.row_groups.get(g).ok_or_else(|| corrupt(format!("no row group {g}")))?;
        let counts = counts
            .get(at..at + rg.traces as usize)
            .ok_or_else(|| corrupt("traces.parquet has fewer traces than meta.json".into()))?;
        at += rg.traces as usize;
        let mut rows = Vec::with_capacity(counts.len() + 1);
        rows.push(0u32);
        for &c in counts {
            rows.push(rows.last().copied().unwrap_or(0) + c);
        }
        if rows.last().copied() != Some(rg.rows as u32) {
            return Err(corrupt(format!("traces.parquet row group {g} does not count the spans meta.json does")));
        }
        out.push(rows);
    }
    Ok(out)
}

/// A selection of exactly `rows` (sorted) of a row group of `total` rows.
pub(crate) fn exact_rows(rows: &[usize], total: usize) -> RowSelection {
    let mut selectors = Vec::new();
    let mut at = 0;
    for run in rows.chunk_by(|a, b| *b == *a + 1) {
        if run[0] > at {
            selectors.push(RowSelector::skip(run[0] - at));
        }
        selectors.push(RowSelector::select(run.len()));
        at = run[0] + run.len();
    }
    if total > at {
        selectors.push(RowSelector::skip(total - at));
    }
    RowSelection::from(selectors)
}

/// The span attributes in `attrs.parquet` of row groups `groups` (of `spans.parquet`, ascending) whose span
/// `wanted` maps (from its row number in `spans.parquet`, if within `bounds`) to something: `each` gets that and
/// the attribute.
/// Reads the row column of those row groups, then the other columns only at the entries wanted.
async fn read_attrs<T>(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    groups: &[usize],
    bounds: Range<u64>,
    wanted: impl Fn(u64) -> Option<T>,
    mut each: impl FnMut(T, KeyValue),
) -> Result<(), BlockError> {
    let Some(file) = &meta.attrs_file else { return Ok(()) };
    let with_attrs: Vec<(usize, u32)> =
        groups.iter().filter_map(|&g| Some((g, meta.row_groups.get(g)?.attrs_row_group?))).collect();
    if with_attrs.is_empty() {
        return Ok(());
    }
    let path = meta.path(super::ATTRS_FILE);
    let metadata = cached_metadata_with_index(store, &path, file).await?;
    let schema_descr = metadata.file_metadata().schema_descr_ptr();
    // 1. Every entry's row, then which entries are wanted.
    let mut picked: Vec<(usize, Vec<usize>, Vec<T>)> = Vec::new();
    for &(group, attrs_group) in &with_attrs {
        let rg = &meta.row_groups[group];
        let rows = entry_rows(store, &path, &metadata, rg, attrs_group as usize).await?;
        let (mut entries, mut targets) = (Vec::new(), Vec::new());
        for (entry, row) in rows.into_iter().enumerate() {
            if bounds.contains(&row)
                && let Some(target) = wanted(row)
            {
                entries.push(entry);
                targets.push(target);
            }
        }
        if !entries.is_empty() {
            picked.push((attrs_group as usize, entries, targets));
        }
    }
    if picked.is_empty() {
        return Ok(());
    }
    // 2. The keys and values of those entries.
    let values =
        (0..schema_descr.num_columns()).filter(|&i| schema_descr.column(i).path().parts()[0] != schema::ROW_DELTA);
    let selections = picked
        .iter()
        .map(|(g, entries, _)| {
            RowGroupSelection::new(*g, Some(exact_rows(entries, metadata.row_group(*g).num_rows() as usize)))
        })
        .collect();
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(Arc::clone(&metadata))?
        .with_projection(ProjectionMask::leaves(&schema_descr, values))
        .with_row_group_selections(selections)
        .with_batch_size(BATCH_ROWS)
        .build()?;
    let mut targets = picked.into_iter().flat_map(|(_, _, targets)| targets);
    decode(store, &path, decoder, |batch| {
        let entries = AttrEntryView::new(&batch)?;
        for i in 0..batch.num_rows() {
            let target = targets.next().ok_or_else(|| corrupt("more attributes than entries selected".into()))?;
            each(target, entries.read(i)?);
        }
        Ok(())
    })
    .await
}

/// The row in `spans.parquet` of each entry of an `attrs.parquet` row group (`row_delta` summed along each key's
/// run, whose lengths `meta.json` lists).
pub(crate) async fn entry_rows(
    store: &dyn ObjectStore,
    path: &Path,
    metadata: &Arc<ParquetMetaData>,
    group: &super::meta::RowGroupMeta,
    attrs_group: usize,
) -> Result<Vec<u64>, BlockError> {
    let schema_descr = metadata.file_metadata().schema_descr_ptr();
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(Arc::clone(metadata))?
        .with_projection(ProjectionMask::columns(&schema_descr, [schema::ROW_DELTA]))
        .with_row_groups(vec![attrs_group])
        .with_batch_size(64 * 1024)
        .build()?;
    let mut deltas: Vec<u32> = Vec::with_capacity(metadata.row_group(attrs_group).num_rows() as usize);
    decode(store, path, decoder, |batch| {
        let column: &UInt32Array = downcast(batch.column(0).as_ref(), schema::ROW_DELTA)?;
        deltas.extend_from_slice(column.values());
        Ok(())
    })
    .await?;
    let mut rows = Vec::with_capacity(deltas.len());
    let mut at = 0usize;
    for &count in &group.attr_entries {
        let run = deltas
            .get(at..at + count as usize)
            .ok_or_else(|| corrupt("attrs.parquet has fewer entries than meta.json counts".into()))?;
        let mut row = 0u64;
        for &delta in run {
            row += delta as u64;
            rows.push(row);
        }
        at += count as usize;
    }
    if at != deltas.len() {
        return Err(corrupt("attrs.parquet has more entries than meta.json counts".into()));
    }
    Ok(rows)
}

/// The key and value columns of a batch of `attrs.parquet`.
pub(crate) struct AttrEntryView<'a> {
    keys: &'a StringArray,
    values: super::attrs::ValueFields<'a>,
}

impl<'a> AttrEntryView<'a> {
    pub fn new(batch: &'a RecordBatch) -> Result<Self, BlockError> {
        Ok(Self { keys: typed(batch, schema::KEY)?, values: super::attrs::ValueFields::of_batch(batch)? })
    }

    pub fn read(&self, i: usize) -> Result<KeyValue, BlockError> {
        self.values.read(self.keys.value(i), i)
    }
}

/// The rows of pages of `column` in row group `rg` whose min/max range holds one of the ids; `None` (all rows) when
/// the file has no page index.
pub(crate) fn pages_with(
    metadata: &ParquetMetaData,
    rg: usize,
    column: usize,
    ids: &[TraceId],
) -> Option<RowSelection> {
    let page_index = metadata.page_index_for_row_group(rg);
    let (ColumnIndexMetaData::FIXED_LEN_BYTE_ARRAY(index), Some(offsets)) =
        (page_index.column_index(column)?, page_index.offset_index(column))
    else {
        return None;
    };
    let rows = metadata.row_group(rg).num_rows() as usize;
    let locations = offsets.page_locations();
    let mut selectors: Vec<RowSelector> = Vec::new();
    for (page, location) in locations.iter().enumerate() {
        let first = location.first_row_index as usize;
        let end = locations.get(page + 1).map_or(rows, |next| next.first_row_index as usize);
        let may_hold = match (index.min_value(page), index.max_value(page)) {
            (Some(min), Some(max)) => ids.iter().any(|id| min <= &id.0[..] && &id.0[..] <= max),
            _ => true,
        };
        let count = end.saturating_sub(first);
        selectors.push(if may_hold { RowSelector::select(count) } else { RowSelector::skip(count) });
    }
    Some(RowSelection::from(selectors))
}

/// Shares one `Arc` among equal resources and equal scopes (by their protobuf encoding).
#[derive(Default)]
struct Origins {
    resources: HashMap<Vec<u8>, Arc<ResourceOrigin>>,
    scopes: HashMap<(usize, Vec<u8>), Arc<ScopeOrigin>>,
    scratch: Vec<u8>,
}

impl Origins {
    fn intern(
        &mut self,
        resource: Option<Resource>,
        resource_schema_url: &str,
        scope: Option<InstrumentationScope>,
        scope_schema_url: &str,
    ) -> Arc<ScopeOrigin> {
        let rs = ResourceSpans { resource, scope_spans: Vec::new(), schema_url: resource_schema_url.to_owned() };
        self.scratch.clear();
        rs.encode(&mut self.scratch).expect("a Vec grows");
        let resource = match self.resources.get(&self.scratch) {
            Some(r) => Arc::clone(r),
            None => {
                let r = Arc::new(ResourceOrigin { resource: rs.resource, schema_url: rs.schema_url });
                self.resources.insert(self.scratch.clone(), Arc::clone(&r));
                r
            }
        };
        let ss = ScopeSpans { scope, spans: Vec::new(), schema_url: scope_schema_url.to_owned() };
        self.scratch.clear();
        ss.encode(&mut self.scratch).expect("a Vec grows");
        let key = (Arc::as_ptr(&resource) as usize, std::mem::take(&mut self.scratch));
        if let Some(s) = self.scopes.get(&key) {
            self.scratch = key.1;
            return Arc::clone(s);
        }
        let s = Arc::new(ScopeOrigin { resource, scope: ss.scope, schema_url: ss.schema_url });
        self.scopes.insert(key, Arc::clone(&s));
        s
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, BlockError> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| corrupt(format!("spans.parquet lacks the column {name}")))
}

fn typed<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, BlockError> {
    downcast(column(batch, name)?, name)
}

fn dedicated_views<'a>(
    batch: &'a RecordBatch,
    columns: &'a [DedicatedColumn],
) -> Result<Vec<(&'a str, DedicatedView<'a>)>, BlockError> {
    columns
        .iter()
        .map(|c| Ok((c.key.as_str(), DedicatedView::new(column(batch, &c.column)?, c.ty, &c.column)?)))
        .collect()
}

fn push_dedicated(views: &[(&str, DedicatedView<'_>)], row: usize, out: &mut Vec<KeyValue>) {
    for (key, view) in views {
        if let Some(value) = view.get(row) {
            out.push(KeyValue {
                key: (*key).to_owned(),
                value: Some(AnyValue { value: Some(value) }),
                key_strindex: 0,
            });
        }
    }
}

fn opt_str(a: &StringArray, row: usize) -> Option<String> {
    a.is_valid(row).then(|| a.value(row).to_owned())
}

fn opt_u32(a: &UInt32Array, row: usize) -> Option<u32> {
    a.is_valid(row).then(|| a.value(row))
}

struct ListView<'a> {
    offsets: &'a [i32],
    values: &'a StructArray,
}

impl<'a> ListView<'a> {
    fn new(array: &'a dyn Array, what: &str) -> Result<Self, BlockError> {
        let list: &ListArray = downcast(array, what)?;
        Ok(Self { offsets: list.value_offsets(), values: downcast(list.values().as_ref(), what)? })
    }

    fn range(&self, row: usize) -> Range<usize> {
        self.offsets[row] as usize..self.offsets[row + 1] as usize
    }

    fn field<T: 'static>(&self, name: &str, what: &str) -> Result<&'a T, BlockError> {
        let values: &'a StructArray = self.values;
        let column = values.column_by_name(name).ok_or_else(|| corrupt(format!("{what} lacks the field {name}")))?;
        downcast(column.as_ref(), what)
    }
}

/// The columns of one batch of `spans.parquet`.
struct SpanRows<'a> {
    trace_id: &'a FixedSizeBinaryArray,
    span_id: &'a FixedSizeBinaryArray,
    parent: &'a BinaryArray,
    start: &'a UInt64Array,
    duration: &'a Int64Array,
    name: &'a StringArray,
    kind: &'a Int32Array,
    service: &'a StringArray,
    trace_state: &'a StringArray,
    flags: &'a UInt32Array,
    status_code: &'a Int32Array,
    status_message: &'a StringArray,
    dropped_attrs: &'a UInt32Array,
    dropped_events: &'a UInt32Array,
    dropped_links: &'a UInt32Array,
    span_dedicated: Vec<(&'a str, DedicatedView<'a>)>,
    events: ListView<'a>,
    event_time: &'a UInt64Array,
    event_name: &'a StringArray,
    event_attrs: AttrListView<'a>,
    event_dropped: &'a UInt32Array,
    links: ListView<'a>,
    link_trace_id: &'a BinaryArray,
    link_span_id: &'a BinaryArray,
    link_trace_state: &'a StringArray,
    link_flags: &'a UInt32Array,
    link_attrs: AttrListView<'a>,
    link_dropped: &'a UInt32Array,
    resource_dedicated: Vec<(&'a str, DedicatedView<'a>)>,
    resource_attrs: AttrListView<'a>,
    resource_dropped: &'a UInt32Array,
    entity_refs: &'a BinaryArray,
    resource_schema_url: &'a StringArray,
    scope_name: &'a StringArray,
    scope_version: &'a StringArray,
    scope_attrs: AttrListView<'a>,
    scope_dropped: &'a UInt32Array,
    scope_schema_url: &'a StringArray,
}

impl<'a> SpanRows<'a> {
    fn new(batch: &'a RecordBatch, meta: &'a BlockMeta) -> Result<Self, BlockError> {
        use schema::*;
        let events = ListView::new(column(batch, EVENTS)?, EVENTS)?;
        let links = ListView::new(column(batch, LINKS)?, LINKS)?;
        let events_attrs = events.values.column_by_name(ATTRS).ok_or_else(|| corrupt("events lack attrs".into()))?;
        let links_attrs = links.values.column_by_name(ATTRS).ok_or_else(|| corrupt("links lack attrs".into()))?;
        Ok(Self {
            trace_id: typed(batch, TRACE_ID)?,
            span_id: typed(batch, SPAN_ID)?,
            parent: typed(batch, PARENT_SPAN_ID)?,
            start: typed(batch, START)?,
            duration: typed(batch, DURATION)?,
            name: typed(batch, NAME)?,
            kind: typed(batch, KIND)?,
            service: typed(batch, SERVICE_NAME)?,
            trace_state: typed(batch, TRACE_STATE)?,
            flags: typed(batch, FLAGS)?,
            status_code: typed(batch, STATUS_CODE)?,
            status_message: typed(batch, STATUS_MESSAGE)?,
            dropped_attrs: typed(batch, DROPPED_ATTRIBUTES)?,
            dropped_events: typed(batch, DROPPED_EVENTS)?,
            dropped_links: typed(batch, DROPPED_LINKS)?,
            span_dedicated: dedicated_views(batch, &meta.dedicated.span)?,
            event_time: events.field(TIME, EVENTS)?,
            event_name: events.field(NAME, EVENTS)?,
            event_attrs: AttrListView::new(events_attrs.as_ref(), "events.attrs")?,
            event_dropped: events.field(DROPPED_ATTRIBUTES, EVENTS)?,
            events,
            link_trace_id: links.field(TRACE_ID, LINKS)?,
            link_span_id: links.field(SPAN_ID, LINKS)?,
            link_trace_state: links.field(TRACE_STATE, LINKS)?,
            link_flags: links.field(FLAGS, LINKS)?,
            link_attrs: AttrListView::new(links_attrs.as_ref(), "links.attrs")?,
            link_dropped: links.field(DROPPED_ATTRIBUTES, LINKS)?,
            links,
            resource_dedicated: dedicated_views(batch, &meta.dedicated.resource)?,
            resource_attrs: AttrListView::new(column(batch, RESOURCE_ATTRS)?, RESOURCE_ATTRS)?,
            resource_dropped: typed(batch, RESOURCE_DROPPED)?,
            entity_refs: typed(batch, RESOURCE_ENTITY_REFS)?,
            resource_schema_url: typed(batch, RESOURCE_SCHEMA_URL)?,
            scope_name: typed(batch, SCOPE_NAME)?,
            scope_version: typed(batch, SCOPE_VERSION)?,
            scope_attrs: AttrListView::new(column(batch, SCOPE_ATTRS)?, SCOPE_ATTRS)?,
            scope_dropped: typed(batch, SCOPE_DROPPED)?,
            scope_schema_url: typed(batch, SCOPE_SCHEMA_URL)?,
        })
    }

    fn read_all(&self, origins: &mut Origins, out: &mut Vec<BlockSpan>) -> Result<(), BlockError> {
        out.reserve(self.trace_id.len());
        for row in 0..self.trace_id.len() {
            let origin = self.origin(row, origins)?;
            out.push(BlockSpan { origin, span: self.span(row)? });
        }
        Ok(())
    }

    fn span(&self, row: usize) -> Result<Span, BlockError> {
        let mut attributes = Vec::new();
        push_dedicated(&self.span_dedicated, row, &mut attributes);
        let events = self
            .events
            .range(row)
            .map(|i| {
                Ok(Event {
                    time_unix_nano: self.event_time.value(i),
                    name: self.event_name.value(i).to_owned(),
                    attributes: self.event_attrs.read(i)?,
                    dropped_attributes_count: self.event_dropped.value(i),
                })
            })
            .collect::<Result<_, BlockError>>()?;
        let links = self
            .links
            .range(row)
            .map(|i| {
                Ok(Link {
                    trace_id: self.link_trace_id.value(i).to_vec(),
                    span_id: self.link_span_id.value(i).to_vec(),
                    trace_state: self.link_trace_state.value(i).to_owned(),
                    attributes: self.link_attrs.read(i)?,
                    dropped_attributes_count: self.link_dropped.value(i),
                    flags: self.link_flags.value(i),
                })
            })
            .collect::<Result<_, BlockError>>()?;
        let start = self.start.value(row);
        Ok(Span {
            trace_id: self.trace_id.value(row).to_vec(),
            span_id: self.span_id.value(row).to_vec(),
            trace_state: self.trace_state.value(row).to_owned(),
            parent_span_id: self.parent.value(row).to_vec(),
            flags: self.flags.value(row),
            name: self.name.value(row).to_owned(),
            kind: self.kind.value(row),
            start_time_unix_nano: start,
            end_time_unix_nano: start.wrapping_add(self.duration.value(row) as u64),
            attributes,
            dropped_attributes_count: self.dropped_attrs.value(row),
            events,
            dropped_events_count: self.dropped_events.value(row),
            links,
            dropped_links_count: self.dropped_links.value(row),
            status: self.status_code.is_valid(row).then(|| Status {
                message: opt_str(self.status_message, row).unwrap_or_default(),
                code: self.status_code.value(row),
            }),
        })
    }

    fn origin(&self, row: usize, origins: &mut Origins) -> Result<Arc<ScopeOrigin>, BlockError> {
        let resource = match opt_u32(self.resource_dropped, row) {
            None => None,
            Some(dropped_attributes_count) => {
                let mut attributes = Vec::new();
                if let Some(service) = opt_str(self.service, row) {
                    attributes.push(KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue { value: Some(Value::StringValue(service)) }),
                        key_strindex: 0,
                    });
                }
                push_dedicated(&self.resource_dedicated, row, &mut attributes);
                self.resource_attrs.read_into(row, &mut attributes)?;
                let entity_refs = if self.entity_refs.is_valid(row) {
                    Resource::decode(self.entity_refs.value(row))
                        .map_err(|e| corrupt(format!("resource.entity_refs: {e}")))?
                        .entity_refs
                } else {
                    Vec::new()
                };
                Some(Resource { attributes, dropped_attributes_count, entity_refs })
            }
        };
        let scope = match opt_str(self.scope_name, row) {
            None => None,
            Some(name) => Some(InstrumentationScope {
                name,
                version: opt_str(self.scope_version, row).unwrap_or_default(),
                attributes: self.scope_attrs.read(row)?,
                dropped_attributes_count: opt_u32(self.scope_dropped, row).unwrap_or_default(),
            }),
        };
        Ok(origins.intern(resource, self.resource_schema_url.value(row), scope, self.scope_schema_url.value(row)))
    }
}
