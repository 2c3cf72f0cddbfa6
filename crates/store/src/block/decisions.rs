//! Reading the tail sampling decisions recorded in `traces.parquet` (`sampling_policy`, `sampling_weight`,
//! `sampling_threshold`). Blocks written before these columns existed have no decisions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use clew_model::{SamplingDecision, TraceId};
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, RowFilter};
use parquet::arrow::push_decoder::ParquetPushDecoderBuilder;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

use super::attrs::{corrupt, downcast};
use super::read::{decode, load_metadata, project_columns};
use super::{BlockError, BlockMeta, TRACES_FILE, schema};

const COLUMNS: [&str; 4] =
    [schema::TRACE_ID, schema::SAMPLING_POLICY, schema::SAMPLING_WEIGHT, schema::SAMPLING_THRESHOLD];

/// Why tail sampling kept the trace, if this block recorded it.
pub async fn read_decision(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    trace_id: &TraceId,
) -> Result<Option<SamplingDecision>, BlockError> {
    if !meta.may_contain(trace_id) {
        return Ok(None);
    }
    Ok(read(store, meta, Some(*trace_id)).await?.remove(trace_id))
}

/// Every decision the block recorded, by trace (for compaction, which carries them into the merged block).
pub async fn read_decisions(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
) -> Result<HashMap<TraceId, SamplingDecision>, BlockError> {
    read(store, meta, None).await
}

async fn read(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    only: Option<TraceId>,
) -> Result<HashMap<TraceId, SamplingDecision>, BlockError> {
    let path = meta.path(TRACES_FILE);
    let metadata = Arc::new(load_metadata(store, &path, &meta.traces_file, PageIndexPolicy::Skip).await?);
    if !has_decision_columns(&metadata) {
        return Ok(HashMap::new());
    }
    let projection = project_columns(&metadata, &HashSet::from(COLUMNS));
    let mut builder = ParquetPushDecoderBuilder::try_new_decoder(Arc::clone(&metadata))?.with_projection(projection);
    // Rows of other traces, and of traces without a decision, are not decoded past the filter's columns.
    let filter_columns = match only {
        Some(_) => vec![schema::TRACE_ID],
        None => vec![schema::SAMPLING_WEIGHT],
    };
    let mask = ProjectionMask::columns(metadata.file_metadata().schema_descr(), filter_columns);
    let predicate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
        let column = batch.column(0);
        Ok(match only {
            Some(id) => {
                BooleanArray::from_iter(column.as_fixed_size_binary().iter().map(|v| Some(v == Some(&id.0[..]))))
            }
            None => BooleanArray::from_iter((0..column.len()).map(|row| Some(column.is_valid(row)))),
        })
    });
    builder = builder.with_row_filter(RowFilter::new(vec![Box::new(predicate)]));
    let mut out = HashMap::new();
    decode(store, &path, builder.with_batch_size(8192).build()?, |batch| {
        let trace_id = batch
            .column_by_name(schema::TRACE_ID)
            .ok_or_else(|| corrupt("traces.parquet lacks trace_id".into()))?
            .as_fixed_size_binary();
        let policy: &StringArray = column(&batch, schema::SAMPLING_POLICY)?;
        let weight: &Float64Array = column(&batch, schema::SAMPLING_WEIGHT)?;
        let threshold: &StringArray = column(&batch, schema::SAMPLING_THRESHOLD)?;
        for row in 0..batch.num_rows() {
            let Some(id) = TraceId::from_slice(trace_id.value(row)) else { continue };
            if weight.is_null(row) {
                continue;
            }
            let text = |array: &StringArray| array.is_valid(row).then(|| array.value(row).to_owned());
            out.insert(
                id,
                SamplingDecision { policy: text(policy), weight: weight.value(row), threshold: text(threshold) },
            );
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

fn has_decision_columns(metadata: &ParquetMetaData) -> bool {
    let fields = metadata.file_metadata().schema_descr_ptr();
    let names: HashSet<&str> = fields.root_schema().get_fields().iter().map(|f| f.name()).collect();
    COLUMNS.iter().all(|c| names.contains(c))
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, BlockError> {
    let array = batch.column_by_name(name).ok_or_else(|| corrupt(format!("traces.parquet lacks {name}")))?;
    downcast(array.as_ref(), name)
}
