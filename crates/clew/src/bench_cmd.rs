//! `clew bench <scenario>`: end-to-end benchmarks on this machine, written as JSON and Markdown.

use std::path::PathBuf;

use anyhow::Context;
use clew_loadgen::bench::{self, BenchConfig};
use clew_loadgen::{Profile, Protocol};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// ingest, query or freshness.
    pub scenario: Scenario,
    /// Spans to send (query: spans loaded before timing) [default: ingest 1,000,000; query 10,000,000, i.e.
    /// 1M jaeger-ch traces, as Jaeger's published benchmark]
    #[arg(long)]
    pub spans: Option<u64>,
    #[arg(long, default_value = "jaeger-ch")]
    pub profile: Profile,
    #[arg(long, default_value = "grpc")]
    pub protocol: Protocol,
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 1000)]
    pub batch_spans: usize,
    /// Timed repetitions per query (query, freshness).
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where data directories and results (`<scenario>.json`, `<scenario>.md`) go.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Scenario {
    Ingest,
    Query,
    Freshness,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let config = BenchConfig {
        clew: std::env::current_exe().context("locating the clew binary")?,
        work_dir: args.out.clone(),
        spans: args.spans.unwrap_or(match args.scenario {
            Scenario::Query => 10_000_000,
            Scenario::Ingest | Scenario::Freshness => 1_000_000,
        }),
        profile: args.profile,
        protocol: args.protocol,
        concurrency: args.concurrency,
        batch_spans: args.batch_spans,
        seed: args.seed,
        progress: true,
    };
    let machine = machine_line();
    let (name, json, markdown) = match args.scenario {
        Scenario::Ingest => {
            let result = bench::ingest(&config).await?;
            ("ingest", serde_json::to_value(&result)?, bench::ingest_markdown(&config, &result))
        }
        Scenario::Query => {
            let timings = bench::query(&config, args.runs).await?;
            let title = format!("query ({} spans of {} loaded)", config.spans, config.profile);
            ("query", serde_json::to_value(&timings)?, bench::timings_markdown(&title, &timings))
        }
        Scenario::Freshness => {
            let timings = bench::freshness(&config, args.runs).await?;
            ("freshness", serde_json::to_value(&timings)?, bench::timings_markdown("freshness", &timings))
        }
    };
    let markdown = format!("{markdown}\nMachine: {machine}\n");
    let document = serde_json::json!({ "scenario": name, "machine": machine, "result": json });
    std::fs::write(args.out.join(format!("{name}.json")), serde_json::to_vec_pretty(&document)?)?;
    std::fs::write(args.out.join(format!("{name}.md")), &markdown)?;
    println!("{markdown}");
    Ok(())
}

/// CPU model and core count, for the record.
fn machine_line() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores, {model}")
}
