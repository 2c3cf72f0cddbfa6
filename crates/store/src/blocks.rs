//! Cutting the head into blocks, and finding traces in them.
//!
//! A cut must never lose an acknowledged span, whatever the moment of a crash. It goes:
//! 1. Under the ingest gate (no request is between its WAL write and its head insert), seal the head and roll
//!    the WAL: every span in the sealed content is in segments up to the returned number, and nothing later is.
//! 2. Write one block per tenant from the sealed content; it stays readable in memory meanwhile.
//! 3. Once every block's `meta.json` is written, delete those WAL segments and release the sealed content.
//!
//! A crash before 3 replays the segments into the head again: the spans exist twice (in a block and in the
//! head) until the next cut, and reads remove duplicates. A block directory without `meta.json` is a cut that
//! died in 2; it is deleted at start.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use clew_model::otlp::ResourceSpans;
use clew_model::{Tenant, TraceId};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::block::{self, BlockMeta, BlockOptions};
use crate::head::Sealed;
use crate::{Store, StoreError, crash};

/// The blocks the store knows, per tenant, oldest first.
#[derive(Default)]
pub(crate) struct BlockList {
    tenants: parking_lot::RwLock<HashMap<Tenant, Vec<Arc<BlockMeta>>>>,
}

impl BlockList {
    pub fn add(&self, tenant: &Tenant, meta: BlockMeta) {
        let mut tenants = self.tenants.write();
        let blocks = tenants.entry(tenant.clone()).or_default();
        blocks.push(Arc::new(meta));
        blocks.sort_by(|a, b| a.block_id.cmp(&b.block_id));
    }

    pub fn of(&self, tenant: &Tenant) -> Vec<Arc<BlockMeta>> {
        self.tenants.read().get(tenant).cloned().unwrap_or_default()
    }

    pub fn tenants(&self) -> Vec<Tenant> {
        self.tenants.read().keys().cloned().collect()
    }

    pub fn remove(&self, tenant: &Tenant, block_id: &str) {
        if let Some(blocks) = self.tenants.write().get_mut(tenant) {
            blocks.retain(|m| m.block_id != block_id);
        }
    }

    fn contains(&self, tenant: &Tenant, block_id: &str) -> bool {
        self.tenants.read().get(tenant).is_some_and(|blocks| blocks.iter().any(|m| m.block_id == block_id))
    }
}

/// What one cut did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutReport {
    pub blocks: usize,
    pub spans: u64,
    pub wal_segments_removed: u64,
}

fn block_error(what: &str) -> impl FnOnce(block::BlockError) -> StoreError + '_ {
    move |e| StoreError::Block(format!("{what}: {e}"))
}

/// Consecutive ranges of trace ids (first, last) holding at most about `max_spans` spans each, from the traces and
/// their span counts in id order.
fn trace_ranges(sizes: &[(TraceId, usize)], max_spans: usize) -> Vec<(TraceId, TraceId)> {
    let mut ranges = Vec::new();
    let mut current: Option<(TraceId, TraceId, usize)> = None;
    for &(id, spans) in sizes {
        match &mut current {
            Some((_, last, total)) if *total + spans <= max_spans => {
                *last = id;
                *total += spans;
            }
            _ => {
                if let Some((first, last, _)) = current.take() {
                    ranges.push((first, last));
                }
                current = Some((id, id, spans));
            }
        }
    }
    ranges.extend(current.map(|(first, last, _)| (first, last)));
    ranges
}

impl Store {
    /// Lists the blocks in storage, deleting the directories of blocks whose write never finished. Called once
    /// at start, before any cut.
    pub async fn load_blocks(&self) -> Result<usize, StoreError> {
        let objects = self.objects.as_ref();
        let tenants = objects.list_with_delimiter(None).await.map_err(|e| StoreError::Block(e.to_string()))?;
        let mut loaded = 0;
        for prefix in tenants.common_prefixes {
            let Some(name) = prefix.parts().next() else { continue };
            let Ok(tenant) = Tenant::parse(name.as_ref()) else { continue };
            let metas = block::list_blocks(objects, &tenant).await.map_err(block_error("listing blocks"))?;
            let complete: HashSet<&str> = metas.iter().map(|m| m.block_id.as_str()).collect();
            let dirs = objects
                .list_with_delimiter(Some(&block::blocks_dir(tenant.as_str())))
                .await
                .map_err(|e| StoreError::Block(e.to_string()))?;
            for dir in dirs.common_prefixes {
                let Some(id) = dir.filename() else { continue };
                if !complete.contains(id) {
                    tracing::warn!(block = id, tenant = %tenant, "deleting a block whose write did not finish");
                    delete_prefix(objects, &dir).await?;
                }
            }
            loaded += metas.len();
            for meta in metas {
                self.blocks.add(&tenant, meta);
            }
        }
        Ok(loaded)
    }

