//! Listings for search UIs: services, operations, attribute keys and their top values, over head and blocks.
//! Block row-group summaries in `meta.json` answer services and keys without reading data when present;
//! otherwise only the needed columns are read.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use arrow_array::{Array, Int32Array, RecordBatch, StringArray};
use clew_model::otlp::{KeyValue, ResourceSpans};
use clew_model::{Tenant, service_name};
use object_store::ObjectStore;
use parquet::arrow::push_decoder::ParquetPushDecoderBuilder;
use parquet::file::metadata::PageIndexPolicy;

use crate::block::attrs::{AttrListView, DedicatedView, Scalar, corrupt, downcast};
use crate::block::read::{decode, load_metadata};
use crate::block::{BlockError, BlockMeta, DedicatedColumn, SPANS_FILE, schema};
use crate::{Store, StoreError};

/// A span name of a service, with its kind (OTLP `SpanKind` number).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Operation {
    pub name: String,
    pub kind: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttrScope {
    Span,
    Resource,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttributeKey {
    pub key: String,
    pub scope: AttrScope,
}

/// An attribute value (as text) and on how many spans it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeValue {
    pub value: String,
    pub count: u64,
}

fn text(value: Scalar<'_>) -> Option<String> {
    match value {
        Scalar::Str(s) => Some(s.to_owned()),
        Scalar::Int(i) => Some(i.to_string()),
        Scalar::Double(d) => Some(d.to_string()),
        Scalar::Bool(b) => Some(b.to_string()),
        Scalar::Other => None,
    }
}

fn block_error(meta: &BlockMeta) -> impl Fn(BlockError) -> StoreError + '_ {
    move |e| StoreError::Block(format!("listing block {}: {e}", meta.block_id))
}

/// Reads the named top-level columns of the given row groups (all when `None`).
async fn read_columns(
    store: &dyn ObjectStore,
    meta: &BlockMeta,
    row_groups: Option<Vec<usize>>,
    wanted: &HashSet<&str>,
    on_batch: impl FnMut(RecordBatch) -> Result<(), BlockError>,
) -> Result<(), BlockError> {
    if meta.span_count == 0 || row_groups.as_ref().is_some_and(|r| r.is_empty()) {
        return Ok(());
    }
    let path = meta.path(SPANS_FILE);
    let metadata = Arc::new(load_metadata(store, &path, &meta.spans_file, PageIndexPolicy::Skip).await?);
    let projection = crate::block::read::project_columns(&metadata, wanted);
    let mut builder = ParquetPushDecoderBuilder::try_new_decoder(Arc::clone(&metadata))?
        .with_projection(projection)
        .with_batch_size(8 * 1024);
    if let Some(row_groups) = row_groups {
        if row_groups.iter().any(|&rg| rg >= metadata.num_row_groups()) {
            return Err(corrupt("meta.json lists more row groups than spans.parquet has".into()));
        }
        builder = builder.with_row_groups(row_groups);
    }
    decode(store, &path, builder.build()?, on_batch).await
}

fn typed<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, BlockError> {
    let array = batch.column_by_name(name).ok_or_else(|| corrupt(format!("spans.parquet lacks the column {name}")))?;
    downcast(array.as_ref(), name)
}

fn dedicated<'a>(batch: &'a RecordBatch, column: &DedicatedColumn) -> Result<DedicatedView<'a>, BlockError> {
    let array = batch.column_by_name(&column.column).ok_or_else(|| corrupt(format!("no column {}", column.column)))?;
    DedicatedView::new(array.as_ref(), column.ty, &column.column)
}

fn attr_keys(attrs: &[KeyValue], scope: AttrScope, out: &mut BTreeSet<AttributeKey>) {
    for kv in attrs {
        out.insert(AttributeKey { key: kv.key.clone(), scope });
    }
}

