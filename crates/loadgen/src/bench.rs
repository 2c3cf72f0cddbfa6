//! End-to-end benchmark scenarios. Each starts a fresh server as a child process (the `clew` binary it is given),
//! drives it through real sockets and measures it from the outside: throughput from the load generator, CPU and
//! peak memory from `/proc`, bytes on disk from the data directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{LoadConfig, LoadReport, Profile, Protocol, run};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Load(#[from] crate::LoadError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A server started for a scenario; killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub query: String,
    pub tempo: String,
    pub telemetry: String,
    pub data_dir: PathBuf,
}

/// Starts of a server before giving up (each on new ports).
const START_ATTEMPTS: usize = 3;

impl ServerProcess {
    /// Starts `clew serve` (or `clew sink` when `sink`) on free loopback ports and waits until it is ready. A
    /// server that exits at once (another process took one of its ports in between) is started again on new ports.
    pub fn start(clew: &Path, data_dir: &Path, sink: bool, extra_args: &[String]) -> Result<Self, BenchError> {
        for _ in 0..START_ATTEMPTS {
            if let Some(server) = Self::start_once(clew, data_dir, sink, extra_args)? {
                return Ok(server);
            }
        }
        Err(BenchError::Setup(format!(
            "the server exited at start {START_ATTEMPTS} times; see {}/server.log",
            data_dir.display()
        )))
    }

    /// `None` when the server exited before it was ready.
    fn start_once(clew: &Path, data_dir: &Path, sink: bool, extra_args: &[String]) -> Result<Option<Self>, BenchError> {
        let ports = free_ports(7)?;
        std::fs::create_dir_all(data_dir)?;
        let mut command = Command::new(clew);
        if sink {
            command.args(["sink", "--otlp-grpc-port", &ports[0].to_string()]);
            command.args(["--otlp-http-port", &ports[1].to_string(), "--telemetry-port", &ports[4].to_string()]);
        } else {
            command.arg("serve").arg("--data-dir").arg(data_dir);
            let flags = [
                "--otlp-grpc-port",
                "--otlp-http-port",
                "--zipkin-port",
                "--query-port",
                "--telemetry-port",
                "--tempo-port",
                "--sampling-port",
            ];
            for (flag, port) in flags.iter().zip(&ports) {
                command.args([flag.to_string(), port.to_string()]);
            }
        }
        command.args(extra_args);
        let log = std::fs::File::create(data_dir.join("server.log"))?;
        let child = command.stdout(Stdio::null()).stderr(log).spawn()?;
        let mut server = Self {
            child,
            otlp_grpc: format!("http://127.0.0.1:{}", ports[0]),
            otlp_http: format!("http://127.0.0.1:{}", ports[1]),
            query: format!("http://127.0.0.1:{}", ports[3]),
            telemetry: format!("http://127.0.0.1:{}", ports[4]),
            tempo: format!("http://127.0.0.1:{}", ports[5]),
            data_dir: data_dir.to_path_buf(),
        };
        let ready = server.wait_ready(Duration::from_secs(30))?;
        Ok(ready.then_some(server))
    }