    /// The tenant's blocks, oldest first.
    pub fn blocks(&self, tenant: &Tenant) -> Vec<Arc<BlockMeta>> {
        self.blocks.of(tenant)
    }

    /// Cuts the head into blocks if it is past its size or age limit.
    pub async fn cut_if_due(&self) -> Result<Option<CutReport>, StoreError> {
        let bytes = self.head.live_bytes();
        let age = self.oldest_insert.lock().map(|at| at.elapsed());
        let due = bytes >= self.config.block_cut_bytes || age.is_some_and(|age| age >= self.config.block_max_age);
        if due { self.cut().await.map(Some) } else { Ok(None) }
    }

    /// Cuts everything now in the head into blocks (one per tenant) and frees the WAL segments they cover. Traces
    /// still waiting for a sampling decision stay in the head, and their segments stay (see [`crate::hold`]).
    pub async fn cut(&self) -> Result<CutReport, StoreError> {
        let _one_cut_at_a_time = self.cut_lock.lock().await;
        let started = Instant::now();
        // Content sealed by an earlier cut whose block write failed is retried first.
        let mut work: Vec<(Arc<Sealed>, u64)> = std::mem::take(&mut *self.unwritten.lock());
        {
            let _gate = self.gate.write().await;
            let held = self.holds.undecided();
            if let Some(sealed) = self.head.seal(&held) {
                // Held traces are still in the head: their age counts from now.
                *self.oldest_insert.lock() = (self.head.live_bytes() > 0).then(Instant::now);
                let through =
                    self.wal.roll().await.ok_or_else(|| StoreError::Block("the WAL writer stopped".into()))?;
                self.holds.record(through, held);
                work.push((sealed, through));
            }
        }
        if !work.is_empty() {
            crash::reached(crash::CUT_AFTER_WAL_ROLL);
        }
        let mut report = CutReport::default();
        for (i, (sealed, through)) in work.iter().enumerate() {
            if let Err(err) = self.write_sealed(sealed, &mut report).await {
                // Keep it (readable, its segments kept) and retry at the next cut.
                self.unwritten.lock().extend(work[i..].iter().cloned());
                return Err(err);
            }
            crash::reached(crash::CUT_AFTER_BLOCK_META);
            if let Some(through) = self.holds.removable_through(*through) {
                let wal_dir = self.config.data_dir.join("wal");
                let (segments, bytes) = crate::wal::remove_through(&wal_dir, through).map_err(|e| {
                    StoreError::Io(format!("removing WAL segments up to {through} in {}", wal_dir.display()), e)
                })?;
                self.metrics.wal.segments.dec_by(segments as i64);
                self.metrics.wal.bytes.dec_by(bytes as i64);
                report.wal_segments_removed += segments;
            }
            crash::reached(crash::CUT_AFTER_WAL_DELETED);
            self.head.release(sealed);
            self.head_room.notify_waiters();
        }
        if report.blocks > 0 {
            tracing::info!(
                blocks = report.blocks,
                spans = report.spans,
                wal_segments_removed = report.wal_segments_removed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cut the head into blocks"
            );
        }
        Ok(report)
    }

    async fn write_sealed(&self, sealed: &Arc<Sealed>, report: &mut CutReport) -> Result<(), StoreError> {
        for tenant in sealed.tenants().cloned().collect::<Vec<_>>() {
            // A large head is written as several blocks, each a contiguous range of trace ids: only one of them is
            // decoded in memory at a time (a decoded span takes several times its encoded size).
            for traces in trace_ranges(&sealed.trace_sizes(&tenant), self.config.cut_block_spans.max(1)) {
                let (meta, count) = self.write_sealed_traces(sealed, &tenant, traces).await?;
                self.blocks.add(&tenant, meta);
                report.blocks += 1;
                report.spans += count;
            }
        }
        Ok(())
    }

    /// Writes one block of the sealed traces of a tenant whose ids are in `traces` (inclusive).
    async fn write_sealed_traces(
        &self,
        sealed: &Arc<Sealed>,
        tenant: &Tenant,
        traces: (TraceId, TraceId),
    ) -> Result<(BlockMeta, u64), StoreError> {
        // Sorting, encoding and compressing take seconds of CPU: keep them off the workers serving requests.
        let (objects, sealed_part, runtime) =
            (Arc::clone(&self.objects), Arc::clone(sealed), tokio::runtime::Handle::current());
        let block_tenant = tenant.clone();
        let row_group_spans = self.config.row_group_spans;
        let written = tokio::task::spawn_blocking(move || {
            let (first, last) = traces;
            let in_range = |id: &TraceId| *id >= first && *id <= last;
            // Written from the bytes the spans arrived in: nothing is decoded but resources and scopes.
            let source = sealed_part.source_where(&block_tenant, in_range);
            let decisions = sealed_part.decisions(&block_tenant);
            let count = source.len() as u64;
            let options = BlockOptions {
                crash_point_before_meta: Some(crash::CUT_AFTER_BLOCK_DATA),
                row_group_spans,
                ..BlockOptions::default()
            };
            let meta =
                runtime.block_on(block::write_encoded(objects.as_ref(), &block_tenant, &source, &decisions, &options));
            meta.map(|meta| (meta, count))
        })
        .await
        .map_err(|e| StoreError::Block(format!("block writer task: {e}")))?;
        written.map_err(block_error("writing a block"))
    }

