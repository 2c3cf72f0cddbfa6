//! Search over blocks, one block and some of its row groups at a time (row groups are slices of the block's
//! traces by start time, so the newest can be searched first).
//!
//! A scan finds the rows that match in three steps, each reading as little as it can: conditions on an attribute
//! that only a span's own entries in `attrs.parquet` can satisfy are judged on that key's entries alone (a
//! key's run, whatever its frequency), which gives the candidate rows; the other conditions are judged on the
//! columns of `spans.parquet` they need, at the candidate rows only (small pages let the reader skip the rest);
//! matches are then counted per trace from the row ranges `traces.parquet` gives.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use clew_model::TraceId;
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::arrow::push_decoder::{ParquetPushDecoderBuilder, RowGroupSelection};
use parquet::file::metadata::ParquetMetaData;

use super::{AttrOp, AttrScope, Literal, SearchRequest, SpanFilter, TraceAcc};
use crate::block::BlockMeta;
use crate::block::attrs::{AttrListView, DedicatedView, Scalar, StrValues, ValueFields, corrupt, downcast};
use crate::block::read::{arrow_reader, cached_metadata_with_index, decode, exact_rows};
use crate::block::{ATTRS_FILE, BlockError, SPANS_FILE, TRACES_FILE, schema};

const BATCH_ROWS: usize = 8 * 1024;

/// A trace part found in a row group: where it is, its start in this block, and how many of its spans match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    pub group: u32,
    /// Its row in the row group of `traces.parquet`.
    pub ordinal: u32,
    pub trace_id: TraceId,
    pub start: u64,
    pub matched: u64,
}

/// Whether a row group may hold a span matching the filter, judged from `meta.json`.
pub(super) fn group_may_match(meta: &BlockMeta, group: usize, request: &SearchRequest) -> bool {
    let rg = &meta.row_groups[group];
    let filter = &request.filter;
    let lacks = |list: &Option<Vec<String>>, value: &str| list.as_ref().is_some_and(|l| !l.iter().any(|v| v == value));
    if filter.service.as_deref().is_some_and(|s| lacks(&rg.services, s)) {
        return false;
    }
    if filter.name.as_deref().is_some_and(|n| lacks(&rg.span_names, n)) {
        return false;
    }
    for (c, scope) in filter.all_attrs() {
        let on_span = scope != Some(AttrScope::Resource)
            && (meta.dedicated.span.iter().any(|d| d.key == c.key) || meta.attr_entries(group, &c.key).is_some());
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
    // A part that starts before the bound belongs to a trace that does too.
    request.start_min_unix_nano.is_none_or(|min| rg.max_trace_start_unix_nano >= min)
}

/// The traces of some row groups of a block: id, start and the row range of each in its row group.
struct TraceTable {
    ids: Vec<TraceId>,
    starts: Vec<u64>,
    /// Row of each trace's first span in the row group, and the row count at the end.
    first_rows: Vec<u32>,
}

async fn trace_tables(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    groups: &[usize],
) -> Result<Vec<TraceTable>, BlockError> {
    let path = meta.path(TRACES_FILE);
    let reader = arrow_reader(store, &path, &meta.traces_file, &[]).await?;
    check_groups(meta, reader.metadata(), "traces.parquet")?;
    let columns = [schema::TRACE_ID, schema::START, schema::SPAN_COUNT];
    let projection = ProjectionMask::columns(reader.metadata().file_metadata().schema_descr(), columns);
    let decoder = ParquetPushDecoderBuilder::new_with_metadata(reader)
        .with_projection(projection)
        .with_row_groups(groups.to_vec())
        .with_batch_size(64 * 1024)
        .build()?;
    let mut tables: Vec<TraceTable> = groups
        .iter()
        .map(|&g| {
            let n = meta.row_groups[g].traces as usize;
            TraceTable { ids: Vec::with_capacity(n), starts: Vec::with_capacity(n), first_rows: vec![0] }
        })
        .collect();
    let mut current = 0;
    decode(store, &path, decoder, |batch| {
        let ids = column_of(&batch, schema::TRACE_ID)?.as_fixed_size_binary();
        let starts: &UInt64Array = typed(&batch, schema::START)?;
        let spans: &UInt32Array = typed(&batch, schema::SPAN_COUNT)?;
        for row in 0..batch.num_rows() {
            while tables.get(current).is_some_and(|t| t.ids.len() as u64 >= meta.row_groups[groups[current]].traces) {
                current += 1;
            }
            let table = tables.get_mut(current).ok_or_else(|| corrupt("traces.parquet has more traces".into()))?;
            table.ids.push(TraceId::from_slice(ids.value(row)).ok_or_else(|| corrupt("a trace id".into()))?);
            table.starts.push(starts.value(row));
            let last = *table.first_rows.last().expect("starts at 0");
            table.first_rows.push(last + spans.value(row));
        }
        Ok(())
    })
    .await?;
    for (table, &g) in tables.iter().zip(groups) {
        if table.first_rows.last().copied() != Some(meta.row_groups[g].rows as u32) {
            return Err(corrupt(format!("traces.parquet row group {g} does not count the spans meta.json does")));
        }
    }
    Ok(tables)
}

fn check_groups(meta: &BlockMeta, metadata: &ParquetMetaData, file: &str) -> Result<(), BlockError> {
    if metadata.num_row_groups() != meta.row_groups.len() {
        return Err(corrupt(format!(
            "{file} has {} row groups, meta.json lists {}",
            metadata.num_row_groups(),
            meta.row_groups.len()
        )));
    }
    Ok(())
}

fn column_of<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, BlockError> {
    batch.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| corrupt(format!("no column {name}")))
}

