//! The store: admission (head cap, in-flight cap), group-committed WAL writes, then the head.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clew_model::{Accepted, SamplingDecision, SinkError, SpanBatch, SpanSink, Tenant, TraceId};
use futures::future::BoxFuture;
use object_store::ObjectStore;
use prometheus_client::registry::Registry;
use tokio::sync::{OwnedRwLockReadGuard, OwnedSemaphorePermit, RwLock as AsyncRwLock, Semaphore};

use crate::blocks::BlockList;
use crate::head::{Head, Sealed};
use crate::hold::{CutHold, Holds};
use crate::metrics::Metrics;
use crate::wal::{self, Record, Wal, WalError};
use crate::{Storage, StoreConfig, StoreError};

/// In-flight bytes are counted in KiB permits: `acquire_many` takes a `u32`.
const PERMIT_BYTES: u64 = 1024;
/// How long an overloaded client is asked to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A snapshot of the store's size, for `/metrics` and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub head_spans: u64,
    pub head_traces: u64,
    /// Approximate memory held by the head's spans.
    pub head_bytes: u64,
    /// Total size of all WAL segments.
    pub wal_bytes: u64,
    pub wal_segments: u64,
    /// Records written since open (replayed ones not included).
    pub wal_records: u64,
    /// Group commits (fsyncs) since open; `wal_records / wal_syncs` is the mean group size.
    pub wal_syncs: u64,
}

pub struct Store {
    pub(crate) config: StoreConfig,
    pub(crate) head: Arc<Head>,
    pub(crate) wal: Wal,
    inflight: Arc<Semaphore>,
    inflight_permits: u32,
    pub(crate) metrics: Metrics,
    /// Where blocks are written.
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) blocks: BlockList,
    /// Held (shared) by each request from its WAL write until its head insert; a cut takes it exclusively to
    /// seal the head and roll the WAL at one consistent point.
    pub(crate) gate: Arc<AsyncRwLock<()>>,
    pub(crate) cut_lock: tokio::sync::Mutex<()>,
    /// One compaction or retention pass at a time.
    pub(crate) maintenance_lock: tokio::sync::Mutex<()>,
    /// Sealed head content whose blocks could not be written yet, with the WAL segment it reaches.
    pub(crate) unwritten: parking_lot::Mutex<Vec<(Arc<Sealed>, u64)>>,
    /// When the oldest span not yet sealed arrived.
    pub(crate) oldest_insert: parking_lot::Mutex<Option<Instant>>,
    /// Traces cuts leave in the head (waiting for a sampling decision) and the WAL segments kept for them.
    pub(crate) holds: Holds,
    /// Woken when the head shrinks (a cut released its content, sampling dropped traces).
    pub(crate) head_room: tokio::sync::Notify,
}

