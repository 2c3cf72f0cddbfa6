//! `clew serve`: wires the stages together (receivers → validator → span metrics → sampling → store ← query ←
//! api) and serves every port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clew_model::{SpanBatch, SpanSink, TraceDropper};
use clew_processors::alerts::{self, Alerts};
use clew_processors::remote_sampling::{self, RemoteSampling, RootObserver};
use clew_processors::sampling::TailSampler;
use clew_processors::span_metrics::SpanMetrics;
use clew_processors::{Limits, Validator};
use clew_query::Query;
use clew_receivers::{ReceiverConfig, Receivers};
use clew_store::{Store, StoreConfig};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;
use crate::telemetry;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut registry = Registry::default();
    // Tests kill the process at named steps of cuts, compactions and retention (see docs/crash-points.md).
    if let Some(point) = clew_store::armed_crash_point().map_err(anyhow::Error::msg)? {
        tracing::warn!(point, "crash point armed: the process aborts when it reaches it");
    }

    let store = Store::open(
        StoreConfig {
            data_dir: settings.data_dir.clone(),
            wal_segment_bytes: settings.wal_segment_bytes,
            head_max_bytes: settings.head_max_bytes,
            head_full_wait: Duration::from_millis(settings.head_full_wait_ms),
            max_inflight_bytes: settings.max_inflight_bytes,
            storage: settings.storage.clone(),
            block_cut_bytes: settings.block_cut_bytes,
            block_max_age: Duration::from_secs(settings.block_max_age_secs),
            compaction_window: Duration::from_secs(settings.compaction_window_secs),
            retention: Duration::from_secs(settings.retention_hours.saturating_mul(3600)),
            ..StoreConfig::default()
        },
        &mut registry,
    )
    .with_context(|| format!("opening the store in {}", settings.data_dir.display()))?;
    let storage = store.storage();
    store.check_storage().await.context("checking the block storage")?;
    let blocks = store.load_blocks().await.with_context(|| format!("loading blocks from {storage}"))?;
    tracing::info!(blocks, %storage, "loaded blocks");
    let limits = Limits {
        max_attributes_per_span: settings.max_attributes_per_span,
        max_attribute_value_bytes: settings.max_attribute_value_bytes,
    };
    let sampling = Sampling::start(&settings, &store, &mut registry)?;
    // Span metrics count what passed validation, before sampling drops anything, so the rates are true.
    let (after_validation, span_metrics) = if settings.span_metrics.enabled {
        let stage = SpanMetrics::new((*settings.span_metrics).clone(), sampling.entry.clone())
            .map_err(|e| anyhow::anyhow!("span_metrics: {e}"))?;
        let handle = stage.handle();
        (Arc::new(stage) as Arc<dyn SpanSink>, Some(handle))
    } else {
        (sampling.entry.clone(), None)
    };
    let alerts = Alerts::new((*settings.alerts).clone(), span_metrics.clone(), &mut registry)
        .map_err(|e| anyhow::anyhow!("alerts: {e}"))?;
    let validator: Arc<dyn SpanSink> = Arc::new(Validator::new(limits, after_validation, &mut registry));
    let receivers =
        Receivers::new(ReceiverConfig { max_request_bytes: settings.max_request_bytes }, validator, &mut registry);
    let query = Query::new(store.clone());
    let ready = Arc::new(AtomicBool::new(false));

    // Bind every port before serving any, so a taken port fails the start instead of half a server.
    let ip = settings.listen;
    let listeners = [
        ("OTLP gRPC", settings.otlp_grpc_port, receivers.otlp_grpc_router()),
        ("OTLP HTTP", settings.otlp_http_port, receivers.otlp_http_router()),
        ("Zipkin", settings.zipkin_port, receivers.zipkin_router().merge(clew_api::zipkin_query_router(query.clone()))),
        // The sampling API also answers here, so the web UI (same origin) can show it. The web UI answers every
        // path the APIs do not (client-side routes included).
        (
            "query API",
            settings.query_port,
            clew_api::router(query.clone())
                .merge(sampling.api_router(&settings))
                .merge(alerts::api::router(alerts.clone()))
                .merge(clew_ui::router()),
        ),
        ("Tempo API", settings.tempo_port, clew_api::tempo_router(query)),
        ("sampling", settings.sampling_port, sampling.router(&settings)),
        ("telemetry", settings.telemetry_port, telemetry::router(Arc::new(registry), span_metrics, ready.clone())),
    ];
    let (stop, stopped) = watch::channel(false);
    let mut servers = Vec::new();
    let mut bound = Vec::new();
    for (what, port, router) in listeners {
        let addr = SocketAddr::new(ip, port);
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the {what} port {addr}"))?;
        bound.push(format!("{what} {}", listener.local_addr()?));
        let mut stopped = stopped.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }
    let cutter = tokio::spawn(cut_blocks(store.clone()));
    let alert_tasks = alerts.spawn();
    let maintenance =
        tokio::spawn(maintain_blocks(store.clone(), Duration::from_secs(settings.compaction_interval_secs.max(1))));
    ready.store(true, Ordering::Release);
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        data_dir = %settings.data_dir.display(),
        "Clew is ready: {}",
        bound.join(", ")
    );

    shutdown_signal().await;
    tracing::info!("shutting down");
    ready.store(false, Ordering::Release);
    let _ = stop.send(true);
    for server in servers {
        if let Ok(Err(err)) = server.await {
            tracing::warn!(%err, "server ended with an error");
        }
    }
    cutter.abort();
    maintenance.abort();
    alert_tasks.iter().for_each(|task| task.abort());
    sampling.stop();
    store.shutdown();
    Ok(())
}

