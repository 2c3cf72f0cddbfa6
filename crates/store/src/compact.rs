//! Compaction and retention of blocks, both safe to interrupt at any point.
//!
//! Compaction merges the blocks of one tenant whose data ends in the same time window: it reads them, drops
//! duplicate spans (by trace id and span id), writes one block (its `meta.json` last), and only then retires the
//! inputs, deleting each one's `meta.json` first. Interrupted before the new meta exists, the half-written block
//! is deleted at the next start; interrupted later, the inputs and the new block overlap until the next
//! compaction, which merges them again (they share the window), and reads drop the duplicates meanwhile.
//! Retention deletes whole blocks whose data ended before the retention period, the same way.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use clew_model::Tenant;
use object_store::ObjectStoreExt;

use crate::block::{self, BlockMeta, BlockOptions};
use crate::{Store, StoreError, crash};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Blocks merged away and blocks written.
    pub blocks_in: usize,
    pub blocks_out: usize,
    pub spans: u64,
    pub duplicates_dropped: u64,
}

/// Where a compaction stops: every step, for crash tests; `Done` in normal use.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactStep {
    /// After writing the merged block's data files, before its meta.
    DataWritten,
    /// After the merged block is complete, before any input is retired.
    BlockWritten,
    /// After the first input's meta is deleted.
    FirstInputRetired,
    Done,
}

impl Store {
    /// Merges small blocks of the same tenant and time window.
    pub async fn compact(&self) -> Result<CompactReport, StoreError> {
        self.compact_until(CompactStep::Done).await
    }

    /// [`Store::compact`], stopping early at `step` as if the process had died there (crash tests).
    #[doc(hidden)]
    pub async fn compact_until(&self, step: CompactStep) -> Result<CompactReport, StoreError> {
        let _one_at_a_time = self.maintenance_lock.lock().await;
        let mut report = CompactReport::default();
        for tenant in self.blocks.tenants() {
            for group in self.compaction_groups(&tenant) {
                let started = Instant::now();
                let stopped = self.merge(&tenant, &group, step, &mut report).await?;
                tracing::info!(
                    tenant = %tenant,
                    blocks = group.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "compacted blocks"
                );
                if stopped {
                    return Ok(report);
                }
            }
        }
        Ok(report)
    }

    /// Runs of at least two small blocks sharing a window, oldest first, each within the span budget. A block of
    /// a quarter of the budget or more is left as it is: rewriting it to absorb a few spans, or to pair it with
    /// another of its size, would cost about as much as the data it holds while gaining little.
    fn compaction_groups(&self, tenant: &Tenant) -> Vec<Vec<Arc<BlockMeta>>> {
        let window = self.config.compaction_window.as_nanos().max(1) as u64;
        let large = (self.config.compaction_max_spans / 4).max(1);
        let mut windows: BTreeMap<u64, Vec<Arc<BlockMeta>>> = BTreeMap::new();
        for meta in self.blocks.of(tenant).into_iter().filter(|m| m.span_count < large) {
            windows.entry(meta.max_end_unix_nano / window).or_default().push(meta);
        }
        let mut groups = Vec::new();
        for blocks in windows.into_values() {
            let mut group: Vec<Arc<BlockMeta>> = Vec::new();
            let mut spans = 0;
            for meta in blocks {
                if !group.is_empty() && spans + meta.span_count > self.config.compaction_max_spans {
                    if group.len() >= 2 {
                        groups.push(std::mem::take(&mut group));
                    }
                    group.clear();
                    spans = 0;
                }
                spans += meta.span_count;
                group.push(meta);
            }
            if group.len() >= 2 {
                groups.push(group);
            }
        }
        groups
    }