impl Store {
    /// Opens the store in `config.data_dir` (creating it), replays the WAL into the head, starts the WAL
    /// writer thread and registers the store's metrics on `registry`.
    pub fn open(config: StoreConfig, registry: &mut Registry) -> Result<Arc<Store>, StoreError> {
        if config.max_inflight_bytes < PERMIT_BYTES {
            return Err(StoreError::Config(format!(
                "max_inflight_bytes must be at least {PERMIT_BYTES}, got {}",
                config.max_inflight_bytes
            )));
        }
        let wal_dir = config.data_dir.join("wal");
        let io_err = |what: &str, path: &Path| {
            let context = format!("{what} {}", path.display());
            move |e| StoreError::Io(context, e)
        };
        std::fs::create_dir_all(&wal_dir).map_err(io_err("creating", &wal_dir))?;
        // Makes the wal directory's own entry durable before anything is acknowledged from inside it.
        wal::sync_dir(&config.data_dir).map_err(io_err("syncing", &config.data_dir))?;

        let metrics = Metrics::register(registry);
        let head = Arc::new(Head::new(metrics.head.clone()));
        let started = Instant::now();
        let replayed = wal::replay(&wal_dir, &head).map_err(io_err("replaying the WAL in", &wal_dir))?;
        let wal_bytes: u64 = replayed.segments.iter().map(|s| s.bytes).sum();
        metrics.wal.bytes.set(wal_bytes as i64);
        metrics.wal.segments.set(replayed.segments.len() as i64);
        tracing::info!(
            dir = %wal_dir.display(),
            segments = replayed.segments.len(),
            records = replayed.records,
            spans = head.spans(),
            traces = head.traces(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "replayed the write-ahead log"
        );

        let wal = Wal::start(wal_dir.clone(), replayed.last_seq + 1, config.wal_segment_bytes, metrics.wal.clone())
            .map_err(io_err("starting the WAL writer for", &wal_dir))?;
        let inflight_permits =
            (config.max_inflight_bytes / PERMIT_BYTES).min(Semaphore::MAX_PERMITS as u64).min(u32::MAX as u64) as u32;
        let objects = match &config.storage {
            Some(storage) => storage.open()?,
            None => Storage::Local(config.data_dir.join("blocks")).open()?,
        };
        let oldest_insert = (head.spans() > 0).then(Instant::now);
        Ok(Arc::new(Store {
            config,
            head,
            wal,
            inflight: Arc::new(Semaphore::new(inflight_permits as usize)),
            inflight_permits,
            metrics,
            objects,
            blocks: BlockList::default(),
            gate: Arc::new(AsyncRwLock::new(())),
            cut_lock: tokio::sync::Mutex::new(()),
            maintenance_lock: tokio::sync::Mutex::new(()),
            unwritten: parking_lot::Mutex::new(Vec::new()),
            oldest_insert: parking_lot::Mutex::new(oldest_insert),
            holds: Holds::default(),
            head_room: tokio::sync::Notify::new(),
        }))
    }

    pub fn stats(&self) -> StoreStats {
        let wal = &self.metrics.wal;
        StoreStats {
            head_spans: self.head.spans(),
            head_traces: self.head.traces(),
            head_bytes: self.head.bytes(),
            wal_bytes: wal.bytes.get().max(0) as u64,
            wal_segments: wal.segments.get().max(0) as u64,
            wal_records: wal.records.get(),
            wal_syncs: wal.syncs.get(),
        }
    }

    /// Commits what is queued and stops the WAL writer; later batches fail with `SinkError::Internal`.
    /// Blocks for at most one group commit. Also done on drop.
    pub fn shutdown(&self) {
        self.wal.shutdown();
    }

    async fn store(&self, batch: SpanBatch) -> Result<Accepted, SinkError> {
        if batch.is_empty() {
            return Ok(Accepted::all());
        }
        self.wait_for_head_room().await?;
        let record = Record::encode(&batch.tenant, batch.request()).map_err(SinkError::Invalid)?;

        // A record bigger than the whole budget still goes through, alone.
        let permits = (record.len() as u64).div_ceil(PERMIT_BYTES).min(self.inflight_permits as u64) as u32;
        let permit = Arc::clone(&self.inflight).try_acquire_many_owned(permits).map_err(|_| SinkError::Overloaded {
            retry_after: RETRY_AFTER,
            reason: format!(
                "the write-ahead log is behind: {} bytes are waiting for it (limit {})",
                self.inflight_bytes(),
                self.config.max_inflight_bytes
            ),
        })?;

        let gate = Arc::clone(&self.gate).read_owned().await;
        let ack = self.wal.submit(record).ok_or_else(|| SinkError::Internal("the store is shut down".into()))?;
        self.oldest_insert.lock().get_or_insert_with(Instant::now);
        let inflight = InFlight { head: Arc::clone(&self.head), batch, permit, _gate: gate };
        Waiting { ack, inflight: Some(inflight) }.wait().await?;
        Ok(Accepted::all())
    }

    /// Returns once the head has room, waiting up to `head_full_wait` for a cut to make some.
    async fn wait_for_head_room(&self) -> Result<(), SinkError> {
        let deadline = tokio::time::Instant::now() + self.config.head_full_wait;
        loop {
            // Registered before the check, so a release between the check and the wait is not missed.
            let room = self.head_room.notified();
            let head_bytes = self.head.bytes();
            if head_bytes < self.config.head_max_bytes {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(SinkError::Exhausted(format!(
                    "head is full ({head_bytes} bytes, limit {}); retry once traces have been written to blocks",
                    self.config.head_max_bytes
                )));
            }
        }
    }

    /// Forgets traces that sampling decided not to keep: out of the head now, and a record in the write-ahead
    /// log so a replay forgets them too. Spans already in a block stay (cuts leave the traces named by
    /// [`Store::hold_at_cut`] in the head). Not waiting for the record's sync is safe: losing it only keeps the
    /// trace.
    pub fn drop_traces(&self, tenant: &Tenant, trace_ids: &[TraceId]) {
        if trace_ids.is_empty() {
            return;
        }
        self.head.remove(tenant, trace_ids);
        self.head_room.notify_waiters();
        match Record::encode_drop(tenant, trace_ids) {
            Ok(record) => drop(self.wal.submit(record)),
            Err(err) => tracing::warn!(%err, "cannot log dropped traces"),
        }
    }

    /// Records why sampling kept traces: on their head entries now (a cut writes it into their block) and in
    /// the write-ahead log so a replay gives it back. Called while the sampler still holds the traces back
    /// from cuts, so the decision reaches the head before their spans can leave it. Not waiting for the
    /// record's sync is safe: losing it only means the trace is decided again after a restart.
    pub fn keep_traces(&self, tenant: &Tenant, kept: &[(TraceId, SamplingDecision)]) {
        if kept.is_empty() {
            return;
        }
        self.head.set_decisions(tenant, kept.to_vec());
        match Record::encode_kept(tenant, kept) {
            Ok(record) => drop(self.wal.submit(record)),
            Err(err) => tracing::warn!(%err, "cannot log kept traces"),
        }
    }

    /// Tells cuts which traces to leave in the head: tail sampling's undecided traces, so a drop can still
    /// reach them and a restart can still decide them.
    pub fn hold_at_cut(&self, hold: CutHold) {
        self.holds.set(hold);
    }

    /// Every trace in the head (after a replay: what was acknowledged but not yet in blocks), decoded, with its
    /// tenant and its sampling decision if it was kept. For stages that must see again what the log gave back,
    /// such as tail sampling after a restart.
    pub fn for_each_head_trace(
        &self,
        mut visit: impl FnMut(&Tenant, &TraceId, Vec<clew_model::otlp::ResourceSpans>, Option<&SamplingDecision>),
    ) {
        for tenant in self.head.tenant_ids() {
            self.head.for_each_trace(&tenant, |id, resource_spans| {
                let decision = self.head.decision(&tenant, id);
                visit(&tenant, id, resource_spans, decision.as_deref())
            });
        }
    }

    fn inflight_bytes(&self) -> u64 {
        (self.inflight_permits as u64 - self.inflight.available_permits() as u64) * PERMIT_BYTES
    }
}

impl SpanSink for Store {
    fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        Box::pin(self.store(batch))
    }
}

