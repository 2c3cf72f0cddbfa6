//! The store's RED read interface, for historical RED: per-block summaries, span scans of blocks without a
//! usable summary, and the head.

use std::sync::Arc;

use clew_model::Tenant;
use clew_store::StoreError;
use clew_store::block::BlockMeta;
pub use clew_store::block::red_summary::{
    RedCell, RedSpan, RedSummary, RedSummarySeries, SUMMARY_BUCKET_NANOS, summary_file,
};

use crate::Query;

impl Query {
    /// The block's RED summary of width `bucket_nanos` for `services` (all when empty) with at least the cells
    /// starting in `range`, `None` when it has none of that width.
    pub async fn red_summary(
        &self,
        tenant: &Tenant,
        block: &Arc<BlockMeta>,
        bucket_nanos: u64,
        services: &[String],
        range: (u64, u64),
    ) -> Result<Option<RedSummary>, StoreError> {
        self.store.red_summary(tenant, block, bucket_nanos, services, range).await
    }

    /// The RED facts of the block's spans that started in `[start, end)`, of `services` (any when empty).
    pub async fn scan_red_spans(
        &self,
        tenant: &Tenant,
        block: &Arc<BlockMeta>,
        range: (u64, u64),
        services: &[String],
        visit: impl FnMut(RedSpan<'_>),
    ) -> Result<(), StoreError> {
        self.store.scan_red_spans(tenant, block, range, services, visit).await
    }

    /// [`Query::scan_red_spans`] over the head.
    pub fn scan_head_red_spans(
        &self,
        tenant: &Tenant,
        range: (u64, u64),
        services: &[String],
        visit: impl FnMut(RedSpan<'_>),
    ) {
        self.store.scan_head_red_spans(tenant, range, services, visit)
    }
}
