//! `clew serve`: wires the stages together (receivers → validator → store ← query ← api) and serves every port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clew_model::SpanSink;
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

    let store = Store::open(
        StoreConfig {
            data_dir: settings.data_dir.clone(),
            wal_segment_bytes: settings.wal_segment_bytes,
            head_max_bytes: settings.head_max_bytes,
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
    let validator: Arc<dyn SpanSink> =
        Arc::new(Validator::new(limits, store.clone() as Arc<dyn SpanSink>, &mut registry));
    let receivers =
        Receivers::new(ReceiverConfig { max_request_bytes: settings.max_request_bytes }, validator, &mut registry);
    let query = Query::new(store.clone());
    let ready = Arc::new(AtomicBool::new(false));

    // Bind every port before serving any, so a taken port fails the start instead of half a server.
    let ip = settings.listen;
    let listeners = [
        ("OTLP gRPC", settings.otlp_grpc_port, receivers.otlp_grpc_router()),
        ("OTLP HTTP", settings.otlp_http_port, receivers.otlp_http_router()),
        ("Zipkin", settings.zipkin_port, receivers.zipkin_router()),
        ("query API", settings.query_port, clew_api::router(query.clone())),
        ("Tempo API", settings.tempo_port, clew_api::tempo_router(query)),
        ("telemetry", settings.telemetry_port, telemetry::router(Arc::new(registry), ready.clone())),
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
    let maintenance = tokio::spawn(maintain_blocks(store.clone()));
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
    store.shutdown();
    Ok(())
}

/// Cuts the head into blocks whenever it is past its size or age limit. A failed cut keeps everything in the
/// head and the log, and is retried.
async fn cut_blocks(store: Arc<Store>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(err) = store.cut_if_due().await {
            tracing::error!(%err, "cutting blocks failed; will retry");
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

/// Compaction and retention, every half minute. Both are safe to interrupt, so shutdown just stops them.
async fn maintain_blocks(store: Arc<Store>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
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
