//! Search over blocks: blocks and row groups are pruned with `meta.json`, then only the columns the filter
//! needs are read from `spans.parquet`; summaries of matched traces come from `traces.parquet`.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, BooleanArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use clew_model::TraceId;
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, ArrowReaderOptions, RowFilter};
use parquet::arrow::parquet_to_arrow_schema;
use parquet::arrow::push_decoder::ParquetPushDecoderBuilder;
use parquet::file::metadata::ParquetMetaData;

use super::{AttrOp, AttrScope, IdMap, IdSet, Literal, SearchRequest, SpanFilter, TraceAcc, Traces};
use crate::block::attrs::{AttrListView, DedicatedView, Scalar, corrupt, downcast};
use crate::block::read::{cached_metadata, decode};
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

/// Columns of `spans.parquet` the filter reads, besides the trace id.
fn wanted_columns<'a>(filter: &SpanFilter, sources: &'a [KeySources]) -> HashSet<&'a str> {
    let mut wanted: HashSet<&str> = [schema::TRACE_ID].into();
    let mut want = |needed: bool, column: &'static str| {
        if needed {
            wanted.insert(column);
        }
    };
    // (An attribute condition on `service.name` adds the column below, as its resource source.)
    want(filter.service.is_some(), schema::SERVICE_NAME);
    want(filter.name.is_some(), schema::NAME);
    want(filter.kind.is_some(), schema::KIND);
    want(filter.status.is_some(), schema::STATUS_CODE);
    want(filter.min_duration_nanos.is_some() || filter.max_duration_nanos.is_some(), schema::DURATION);
    for s in sources {
        for source in [&s.span, &s.resource] {
            wanted.insert(match source {
                Source::Dedicated(column) => column.as_str(),
                Source::ServiceName => schema::SERVICE_NAME,
                Source::Generic if std::ptr::eq(source, &s.span) => schema::SPAN_ATTRS,
                Source::Generic => schema::RESOURCE_ATTRS,
            });
        }
    }
    wanted
}

/// Reader options that read the service and span name columns and the keys and string values of the generic
/// attribute lists as dictionaries (they are dictionary encoded in the file): a condition on them is then judged
/// once per distinct value, and nothing is copied per row.
fn dictionary_strings(metadata: &ParquetMetaData) -> Result<ArrowReaderOptions, BlockError> {
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
            (schema::SERVICE_NAME | schema::NAME, DataType::Utf8) => dictionary(f),
            (schema::SPAN_ATTRS | schema::RESOURCE_ATTRS, DataType::List(element)) => match element.data_type() {
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
    Ok(ArrowReaderOptions::new().with_schema(Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))))
}

/// The value fields of the generic attribute lists the filter's conditions compare with (a string condition
/// never holds on a number, and so on); arrays and maps are told apart by the type code alone.
fn value_fields(filter: &SpanFilter) -> HashSet<&'static str> {
    let mut fields = HashSet::new();
    for (condition, _) in filter.all_attrs() {
        match (&condition.op, &condition.value) {
            (AttrOp::Match(_) | AttrOp::NotMatch(_), _) | (_, Literal::Str(_)) => fields.insert(schema::STR),
            (_, Literal::Int(_) | Literal::Float(_)) => fields.insert(schema::INT) | fields.insert(schema::DOUBLE),
            (_, Literal::Bool(_)) => fields.insert(schema::BOOL),
        };
    }
    fields
}

/// The leaves of the wanted columns; of the generic attribute lists, the key, the type code and the value fields
/// the conditions compare with.
fn projected_leaves(metadata: &ParquetMetaData, wanted: &HashSet<&str>, values: &HashSet<&str>) -> ProjectionMask {
    let descr = metadata.file_metadata().schema_descr();
    let leaves = (0..descr.num_columns()).filter(|&i| {
        let column = descr.column(i);
        let parts = column.path().parts();
        let root = parts[0].as_str();
        if !wanted.contains(root) {
            return false;
        }
        if root != schema::SPAN_ATTRS && root != schema::RESOURCE_ATTRS {
            return true;
        }
        let leaf = parts.last().map(String::as_str).unwrap_or_default();
        leaf == schema::KEY || leaf == schema::TYPE || values.contains(leaf)
    });
    ProjectionMask::leaves(descr, leaves)
}

