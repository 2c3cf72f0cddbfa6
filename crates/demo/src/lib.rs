//! `clew demo`: a small shop of services instrumented with the OpenTelemetry SDK, sending traces to a `clew serve`
//! child process over OTLP (gRPC, HTTP/protobuf and HTTP/JSON), with steady traffic and switchable failures.
//! It uses Clew only through its public interfaces, like any user.

mod clew_server;
mod driver;
pub mod propagation;
mod report;
pub mod scenario;
mod services;
mod telemetry;
mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use clew_server::ClewPorts;
pub use scenario::Scenario;

use crate::scenario::Scenarios;
use crate::telemetry::{OtlpEndpoints, Telemetry};

/// Everything `clew demo` can be told.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The `clew` binary to run `serve` with.
    pub clew_binary: PathBuf,
    /// Clew's data (in `clew/`), the shop's database and both logs.
    pub data_dir: PathBuf,
    pub ports: ClewPorts,
    /// More `clew serve` arguments (other ports, limits).
    pub serve_args: Vec<String>,
    /// The frontend's port; 0 picks a free one.
    pub frontend_port: u16,
    /// Orders per second.
    pub rate: f64,
    pub scenarios: Vec<Scenario>,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// When to look for the example traces.
    pub report_after: Duration,
}

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data_dir)?;
    let clew =
        clew_server::ClewServer::start(&options.clew_binary, &options.data_dir, &options.ports, &options.serve_args)
            .await?;
    let endpoints = OtlpEndpoints {
        grpc: format!("http://127.0.0.1:{}", options.ports.otlp_grpc),
        http: format!("http://127.0.0.1:{}", options.ports.otlp_http),
    };
    let shop_log = options.data_dir.join("shop.log");
    let telemetry = Telemetry::install(&services::SERVICES, &endpoints, &shop_log)?;
    let scenarios = Scenarios::new(&options.scenarios);
    let announce: services::Announce = {
        let query_url = clew.query_url.clone();
        let delay = options.report_after;
        Arc::new(move |scenario: Scenario| {
            let query_url = query_url.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let examples = report::find_examples(&query_url, false, &[scenario], Duration::from_secs(10)).await;
                report::print_examples(&query_url, &examples);
            });
        })
    };
    let shop = services::start(scenarios.clone(), options.frontend_port, &options.data_dir, announce).await?;
    let frontend = format!("http://{}", shop.frontend);
    print_banner(&options, &clew, &frontend, &scenarios, &shop_log);

    let stats = Arc::new(driver::DriverStats::default());
    let traffic = tokio::spawn(driver::drive(frontend.clone(), options.rate, stats.clone()));
    let query_url = clew.query_url.clone();
    let (report_after, active) = (options.report_after, scenarios.clone());
    let report = tokio::spawn(async move {
        tokio::time::sleep(report_after).await;
        let examples = report::find_examples(&query_url, true, &active.active(), Duration::from_secs(6)).await;
        report::print_examples(&query_url, &examples);
    });

    let stop = async {
        match options.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop => {}
        _ = tokio::signal::ctrl_c() => println!("Stopping (Ctrl-C)..."),
    }
    traffic.abort();
    // Let the orders in flight finish, so their traces are whole.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.sent.load(Ordering::Relaxed) > stats.ok.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The email consumer takes a batch every 300 ms; let it drain the queue. The report may finish meanwhile.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    report.abort();
    shop.stop();
    telemetry.shutdown().await;
    clew.stop().await?;
    println!(
        "Sent {} orders: {} succeeded, {} failed. Data stays in {}; `clew serve --data-dir {}` shows it again.",
        stats.sent.load(Ordering::Relaxed),
        stats.ok.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        options.data_dir.display(),
        options.data_dir.join("clew").display(),
    );
    Ok(())
}

fn print_banner(
    options: &DemoOptions,
    clew: &clew_server::ClewServer,
    frontend: &str,
    scenarios: &Scenarios,
    shop_log: &std::path::Path,
) {
    let active: Vec<&str> = scenarios.active().iter().map(|s| s.name()).collect();
    let active = if active.is_empty() { "none".to_string() } else { active.join(", ") };
    println!("Clew demo is running.");
    println!("  UI:         {}/", clew.query_url);
    println!("  Shop:       {frontend}/api/orders ({} orders/s from the built-in driver)", options.rate);
    println!("  Scenarios:  {active}");
    println!("              list: curl {frontend}/scenarios");
    println!("              switch: curl -X POST '{frontend}/scenarios/NAME?enabled=true|false'");
    println!(
        "  Logs:       {} (trace_id, span_id, request_id on every line), {}",
        shop_log.display(),
        clew.log.display()
    );
    println!("Press Ctrl-C to stop.");
}
