//! The store's Prometheus metrics. The head and the WAL writer update them directly, so they double as
//! the counters behind [`crate::StoreStats`].

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Counters of the in-memory head.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadMetrics {
    pub spans: Gauge,
    pub traces: Gauge,
    pub bytes: Gauge,
}

/// Counters of the write-ahead log.
#[derive(Debug, Clone)]
pub(crate) struct WalMetrics {
    pub sync_duration: Histogram,
    pub bytes: Gauge,
    pub segments: Gauge,
    pub records: Counter,
    /// Not exported: the sync count is already the histogram's `_count`; kept for stats and tests.
    pub syncs: Counter,
}

impl Default for WalMetrics {
    fn default() -> Self {
        Self {
            // 0.5 ms … ~1 s, doubling: a healthy fsync is well under 10 ms, a struggling disk shows up on top.
            sync_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 12)),
            bytes: Gauge::default(),
            segments: Gauge::default(),
            records: Counter::default(),
            syncs: Counter::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    pub head: HeadMetrics,
    pub wal: WalMetrics,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let (wal, head) = (&metrics.wal, &metrics.head);
        registry.register(
            "clew_wal_sync_duration_seconds",
            "Time to write and fsync one group commit of the write-ahead log",
            wal.sync_duration.clone(),
        );
        registry.register("clew_wal_bytes", "Total bytes of all write-ahead log segments", wal.bytes.clone());
        registry.register("clew_wal_segments", "Number of write-ahead log segments", wal.segments.clone());
        // prometheus-client appends `_total` to counters: this is exported as `clew_wal_records_total`.
        registry.register("clew_wal_records", "Records written to the write-ahead log", wal.records.clone());
        registry.register("clew_head_spans", "Spans held in the in-memory head", head.spans.clone());
        registry.register("clew_head_traces", "Traces held in the in-memory head", head.traces.clone());
        registry.register(
            "clew_head_bytes",
            "Approximate bytes of the spans held in the in-memory head",
            head.bytes.clone(),
        );
        metrics
    }
}