impl Store {
    /// Every service name of the tenant, sorted.
    pub async fn services(&self, tenant: &Tenant) -> Result<Vec<String>, StoreError> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        self.head.for_each_trace(tenant, |_, resource_spans| {
            for rs in &resource_spans {
                if let Some(s) = service_name(rs.resource.as_ref()) {
                    out.insert(s.to_owned());
                }
            }
        });
        for meta in self.blocks.of(tenant) {
            if meta.row_groups.iter().all(|rg| rg.services.is_some()) {
                out.extend(meta.row_groups.iter().flat_map(|rg| rg.services.iter().flatten().cloned()));
                continue;
            }
            let wanted = HashSet::from([schema::SERVICE_NAME]);
            read_columns(self.objects.as_ref(), &meta, None, &wanted, |batch| {
                let service: &StringArray = typed(&batch, schema::SERVICE_NAME)?;
                out.extend(service.iter().flatten().map(str::to_owned));
                Ok(())
            })
            .await
            .map_err(block_error(&meta))?;
        }
        Ok(out.into_iter().collect())
    }

    /// The span names (with kinds) of a service, sorted.
    pub async fn operations(&self, tenant: &Tenant, service: &str) -> Result<Vec<Operation>, StoreError> {
        let mut out: BTreeSet<Operation> = BTreeSet::new();
        self.head.for_each_trace(tenant, |_, resource_spans| {
            for rs in resource_spans.iter().filter(|rs| service_name(rs.resource.as_ref()) == Some(service)) {
                for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                    out.insert(Operation { name: span.name.clone(), kind: span.kind });
                }
            }
        });
        for meta in self.blocks.of(tenant) {
            // The block's coarsest RED summary has a series per (service, span name, kind): the service's
            // sections of it list its operations without reading a span.
            if let Some(&coarsest) = meta.red_summary_bucket_nanos.iter().max() {
                let services = [service.to_owned()];
                let summary = crate::block::red_summary::read_summary(
                    self.objects.as_ref(),
                    &meta,
                    coarsest,
                    &services,
                    (0, u64::MAX),
                )
                .await;
                // An unreadable summary is skipped: the spans say it too.
                if let Ok(Some(summary)) = summary {
                    let ops = summary.series.iter().filter(|s| s.service.as_deref() == Some(service));
                    out.extend(ops.map(|s| Operation { name: s.name.clone(), kind: s.kind }));
                    continue;
                }
            }
            let row_groups = (0..meta.row_groups.len())
                .filter(|&i| meta.row_groups[i].services.as_ref().is_none_or(|s| s.iter().any(|s| s == service)))
                .collect();
            let wanted = HashSet::from([schema::SERVICE_NAME, schema::NAME, schema::KIND]);
            read_columns(self.objects.as_ref(), &meta, Some(row_groups), &wanted, |batch| {
                let services: &StringArray = typed(&batch, schema::SERVICE_NAME)?;
                let names: &StringArray = typed(&batch, schema::NAME)?;
                let kinds: &Int32Array = typed(&batch, schema::KIND)?;
                for row in 0..batch.num_rows() {
                    if services.is_valid(row) && services.value(row) == service {
                        out.insert(Operation { name: names.value(row).to_owned(), kind: kinds.value(row) });
                    }
                }
                Ok(())
            })
            .await
            .map_err(block_error(&meta))?;
        }
        Ok(out.into_iter().collect())
    }

    /// Every attribute key of spans and resources, sorted by (key, scope).
    pub async fn attribute_keys(&self, tenant: &Tenant) -> Result<Vec<AttributeKey>, StoreError> {
        let mut out: BTreeSet<AttributeKey> = BTreeSet::new();
        self.head.for_each_trace(tenant, |_, resource_spans| {
            for rs in &resource_spans {
                if let Some(r) = &rs.resource {
                    attr_keys(&r.attributes, AttrScope::Resource, &mut out);
                }
                for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                    attr_keys(&span.attributes, AttrScope::Span, &mut out);
                }
            }
        });
        for meta in self.blocks.of(tenant) {
            out.extend(meta.attr_keys.iter().map(|key| AttributeKey { key: key.clone(), scope: AttrScope::Span }));
            for (columns, scope) in
                [(&meta.dedicated.span, AttrScope::Span), (&meta.dedicated.resource, AttrScope::Resource)]
            {
                out.extend(columns.iter().map(|c| AttributeKey { key: c.key.clone(), scope }));
            }
            if meta.row_groups.iter().all(|rg| rg.resource_attribute_keys.is_some()) {
                for key in meta.row_groups.iter().flat_map(|rg| rg.resource_attribute_keys.iter().flatten()) {
                    out.insert(AttributeKey { key: key.clone(), scope: AttrScope::Resource });
                }
                continue;
            }
            if meta.row_groups.iter().any(|rg| rg.services.as_ref().is_none_or(|s| !s.is_empty())) {
                out.insert(AttributeKey { key: "service.name".into(), scope: AttrScope::Resource });
            }
            let wanted = HashSet::from([schema::RESOURCE_ATTRS]);
            read_columns(self.objects.as_ref(), &meta, None, &wanted, |batch| {
                let array = batch
                    .column_by_name(schema::RESOURCE_ATTRS)
                    .ok_or_else(|| corrupt(format!("no column {}", schema::RESOURCE_ATTRS)))?;
                let view = AttrListView::new(array.as_ref(), schema::RESOURCE_ATTRS)?;
                let keys: HashSet<&str> =
                    (0..batch.num_rows()).flat_map(|row| view.range(row)).map(|i| view.key(i)).collect();
                out.extend(
                    keys.into_iter().map(|key| AttributeKey { key: key.to_owned(), scope: AttrScope::Resource }),
                );
                Ok(())
            })
            .await
            .map_err(block_error(&meta))?;
        }
        Ok(out.into_iter().collect())
    }

    /// The most frequent values of an attribute (span first, then resource, as search looks it up), by count
    /// descending then value.
    pub async fn attribute_values(
        &self,
        tenant: &Tenant,
        key: &str,
        limit: usize,
    ) -> Result<Vec<AttributeValue>, StoreError> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        self.head.for_each_trace(tenant, |_, resource_spans: Vec<ResourceSpans>| {
            for rs in &resource_spans {
                let resource_attrs = rs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
                for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                    let found = span.attributes.iter().chain(resource_attrs).find(|kv| kv.key == key);
                    if let Some(value) = found.and_then(|kv| text(Scalar::of(kv.value.as_ref()))) {
                        *counts.entry(value).or_default() += 1;
                    }
                }
            }
        });
        for meta in self.blocks.of(tenant) {
            let span_column = meta.dedicated.span.iter().find(|c| c.key == key).cloned();
            let resource_column = meta.dedicated.resource.iter().find(|c| c.key == key).cloned();
            let is_service = key == "service.name";
            let on_resource = is_service
                || resource_column.is_some()
                || meta
                    .row_groups
                    .iter()
                    .any(|rg| rg.resource_attribute_keys.as_ref().is_none_or(|k| k.iter().any(|k| k == key)));
            // The span's own generic values, by row of the file.
            let groups: Vec<usize> = (0..meta.row_groups.len()).collect();
            let mut generic: HashMap<u64, String> = HashMap::new();
            super::blocks::for_each_attribute(self.objects.as_ref(), &meta, &groups, key, |row, value| {
                if let Some(value) = text(value) {
                    generic.insert(row, value);
                }
            })
            .await
            .map_err(block_error(&meta))?;
            if span_column.is_none() && !on_resource {
                for value in generic.into_values() {
                    *counts.entry(value).or_default() += 1;
                }
                continue;
            }
            let mut wanted = HashSet::new();
            if let Some(c) = &span_column {
                wanted.insert(c.column.as_str());
            }
            if on_resource {
                wanted.insert(match (&resource_column, is_service) {
                    (_, true) => schema::SERVICE_NAME,
                    (Some(c), _) => c.column.as_str(),
                    (None, _) => schema::RESOURCE_ATTRS,
                });
            }
            let mut row = 0u64;
            read_columns(self.objects.as_ref(), &meta, None, &wanted, |batch| {
                let span_view = span_column.as_ref().map(|c| dedicated(&batch, c)).transpose()?;
                let service: Option<&StringArray> =
                    if is_service { Some(typed(&batch, schema::SERVICE_NAME)?) } else { None };
                let resource_view = match (on_resource, &resource_column, is_service) {
                    (false, _, _) | (_, _, true) => None,
                    (_, Some(c), _) => Some(Err(dedicated(&batch, c)?)),
                    (_, None, _) => Some(Ok(AttrListView::new(
                        typed::<arrow_array::ListArray>(&batch, schema::RESOURCE_ATTRS)?,
                        schema::RESOURCE_ATTRS,
                    )?)),
                };
                for i in 0..batch.num_rows() {
                    let on_span = span_view.as_ref().and_then(|d| d.scalar(i)).and_then(text);
                    let value = on_span.or_else(|| generic.remove(&row)).or_else(|| {
                        let value = match &resource_view {
                            None => service.filter(|s| s.is_valid(i)).map(|s| Scalar::Str(s.value(i))),
                            Some(Err(d)) => d.scalar(i),
                            Some(Ok(l)) => l.find(i, key),
                        };
                        value.and_then(text)
                    });
                    if let Some(value) = value {
                        *counts.entry(value).or_default() += 1;
                    }
                    row += 1;
                }
                Ok(())
            })
            .await
            .map_err(block_error(&meta))?;
        }
        let mut values: Vec<AttributeValue> =
            counts.into_iter().map(|(value, count)| AttributeValue { value, count }).collect();
        values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        values.truncate(limit);
        Ok(values)
    }
}