/// The sampling stages between the validator and the store: the root-span observer feeding adaptive head
/// sampling (when on), then tail sampling (when on), and the remote sampling endpoint's strategies.
struct Sampling {
    /// Where validated batches go: the first sampling stage, or the store.
    entry: Arc<dyn SpanSink>,
    remote: Arc<RemoteSampling>,
    tail: Option<Arc<TailSampler>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where kept traces' decisions are stored, for the sampling API.
    store: Arc<Store>,
}

impl Sampling {
    fn start(settings: &Settings, store: &Arc<Store>, registry: &mut Registry) -> anyhow::Result<Self> {
        let mut entry: Arc<dyn SpanSink> = store.clone();
        let mut tasks = Vec::new();
        let tail = if settings.tail_sampling.enabled {
            let dropper: Arc<dyn TraceDropper> = store.clone();
            let tail = TailSampler::new((*settings.tail_sampling).clone(), entry.clone(), dropper, registry)
                .map_err(|e| anyhow::anyhow!("tail_sampling: {e}"))?;
            // Traces the log gave back are still waiting for their decision.
            let mut replayed = 0u64;
            store.for_each_head_trace(|tenant, trace_id, resource_spans, decision| {
                // A trace kept before the restart keeps its decision; the others are decided again.
                if let Some(decision) = decision {
                    tail.restore_kept(tenant, trace_id, decision);
                } else if let Ok(batch) = SpanBatch::from_resource_spans(tenant.clone(), resource_spans) {
                    tail.observe_stored(&batch);
                    replayed += 1;
                }
            });
            tracing::info!(policies = settings.tail_sampling.policies.len(), replayed, "tail sampling is on");
            tasks.push(tail.spawn());
            // Block cuts leave undecided traces in the head (and their log segments on disk), so a drop still
            // reaches them and a restart still decides them.
            let undecided = Arc::downgrade(&tail);
            store.hold_at_cut(Arc::new(move || undecided.upgrade().map(|t| t.undecided()).unwrap_or_default()));
            entry = tail.clone();
            Some(tail)
        } else {
            None
        };
        let remote = RemoteSampling::new((*settings.remote_sampling).clone())
            .map_err(|e| anyhow::anyhow!("remote_sampling: {e}"))?;
        tasks.extend(remote.spawn());
        if let Some(adaptive) = remote.adaptive() {
            entry = Arc::new(RootObserver::new(adaptive.clone(), entry));
        }
        Ok(Self { entry, remote, tail, tasks, store: store.clone() })
    }

    /// Jaeger's remote sampling endpoint for SDKs and Clew's sampling API (configuration, counts, decisions).
    fn router(&self, settings: &Settings) -> axum::Router {
        remote_sampling::router(self.remote.clone()).merge(self.api_router(settings))
    }

    /// Clew's sampling API alone, for the sampling port and the query port.
    fn api_router(&self, settings: &Settings) -> axum::Router {
        let store = self.store.clone();
        let stored: clew_processors::sampling::api::StoredDecisions = Arc::new(move |tenant, trace_id| {
            let store = store.clone();
            Box::pin(async move { store.sampling_decision(&tenant, &trace_id).await.map_err(|e| e.to_string()) })
        });
        clew_processors::sampling::api::router(
            (*settings.tail_sampling).clone(),
            self.tail.clone(),
            self.remote.clone(),
            Some(stored),
        )
    }

    /// Decides every waiting trace (keeping what the policies keep) and stops the timers.
    fn stop(self) {
        if let Some(tail) = &self.tail {
            tail.flush();
        }
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Cuts the head into blocks whenever it is past its size or age limit (checked often: a cut that starts late
/// leaves less room for what arrives while it is written). A failed cut keeps everything in the head and the
/// log, and is retried.
async fn cut_blocks(store: Arc<Store>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if let Err(err) = store.cut_if_due().await {
            tracing::error!(%err, "cutting blocks failed; will retry");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Compaction and retention, every `interval`, the first time one interval after the start (a start, often after
/// a crash, is not slowed by them). Both are safe to interrupt, so shutdown just stops them.
async fn maintain_blocks(store: Arc<Store>, interval: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tick.tick().await;
        if let Err(err) = store.compact().await {
            tracing::error!(%err, "compaction failed; will retry");
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        if let Err(err) = store.apply_retention(now.as_nanos() as u64).await {
            tracing::error!(%err, "retention failed; will retry");
        }
    }
}
