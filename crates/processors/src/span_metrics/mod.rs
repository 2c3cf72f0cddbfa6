//! Span metrics: RED (calls and duration per service, span name, kind and status code) and the service graph,
//! counted while ingesting, before any sampling stage drops spans, so the rates are true. Exposed in
//! OpenMetrics text with exemplars (trace id, span id) by [`SpanMetricsHandle::encode`].
//!
//! The stage reads only what it needs from each span's bytes (name, kind, parent, status and a few attribute
//! values; ids and times come from the batch's scan) and updates its state under one lock per batch.

mod config;
mod fast_hash;
mod graph;
mod openmetrics;
mod red;
mod scan;
#[cfg(test)]
mod tests;
mod view;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use clew_model::{Accepted, SinkError, SpanBatch, SpanSink};
use futures::future::BoxFuture;
use parking_lot::Mutex;

pub use config::{DEFAULT_DIMENSIONS, DimensionConfig, ServiceGraphConfig, SpanMetricsConfig};
use graph::{GraphState, KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, Peer, Side};
pub use openmetrics::Exemplar;
use red::RedState;
pub use view::SeriesView;

/// The service of spans whose resource has no `service.name` (the SDKs' default).
const UNKNOWN_SERVICE: &str = "unknown_service";

/// Span attributes the service graph reads, first in the wanted list.
/// (Both the current semantic conventions' database keys and their older names.)
const PEER_KEYS: [&str; 6] =
    ["peer.service", "server.address", "db.system.name", "db.system", "db.namespace", "db.name"];

/// Where a label's value comes from.
#[derive(Debug, Clone)]
enum Source {
    Service,
    SpanName,
    Kind,
    Status,
    /// Index into the extra dimensions.
    Attribute(usize),
}

struct Shared {
    config: SpanMetricsConfig,
    sources: Vec<Source>,
    /// Prometheus label names, one per source.
    label_names: Vec<String>,
    /// Span attribute keys to read: [`PEER_KEYS`] (when the service graph is on), then the extra dimensions.
    span_keys: Vec<String>,
    /// How many of `span_keys` are [`PEER_KEYS`]: all or none.
    peer_keys: usize,
    /// Resource attribute keys to read: `service.name`, then the extra dimensions.
    resource_keys: Vec<String>,
    red: Mutex<RedState>,
    graph: Option<Mutex<GraphState>>,
}

/// Reads the metrics for the telemetry port.
#[derive(Clone)]
pub struct SpanMetricsHandle(Arc<Shared>);

impl SpanMetricsHandle {
    /// Appends the OpenMetrics text of every span-metrics family (without the final `# EOF`).
    pub fn encode(&self, out: &mut String) {
        let shared = &self.0;
        let bounds = &shared.config.buckets;
        // Copies are written out, so ingestion does not wait for the text.
        let red = shared.red.lock().clone();
        red.encode(out, &shared.label_names, bounds);
        if let Some(graph) = &shared.graph {
            let graph = {
                let mut graph = graph.lock();
                graph.sweep(bounds, Instant::now(), true);
                graph.snapshot()
            };
            graph.encode(out, bounds);
        }
    }
}

/// The write-path stage: counts every batch, then hands it on unchanged.
pub struct SpanMetrics {
    shared: Arc<Shared>,
    next: Arc<dyn SpanSink>,
}

impl SpanMetrics {
    pub fn new(config: SpanMetricsConfig, next: Arc<dyn SpanSink>) -> Result<Self, String> {
        config.validate()?;
        let mut sources = Vec::new();
        let mut label_names = Vec::new();
        for (name, source) in
            DEFAULT_DIMENSIONS.iter().zip([Source::Service, Source::SpanName, Source::Kind, Source::Status])
        {
            if !config.exclude_dimensions.iter().any(|d| d == name) {
                sources.push(source);
                label_names.push(openmetrics::label_name(name));
            }
        }
        for (i, dimension) in config.dimensions.iter().enumerate() {
            sources.push(Source::Attribute(i));
            label_names.push(openmetrics::label_name(&dimension.name));
        }
        let extra = config.dimensions.iter().map(|d| d.name.clone());
        let peer_keys = if config.service_graph.enabled { PEER_KEYS.len() } else { 0 };
        let span_keys = PEER_KEYS[..peer_keys].iter().map(|k| k.to_string()).chain(extra.clone()).collect();
        let resource_keys = std::iter::once("service.name".to_string()).chain(extra).collect();
        let graph = config.service_graph.enabled.then(|| {
            let g = &config.service_graph;
            Mutex::new(GraphState::new(g.wait, g.max_items, g.max_edges))
        });
        let red = Mutex::new(RedState::new(config.max_series));
        let shared = Arc::new(Shared { config, sources, label_names, span_keys, peer_keys, resource_keys, red, graph });
        Ok(Self { shared, next })
    }