    /// `true` once ready, `false` if the process exited first.
    fn wait_ready(&mut self, timeout: Duration) -> Result<bool, BenchError> {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/ready", self.telemetry);
        while Instant::now() < deadline {
            if blocking_get(&url).is_ok_and(|(status, _)| status == 200) {
                return Ok(true);
            }
            if self.child.try_wait()?.is_some() {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(BenchError::Setup(format!(
            "server not ready after {timeout:?}; see {}/server.log",
            self.data_dir.display()
        )))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the server has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.pid()).unwrap_or(f64::NAN)
    }

    /// Peak resident memory in bytes (`VmHWM`).
    pub fn peak_rss_bytes(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:").unwrap_or(0) * 1024
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Distinct free loopback ports: all are bound at once, so none is handed out twice.
fn free_ports(n: usize) -> Result<Vec<u16>, BenchError> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// A tiny blocking GET for readiness polling and metrics (no async runtime needed).
pub fn blocking_get(url: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Clock ticks per second of `/proc/<pid>/stat` times; 100 on Linux for every common architecture.
const CLOCK_TICKS: f64 = 100.0;

fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS)
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

pub fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Settings shared by the scenarios.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub clew: PathBuf,
    pub work_dir: PathBuf,
    pub spans: u64,
    pub profile: Profile,
    pub protocol: Protocol,
    pub concurrency: usize,
    pub batch_spans: usize,
    pub seed: u64,
    pub progress: bool,
}

#[derive(Debug, Serialize)]
pub struct IngestResult {
    pub spans_per_sec: f64,
    pub acknowledged_spans: u64,
    pub failed_spans: u64,
    pub server_cpu_seconds: f64,
    pub server_cpu_us_per_span: f64,
    pub peak_rss_bytes: u64,
    /// Write-ahead log bytes right after the load (before any flush).
    pub wal_bytes: u64,
    pub wal_bytes_per_span: f64,
    /// Block bytes once the head is flushed into blocks.
    pub block_bytes: u64,
    pub block_bytes_per_span: f64,
    pub sink_spans_per_sec: f64,
    pub sink_cpu_us_per_span: f64,
    pub ceiling_ratio: f64,
    pub load: LoadReport,
    pub sink_load: LoadReport,
}

fn load_config(config: &BenchConfig, endpoint: &str) -> LoadConfig {
    let per_trace = match config.profile {
        Profile::JaegerCh => 10,
        Profile::Microservices => 20,
        Profile::Large => 30_000,
    };
    LoadConfig {
        endpoint: endpoint.to_string(),
        protocol: config.protocol,
        profile: config.profile,
        seed: config.seed,
        traces: Some((config.spans / per_trace).max(1)),
        duration: None,
        rate: None,
        concurrency: config.concurrency,
        batch_spans: config.batch_spans,
        spread_days: 10.0,
        tenant: None,
        ids_out: None,
        progress: config.progress,
    }
}

/// `ingest`: durable ingest into a fresh `clew serve`, then the same load against the decode-only sink.
pub async fn ingest(config: &BenchConfig) -> Result<IngestResult, BenchError> {
    let data_dir = config.work_dir.join("ingest-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let (load, cpu, rss, wal, blocks) = {
        let server = ServerProcess::start(&config.clew, &data_dir, false, &[])?;
        let endpoint = endpoint(&server, config.protocol);
        let cpu_before = server.cpu_seconds();
        let load = run(load_config(config, &endpoint)).await?;
        let cpu = server.cpu_seconds() - cpu_before;
        let rss = server.peak_rss_bytes();
        let wal = dir_bytes(&data_dir.join("wal"));
        flush(&server).await?;
        (load, cpu, rss, wal, dir_bytes(&data_dir.join("blocks")))
    };
    let sink_dir = config.work_dir.join("sink-data");
    let (sink_load, sink_cpu) = {
        let sink = ServerProcess::start(&config.clew, &sink_dir, true, &[])?;
        let endpoint = endpoint(&sink, config.protocol);
        let cpu_before = sink.cpu_seconds();
        let load = run(load_config(config, &endpoint)).await?;
        (load.clone(), sink.cpu_seconds() - cpu_before)
    };
    let acknowledged = load.acknowledged_spans.max(1) as f64;
    Ok(IngestResult {
        spans_per_sec: load.spans_per_sec,
        acknowledged_spans: load.acknowledged_spans,
        failed_spans: load.failed_spans,
        server_cpu_seconds: cpu,
        server_cpu_us_per_span: cpu * 1e6 / acknowledged,
        peak_rss_bytes: rss,
        wal_bytes: wal,
        wal_bytes_per_span: wal as f64 / acknowledged,
        block_bytes: blocks,
        block_bytes_per_span: blocks as f64 / acknowledged,
        sink_spans_per_sec: sink_load.spans_per_sec,
        sink_cpu_us_per_span: sink_cpu * 1e6 / sink_load.acknowledged_spans.max(1) as f64,
        ceiling_ratio: load.spans_per_sec / sink_load.spans_per_sec.max(1e-9),
        load,
        sink_load,
    })
}

/// Asks the server to cut its head into blocks now.
async fn flush(server: &ServerProcess) -> Result<(), BenchError> {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/flush", server.query))
        .send()
        .await
        .map_err(|e| BenchError::Setup(format!("flush: {e}")))?;
    if !response.status().is_success() {
        return Err(BenchError::Setup(format!("flush answered {}", response.status())));
    }
    Ok(())
}

fn endpoint(server: &ServerProcess, protocol: Protocol) -> String {
    match protocol {
        Protocol::Grpc => server.otlp_grpc.clone(),
        Protocol::HttpProtobuf | Protocol::HttpJson => server.otlp_http.clone(),
    }
}

#[derive(Debug, Serialize)]
pub struct Timing {
    pub name: String,
    pub supported: bool,
    pub runs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub note: String,
}

impl Timing {
    fn measured(name: &str, mut samples_ms: Vec<f64>, note: &str) -> Self {
        samples_ms.sort_by(f64::total_cmp);
        let pick = |q: f64| samples_ms[((samples_ms.len() - 1) as f64 * q).round() as usize];
        Self {
            name: name.into(),
            supported: true,
            runs: samples_ms.len(),
            p50_ms: pick(0.5),
            p99_ms: pick(0.99),
            note: note.into(),
        }
    }
}

/// `query`: loads `jaeger-ch` data, then times each query at least `runs` times.
pub async fn query(config: &BenchConfig, runs: usize) -> Result<Vec<Timing>, BenchError> {
    let data_dir = config.work_dir.join("query-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let server = ServerProcess::start(&config.clew, &data_dir, false, &[])?;
    let ids_path = config.work_dir.join("query-ids.txt");
    let mut load = load_config(config, &server.otlp_grpc);
    load.protocol = Protocol::Grpc;
    load.ids_out = Some(ids_path.clone());
    let report = run(load).await?;
    // Every span must be in before the queries are timed: the table speaks of the data it names.
    if report.acknowledged_spans == 0 || report.failed_spans > 0 || report.rejected_spans > 0 {
        return Err(BenchError::Setup(format!("loading failed: {}", report.summary())));
    }
    eprint!("loaded: {}", report.summary());
    // (trace id, start in Unix seconds) per line.
    let ids: Vec<(String, u64)> = std::fs::read_to_string(&ids_path)?
        .lines()
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            Some((fields.next()?.to_string(), fields.next()?.parse::<u64>().ok()? / 1_000_000_000))
        })
        .collect();
    let from_head = time_trace_by_id(&server, &ids, runs, false).await?;
    flush(&server).await?;
    let from_blocks = time_trace_by_id(&server, &ids, runs, false).await?;
    let within_hour = time_trace_by_id(&server, &ids, runs, true).await?;

    // The searches of Jaeger's ClickHouse benchmark, each returning up to 1,000 traces, over the flushed blocks.
    let now = crate::profiles::WorkloadConfig::now() / 1_000_000_000;
    let day_ago = now - 86_400;
    let api = format!("{}/api/v1", server.query);
    let searches = [
        ("list services", format!("{api}/services")),
        ("list operations", format!("{api}/services/frontend/operations")),
        ("search by service", format!("{api}/search?service=frontend&limit=1000")),
        ("search by operation", format!("{api}/search?service=frontend&name=GET%20/frontend/items/0&limit=1000")),
        ("search by duration", format!("{api}/search?minDuration=10ms&maxDuration=20ms&limit=1000")),
        ("search by time range", format!("{api}/search?start={day_ago}&end={now}&limit=1000")),
        ("search by one attribute", format!("{api}/search?attr=app.attr_07%3Dvalue-0123&limit=1000")),
        (
            "search by all filters",
            format!(
                "{api}/search?service=frontend&name=GET%20/frontend/items/0&attr=app.attr_07%3Dvalue-0123\
                 &minDuration=1ms&start={}&end={now}&limit=1000",
                now - 10 * 86_400
            ),
        ),
    ];
    let mut timings = vec![
        Timing::measured("trace by id", from_head, "as loaded: head, and blocks cut meanwhile"),
        Timing::measured("trace by id", from_blocks, "from blocks, after a flush"),
        Timing::measured("trace by id + time range", within_hour, "from blocks; start ± 1 h"),
    ];
    for (name, url) in searches {
        let (samples, found) = time_get(&url, runs).await?;
        timings.push(Timing::measured(name, samples, &format!("from blocks; {found} results")));
    }

    // A rare attribute key against a frequent one, on data where the two differ (the `microservices` profile,
    // in a tenant of its own so the figures above are untouched): the frequent key has a column of its own in
    // each block, the rare one lives in attrs.parquet, where a search reads that key's entries only.
    let keys_tenant = "attribute-keys";
    let mut keys_load = load_config(config, &server.otlp_grpc);
    keys_load.profile = Profile::Microservices;
    keys_load.traces = Some((config.spans / 10 / 20).max(1));
    keys_load.tenant = Some(keys_tenant.to_owned());
    let keys_report = run(keys_load).await?;
    if keys_report.failed_spans > 0 || keys_report.rejected_spans > 0 {
        return Err(BenchError::Setup(format!("loading failed: {}", keys_report.summary())));
    }
    flush(&server).await?;
    let keys = [
        ("search by a frequent attribute key", "http.request.method%3DPUT", "a column of its own"),
        ("search by a rare attribute key", "db.collection.name%3Dstock", "in attrs.parquet"),
    ];
    for (name, condition, note) in keys {
        let url = format!("{api}/search?attr={condition}&limit=1000");
        let (samples, found) = time_get_as(&url, runs, Some(keys_tenant)).await?;
        let spans = keys_report.acknowledged_spans;
        timings.push(Timing::measured(
            name,
            samples,
            &format!("{spans} microservices spans, key {note}; {found} results"),
        ));
    }

    // Historical RED for one service over all the data (traces start up to 10 days back; their spans a little
    // later). A block writes the RED summaries that aggregate its spans: on this data, whose every block spreads
    // over 10 days, the daily one (finer ones would cost about what the spans do). By day, each block answers
    // from it; by hour or an unaligned step, every block scans its RED columns instead.
    let day = 86_400;
    let (red_start, red_end) = ((now - 11 * day) / day * day, (now / day + 1) * day);
    let red = [
        (
            "historical RED, one service",
            format!("{api}/metrics/red?service=frontend&start={red_start}&end={red_end}&step=86400s"),
            "12 days by day; per-block RED summaries",
        ),
        (
            "historical RED, one service",
            format!("{api}/metrics/red?service=frontend&start={red_start}&end={red_end}&step=1h"),
            "12 days by hour; hourly summaries not written on this data, so span scans",
        ),
        (
            "historical RED, one service",
            format!("{api}/metrics/red?service=frontend&start={}&end={red_end}&step=3601s", red_start + 7),
            "12 days, unaligned step; per-block span scans",
        ),
    ];
    for (name, url, note) in red {
        let (samples, found) = time_get(&url, runs).await?;
        timings.push(Timing::measured(name, samples, &format!("{note}; {found} series")));
    }

    // TraceQL (Tempo's default of 20 traces), natively and through Tempo's API for the API layer's overhead.
    let traceql = [
        ("TraceQL: simple filter", r#"{ resource.service.name = "frontend" }"#.to_owned()),
        ("TraceQL: attribute filter", r#"{ span.app.attr_07 = "value-0123" }"#.to_owned()),
        (
            "TraceQL: structural",
            r#"{ resource.service.name = "frontend" } > { resource.service.name = "auth" }"#.to_owned(),
        ),
        ("TraceQL: pipeline aggregate", r#"{ resource.service.name = "frontend" } | count() > 1"#.to_owned()),
    ];
    for (name, q) in &traceql {
        let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let (samples, found) = time_get(&format!("{api}/traceql?q={encoded}&limit=20"), runs).await?;
        timings.push(Timing::measured(name, samples, &format!("/api/v1/traceql; {found} results")));
    }
    let (name, q) = &traceql[0];
    let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let (samples, found) = time_get(&format!("{}/api/search?q={encoded}&limit=20", server.tempo), runs).await?;
    timings.push(Timing::measured(name, samples, &format!("Tempo's /api/search; {found} results")));

    // The same search natively and through Jaeger's API (which returns whole traces), for the API's overhead.
    let (samples, found) = time_get(&format!("{api}/search?service=frontend&limit=20"), runs).await?;
    timings.push(Timing::measured("search by service, 20 traces", samples, &format!("native; {found} results")));
    let (samples, found) = time_get(&format!("{}/api/traces?service=frontend&limit=20", server.query), runs).await?;
    timings.push(Timing::measured(
        "search by service, 20 traces",
        samples,
        &format!("Jaeger's /api/traces (whole traces); {found} results"),
    ));
    Ok(timings)
}

/// Times `runs` GETs of one URL; returns the samples and how many traces (or names) the answer held.
async fn time_get(url: &str, runs: usize) -> Result<(Vec<f64>, usize), BenchError> {
    time_get_as(url, runs, None).await
}

/// [`time_get`] as a tenant (`X-Scope-OrgID`).
async fn time_get_as(url: &str, runs: usize, tenant: Option<&str>) -> Result<(Vec<f64>, usize), BenchError> {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(runs);
    let mut found = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let mut request = client.get(url);
        if let Some(tenant) = tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        let response = request.send().await.map_err(|e| BenchError::Setup(format!("{url}: {e}")))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| BenchError::Setup(format!("{url}: {e}")))?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        if !status.is_success() {
            return Err(BenchError::Setup(format!("{url} answered {status}: {}", String::from_utf8_lossy(&body))));
        }
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        found = ["traces", "services", "operations", "data", "series"]
            .iter()
            .find_map(|key| value.get(key).and_then(|v| v.as_array()).map(Vec::len))
            .unwrap_or(0);
    }
    Ok((samples, found))
}

/// Times `runs` trace-by-id requests over ids spread through the loaded data, with a time window of an hour
/// around each trace's start when `windowed`; every one must be found.
async fn time_trace_by_id(
    server: &ServerProcess,
    ids: &[(String, u64)],
    runs: usize,
    windowed: bool,
) -> Result<Vec<f64>, BenchError> {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs.max(1) {
        let (id, start) = &ids[(i * 7919) % ids.len()];
        let window = if windowed { format!("?start={}&end={}", start - 3600, start + 3600) } else { String::new() };
        let started = Instant::now();
        let response = client
            .get(format!("{}/api/v1/traces/{id}{window}", server.query))
            .send()
            .await
            .map_err(|e| BenchError::Setup(format!("trace by id: {e}")))?;
        let ok = response.status().is_success();
        let _ = response.bytes().await;
        if !ok {
            return Err(BenchError::Setup(format!("trace {id} was acknowledged but is not found")));
        }
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(samples)
}

/// `freshness`: time from an acknowledged export to the trace being returned by id and found by search.
pub async fn freshness(config: &BenchConfig, runs: usize) -> Result<Vec<Timing>, BenchError> {
    let data_dir = config.work_dir.join("freshness-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let server = ServerProcess::start(&config.clew, &data_dir, false, &[])?;
    let client = reqwest::Client::new();
    let (mut by_id, mut by_search) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for i in 0..runs.max(1) {
        let ids_path = config.work_dir.join("freshness-id.txt");
        let mut load = load_config(config, &server.otlp_grpc);
        load.protocol = Protocol::Grpc;
        load.profile = Profile::JaegerCh;
        load.traces = Some(1);
        load.concurrency = 1;
        load.seed = config.seed + i as u64;
        load.progress = false;
        load.ids_out = Some(ids_path.clone());
        run(load).await?;
        let acknowledged = Instant::now();
        let line = std::fs::read_to_string(&ids_path)?;
        let mut fields = line.split_whitespace();
        let id = fields.next().unwrap_or_default().to_string();
        let start_s: u64 = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0) / 1_000_000_000;
        let by_id_url = format!("{}/api/v1/traces/{id}", server.query);
        let search_url = format!("{}/api/v1/search?start={}&end={}&limit=1000", server.query, start_s, start_s + 1);
        let found_by_id = |body: &[u8]| !body.is_empty();
        let found_by_search = |body: &[u8]| String::from_utf8_lossy(body).contains(&id);
        // Both from the same acknowledgement: the search time is an upper bound (it starts after the first poll).
        by_id.push(poll_until(&client, &by_id_url, acknowledged, found_by_id).await?);
        by_search.push(poll_until(&client, &search_url, acknowledged, found_by_search).await?);
    }
    Ok(vec![
        Timing::measured("acknowledged → trace by id", by_id, "includes one HTTP round trip"),
        Timing::measured("acknowledged → search", by_search, "search by time range; includes the round trips"),
    ])
}

/// Polls `url` until it answers 200 with a body that `found` accepts; returns the milliseconds since `since`.
async fn poll_until(
    client: &reqwest::Client,
    url: &str,
    since: Instant,
    found: impl Fn(&[u8]) -> bool,
) -> Result<f64, BenchError> {
    let deadline = since + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
            && let Ok(body) = response.bytes().await
            && found(&body)
        {
            return Ok(since.elapsed().as_secs_f64() * 1e3);
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!("{url} did not find the trace 30 s after acknowledgement")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub fn timings_markdown(title: &str, timings: &[Timing]) -> String {
    let mut out = format!("### {title}\n\n| query | p50 ms | p99 ms | runs | note |\n|---|---|---|---|---|\n");
    for t in timings {
        if t.supported {
            out.push_str(&format!("| {} | {:.2} | {:.2} | {} | {} |\n", t.name, t.p50_ms, t.p99_ms, t.runs, t.note));
        } else {
            out.push_str(&format!("| {} | – | – | – | {} |\n", t.name, t.note));
        }
    }
    out
}

pub fn ingest_markdown(config: &BenchConfig, r: &IngestResult) -> String {
    format!(
        "### ingest ({profile}, {protocol:?}, {spans} spans, {concurrency} senders × {batch} spans)\n\n\
         | metric | value |\n|---|---|\n\
         | durable ingest | {sps:.0} spans/s |\n\
         | decode-only sink (ceiling) | {sink:.0} spans/s |\n\
         | ceiling ratio | {ratio:.2} |\n\
         | server CPU | {cpu:.2} µs/span (= CPU-seconds per million spans) |\n\
         | sink CPU | {scpu:.2} µs/span |\n\
         | peak RSS | {rss:.1} MiB |\n\
         | bytes on disk: write-ahead log before the flush | {wal:.1} bytes/span |\n\
         | bytes on disk: blocks after the flush | {blocks:.1} bytes/span |\n\
         | request latency p50 / p99 | {p50:.2} / {p99:.2} ms |\n\
         | failed spans | {failed} |\n",
        profile = config.profile,
        protocol = config.protocol,
        spans = r.acknowledged_spans,
        concurrency = config.concurrency,
        batch = config.batch_spans,
        sps = r.spans_per_sec,
        sink = r.sink_spans_per_sec,
        ratio = r.ceiling_ratio,
        cpu = r.server_cpu_us_per_span,
        scpu = r.sink_cpu_us_per_span,
        rss = r.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        wal = r.wal_bytes_per_span,
        blocks = r.block_bytes_per_span,
        p50 = r.load.request_latency_ms.p50,
        p99 = r.load.request_latency_ms.p99,
        failed = r.failed_spans,
    )
}
