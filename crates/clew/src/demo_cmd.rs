//! `clew demo`: runs `clew serve` and a small instrumented shop that sends it traces (see docs/demo.md).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clew_demo::{ClewPorts, DemoOptions, Scenario};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Turn a failure scenario on from the start (repeatable; `all` for every one). Known: slow-payment-provider,
    /// db-timeout, n-plus-one, retry-loop, sequential-calls, broken-context, rare-service-everywhere
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Orders per second sent by the built-in traffic driver
    #[arg(long, default_value_t = 5.0, value_name = "PER_SECOND")]
    rate: f64,
    /// Stop by itself after this many seconds (default: run until Ctrl-C)
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Seconds after start at which to print example traces for each active scenario
    #[arg(long, default_value_t = 6.0, value_name = "SECONDS")]
    report_after: f64,
    /// Where Clew's data (in `clew/`), the shop's database and the logs go
    #[arg(long, default_value = "demo", value_name = "DIR")]
    data_dir: PathBuf,
    /// The shop's entry point (frontend) port; 0 picks a free one
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    frontend_port: u16,
    /// Clew's OTLP/gRPC port
    #[arg(long, default_value_t = 4317, value_name = "PORT")]
    otlp_grpc_port: u16,
    /// Clew's OTLP/HTTP port
    #[arg(long, default_value_t = 4318, value_name = "PORT")]
    otlp_http_port: u16,
    /// Clew's query API and UI port
    #[arg(long, default_value_t = 16686, value_name = "PORT")]
    query_port: u16,
    /// More arguments for `clew serve`, after `--` (e.g. `-- --zipkin-port 19411 --telemetry-port 18888`)
    #[arg(last = true, value_name = "SERVE_ARGS")]
    serve_args: Vec<String>,
}

fn seconds(value: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| anyhow::anyhow!("{what} must be a number of seconds >= 0, not {value}"))
}

fn scenarios(names: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    for name in names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            scenarios.extend(Scenario::ALL);
            continue;
        }
        let known = || Scenario::ALL.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
        scenarios
            .push(Scenario::parse(name).with_context(|| format!("unknown scenario {name:?}; known: {}", known()))?);
    }
    Ok(scenarios)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !(args.rate > 0.0 && args.rate <= 1000.0) {
        anyhow::bail!("--rate must be above 0 and at most 1000 orders per second, not {}", args.rate);
    }
    let options = DemoOptions {
        clew_binary: std::env::current_exe().context("finding the clew binary to run `clew serve`")?,
        data_dir: args.data_dir,
        ports: ClewPorts { otlp_grpc: args.otlp_grpc_port, otlp_http: args.otlp_http_port, query: args.query_port },
        serve_args: args.serve_args,
        frontend_port: args.frontend_port,
        rate: args.rate,
        scenarios: scenarios(&args.scenarios)?,
        duration: args.duration.map(|d| seconds(d, "--duration")).transpose()?,
        report_after: seconds(args.report_after, "--report-after")?,
    };
    clew_demo::run(options).await
}
