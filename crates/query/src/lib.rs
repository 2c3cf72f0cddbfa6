//! Clew's read path. It answers questions about stored traces through the store's read interface; the API
//! layers and the CLI ask here, never the store directly.

pub mod red;
pub mod search;
pub mod traceql;

use std::sync::Arc;

use clew_model::otlp::TracesData;
use clew_model::{Tenant, TraceId};
use clew_store::{AttributeKey, AttributeValue, CutReport, Operation, SearchPage, SearchRequest, Store, StoreError};

/// Query entry point over a store.
#[derive(Clone)]
pub struct Query {
    store: Arc<Store>,
}

impl Query {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// The whole trace as OTLP `TracesData` (head and blocks merged, duplicates removed), or `None` when no
    /// span of it is stored for this tenant.
    pub async fn trace_by_id(&self, tenant: &Tenant, trace_id: &TraceId) -> Result<Option<TracesData>, StoreError> {
        self.trace_by_id_within(tenant, trace_id, None).await
    }

    /// [`Query::trace_by_id`] reading only blocks whose data overlaps `window` (Unix nanoseconds, inclusive).
    pub async fn trace_by_id_within(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
        window: Option<(u64, u64)>,
    ) -> Result<Option<TracesData>, StoreError> {
        let resource_spans = self.store.trace_within(tenant, trace_id, window).await?;
        Ok((!resource_spans.is_empty()).then_some(TracesData { resource_spans }))
    }

    /// Several whole traces at once (each block read once for all of them); ids with no span stored are absent.
    pub async fn traces_within(
        &self,
        tenant: &Tenant,
        trace_ids: &[TraceId],
        window: Option<(u64, u64)>,
    ) -> Result<std::collections::HashMap<TraceId, TracesData>, StoreError> {
        let found = self.store.traces_within(tenant, trace_ids, window).await?;
        Ok(found.into_iter().map(|(id, resource_spans)| (id, TracesData { resource_spans })).collect())
    }

    /// Why tail sampling kept the trace (policy, weight, threshold), as stored with it; `None` when no decision
    /// is stored.
    pub async fn sampling_decision(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
    ) -> Result<Option<clew_model::SamplingDecision>, StoreError> {
        self.store.sampling_decision(tenant, trace_id).await
    }

    /// Traces with a span matching the request's filter, newest first, one page (see [`search::SearchParams`]
    /// to build the request from text).
    pub async fn search(&self, tenant: &Tenant, request: &SearchRequest) -> Result<SearchPage, StoreError> {
        self.store.search(tenant, request).await
    }

    /// Every service name of the tenant, sorted.
    pub async fn services(&self, tenant: &Tenant) -> Result<Vec<String>, StoreError> {
        self.store.services(tenant).await
    }

    /// The span names and kinds of a service, sorted.
    pub async fn operations(&self, tenant: &Tenant, service: &str) -> Result<Vec<Operation>, StoreError> {
        self.store.operations(tenant, service).await
    }

    /// Every span and resource attribute key, sorted.
    pub async fn attribute_keys(&self, tenant: &Tenant) -> Result<Vec<AttributeKey>, StoreError> {
        self.store.attribute_keys(tenant).await
    }

    /// The most frequent values of an attribute.
    pub async fn attribute_values(
        &self,
        tenant: &Tenant,
        key: &str,
        limit: usize,
    ) -> Result<Vec<AttributeValue>, StoreError> {
        self.store.attribute_values(tenant, key, limit).await
    }

    /// Writes everything in the head to blocks now (as the periodic cut would), e.g. before a shutdown or to
    /// measure storage.
    pub async fn flush(&self) -> Result<CutReport, StoreError> {
        self.store.cut().await
    }

    /// The tenant's blocks, oldest first.
    pub fn blocks(&self, tenant: &Tenant) -> Vec<std::sync::Arc<clew_store::block::BlockMeta>> {
        self.store.blocks(tenant)
    }
}
