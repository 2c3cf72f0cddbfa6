//! Search over blocks: blocks and row groups are pruned with `meta.json`, then only the columns the filter
//! needs are read from `spans.parquet`; summaries of matched traces come from `traces.parquet`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, BooleanArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use clew_model::TraceId;
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, RowFilter};
use parquet::arrow::push_decoder::ParquetPushDecoderBuilder;
use parquet::file::metadata::PageIndexPolicy;

use super::{AttrScope, SearchRequest, SpanFilter, TraceAcc, Traces};
use crate::block::attrs::{AttrListView, DedicatedView, Scalar, corrupt, downcast};
use crate::block::read::{decode, load_metadata};
use crate::block::{BlockError, SPANS_FILE, TRACES_FILE, schema};
use crate::block::{BlockMeta, RowGroupMeta};

const BATCH_ROWS: usize = 8 * 1024;

/// Whether a row group may hold a span matching the filter, judged from its summary.
fn row_group_may_match(rg: &RowGroupMeta, request: &SearchRequest) -> bool {
    let filter = &request.filter;
    let lacks = |list: &Option<Vec<String>>, value: &str| list.as_ref().is_some_and(|l| !l.iter().any(|v| v == value));
    if filter.service.as_deref().is_some_and(|s| lacks(&rg.services, s)) {
        return false;
    }
    if filter.name.as_deref().is_some_and(|n| lacks(&rg.span_names, n)) {
        return false;
    }
    for (c, scope) in filter.all_attrs() {
        let on_span = scope != Some(AttrScope::Resource) && !lacks(&rg.span_attribute_keys, &c.key);
        let on_resource =
            scope != Some(AttrScope::Span) && (c.key == "service.name" || !lacks(&rg.resource_attribute_keys, &c.key));
        if !on_span && !on_resource {
            return false;
        }
    }
    if filter.min_duration_nanos.is_some_and(|min| rg.max_duration_nano < min)
        || filter.max_duration_nanos.is_some_and(|max| rg.min_duration_nano > max)
    {
        return false;
    }
    // A trace starts no later than any of its spans: a row group ending before the bound holds only parts of
    // traces that start before it.
    request.start_min_unix_nano.is_none_or(|min| rg.max_end_unix_nano >= min)
}

/// Where an attribute's values are in `spans.parquet`.
enum Source {
    Dedicated(String),
    Generic,
    ServiceName,
}

struct KeySources {
    key: String,
    span: Source,
    resource: Source,
}

