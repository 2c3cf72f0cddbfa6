//! Reading back why tail sampling kept a trace: the head holds the decision until the trace is cut, then the
//! trace's row in `traces.parquet` does.

use clew_model::{SamplingDecision, Tenant, TraceId};

use crate::{Store, StoreError, block};

impl Store {
    /// Why sampling kept the trace, as stored with it: from the head, else from the newest block that recorded
    /// it. `None` when no decision is stored (tail sampling off, or the trace unknown).
    pub async fn sampling_decision(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
    ) -> Result<Option<SamplingDecision>, StoreError> {
        if let Some(decision) = self.head.decision(tenant, trace_id) {
            return Ok(Some((*decision).clone()));
        }
        for meta in self.blocks.of(tenant).iter().rev().filter(|m| m.may_contain(trace_id)) {
            match block::read_decision(self.objects.as_ref(), meta, trace_id).await {
                Ok(Some(decision)) => return Ok(Some(decision)),
                Ok(None) => {}
                // Compaction or retention retired the block while it was being read: its rows are elsewhere.
                Err(_) if !self.blocks.of(tenant).iter().any(|m| m.block_id == meta.block_id) => {}
                Err(err) => return Err(StoreError::Block(format!("reading a block: {err}"))),
            }
        }
        Ok(None)
    }
}