/// A row filter keeping the rows of the filter's service and span name, when it names either.
fn service_and_name_predicate(
    metadata: &ParquetMetaData,
    filter: &SpanFilter,
) -> Option<Box<dyn parquet::arrow::arrow_reader::ArrowPredicate>> {
    let conditions: Vec<(&'static str, String)> =
        [(schema::SERVICE_NAME, &filter.service), (schema::NAME, &filter.name)]
            .into_iter()
            .filter_map(|(column, value)| value.clone().map(|v| (column, v)))
            .collect();
    if conditions.is_empty() {
        return None;
    }
    let descr = metadata.file_metadata().schema_descr();
    let roots = (0..descr.root_schema().get_fields().len())
        .filter(|&i| conditions.iter().any(|(column, _)| descr.root_schema().get_fields()[i].name() == *column));
    let mask = ProjectionMask::roots(descr, roots);
    Some(Box::new(ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
        let mut keep = vec![true; batch.num_rows()];
        for (column, value) in &conditions {
            let strings = Strings::of(&batch, column).map_err(|e| arrow_schema::ArrowError::ExternalError(e.into()))?;
            if let Some(rows) = strings.equal_rows(Some(value)) {
                keep.iter_mut().zip(rows).for_each(|(k, r)| *k &= r);
            }
        }
        Ok(BooleanArray::from(keep))
    })))
}

/// A string column of a batch, read as a dictionary when the reader gave one.
enum Strings<'a> {
    Dictionary { keys: &'a Int32Array, values: &'a StringArray },
    Plain(&'a StringArray),
}

