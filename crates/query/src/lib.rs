//! Clew's read path. It answers questions about stored traces through the store's read interface; the API
//! layers and the CLI ask here, never the store directly.

use std::sync::Arc;

use clew_model::otlp::TracesData;
use clew_model::{Tenant, TraceId};
use clew_store::{CutReport, Store, StoreError};

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
        let resource_spans = self.store.trace(tenant, trace_id).await?;
        Ok((!resource_spans.is_empty()).then_some(TracesData { resource_spans }))
    }

    /// Writes everything in the head to blocks now (as the periodic cut would), e.g. before a shutdown or to
    /// measure storage.
    pub async fn flush(&self) -> Result<CutReport, StoreError> {
        self.store.cut().await
    }
}
