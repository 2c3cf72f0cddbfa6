//! `clew loadgen`: realistic OTLP traffic against any endpoint.

use std::path::PathBuf;
use std::time::Duration;

use clew_loadgen::{LoadConfig, Profile, Protocol};

#[derive(clap::Args, Debug)]
pub struct LoadgenArgs {
    /// Base URL of the OTLP endpoint (gRPC port for grpc, HTTP port for http/*).
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    /// grpc, http/protobuf or http/json.
    #[arg(long, default_value = "grpc")]
    pub protocol: Protocol,
    /// Workload: jaeger-ch (10-span traces, 11 random attributes), microservices (call trees) or large.
    #[arg(long, default_value = "jaeger-ch")]
    pub profile: Profile,
    /// Traces to send (default 10,000 unless --duration is given).
    #[arg(long)]
    pub traces: Option<u64>,
    /// Send for this long instead of a trace count, e.g. 30s or 2m.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Target spans per second over all senders (default: as fast as acknowledgements come back).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Spans per request.
    #[arg(long, default_value_t = 1000)]
    pub batch_spans: usize,
    /// Seed of the workload: the same seed sends the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Trace start times are spread over this many days before now.
    #[arg(long, default_value_t = 10.0)]
    pub spread_days: f64,
    /// Tenant to send as (X-Scope-OrgID).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Write the acknowledged trace ids and start times (Unix ns) to this file, one per line.
    #[arg(long, value_name = "FILE")]
    pub ids_out: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) =
        text.trim().split_at(text.trim().find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len()));
    let value: f64 = number.parse().map_err(|_| format!("invalid duration {text:?}; use e.g. 500ms, 30s, 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("invalid duration unit in {text:?}; use ms, s, m or h")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let config = LoadConfig {
        endpoint: args.endpoint,
        protocol: args.protocol,
        profile: args.profile,
        seed: args.seed,
        traces: match (args.traces, args.duration) {
            (Some(traces), _) => Some(traces),
            (None, Some(_)) => None,
            (None, None) => Some(10_000),
        },
        duration: args.duration,
        rate: args.rate,
        concurrency: args.concurrency,
        batch_spans: args.batch_spans,
        spread_days: args.spread_days,
        tenant: args.tenant,
        ids_out: args.ids_out,
        progress: !args.json,
    };
    let report = clew_loadgen::run(config).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary());
    }
    if report.acknowledged_spans == 0 && report.sent_spans > 0 {
        anyhow::bail!("no span was acknowledged");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