    pub fn handle(&self) -> SpanMetricsHandle {
        SpanMetricsHandle(self.shared.clone())
    }

    /// Counts the spans of one batch.
    pub fn observe(&self, batch: &SpanBatch) {
        let shared = &*self.shared;
        let request = batch.request();
        let index = batch.index();
        let span_keys: Vec<&str> = shared.span_keys.iter().map(String::as_str).collect();
        let resource_keys: Vec<&str> = shared.resource_keys.iter().map(String::as_str).collect();
        // Resource values, once per scope group.
        let resources: Vec<Vec<Option<Cow<str>>>> = index
            .groups
            .iter()
            .map(|group| {
                let mut found = vec![None; resource_keys.len()];
                if let Some(range) = &group.resource {
                    scan::scan_resource(&request[range.start as usize..range.end as usize], &resource_keys, &mut found);
                }
                found
            })
            .collect();
        let services: Vec<Arc<str>> = match shared.graph {
            Some(_) => resources.iter().map(|r| Arc::from(r[0].as_deref().unwrap_or(UNKNOWN_SERVICE))).collect(),
            None => Vec::new(),
        };
        let bounds = &shared.config.buckets;
        let exemplars = shared.config.exemplars;
        let mut found: Vec<Option<Cow<str>>> = vec![None; span_keys.len()];
        // Reused across spans; emptied and given back each time, since its borrows differ per span.
        let mut spare: Vec<&'static str> = Vec::with_capacity(shared.sources.len());
        let mut key = String::new();
        let mut red = shared.red.lock();
        let mut graph = shared.graph.as_ref().map(|g| g.lock());
        for facts in &index.spans {
            found.iter_mut().for_each(|f| *f = None);
            let bytes = &request[facts.range.start as usize..facts.range.end as usize];
            let fields = scan::scan_span(bytes, &span_keys, shared.peer_keys, &mut found);
            let resource = &resources[facts.group as usize];
            let service = resource[0].as_deref().unwrap_or(UNKNOWN_SERVICE);
            let seconds = facts.end_unix_nano.saturating_sub(facts.start_unix_nano) as f64 / 1e9;
            let exemplar = exemplars.then(|| Exemplar {
                trace_id: facts.trace_id,
                span_id: facts.span_id,
                value: seconds,
                timestamp: facts.end_unix_nano as f64 / 1e9,
            });
            let mut values: Vec<&str> = recycle(std::mem::take(&mut spare));
            for source in &shared.sources {
                values.push(match source {
                    Source::Service => service,
                    Source::SpanName => fields.name,
                    Source::Kind => kind_name(fields.kind),
                    Source::Status => status_name(fields.status_code),
                    Source::Attribute(i) => found[shared.peer_keys + i]
                        .as_deref()
                        .or(resource[1 + i].as_deref())
                        .or(shared.config.dimensions[*i].default.as_deref())
                        .unwrap_or(""),
                });
            }
            red.record(&values, &mut key, bounds, seconds, exemplar);
            spare = recycle(values);
            let Some(graph) = graph.as_mut() else { continue };
            let service = services[facts.group as usize].clone();
            let side = || Side { service, seconds, failed: fields.status_code == 2, exemplar };
            match fields.kind {
                KIND_CLIENT | KIND_PRODUCER => {
                    let text = |i: usize| found[i].as_deref().map(Box::<str>::from);
                    let peer = Peer {
                        peer_service: text(0),
                        server_address: text(1),
                        db_system: text(2).or_else(|| text(3)),
                        db_name: text(4).or_else(|| text(5)),
                    };
                    graph.client(bounds, facts.trace_id, facts.span_id, fields.kind, side(), peer);
                }
                KIND_SERVER | KIND_CONSUMER => {
                    if let Ok(parent) = <[u8; 8]>::try_from(fields.parent_span_id)
                        && parent != [0; 8]
                    {
                        graph.server(bounds, facts.trace_id, parent, fields.kind, side());
                    }
                }
                _ => {}
            }
        }
        if let Some(graph) = graph.as_mut() {
            graph.sweep(bounds, Instant::now(), false);
        }
    }
}

/// Empties a vector and hands its allocation back under another lifetime (in-place collect, no allocation).
fn recycle<'b>(mut values: Vec<&str>) -> Vec<&'b str> {
    values.clear();
    values.into_iter().map(|_| "").collect()
}

impl SpanSink for SpanMetrics {
    fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        self.observe(&batch);
        self.next.consume(batch)
    }
}

/// OTLP `SpanKind` as the collector writes it in the `span.kind` dimension.
pub fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

/// OTLP status code as the collector writes it in the `status.code` dimension.
pub fn status_name(code: i32) -> &'static str {
    match code {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}
