//! Drives a workload against an endpoint with several concurrent senders and reports what happened.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::profiles::{Profile, SentTrace, WorkloadConfig};
use crate::transport::{Outcome, Protocol, Sender, TransportError};

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL: `http://127.0.0.1:4317` for gRPC, `http://127.0.0.1:4318` for HTTP.
    pub endpoint: String,
    pub protocol: Protocol,
    pub profile: Profile,
    pub seed: u64,
    /// Total traces to send; `None` with `duration` runs until the time is up.
    pub traces: Option<u64>,
    pub duration: Option<Duration>,
    /// Target spans per second over all senders; `None` sends as fast as acknowledgements come.
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub batch_spans: usize,
    pub spread_days: f64,
    pub tenant: Option<String>,
    pub ids_out: Option<PathBuf>,
    pub progress: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:4317".into(),
            protocol: Protocol::Grpc,
            profile: Profile::JaegerCh,
            seed: 1,
            traces: Some(10_000),
            duration: None,
            rate: None,
            concurrency: 8,
            batch_spans: 1000,
            spread_days: 10.0,
            tenant: None,
            ids_out: None,
            progress: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Backoff after a retryable refusal: doubling from the first to the max, until the request has been tried for
/// the budget (OpenTelemetry exporters retry likewise).
const RETRY_FIRST_BACKOFF: Duration = Duration::from_millis(50);
const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(2);
const RETRY_BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub profile: Profile,
    pub protocol: Protocol,
    pub elapsed_secs: f64,
    pub requests: u64,
    pub failed_requests: u64,
    pub sent_spans: u64,
    pub acknowledged_spans: u64,
    pub rejected_spans: u64,
    pub failed_spans: u64,
    pub acknowledged_traces: u64,
    pub spans_per_sec: f64,
    pub request_latency_ms: LatencyMs,
    pub first_error: Option<String>,
    /// Requests sent again after a retryable refusal (backpressure), as OpenTelemetry exporters do.
    pub retries: u64,
    pub first_retry_reason: Option<String>,
}

impl LoadReport {
    pub fn summary(&self) -> String {
        let l = &self.request_latency_ms;
        let mut text = format!(
            "{} over {:?}: {} spans acknowledged ({} traces), {} rejected, {} failed in {:.2}s = {:.0} spans/s\n\
             requests: {} ({} failed); latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}\n",
            self.profile,
            self.protocol,
            self.acknowledged_spans,
            self.acknowledged_traces,
            self.rejected_spans,
            self.failed_spans,
            self.elapsed_secs,
            self.spans_per_sec,
            self.requests,
            self.failed_requests,
            l.p50,
            l.p90,
            l.p99,
            l.max
        );
        if let Some(err) = &self.first_error {
            text.push_str(&format!("first error: {err}\n"));
        }
        if let Some(reason) = &self.first_retry_reason {
            text.push_str(&format!(
                "{} requests sent again after a retryable refusal, first: {reason}\n",
                self.retries
            ));
        }
        text
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("writing {path}: {source}")]
    IdsOut { path: PathBuf, source: std::io::Error },
    #[error("a sender task failed: {0}")]
    Task(String),
}

/// What one sender saw.
struct WorkerResult {
    latency_us: Histogram<u64>,
    counts: Counts,
    traces: Vec<SentTrace>,
}

/// Spreads sends over time for a target rate: each request takes the next slot in a shared schedule.
struct Pacer {
    start: Instant,
    spans_per_sec: f64,
    scheduled_spans: AtomicU64,
}

impl Pacer {
    async fn wait(&self, spans: usize) {
        let before = self.scheduled_spans.fetch_add(spans as u64, Ordering::Relaxed);
        let due = self.start + Duration::from_secs_f64(before as f64 / self.spans_per_sec);
        tokio::time::sleep_until(due.into()).await;
    }
}