fn key_sources(meta: &BlockMeta, filter: &SpanFilter) -> Vec<KeySources> {
    let mut out: Vec<KeySources> = Vec::new();
    for (c, _) in filter.all_attrs() {
        if out.iter().any(|k| k.key == c.key) {
            continue;
        }
        let dedicated = |columns: &[crate::block::DedicatedColumn]| {
            columns.iter().find(|d| d.key == c.key).map_or(Source::Generic, |d| Source::Dedicated(d.column.clone()))
        };
        let resource = if c.key == "service.name" { Source::ServiceName } else { dedicated(&meta.dedicated.resource) };
        out.push(KeySources { key: c.key.clone(), span: dedicated(&meta.dedicated.span), resource });
    }
    out
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, BlockError> {
    let array = batch.column_by_name(name).ok_or_else(|| corrupt(format!("spans.parquet lacks the column {name}")))?;
    downcast(array.as_ref(), name)
}

/// Scans one block for matching spans: adds their counts to `matched`, and the earliest matching span of
/// each trace to `hints` (a root fallback).
pub(super) async fn scan(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    request: &SearchRequest,
    matched: &mut HashMap<TraceId, u64>,
    hints: &mut Traces,
) -> Result<(), BlockError> {
    if meta.span_count == 0 || request.start_min_unix_nano.is_some_and(|min| meta.max_end_unix_nano < min) {
        return Ok(());
    }
    let row_groups: Vec<usize> =
        meta.row_groups.iter().enumerate().filter(|(_, rg)| row_group_may_match(rg, request)).map(|(i, _)| i).collect();
    if row_groups.is_empty() {
        return Ok(());
    }
    let path = meta.path(SPANS_FILE);
    let metadata = Arc::new(load_metadata(store, &path, &meta.spans_file, PageIndexPolicy::Skip).await?);
    if metadata.num_row_groups() != meta.row_groups.len() {
        return Err(corrupt(format!(
            "spans.parquet has {} row groups, meta.json lists {}",
            metadata.num_row_groups(),
            meta.row_groups.len()
        )));
    }
    let filter = &request.filter;
    let sources = key_sources(meta, filter);
    let mut wanted: HashSet<&str> = [
        schema::TRACE_ID,
        schema::START,
        schema::DURATION,
        schema::NAME,
        schema::SERVICE_NAME,
        schema::KIND,
        schema::STATUS_CODE,
    ]
    .into();
    for s in &sources {
        for source in [&s.span, &s.resource] {
            wanted.insert(match source {
                Source::Dedicated(column) => column.as_str(),
                Source::ServiceName => schema::SERVICE_NAME,
                Source::Generic if std::ptr::eq(source, &s.span) => schema::SPAN_ATTRS,
                Source::Generic => schema::RESOURCE_ATTRS,
            });
        }
    }
    let projection = crate::block::read::project_columns(&metadata, &wanted);
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(metadata)?
        .with_projection(projection)
        .with_row_groups(row_groups)
        .with_batch_size(BATCH_ROWS)
        .build()?;
    decode(store, &path, decoder, |batch| {
        let trace_id = column::<arrow_array::FixedSizeBinaryArray>(&batch, schema::TRACE_ID)?;
        let start: &UInt64Array = column(&batch, schema::START)?;
        let duration: &Int64Array = column(&batch, schema::DURATION)?;
        let name: &StringArray = column(&batch, schema::NAME)?;
        let service: &StringArray = column(&batch, schema::SERVICE_NAME)?;
        let kind: &Int32Array = column(&batch, schema::KIND)?;
        let status: &Int32Array = column(&batch, schema::STATUS_CODE)?;
        let view = |source: &Source, generic: &str| -> Result<Option<Lookup<'_>>, BlockError> {
            Ok(Some(match source {
                Source::Dedicated(c) => {
                    let ty = meta
                        .dedicated
                        .span
                        .iter()
                        .chain(&meta.dedicated.resource)
                        .find(|d| &d.column == c)
                        .map(|d| d.ty)
                        .ok_or_else(|| corrupt(format!("no dedicated column {c}")))?;
                    let array = batch.column_by_name(c).ok_or_else(|| corrupt(format!("no column {c}")))?;
                    Lookup::Dedicated(DedicatedView::new(array.as_ref(), ty, c)?)
                }
                Source::ServiceName => Lookup::Service,
                Source::Generic => match batch.column_by_name(generic) {
                    Some(array) => Lookup::Generic(AttrListView::new(array.as_ref(), generic)?),
                    None => return Ok(None),
                },
            }))
        };
        let mut lookups = Vec::with_capacity(sources.len());
        for s in &sources {
            lookups.push((
                s.key.as_str(),
                view(&s.span, schema::SPAN_ATTRS)?,
                view(&s.resource, schema::RESOURCE_ATTRS)?,
            ));
        }
        for row in 0..batch.num_rows() {
            let svc = service.is_valid(row).then(|| service.value(row));
            let code = if status.is_valid(row) { status.value(row) } else { 0 };
            if !filter.matches_fixed(svc, name.value(row), kind.value(row), code, duration.value(row)) {
                continue;
            }
            let attr = |key: &str, scope: Option<AttrScope>| {
                let (_, span, resource) = lookups.iter().find(|(k, _, _)| *k == key)?;
                match scope {
                    Some(AttrScope::Span) => get(span, row, key, svc),
                    Some(AttrScope::Resource) => get(resource, row, key, svc),
                    None => get(span, row, key, svc).or_else(|| get(resource, row, key, svc)),
                }
            };
            if !filter.matches_attrs(attr) {
                continue;
            }
            let Some(id) = TraceId::from_slice(trace_id.value(row)) else { continue };
            *matched.entry(id).or_default() += 1;
            hints.entry(id).or_default().note_earliest(start.value(row), svc.unwrap_or_default(), name.value(row));
        }
        Ok(())
    })
    .await
}

fn get<'a>(lookup: &Option<Lookup<'a>>, row: usize, key: &str, service: Option<&'a str>) -> Option<Scalar<'a>> {
    match lookup.as_ref()? {
        Lookup::Dedicated(v) => v.scalar(row),
        Lookup::Generic(v) => v.find(row, key),
        Lookup::Service => service.map(Scalar::Str),
    }
}