fn typed<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, BlockError> {
    downcast(column_of(batch, name)?, name)
}

/// Scans row groups `groups` (ascending) of a block: every trace part with at least one matching span, with
/// its count of them. Without span conditions every part matches, with all its spans.
pub(super) async fn scan(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    groups: &[usize],
    filter: &SpanFilter,
) -> Result<Vec<Hit>, BlockError> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    if filter.is_empty() {
        let tables = trace_tables(store, meta, groups).await?;
        let mut hits = Vec::new();
        for (table, &g) in tables.iter().zip(groups) {
            for (i, id) in table.ids.iter().enumerate() {
                let matched = (table.first_rows[i + 1] - table.first_rows[i]) as u64;
                hits.push(Hit { group: g as u32, ordinal: i as u32, trace_id: *id, start: table.starts[i], matched });
            }
        }
        return Ok(hits);
    }

    // 1. Candidate rows from the conditions only a span's own attribute entries can meet.
    let mut candidates: Vec<Option<Vec<u32>>> = vec![None; groups.len()];
    let mut per_row: Vec<usize> = Vec::new();
    for (i, (c, scope)) in filter.all_attrs().enumerate() {
        let dedicated = meta.dedicated.span.iter().any(|d| d.key == c.key);
        let resource_possible = |g: usize| {
            let rg = &meta.row_groups[g];
            c.key == "service.name"
                || meta.dedicated.resource.iter().any(|d| d.key == c.key)
                || rg.resource_attribute_keys.as_ref().is_none_or(|keys| keys.contains(&c.key))
        };
        let sparse: Vec<bool> = groups
            .iter()
            .map(|&g| {
                !dedicated
                    && scope != Some(AttrScope::Resource)
                    && (scope == Some(AttrScope::Span) || !resource_possible(g))
            })
            .collect();
        if sparse.iter().any(|s| *s) {
            let wanted: Vec<usize> = groups.iter().zip(&sparse).filter(|(_, s)| **s).map(|(&g, _)| g).collect();
            let rows = attribute_rows(store, meta, &wanted, c, filter.non_scalars_match).await?;
            for ((slot, &g), is_sparse) in candidates.iter_mut().zip(groups).zip(&sparse) {
                if *is_sparse {
                    let found = rows.get(&g).cloned().unwrap_or_default();
                    *slot = Some(match slot.take() {
                        None => found,
                        Some(previous) => intersect(&previous, &found),
                    });
                }
            }
        }
        // Groups where it is not sparse judge it per row.
        if sparse.iter().any(|s| !*s) {
            per_row.push(i);
        }
    }

    // 2. The other conditions, per row, on the columns they need: with few candidates, one condition at a time
    //    (each pass reads one column at the rows still standing, most selective first); else all at once.
    let total_rows: u64 = groups.iter().map(|&g| meta.row_groups[g].rows).sum();
    let standing: u64 = candidates
        .iter()
        .zip(groups)
        .map(|(c, &g)| c.as_ref().map_or(meta.row_groups[g].rows, |c| c.len() as u64))
        .sum();
    let all = Checks::of(filter, per_row);
    let stages = if standing * 8 <= total_rows { all.one_by_one() } else { vec![all] };
    let mut rows: Vec<Option<Vec<u32>>> = candidates;
    for stage in stages {
        if stage.is_empty() {
            continue;
        }
        let active: Vec<usize> =
            (0..groups.len()).filter(|&i| rows[i].as_ref().is_none_or(|c| !c.is_empty())).collect();
        if active.is_empty() {
            break;
        }
        let judged: Vec<usize> = active.iter().map(|&i| groups[i]).collect();
        let judged_rows: Vec<Option<Vec<u32>>> = active.iter().map(|&i| rows[i].take()).collect();
        let kept = judge_rows(store, meta, &judged, &judged_rows, filter, &stage).await?;
        for (&i, kept) in active.iter().zip(kept) {
            rows[i] = Some(kept);
        }
    }
    let matched_rows: Vec<Vec<u32>> = rows
        .into_iter()
        .zip(groups)
        .map(|(r, &g)| r.unwrap_or_else(|| (0..meta.row_groups[g].rows as u32).collect()))
        .collect();

    // 3. Matches counted per trace (rows ascending; each trace's rows are a range), in the row groups that have any.
    let with_matches: Vec<usize> = (0..groups.len()).filter(|&i| !matched_rows[i].is_empty()).collect();
    let tables = trace_tables(store, meta, &with_matches.iter().map(|&i| groups[i]).collect::<Vec<_>>()).await?;
    let mut hits = Vec::new();
    for (table, &i) in tables.iter().zip(&with_matches) {
        let g = groups[i];
        let mut trace = 0usize;
        for &row in &matched_rows[i] {
            while table.first_rows.get(trace + 1).is_some_and(|&end| end <= row) {
                trace += 1;
            }
            match hits.last_mut() {
                Some(Hit { group, ordinal, matched, .. }) if *group == g as u32 && *ordinal == trace as u32 => {
                    *matched += 1
                }
                _ => hits.push(Hit {
                    group: g as u32,
                    ordinal: trace as u32,
                    trace_id: table.ids[trace],
                    start: table.starts[trace],
                    matched: 1,
                }),
            }
        }
    }
    Ok(hits)
}