impl<'a> Strings<'a> {
    fn of(batch: &'a RecordBatch, name: &str) -> Result<Self, BlockError> {
        let array =
            batch.column_by_name(name).ok_or_else(|| corrupt(format!("spans.parquet lacks the column {name}")))?;
        Ok(match array.as_dictionary_opt::<Int32Type>() {
            Some(dictionary) => {
                Self::Dictionary { keys: dictionary.keys(), values: downcast(dictionary.values().as_ref(), name)? }
            }
            None => Self::Plain(downcast(array.as_ref(), name)?),
        })
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Self::Dictionary { keys, values } => keys.is_valid(row).then(|| values.value(keys.value(row) as usize)),
            Self::Plain(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }

    /// Which rows hold `value` (`None`: every row may): for a dictionary, one comparison per distinct value.
    fn equal_rows(&self, value: Option<&str>) -> Option<Vec<bool>> {
        let value = value?;
        Some(match self {
            Self::Dictionary { keys, values } => {
                let accepted: Vec<bool> = values.iter().map(|v| v == Some(value)).collect();
                (0..keys.len()).map(|row| keys.is_valid(row) && accepted[keys.value(row) as usize]).collect()
            }
            Self::Plain(a) => (0..a.len()).map(|row| a.is_valid(row) && a.value(row) == value).collect(),
        })
    }
}

/// Scans one block for matching spans and adds their counts to `matched`.
pub(super) async fn scan(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    request: &SearchRequest,
    matched: &mut IdMap<u64>,
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
    let metadata = cached_metadata(store, &path, &meta.spans_file).await?;
    if metadata.num_row_groups() != meta.row_groups.len() {
        return Err(corrupt(format!(
            "spans.parquet has {} row groups, meta.json lists {}",
            metadata.num_row_groups(),
            meta.row_groups.len()
        )));
    }
    let filter = &request.filter;
    let sources = key_sources(meta, filter);
    let wanted = wanted_columns(filter, &sources);
    let projection = projected_leaves(&metadata, &wanted, &value_fields(filter));
    let options = dictionary_strings(&metadata)?;
    let mut builder = ParquetPushDecoderBuilder::try_new_decoder_with_options(metadata.clone(), options)?
        .with_projection(projection)
        .with_row_groups(row_groups)
        .with_batch_size(BATCH_ROWS);
    if !sources.is_empty()
        && let Some(predicate) = service_and_name_predicate(&metadata, filter)
    {
        // Attribute lists are the costly columns: decode them only for rows of the wanted service and name.
        builder = builder.with_row_filter(RowFilter::new(vec![predicate]));
    }
    let decoder = builder.build()?;
    let ints = |batch: &RecordBatch, name: &str, needed: bool| -> Result<Option<Int32Array>, BlockError> {
        Ok(if needed { Some(column::<Int32Array>(batch, name)?.clone()) } else { None })
    };
    // Rows come sorted by trace id: a trace's matches are counted in one run, then added once.
    let mut run: Option<(TraceId, u64)> = None;
    let mut flush = |run: &mut Option<(TraceId, u64)>| {
        if let Some((id, hits)) = run.take() {
            *matched.entry(id).or_default() += hits;
        }
    };
    decode(store, &path, decoder, |batch| {
        let trace_id = column::<arrow_array::FixedSizeBinaryArray>(&batch, schema::TRACE_ID)?;
        let service = match batch.column_by_name(schema::SERVICE_NAME) {
            Some(_) => Some(Strings::of(&batch, schema::SERVICE_NAME)?),
            None => None,
        };
        let service_rows = service.as_ref().and_then(|s| s.equal_rows(filter.service.as_deref()));
        let name_rows = match filter.name.as_deref() {
            Some(wanted) => Strings::of(&batch, schema::NAME)?.equal_rows(Some(wanted)),
            None => None,
        };
        let kind = ints(&batch, schema::KIND, filter.kind.is_some())?;
        let status = ints(&batch, schema::STATUS_CODE, filter.status.is_some())?;
        let duration = match filter.min_duration_nanos.is_some() || filter.max_duration_nanos.is_some() {
            true => Some(column::<Int64Array>(&batch, schema::DURATION)?),
            false => None,
        };
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
        let value = |column: &Option<Int32Array>, row: usize| {
            column.as_ref().map_or(0, |c| if c.is_valid(row) { c.value(row) } else { 0 })
        };
        for row in 0..batch.num_rows() {
            if service_rows.as_ref().is_some_and(|rows| !rows[row]) || name_rows.as_ref().is_some_and(|rows| !rows[row])
            {
                continue;
            }
            if filter.kind.is_some_and(|k| k != value(&kind, row))
                || filter.status.is_some_and(|s| s != value(&status, row))
            {
                continue;
            }
            if let Some(duration) = duration {
                let d = duration.value(row);
                if filter.min_duration_nanos.is_some_and(|min| d < min)
                    || filter.max_duration_nanos.is_some_and(|max| d > max)
                {
                    continue;
                }
            }
            let svc = service.as_ref().and_then(|s| s.get(row));
            if !lookups.is_empty() {
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
            }
            let Some(id) = TraceId::from_slice(trace_id.value(row)) else { continue };
            match &mut run {
                Some((current, hits)) if *current == id => *hits += 1,
                _ => {
                    flush(&mut run);
                    run = Some((id, 1));
                }
            }
        }
        Ok(())
    })
    .await?;
    flush(&mut run);
    Ok(())
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

/// Calls `each` with every trace part of the block: its id, start and span count, from `traces.parquet`.
pub(super) async fn for_each_trace(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    mut each: impl FnMut(TraceId, u64, u64),
) -> Result<(), BlockError> {
    let path = meta.path(TRACES_FILE);
    let metadata = cached_metadata(store, &path, &meta.traces_file).await?;
    let wanted = [schema::TRACE_ID, schema::START, schema::SPAN_COUNT].into();
    let projection = crate::block::read::project_columns(&metadata, &wanted);
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(metadata)?
        .with_projection(projection)
        .with_batch_size(BATCH_ROWS)
        .build()?;
    decode(store, &path, decoder, |batch| {
        let trace_id = column::<arrow_array::FixedSizeBinaryArray>(&batch, schema::TRACE_ID)?;
        let start: &UInt64Array = column(&batch, schema::START)?;
        let spans: &UInt32Array = column(&batch, schema::SPAN_COUNT)?;
        for row in 0..batch.num_rows() {
            if let Some(id) = TraceId::from_slice(trace_id.value(row)) {
                each(id, start.value(row), spans.value(row) as u64);
            }
        }
        Ok(())
    })
    .await
}

/// Lowers `starts` of the given traces to their start in this block, reading only the id and start columns
/// of `traces.parquet`.
pub(super) async fn starts(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    wanted: impl Fn(&TraceId) -> bool,
    starts: &mut IdMap<u64>,
) -> Result<(), BlockError> {
    let path = meta.path(TRACES_FILE);
    let metadata = cached_metadata(store, &path, &meta.traces_file).await?;
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
            if wanted(&id) {
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
    let wanted: IdSet = ids.iter().copied().collect();
    let path = meta.path(TRACES_FILE);
    let metadata = cached_metadata(store, &path, &meta.traces_file).await?;
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
    let mut out: Traces = Traces::default();
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