enum Lookup<'a> {
    Dedicated(DedicatedView<'a>),
    Generic(AttrListView<'a>),
    Service,
}

/// Lowers `starts` of the given traces to their start in this block, reading only the id and start columns
/// of `traces.parquet`.
pub(super) async fn starts(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    ids: &HashSet<TraceId>,
    starts: &mut HashMap<TraceId, u64>,
) -> Result<(), BlockError> {
    let path = meta.path(TRACES_FILE);
    let metadata = Arc::new(load_metadata(store, &path, &meta.traces_file, PageIndexPolicy::Skip).await?);
    let projection = crate::block::read::project_columns(&metadata, &[schema::TRACE_ID, schema::START].into());
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(metadata)?
        .with_projection(projection)
        .with_batch_size(BATCH_ROWS)
        .build()?;
    decode(store, &path, decoder, |batch| {
        let trace_id = batch
            .column_by_name(schema::TRACE_ID)
            .ok_or_else(|| corrupt("traces.parquet lacks trace_id".into()))?
            .as_fixed_size_binary();
        let start: &UInt64Array = column(&batch, schema::START)?;
        for row in 0..batch.num_rows() {
            let Some(id) = TraceId::from_slice(trace_id.value(row)) else { continue };
            if ids.contains(&id) {
                let s = start.value(row);
                starts.entry(id).and_modify(|e| *e = (*e).min(s)).or_insert(s);
            }
        }
        Ok(())
    })
    .await
}

/// Summaries of the given traces' parts in this block, from `traces.parquet`.
pub(super) async fn summaries(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    ids: &[TraceId],
) -> Result<Traces, BlockError> {
    let wanted: HashSet<&TraceId> = ids.iter().collect();
    let path = meta.path(TRACES_FILE);
    let metadata = Arc::new(load_metadata(store, &path, &meta.traces_file, PageIndexPolicy::Skip).await?);
    // Only rows of the wanted traces are decoded past the id column (the services lists are the costly part).
    let id_column = ProjectionMask::columns(metadata.file_metadata().schema_descr(), [schema::TRACE_ID]);
    let keys: HashSet<[u8; 16]> = ids.iter().map(|id| id.0).collect();
    let predicate = ArrowPredicateFn::new(id_column, move |batch| {
        let column = batch.column(0).as_fixed_size_binary();
        Ok(BooleanArray::from_iter(
            column
                .iter()
                .map(|id| Some(id.and_then(|id| <[u8; 16]>::try_from(id).ok()).is_some_and(|id| keys.contains(&id)))),
        ))
    });
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(metadata)?
        .with_row_filter(RowFilter::new(vec![Box::new(predicate)]))
        .with_batch_size(BATCH_ROWS)
        .build()?;
    let mut out: Traces = HashMap::new();
    decode(store, &path, decoder, |batch| {
        let trace_id = batch
            .column_by_name(schema::TRACE_ID)
            .ok_or_else(|| corrupt("traces.parquet lacks trace_id".into()))?
            .as_fixed_size_binary();
        let start: &UInt64Array = column(&batch, schema::START)?;
        let duration: &Int64Array = column(&batch, schema::DURATION)?;
        let root_service: &StringArray = column(&batch, schema::ROOT_SERVICE)?;
        let root_name: &StringArray = column(&batch, schema::ROOT_NAME)?;
        let spans: &UInt32Array = column(&batch, schema::SPAN_COUNT)?;
        let errors: &UInt32Array = column(&batch, schema::ERROR_COUNT)?;
        let services: &ListArray = column(&batch, schema::SERVICES)?;
        for row in 0..batch.num_rows() {
            let Some(id) = TraceId::from_slice(trace_id.value(row)) else { continue };
            if !wanted.contains(&id) {
                continue;
            }
            let s = start.value(row);
            let mut acc = TraceAcc {
                start: s,
                end: s.saturating_add(duration.value(row).max(0) as u64),
                spans: spans.value(row) as u64,
                errors: errors.value(row) as u64,
                ..Default::default()
            };
            let names = services.value(row);
            let names: &StringArray = downcast(names.as_ref(), schema::SERVICES)?;
            acc.services.extend(names.iter().flatten().map(str::to_owned));
            if root_name.is_valid(row) {
                let svc = if root_service.is_valid(row) { root_service.value(row) } else { "" };
                acc.root = Some((s, svc.to_owned(), root_name.value(row).to_owned()));
            }
            out.entry(id).or_default().merge(acc);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}