    /// All spans of a trace for this tenant, from the head and every block that may hold it, without duplicates.
    pub async fn trace(&self, tenant: &Tenant, trace_id: &TraceId) -> Result<Vec<ResourceSpans>, StoreError> {
        self.trace_within(tenant, trace_id, None).await
    }

    /// [`Store::trace`], reading only the blocks whose data overlaps `window` (inclusive Unix nanoseconds, as
    /// Tempo's `start`/`end`); the head is always read.
    pub async fn trace_within(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
        window: Option<(u64, u64)>,
    ) -> Result<Vec<ResourceSpans>, StoreError> {
        let overlaps =
            |m: &BlockMeta| window.is_none_or(|(from, to)| m.max_end_unix_nano >= from && m.min_start_unix_nano <= to);
        let mut parts = self.head.trace(tenant, trace_id);
        for meta in self.blocks.of(tenant).iter().filter(|m| overlaps(m) && m.may_contain(trace_id)) {
            match block::read_trace(self.objects.as_ref(), meta, trace_id).await {
                Ok(found) => parts.extend(found),
                // Compaction or retention retired the block while it was being read: its spans are elsewhere.
                Err(_) if !self.blocks.contains(tenant, &meta.block_id) => {}
                Err(err) => return Err(block_error("reading a block")(err)),
            }
        }
        Ok(without_duplicate_spans(parts))
    }
}

impl Store {
    /// [`Store::trace_within`] for several traces at once: each block is read once for all of them. Traces
    /// with no span stored are absent from the result.
    pub async fn traces_within(
        &self,
        tenant: &Tenant,
        trace_ids: &[TraceId],
        window: Option<(u64, u64)>,
    ) -> Result<HashMap<TraceId, Vec<ResourceSpans>>, StoreError> {
        let overlaps =
            |m: &BlockMeta| window.is_none_or(|(from, to)| m.max_end_unix_nano >= from && m.min_start_unix_nano <= to);
        let mut parts: HashMap<TraceId, Vec<ResourceSpans>> = HashMap::new();
        for id in trace_ids {
            let head = self.head.trace(tenant, id);
            if !head.is_empty() {
                parts.insert(*id, head);
            }
        }
        for meta in self.blocks.of(tenant).iter().filter(|m| overlaps(m)) {
            match block::read_traces(self.objects.as_ref(), meta, trace_ids).await {
                Ok(found) => {
                    for (id, spans) in found {
                        parts.entry(id).or_default().extend(spans);
                    }
                }
                // Compaction or retention retired the block while it was being read: its spans are elsewhere.
                Err(_) if !self.blocks.contains(tenant, &meta.block_id) => {}
                Err(err) => return Err(block_error("reading a block")(err)),
            }
        }
        Ok(parts.into_iter().map(|(id, spans)| (id, without_duplicate_spans(spans))).collect())
    }
}

/// Keeps the first copy of each span id (a span can be both in a block and, after a crash, in the head).
fn without_duplicate_spans(mut parts: Vec<ResourceSpans>) -> Vec<ResourceSpans> {
    let mut seen = HashSet::new();
    for rs in &mut parts {
        for ss in &mut rs.scope_spans {
            ss.spans.retain(|span| seen.insert(span.span_id.clone()));
        }
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    parts.retain(|rs| !rs.scope_spans.is_empty());
    parts
}

pub(crate) async fn delete_prefix(objects: &dyn ObjectStore, prefix: &Path) -> Result<(), StoreError> {
    let paths: Vec<Path> = objects
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| StoreError::Block(e.to_string()))?;
    for path in paths {
        objects.delete(&path).await.map_err(|e| StoreError::Block(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ranges_hold_whole_traces_up_to_the_span_bound() {
        let id = |n: u8| TraceId([n; 16]);
        let sizes = [(id(1), 3), (id(2), 4), (id(3), 1), (id(4), 9), (id(5), 2), (id(6), 2)];
        assert_eq!(trace_ranges(&sizes, 8), vec![(id(1), id(3)), (id(4), id(4)), (id(5), id(6))]);
        assert_eq!(trace_ranges(&sizes, 100), vec![(id(1), id(6))]);
        assert_eq!(trace_ranges(&sizes, 1).len(), 6, "a trace larger than the bound is a block of its own");
        assert!(trace_ranges(&[], 8).is_empty());
    }
}