/// Which conditions a pass over `spans.parquet` judges: the span's own columns, and attribute conditions (by
/// index in `filter.all_attrs()`) judged per row.
#[derive(Debug, Clone, Default)]
struct Checks {
    service: bool,
    name: bool,
    kind: bool,
    status: bool,
    duration: bool,
    attrs: Vec<usize>,
}

impl Checks {
    fn of(filter: &SpanFilter, attrs: Vec<usize>) -> Self {
        Self {
            service: filter.service.is_some(),
            name: filter.name.is_some(),
            kind: filter.kind.is_some(),
            status: filter.status.is_some(),
            duration: filter.min_duration_nanos.is_some() || filter.max_duration_nanos.is_some(),
            attrs,
        }
    }

    fn is_empty(&self) -> bool {
        !(self.service || self.name || self.kind || self.status || self.duration) && self.attrs.is_empty()
    }

    /// One pass per condition, those that usually rule out the most (span name, then service) first.
    fn one_by_one(self) -> Vec<Checks> {
        let one = |set: fn(&mut Checks)| {
            let mut c = Checks::default();
            set(&mut c);
            c
        };
        let mut stages = Vec::new();
        if self.name {
            stages.push(one(|c| c.name = true));
        }
        if self.service {
            stages.push(one(|c| c.service = true));
        }
        if self.kind {
            stages.push(one(|c| c.kind = true));
        }
        if self.status {
            stages.push(one(|c| c.status = true));
        }
        if self.duration {
            stages.push(one(|c| c.duration = true));
        }
        if !self.attrs.is_empty() {
            stages.push(Checks { attrs: self.attrs, ..Default::default() });
        }
        stages
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Reads the entries of one key in `attrs.parquet` for some row groups: per row group, the rows (relative to
/// it) of the first entry of the key on each span, with a view of the values read.
struct KeyEntries {
    /// (group, rows relative to the group, batch index, index in batch), in entry order.
    rows: Vec<(usize, u32, usize, usize)>,
    batches: Vec<RecordBatch>,
}

async fn key_entries(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    groups: &[usize],
    key: &str,
    value_fields: &HashSet<&str>,
) -> Result<KeyEntries, BlockError> {
    let mut out = KeyEntries { rows: Vec::new(), batches: Vec::new() };
    let Some(file) = &meta.attrs_file else { return Ok(out) };
    let ranges: Vec<(usize, usize, std::ops::Range<usize>)> = groups
        .iter()
        .filter_map(|&g| {
            let attrs_group = meta.row_groups[g].attrs_row_group? as usize;
            Some((g, attrs_group, meta.attr_entries(g, key)?))
        })
        .collect();
    if ranges.is_empty() {
        return Ok(out);
    }
    let path = meta.path(ATTRS_FILE);
    let reader = arrow_reader(store, &path, file, &[schema::STR]).await?;
    let metadata = Arc::clone(reader.metadata());
    let descr = metadata.file_metadata().schema_descr_ptr();
    let leaves = (0..descr.num_columns()).filter(|&i| {
        let column = descr.column(i);
        let name = column.path().parts()[0].as_str();
        name == schema::ROW_DELTA || value_fields.contains(name)
    });
    let selections = ranges
        .iter()
        .map(|(_, attrs_group, range)| {
            let total = metadata.row_group(*attrs_group).num_rows() as usize;
            let mut selectors = vec![RowSelector::skip(range.start), RowSelector::select(range.len())];
            if total > range.end {
                selectors.push(RowSelector::skip(total - range.end));
            }
            RowGroupSelection::new(*attrs_group, Some(RowSelection::from(selectors)))
        })
        .collect();
    let decoder = ParquetPushDecoderBuilder::new_with_metadata(reader)
        .with_projection(ProjectionMask::leaves(&descr, leaves))
        .with_row_group_selections(selections)
        .with_batch_size(64 * 1024)
        .build()?;
    // Entries come in selection order: each range's rows in turn, the row going up along the run.
    let mut range = 0usize;
    let mut left = ranges[0].2.len();
    let mut row = 0u64;
    let mut previous: Option<u64> = None;
    decode(store, &path, decoder, |batch| {
        let deltas: &UInt32Array = typed(&batch, schema::ROW_DELTA)?;
        let index = out.batches.len();
        for (i, &delta) in deltas.values().iter().enumerate() {
            while left == 0 {
                range += 1;
                let (_, _, r) = ranges.get(range).ok_or_else(|| corrupt("more entries than selected".into()))?;
                (left, row, previous) = (r.len(), 0, None);
            }
            left -= 1;
            row += delta as u64;
            // A span with the key twice is judged by its first entry, as a lookup finds it.
            if previous == Some(row) {
                continue;
            }
            previous = Some(row);
            let g = ranges[range].0;
            let relative = row
                .checked_sub(meta.row_groups[g].first_row)
                .filter(|r| *r < meta.row_groups[g].rows)
                .ok_or_else(|| corrupt("an attribute of a row outside its row group".into()))?;
            out.rows.push((g, relative as u32, index, i));
        }
        out.batches.push(batch);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// The rows (per row group, relative to it, ascending) whose span's own value of the condition's key meets it.
async fn attribute_rows(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    groups: &[usize],
    condition: &super::AttrCondition,
    non_scalars_match: bool,
) -> Result<HashMap<usize, Vec<u32>>, BlockError> {
    let mut fields = value_fields(std::iter::once(condition));
    if non_scalars_match {
        // Arrays and maps meet any condition: only their type code tells them.
        fields.insert(schema::TYPE);
    }
    let entries = key_entries(store, meta, groups, &condition.key, &fields).await?;
    let views: Vec<ValueFields<'_>> = entries.batches.iter().map(ValueFields::of_batch).collect::<Result<_, _>>()?;
    // Strings read as dictionaries: the condition is judged once per distinct value of each batch.
    let mut dictionaries: Vec<Option<(&Int32Array, Vec<bool>)>> = Vec::with_capacity(entries.batches.len());
    for batch in &entries.batches {
        dictionaries.push(match batch.column_by_name(schema::STR) {
            Some(strs) => match StrValues::of(strs.as_ref(), schema::STR)? {
                StrValues::Dictionary { keys, values } => {
                    Some((keys, values.iter().map(|v| v.is_some_and(|v| condition.accepts(Scalar::Str(v)))).collect()))
                }
                StrValues::Plain(_) => None,
            },
            None => None,
        });
    }
    let mut out: HashMap<usize, Vec<u32>> = HashMap::new();
    for &(g, row, b, i) in &entries.rows {
        let accepted = match &dictionaries[b] {
            // A string (its `str` is set): judged with its dictionary value.
            Some((keys, judged)) if keys.is_valid(i) => judged[keys.value(i) as usize],
            _ => match views[b].scalar(i) {
                Some(value) => condition.accepts(value) || (non_scalars_match && value == Scalar::Other),
                None => false,
            },
        };
        if accepted {
            out.entry(g).or_default().push(row);
        }
    }
    Ok(out)
}

/// The value fields of the generic attribute layout the conditions compare with (a string condition never
/// holds on a number, and so on); arrays and maps are told apart by the type code alone.
fn value_fields<'a>(conditions: impl Iterator<Item = &'a super::AttrCondition>) -> HashSet<&'static str> {
    let mut fields = HashSet::new();
    for condition in conditions {
        match (&condition.op, &condition.value) {
            (AttrOp::Match(_) | AttrOp::NotMatch(_), _) | (_, Literal::Str(_)) => fields.insert(schema::STR),
            (_, Literal::Int(_) | Literal::Float(_)) => fields.insert(schema::INT) | fields.insert(schema::DOUBLE),
            (_, Literal::Bool(_)) => fields.insert(schema::BOOL),
        };
    }
    fields
}

/// A string column of a batch, read as a dictionary when the reader gave one.
enum Strings<'a> {
    Dictionary { keys: &'a Int32Array, accepted: Vec<bool> },
    Plain(&'a StringArray),
}

impl<'a> Strings<'a> {
    /// The column, with the dictionary values equal to `wanted` found once.
    fn of(batch: &'a RecordBatch, name: &str, wanted: &str) -> Result<Self, BlockError> {
        let array = column_of(batch, name)?;
        Ok(match array.as_dictionary_opt::<Int32Type>() {
            Some(dictionary) => {
                let values: &StringArray = downcast(dictionary.values().as_ref(), name)?;
                Self::Dictionary {
                    keys: dictionary.keys(),
                    accepted: values.iter().map(|v| v == Some(wanted)).collect(),
                }
            }
            None => Self::Plain(downcast(array, name)?),
        })
    }

    /// Clears the rows of `pass` whose value is not `wanted`.
    fn keep_equal(&self, pass: &mut [bool], wanted: &str) {
        match self {
            Self::Dictionary { keys, accepted } if keys.null_count() == 0 => {
                for (p, &key) in pass.iter_mut().zip(keys.values().iter()) {
                    *p = *p && accepted[key as usize];
                }
            }
            Self::Dictionary { keys, accepted } => {
                for (row, p) in pass.iter_mut().enumerate() {
                    *p = *p && keys.is_valid(row) && accepted[keys.value(row) as usize];
                }
            }
            Self::Plain(a) => {
                for (row, p) in pass.iter_mut().enumerate() {
                    *p = *p && a.is_valid(row) && a.value(row) == wanted;
                }
            }
        }
    }
}

/// The rows (relative to each row group, ascending) of row groups `groups` that meet the filter's conditions on
/// the span's own columns and the attribute conditions `conditions` (indexes into `filter.all_attrs()`), judged
/// only at the candidate rows of each group (`None`: every row).
async fn judge_rows(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    groups: &[usize],
    candidates: &[Option<Vec<u32>>],
    filter: &SpanFilter,
    checks: &Checks,
) -> Result<Vec<Vec<u32>>, BlockError> {
    let all: Vec<_> = filter.all_attrs().collect();
    let judged: Vec<(&super::AttrCondition, Option<AttrScope>)> = checks.attrs.iter().map(|&i| all[i]).collect();
    let mut wanted: HashSet<String> = HashSet::new();
    let mut want = |needed: bool, column: &str| {
        if needed {
            wanted.insert(column.to_owned());
        }
    };
    want(checks.service, schema::SERVICE_NAME);
    want(checks.name, schema::NAME);
    want(checks.kind, schema::KIND);
    want(checks.status, schema::STATUS_CODE);
    want(checks.duration, schema::DURATION);
    let mut generic_keys = Vec::new();
    for (c, scope) in &judged {
        if *scope != Some(AttrScope::Resource) {
            if let Some(d) = meta.dedicated.span.iter().find(|d| d.key == c.key) {
                want(true, &d.column);
            }
            generic_keys.push(c.key.as_str());
        }
        if *scope != Some(AttrScope::Span) {
            if c.key == "service.name" {
                want(true, schema::SERVICE_NAME);
            } else if let Some(d) = meta.dedicated.resource.iter().find(|d| d.key == c.key) {
                want(true, &d.column);
            } else {
                // Only when a resource of these row groups may have the key (their summaries list the keys).
                let listed = |g: &usize| meta.row_groups[*g].resource_attribute_keys.as_ref();
                want(groups.iter().any(|g| listed(g).is_none_or(|keys| keys.contains(&c.key))), schema::RESOURCE_ATTRS);
            }
        }
    }
    generic_keys.sort_unstable();
    generic_keys.dedup();
    // The span's own generic values of the judged keys, by (key, group, row).
    let mut fields = value_fields(judged.iter().map(|(c, _)| *c));
    if filter.non_scalars_match {
        fields.insert(schema::TYPE);
    }
    let mut generic: Vec<(&str, KeyEntries)> = Vec::new();
    for key in generic_keys {
        generic.push((key, key_entries(store, meta, groups, key, &fields).await?));
    }
    let generic_views: Vec<Vec<ValueFields<'_>>> = generic
        .iter()
        .map(|(_, e)| e.batches.iter().map(ValueFields::of_batch).collect::<Result<_, _>>())
        .collect::<Result<_, _>>()?;
    let generic_index: Vec<HashMap<(usize, u32), (usize, usize)>> =
        generic.iter().map(|(_, e)| e.rows.iter().map(|&(g, row, b, i)| ((g, row), (b, i))).collect()).collect();

    let path = meta.path(SPANS_FILE);
    // Strings as dictionaries, dedicated string columns too: a condition is judged once per distinct value.
    let mut strings = vec![schema::SERVICE_NAME, schema::NAME, schema::RESOURCE_ATTRS];
    let dedicated = meta.dedicated.span.iter().chain(&meta.dedicated.resource);
    strings.extend(dedicated.filter(|d| d.ty == crate::block::AttrType::String).map(|d| d.column.as_str()));
    let reader = arrow_reader(store, &path, &meta.spans_file, &strings).await?;
    let metadata = Arc::clone(reader.metadata());
    check_groups(meta, &metadata, "spans.parquet")?;
    let descr = metadata.file_metadata().schema_descr_ptr();
    let leaves = (0..descr.num_columns()).filter(|&i| {
        let column = descr.column(i);
        let parts = column.path().parts();
        if !wanted.contains(&parts[0]) {
            return false;
        }
        if parts[0] != schema::RESOURCE_ATTRS {
            return true;
        }
        let leaf = parts.last().map(String::as_str).unwrap_or_default();
        leaf == schema::KEY || leaf == schema::TYPE || fields.contains(leaf)
    });
    let selections = groups
        .iter()
        .zip(candidates)
        .map(|(&g, rows)| {
            RowGroupSelection::new(
                g,
                rows.as_ref().map(|rows| {
                    let rows: Vec<usize> = rows.iter().map(|&r| r as usize).collect();
                    exact_rows(&rows, meta.row_groups[g].rows as usize)
                }),
            )
        })
        .collect();
    let decoder = ParquetPushDecoderBuilder::new_with_metadata(reader)
        .with_projection(ProjectionMask::leaves(&descr, leaves))
        .with_row_group_selections(selections)
        .with_batch_size(BATCH_ROWS)
        .build()?;
    let mut positions = Positions { groups, candidates, meta, slot: 0, at: 0 };
    let mut places: Vec<(usize, usize, u32)> = Vec::new();
    let mut out = vec![Vec::new(); groups.len()];
    decode(store, &path, decoder, |batch| {
        let n = batch.num_rows();
        // Where each row is: needed up front only to look attribute entries up.
        places.clear();
        if !judged.is_empty() {
            for _ in 0..n {
                places.push(positions.next().ok_or_else(|| corrupt("more rows than selected".into()))?);
            }
        }
        // Column by column, the rows still standing.
        let mut pass = vec![true; n];
        fn keep(pass: &mut [bool], holds: impl Fn(usize) -> bool) {
            for (row, p) in pass.iter_mut().enumerate() {
                *p = *p && holds(row);
            }
        }
        if let Some(wanted) = filter.service.as_deref().filter(|_| checks.service) {
            Strings::of(&batch, schema::SERVICE_NAME, wanted)?.keep_equal(&mut pass, wanted);
        }
        if let Some(wanted) = filter.name.as_deref().filter(|_| checks.name) {
            Strings::of(&batch, schema::NAME, wanted)?.keep_equal(&mut pass, wanted);
        }
        if let Some(k) = filter.kind.filter(|_| checks.kind) {
            let column: &Int32Array = typed(&batch, schema::KIND)?;
            keep(&mut pass, |row| column.is_valid(row) && column.value(row) == k);
        }
        if let Some(st) = filter.status.filter(|_| checks.status) {
            let column: &Int32Array = typed(&batch, schema::STATUS_CODE)?;
            keep(&mut pass, |row| (if column.is_valid(row) { column.value(row) } else { 0 }) == st);
        }
        if checks.duration {
            let column: &Int64Array = typed(&batch, schema::DURATION)?;
            let (min, max) =
                (filter.min_duration_nanos.unwrap_or(i64::MIN), filter.max_duration_nanos.unwrap_or(i64::MAX));
            keep(&mut pass, |row| (min..=max).contains(&column.value(row)));
        }
        let service_values = match batch.column_by_name(schema::SERVICE_NAME) {
            Some(array) => Some(StrValues::of(array.as_ref(), schema::SERVICE_NAME)?),
            None => None,
        };
        let resource_attrs = match batch.column_by_name(schema::RESOURCE_ATTRS) {
            Some(array) => Some(AttrListView::new(array.as_ref(), schema::RESOURCE_ATTRS)?),
            None => None,
        };
        for (c, scope) in &judged {
            if !pass.iter().any(|p| *p) {
                break;
            }
            let accepts = |v: Scalar<'_>| c.accepts(v) || (filter.non_scalars_match && v == Scalar::Other);
            let on_span = *scope != Some(AttrScope::Resource);
            let on_resource = *scope != Some(AttrScope::Span);
            let span_column =
                on_span.then(|| Column::of(&batch, &meta.dedicated.span, &c.key, &accepts)).transpose()?.flatten();
            let resource_column = on_resource
                .then(|| Column::of(&batch, &meta.dedicated.resource, &c.key, &accepts))
                .transpose()?
                .flatten();
            let entries = generic.iter().position(|(k, _)| *k == c.key);
            for (row, p) in pass.iter_mut().enumerate() {
                if !*p {
                    continue;
                }
                let (_, g, group_row) = places[row];
                // The span's own value (its dedicated column, else its first generic entry), else the resource's.
                let mut verdict = None;
                if on_span {
                    verdict = span_column.as_ref().and_then(|column| column.verdict(row)).or_else(|| {
                        let k = entries?;
                        let &(b, i) = generic_index[k].get(&(g, group_row))?;
                        generic_views[k][b].scalar(i).map(accepts)
                    });
                }
                if verdict.is_none() && on_resource {
                    verdict = if c.key == "service.name" {
                        service_values.as_ref().filter(|s| s.is_valid(row)).map(|s| accepts(Scalar::Str(s.value(row))))
                    } else {
                        resource_column
                            .as_ref()
                            .and_then(|column| column.verdict(row))
                            .or_else(|| resource_attrs.as_ref()?.find(row, &c.key).map(accepts))
                    };
                }
                *p = verdict == Some(true);
            }
        }
        for (row, p) in pass.iter().enumerate() {
            let (slot, _, group_row) = match places.get(row) {
                Some(place) => *place,
                None => positions.next().ok_or_else(|| corrupt("more rows than selected".into()))?,
            };
            if *p {
                out[slot].push(group_row);
            }
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Which row of which row group each row decoded from a selection is: (index in `groups`, row group, row in it).
struct Positions<'a> {
    groups: &'a [usize],
    candidates: &'a [Option<Vec<u32>>],
    meta: &'a BlockMeta,
    slot: usize,
    at: usize,
}

impl Positions<'_> {
    fn next(&mut self) -> Option<(usize, usize, u32)> {
        loop {
            let g = *self.groups.get(self.slot)?;
            let row = match &self.candidates[self.slot] {
                Some(rows) => rows.get(self.at).copied(),
                None => (self.at < self.meta.row_groups[g].rows as usize).then_some(self.at as u32),
            };
            match row {
                Some(row) => {
                    self.at += 1;
                    return Some((self.slot, g, row));
                }
                None => (self.slot, self.at) = (self.slot + 1, 0),
            }
        }
    }
}

/// A dedicated attribute column of a batch, with a condition judged on it: once per distinct value when the
/// column is a dictionary of strings, per row otherwise.
enum Column<'a> {
    Dictionary { keys: &'a Int32Array, accepted: Vec<bool> },
    Values { view: DedicatedView<'a>, accepts: &'a dyn Fn(Scalar<'_>) -> bool },
}

impl<'a> Column<'a> {
    /// The dedicated column of `key` among `columns`, if the batch has it.
    fn of(
        batch: &'a RecordBatch,
        columns: &[crate::block::DedicatedColumn],
        key: &str,
        accepts: &'a dyn Fn(Scalar<'_>) -> bool,
    ) -> Result<Option<Self>, BlockError> {
        let Some((d, array)) =
            columns.iter().find(|d| d.key == key).and_then(|d| Some((d, batch.column_by_name(&d.column)?)))
        else {
            return Ok(None);
        };
        if let Some(dictionary) = array.as_dictionary_opt::<Int32Type>() {
            let values: &StringArray = downcast(dictionary.values().as_ref(), &d.column)?;
            let accepted = values.iter().map(|v| v.is_some_and(|v| accepts(Scalar::Str(v)))).collect();
            return Ok(Some(Self::Dictionary { keys: dictionary.keys(), accepted }));
        }
        Ok(Some(Self::Values { view: DedicatedView::new(array.as_ref(), d.ty, &d.column)?, accepts }))
    }

    /// Whether the row's value meets the condition; `None` when the row has no value here.
    fn verdict(&self, row: usize) -> Option<bool> {
        match self {
            Self::Dictionary { keys, accepted } => keys.is_valid(row).then(|| accepted[keys.value(row) as usize]),
            Self::Values { view, accepts } => view.scalar(row).map(accepts),
        }
    }
}

/// Where the given traces are in this block (their row group and row in `traces.parquet`) and where their part
/// here starts.
pub(super) async fn find_traces(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    ids: &[TraceId],
) -> Result<Vec<Hit>, BlockError> {
    Ok(crate::block::read::locate_traces(store, meta, ids)
        .await?
        .into_iter()
        .map(|l| Hit {
            group: l.group as u32,
            ordinal: l.ordinal as u32,
            trace_id: l.trace_id,
            start: l.start,
            matched: 0,
        })
        .collect())
}

/// Summaries of trace parts at the given places (row group, row in it) of `traces.parquet`.
pub(super) async fn summaries(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    places: &[(u32, u32)],
) -> Result<Vec<((u32, u32), TraceAcc)>, BlockError> {
    let mut places: Vec<(u32, u32)> = places.to_vec();
    places.sort_unstable();
    places.dedup();
    if places.is_empty() {
        return Ok(Vec::new());
    }
    let path = meta.path(TRACES_FILE);
    let metadata = cached_metadata_with_index(store, &path, &meta.traces_file).await?;
    check_groups(meta, &metadata, "traces.parquet")?;
    let mut selections = Vec::new();
    for run in places.chunk_by(|a, b| a.0 == b.0) {
        let g = run[0].0 as usize;
        let rows: Vec<usize> = run.iter().map(|p| p.1 as usize).collect();
        selections.push(RowGroupSelection::new(g, Some(exact_rows(&rows, metadata.row_group(g).num_rows() as usize))));
    }
    let columns = [
        schema::START,
        schema::DURATION,
        schema::ROOT_SERVICE,
        schema::ROOT_NAME,
        schema::SPAN_COUNT,
        schema::ERROR_COUNT,
        schema::SERVICES,
    ];
    let decoder = ParquetPushDecoderBuilder::try_new_decoder(Arc::clone(&metadata))?
        .with_projection(ProjectionMask::columns(metadata.file_metadata().schema_descr(), columns))
        .with_row_group_selections(selections)
        .with_batch_size(BATCH_ROWS)
        .build()?;
    let mut out = Vec::with_capacity(places.len());
    let mut at = places.iter();
    decode(store, &path, decoder, |batch| {
        let start: &UInt64Array = typed(&batch, schema::START)?;
        let duration: &Int64Array = typed(&batch, schema::DURATION)?;
        let root_service: &StringArray = typed(&batch, schema::ROOT_SERVICE)?;
        let root_name: &StringArray = typed(&batch, schema::ROOT_NAME)?;
        let spans: &UInt32Array = typed(&batch, schema::SPAN_COUNT)?;
        let errors: &UInt32Array = typed(&batch, schema::ERROR_COUNT)?;
        let services: &ListArray = typed(&batch, schema::SERVICES)?;
        for row in 0..batch.num_rows() {
            let place = *at.next().ok_or_else(|| corrupt("more traces than selected".into()))?;
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
            out.push((place, acc));
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Calls `each` with the row (in `spans.parquet`) and value of the first entry of `key` of each span in row groups
/// `groups` of `attrs.parquet`.
pub(super) async fn for_each_attribute(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    groups: &[usize],
    key: &str,
    mut each: impl FnMut(u64, Scalar<'_>),
) -> Result<(), BlockError> {
    let fields: HashSet<&str> = [schema::TYPE, schema::STR, schema::INT, schema::DOUBLE, schema::BOOL].into();
    let entries = key_entries(store, meta, groups, key, &fields).await?;
    let views: Vec<ValueFields<'_>> = entries.batches.iter().map(ValueFields::of_batch).collect::<Result<_, _>>()?;
    for &(g, row, b, i) in &entries.rows {
        if let Some(value) = views[b].scalar(i) {
            each(meta.row_groups[g].first_row + row as u64, value);
        }
    }
    Ok(())
}
