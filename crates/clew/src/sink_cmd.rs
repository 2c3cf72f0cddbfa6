//! `clew sink`: the decode-only reference server. It accepts OTLP exactly like `clew serve` (the same receivers,
//! the same validation) and then drops the spans, so its throughput is the practical ceiling for ingest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clew_model::{Accepted, SinkError, SpanBatch, SpanSink};
use clew_processors::{Limits, Validator};
use clew_receivers::{ReceiverConfig, Receivers};
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

#[derive(clap::Args, Debug)]
pub struct SinkArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: std::net::IpAddr,
    #[arg(long, default_value_t = 4317)]
    pub otlp_grpc_port: u16,
    #[arg(long, default_value_t = 4318)]
    pub otlp_http_port: u16,
    /// `/ready` and `/metrics`.
    #[arg(long, default_value_t = 8888)]
    pub telemetry_port: u16,
}

/// Takes every batch and keeps nothing.
struct Discard;

impl SpanSink for Discard {
    fn consume(&self, _batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        Box::pin(async { Ok(Accepted::all()) })
    }
}

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let mut registry = Registry::default();
    let validator = Arc::new(Validator::new(Limits::default(), Arc::new(Discard), &mut registry));
    let receivers = Receivers::new(ReceiverConfig::default(), validator, &mut registry);
    let ready = Arc::new(AtomicBool::new(true));
    let routes = [
        (args.otlp_grpc_port, receivers.otlp_grpc_router()),
        (args.otlp_http_port, receivers.otlp_http_router()),
        (args.telemetry_port, crate::telemetry::router(Arc::new(registry), None, ready)),
    ];
    let mut servers = Vec::new();
    for (port, router) in routes {
        let addr = SocketAddr::new(args.listen, port);
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        servers.push(tokio::spawn(async move { axum::serve(listener, router).await }));
    }
    tracing::info!("decode-only sink ready on gRPC {} and HTTP {}", args.otlp_grpc_port, args.otlp_http_port);
    for server in servers {
        server.await??;
    }
    Ok(())
}