    /// Merges one group; returns whether it stopped at `step` before finishing.
    async fn merge(
        &self,
        tenant: &Tenant,
        inputs: &[Arc<BlockMeta>],
        step: CompactStep,
        report: &mut CompactReport,
    ) -> Result<bool, StoreError> {
        let objects = self.objects.as_ref();
        let mut spans = Vec::new();
        let mut decisions = std::collections::HashMap::new();
        for meta in inputs {
            let read_error = |e| StoreError::Block(format!("compaction read: {e}"));
            spans.extend(block::read_all(objects, meta).await.map_err(read_error)?);
            // Why sampling kept each trace travels into the merged block.
            for (id, decision) in block::read_decisions(objects, meta).await.map_err(read_error)? {
                decisions.entry(id).or_insert_with(|| Arc::new(decision));
            }
        }
        let before = spans.len() as u64;
        let mut seen = HashSet::with_capacity(spans.len());
        spans.retain(|s| seen.insert((s.span.trace_id.clone(), s.span.span_id.clone())));
        report.duplicates_dropped += before - spans.len() as u64;
        report.spans += spans.len() as u64;

        let options = BlockOptions {
            crash_point_before_meta: Some(crash::COMPACT_AFTER_OUTPUT_DATA),
            row_group_spans: self.config.row_group_spans,
            ..BlockOptions::default()
        };
        let written = block::write_block_with_decisions(objects, tenant, spans, &decisions, &options)
            .await
            .map_err(|e| StoreError::Block(format!("compaction write: {e}")))?;
        if step == CompactStep::DataWritten {
            // Simulates dying before the meta: remove it, leaving the data files behind.
            objects.delete(&written.path(block::META_FILE)).await.map_err(|e| StoreError::Block(e.to_string()))?;
            return Ok(true);
        }
        crash::reached(crash::COMPACT_AFTER_OUTPUT_META);
        self.blocks.add(tenant, written);
        report.blocks_out += 1;
        if step == CompactStep::BlockWritten {
            return Ok(true);
        }
        for (i, meta) in inputs.iter().enumerate() {
            self.retire(tenant, meta, [crash::COMPACT_AFTER_INPUT_META_DELETED, crash::COMPACT_AFTER_INPUT_DELETED])
                .await?;
            report.blocks_in += 1;
            if i == 0 && step == CompactStep::FirstInputRetired {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Deletes blocks whose data ended more than the retention period before `now_unix_nano`.
    pub async fn apply_retention(&self, now_unix_nano: u64) -> Result<usize, StoreError> {
        let _one_at_a_time = self.maintenance_lock.lock().await;
        let cutoff = now_unix_nano.saturating_sub(self.config.retention.as_nanos() as u64);
        let mut deleted = 0;
        for tenant in self.blocks.tenants() {
            for meta in self.blocks.of(&tenant).into_iter().filter(|m| m.max_end_unix_nano < cutoff) {
                self.retire(
                    &tenant,
                    &meta,
                    [crash::RETENTION_AFTER_META_DELETED, crash::RETENTION_AFTER_BLOCK_DELETED],
                )
                .await?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            tracing::info!(blocks = deleted, "deleted blocks past the retention period");
        }
        Ok(deleted)
    }

    /// Stops reading a block and deletes it: `meta.json` first, so an interruption leaves an unlisted directory
    /// that the next start deletes. `crash_points`: the caller's names for after the meta and after the rest.
    async fn retire(
        &self,
        tenant: &Tenant,
        meta: &BlockMeta,
        crash_points: [&'static str; 2],
    ) -> Result<(), StoreError> {
        self.blocks.remove(tenant, &meta.block_id);
        let objects = self.objects.as_ref();
        objects.delete(&meta.path(block::META_FILE)).await.map_err(|e| StoreError::Block(e.to_string()))?;
        crash::reached(crash_points[0]);
        let dir = object_store::path::Path::from_iter([tenant.as_str(), "blocks", meta.block_id.as_str()]);
        crate::blocks::delete_prefix(objects, &dir).await?;
        crash::reached(crash_points[1]);
        Ok(())
    }
}
