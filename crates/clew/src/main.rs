//! `clew`: the one binary of Clew. `clew serve` runs every stage; the other subcommands are clients.

mod api_client;
mod bench_cmd;
mod blocks_cmd;
mod config;
mod demo_cmd;
mod loadgen_cmd;
mod query_cmd;
mod search_cmd;
mod serve;
mod sink_cmd;
mod telemetry;
mod trace_cmd;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Clew follows one request through every service it touches: it receives spans (OTLP, Zipkin), keeps them
/// durably, and finds and explains traces.
#[derive(Parser)]
#[command(name = "clew", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Clew server: OTLP gRPC (4317) and HTTP (4318), Zipkin (9411), query API (16686), own metrics (8888).
    Serve(config::ServeArgs),
    /// Print one trace as an indented tree: service, span name, start offset, duration and a bar.
    Trace(trace_cmd::TraceArgs),
    /// List the blocks a server holds: time range, traces, spans, bytes.
    Blocks(blocks_cmd::BlocksArgs),
    /// Search traces by service, span name, attributes, kind, status and duration; prints a table.
    Search(search_cmd::SearchArgs),
    /// Run a TraceQL query (Grafana Tempo's language); prints the matching traces as a table.
    Query(query_cmd::QueryArgs),
    /// Send realistic OTLP traffic to any OTLP endpoint and report throughput and latency.
    Loadgen(loadgen_cmd::LoadgenArgs),
    /// Run an end-to-end benchmark scenario (ingest, query, freshness) against fresh local servers.
    Bench(bench_cmd::BenchArgs),
    /// Run Clew with a small instrumented shop sending it traces, with switchable failure scenarios.
    Demo(demo_cmd::DemoArgs),
    /// Decode-only OTLP server for benchmarks: receives like `serve`, then drops everything.
    #[command(hide = true)]
    Sink(sink_cmd::SinkArgs),
}

fn main() -> anyhow::Result<()> {
    // Before any HTTP client is built (S3, `clew trace`, loadgen): reqwest's TLS has no provider of its own.
    clew_store::install_tls_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_logging();
            let settings = config::Settings::load(args)?;
            runtime()?.block_on(serve::run(settings))
        }
        Command::Trace(args) => runtime()?.block_on(trace_cmd::run(args)),
        Command::Blocks(args) => runtime()?.block_on(blocks_cmd::run(args)),
        Command::Search(args) => runtime()?.block_on(search_cmd::run(args)),
        Command::Query(args) => runtime()?.block_on(query_cmd::run(args)),
        Command::Loadgen(args) => runtime()?.block_on(loadgen_cmd::run(args)),
        Command::Bench(args) => runtime()?.block_on(bench_cmd::run(args)),
        Command::Demo(args) => runtime()?.block_on(demo_cmd::run(args)),
        Command::Sink(args) => {
            init_logging();
            runtime()?.block_on(sink_cmd::run(args))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Structured logs on stderr; the level comes from `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