pub async fn run(config: LoadConfig) -> Result<LoadReport, LoadError> {
    let concurrency = config.concurrency.max(1);
    let started = Instant::now();
    let deadline = config.duration.map(|d| started + d);
    let pacer = config.rate.map(|rate| {
        Arc::new(Pacer { start: started, spans_per_sec: rate.max(1.0), scheduled_spans: AtomicU64::new(0) })
    });
    let progress = progress_bar(&config);
    let now = WorkloadConfig::now();
    let keep_ids = config.ids_out.is_some();

    let mut tasks = Vec::with_capacity(concurrency);
    for worker in 0..concurrency as u64 {
        let share = config.traces.map(|t| t / concurrency as u64 + u64::from(worker < t % concurrency as u64));
        let workload_config = WorkloadConfig {
            seed: config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(worker),
            traces: share,
            spread_days: config.spread_days,
            now_unix_nano: now,
        };
        let mut workload = config.profile.workload(workload_config);
        let mut sender = Sender::connect(config.protocol, &config.endpoint)?;
        let (batch_spans, tenant, pacer, progress) =
            (config.batch_spans, config.tenant.clone(), pacer.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let mut result = WorkerResult {
                latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
                counts: Counts::default(),
                traces: Vec::new(),
            };
            let counts = &mut result.counts;
            while deadline.is_none_or(|d| Instant::now() < d) {
                let Some(request) = workload.next_request(batch_spans) else { break };
                if let Some(pacer) = &pacer {
                    pacer.wait(request.spans).await;
                }
                let sent_at = Instant::now();
                let body = bytes::Bytes::from(request.body);
                let mut backoff = RETRY_FIRST_BACKOFF;
                let outcome = loop {
                    let outcome = sender.send(body.clone(), tenant.as_deref()).await;
                    counts.requests += 1;
                    match outcome {
                        Outcome::Retryable(err) if sent_at.elapsed() < RETRY_BUDGET => {
                            counts.retries += 1;
                            counts.first_retry_reason.get_or_insert(err);
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(RETRY_MAX_BACKOFF);
                        }
                        outcome => break outcome,
                    }
                };
                let _ = result.latency_us.record(sent_at.elapsed().as_micros().max(1) as u64);
                counts.sent += request.spans as u64;
                match outcome {
                    Outcome::Acknowledged { rejected } => {
                        counts.acknowledged += (request.spans as u64).saturating_sub(rejected);
                        counts.rejected += rejected;
                        counts.acknowledged_traces += request.traces.len() as u64;
                        if keep_ids {
                            result.traces.extend(request.traces);
                        }
                    }
                    Outcome::Failed(err) | Outcome::Retryable(err) => {
                        counts.failed_requests += 1;
                        counts.failed += request.spans as u64;
                        counts.first_error.get_or_insert(err);
                    }
                }
                progress.inc(request.spans as u64);
            }
            result
        }));
    }

    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    let mut total = Counts::default();
    let mut traces = Vec::new();
    for task in tasks {
        let result = task.await.map_err(|e| LoadError::Task(e.to_string()))?;
        let _ = latency.add(&result.latency_us);
        total.add(&result.counts);
        traces.extend(result.traces);
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();

    if let Some(path) = &config.ids_out {
        write_ids(path, &mut traces).map_err(|source| LoadError::IdsOut { path: path.clone(), source })?;
    }
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(LoadReport {
        profile: config.profile,
        protocol: config.protocol,
        elapsed_secs: elapsed,
        requests: total.requests,
        failed_requests: total.failed_requests,
        sent_spans: total.sent,
        acknowledged_spans: total.acknowledged,
        rejected_spans: total.rejected,
        failed_spans: total.failed,
        acknowledged_traces: total.acknowledged_traces,
        spans_per_sec: total.acknowledged as f64 / elapsed.max(1e-9),
        request_latency_ms: LatencyMs { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), max: latency.max() as f64 / 1000.0 },
        first_error: total.first_error,
        retries: total.retries,
        first_retry_reason: total.first_retry_reason,
    })
}

/// Request and span counts, per sender and summed.
#[derive(Default)]
struct Counts {
    requests: u64,
    failed_requests: u64,
    sent: u64,
    acknowledged: u64,
    rejected: u64,
    failed: u64,
    acknowledged_traces: u64,
    /// Requests sent again after a retryable refusal.
    retries: u64,
    first_error: Option<String>,
    first_retry_reason: Option<String>,
}

impl Counts {
    fn add(&mut self, r: &Counts) {
        self.requests += r.requests;
        self.failed_requests += r.failed_requests;
        self.sent += r.sent;
        self.acknowledged += r.acknowledged;
        self.rejected += r.rejected;
        self.failed += r.failed;
        self.acknowledged_traces += r.acknowledged_traces;
        self.retries += r.retries;
        if self.first_error.is_none() {
            self.first_error.clone_from(&r.first_error);
        }
        if self.first_retry_reason.is_none() {
            self.first_retry_reason.clone_from(&r.first_retry_reason);
        }
    }
}

fn progress_bar(config: &LoadConfig) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    let expected_spans = match (config.profile, config.traces) {
        (Profile::JaegerCh, Some(traces)) => Some(traces * crate::profiles::jaeger_ch_spans_per_trace()),
        _ => None,
    };
    let bar = match expected_spans {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    let template = if expected_spans.is_some() {
        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} spans ({per_sec}, eta {eta})"
    } else {
        "{elapsed_precise} {spinner} {human_pos} spans ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// One line per trace: hex id and start time in Unix nanoseconds, oldest first.
fn write_ids(path: &PathBuf, traces: &mut [SentTrace]) -> std::io::Result<()> {
    traces.sort_by_key(|t| (t.start_unix_nano, t.trace_id));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for trace in traces.iter() {
        writeln!(out, "{} {}", hex::encode(trace.trace_id), trace.start_unix_nano)?;
    }
    out.flush()
}