impl clew_model::TraceDropper for Store {
    fn drop_traces(&self, tenant: &Tenant, trace_ids: &[TraceId]) {
        Store::drop_traces(self, tenant, trace_ids);
    }

    fn keep_traces(&self, tenant: &Tenant, kept: &[(TraceId, SamplingDecision)]) {
        Store::keep_traces(self, tenant, kept);
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.wal.shutdown();
    }
}

/// A batch handed to the WAL writer, to be put in the head once it is synced.
struct InFlight {
    head: Arc<Head>,
    batch: SpanBatch,
    permit: OwnedSemaphorePermit,
    /// Released after the head insert, so a cut never seals between a WAL write and its insert.
    _gate: OwnedRwLockReadGuard<()>,
}

impl InFlight {
    fn settle(self, synced: Result<Result<(), WalError>, impl Sized>) -> Result<(), SinkError> {
        let InFlight { head, batch, permit, _gate } = self;
        // Synced or failed, the bytes no longer wait for the writer.
        drop(permit);
        match synced {
            Ok(Ok(())) => {
                head.insert(batch);
                Ok(())
            }
            Ok(Err(e)) => Err(SinkError::Internal(format!("write-ahead log: {e}"))),
            Err(_) => Err(SinkError::Internal("the write-ahead log writer stopped".into())),
        }
    }
}

/// Waits for the sync of an [`InFlight`] batch. If the request is cancelled meanwhile (a client hung up),
/// its record is still being written, so the batch is handed to a task that puts it in the head once synced:
/// otherwise it would be durable yet invisible until the next restart.
struct Waiting {
    ack: wal::Ack,
    inflight: Option<InFlight>,
}

impl Waiting {
    async fn wait(mut self) -> Result<(), SinkError> {
        let synced = (&mut self.ack).await;
        match self.inflight.take() {
            Some(inflight) => inflight.settle(synced),
            None => Err(SinkError::Internal("batch settled twice".into())),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let Some(inflight) = self.inflight.take() else {
            return;
        };
        let ack = std::mem::replace(&mut self.ack, tokio::sync::oneshot::channel().1);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = inflight.settle(ack.await);
            });
        }
        // Without a runtime the batch reaches the head on the next replay.
    }
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::{ResourceSpans, ScopeSpans, Span};
    use clew_model::{Tenant, TraceId};

    use super::*;

    fn batch(n: u8) -> SpanBatch {
        let span = Span { trace_id: vec![n; 16], span_id: vec![1; 8], name: "x".repeat(2000), ..Default::default() };
        let scope_spans = vec![ScopeSpans { spans: vec![span], ..Default::default() }];
        SpanBatch::from_resource_spans(Tenant::default(), vec![ResourceSpans { scope_spans, ..Default::default() }])
            .unwrap()
    }

    #[tokio::test]
    async fn a_backlog_past_the_inflight_cap_is_overload() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig { data_dir: dir.path().into(), max_inflight_bytes: 4096, ..Default::default() };
        let store = Store::open(config, &mut Registry::default()).unwrap();
        assert_eq!(store.inflight_permits, 4);

        // Three KiB stand for records queued by other requests; this ~2 KiB batch does not fit beside them.
        let backlog = Arc::clone(&store.inflight).try_acquire_many_owned(3).unwrap();
        match store.consume(batch(1)).await {
            Err(SinkError::Overloaded { retry_after, reason }) => {
                assert_eq!(retry_after, Duration::from_secs(1));
                assert!(reason.contains("3072 bytes"), "{reason}");
            }
            other => panic!("expected overload, got {other:?}"),
        }
        assert!(store.trace(&Tenant::default(), &TraceId([1; 16])).await.unwrap().is_empty());

        drop(backlog);
        store.consume(batch(1)).await.unwrap();
        assert_eq!(store.inflight.available_permits(), 4, "permits come back once synced");
        assert_eq!(store.trace(&Tenant::default(), &TraceId([1; 16])).await.unwrap().len(), 1);
    }

    #[test]
    fn a_tiny_inflight_budget_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig { data_dir: dir.path().into(), max_inflight_bytes: 10, ..Default::default() };
        assert!(matches!(Store::open(config, &mut Registry::default()), Err(StoreError::Config(_))));
    }
}
