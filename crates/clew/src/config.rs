//! `clew serve` settings: built-in defaults, then an optional TOML file, then `CLEW_*` environment variables,
//! then flags — each layer overriding the one before.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clew_processors::alerts::AlertsConfig;
use clew_processors::remote_sampling::RemoteSamplingConfig;
use clew_processors::sampling::TailSamplingConfig;
use clew_processors::span_metrics::SpanMetricsConfig;
use clew_store::Storage;
use serde::Deserialize;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (snake_case keys, e.g. `data_dir = "/var/lib/clew"`).
    #[arg(long, env = "CLEW_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub options: ServeOptions,
}

/// Every setting is optional here; [`Settings`] fills in the defaults.
#[derive(clap::Args, Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// Where the write-ahead log and blocks live [default: ./clew-data]
    #[arg(long, env = "CLEW_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address every port listens on; 0.0.0.0 opens Clew to the network [default: 127.0.0.1]
    #[arg(long, env = "CLEW_LISTEN", value_name = "IP")]
    pub listen: Option<IpAddr>,
    /// OTLP/gRPC port [default: 4317]
    #[arg(long, env = "CLEW_OTLP_GRPC_PORT", value_name = "PORT")]
    pub otlp_grpc_port: Option<u16>,
    /// OTLP/HTTP port (`POST /v1/traces`) [default: 4318]
    #[arg(long, env = "CLEW_OTLP_HTTP_PORT", value_name = "PORT")]
    pub otlp_http_port: Option<u16>,
    /// Zipkin v2 port (`POST /api/v2/spans`) [default: 9411]
    #[arg(long, env = "CLEW_ZIPKIN_PORT", value_name = "PORT")]
    pub zipkin_port: Option<u16>,
    /// Query API port (`/api/v1/...`) [default: 16686]
    #[arg(long, env = "CLEW_QUERY_PORT", value_name = "PORT")]
    pub query_port: Option<u16>,
    /// Grafana Tempo HTTP API port (`/api/traces/{id}`, `/api/search`, ...) [default: 3200]
    #[arg(long, env = "CLEW_TEMPO_PORT", value_name = "PORT")]
    pub tempo_port: Option<u16>,
    /// Clew's own metrics and health port (`/metrics`, `/health`, `/ready`) [default: 8888]
    #[arg(long, env = "CLEW_TELEMETRY_PORT", value_name = "PORT")]
    pub telemetry_port: Option<u16>,
    /// Jaeger remote sampling port for SDKs (`GET /sampling?service=`) [default: 5778]
    #[arg(long, env = "CLEW_SAMPLING_PORT", value_name = "PORT")]
    pub sampling_port: Option<u16>,
    /// Tail sampling policies (config file only: a `[tail_sampling]` table; off by default)
    #[arg(skip)]
    pub tail_sampling: Option<Box<TailSamplingConfig>>,
    /// Strategies served to SDKs (config file only: a `[remote_sampling]` table)
    #[arg(skip)]
    pub remote_sampling: Option<Box<RemoteSamplingConfig>>,
    /// RED metrics and the service graph from spans (config file only: a `[span_metrics]` table; on by default)
    #[arg(skip)]
    pub span_metrics: Option<Box<SpanMetricsConfig>>,
    /// Alert rules on the span metrics and their webhooks (config file only: an `[alerts]` table; see docs/alerts.md)
    #[arg(skip)]
    pub alerts: Option<Box<AlertsConfig>>,
    /// Largest accepted request body after decompression; larger gets 413 / RESOURCE_EXHAUSTED [default: 67108864]
    #[arg(long, env = "CLEW_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Spans with more attributes are rejected (partial success) [default: 256]
    #[arg(long, env = "CLEW_MAX_ATTRIBUTES_PER_SPAN", value_name = "N")]
    pub max_attributes_per_span: Option<usize>,
    /// Spans with a longer string or bytes attribute value are rejected [default: 65536]
    #[arg(long, env = "CLEW_MAX_ATTRIBUTE_VALUE_BYTES", value_name = "BYTES")]
    pub max_attribute_value_bytes: Option<usize>,
    /// Memory cap of the in-memory head; past it new data waits for room, then gets 429 / RESOURCE_EXHAUSTED
    /// [default: 536870912]
    #[arg(long, env = "CLEW_HEAD_MAX_BYTES", value_name = "BYTES")]
    pub head_max_bytes: Option<u64>,
    /// How long a request waits for a cut to make room in a full head before it is refused, in milliseconds
    /// [default: 3000]
    #[arg(long, env = "CLEW_HEAD_FULL_WAIT_MS", value_name = "MILLISECONDS")]
    pub head_full_wait_ms: Option<u64>,
    /// Size at which the write-ahead log starts a new segment file [default: 67108864]
    #[arg(long, env = "CLEW_WAL_SEGMENT_BYTES", value_name = "BYTES")]
    pub wal_segment_bytes: Option<u64>,
    /// Bytes waiting for the log sync before new requests get UNAVAILABLE / 429 [default: 67108864]
    #[arg(long, env = "CLEW_MAX_INFLIGHT_BYTES", value_name = "BYTES")]
    pub max_inflight_bytes: Option<u64>,
    /// Where blocks are written: a local directory, or `s3://BUCKET/PREFIX` (credentials, region and endpoint from
    /// the usual `AWS_*` variables, e.g. `AWS_ENDPOINT_URL` for MinIO) [default: <data-dir>/blocks]
    #[arg(long, env = "CLEW_STORAGE", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub storage: Option<String>,
    /// Cut the head into a block once it holds this many bytes [default: 268435456]
    #[arg(long, env = "CLEW_BLOCK_CUT_BYTES", value_name = "BYTES")]
    pub block_cut_bytes: Option<u64>,
    /// Cut the head into a block once its oldest span is this old, in seconds [default: 300]
    #[arg(long, env = "CLEW_BLOCK_MAX_AGE_SECS", value_name = "SECONDS")]
    pub block_max_age_secs: Option<u64>,
    /// Compaction merges blocks whose data ends in the same window of this many seconds [default: 3600]
    #[arg(long, env = "CLEW_COMPACTION_WINDOW_SECS", value_name = "SECONDS")]
    pub compaction_window_secs: Option<u64>,
    /// Compaction and retention run this often, in seconds, first one interval after the start [default: 30]
    #[arg(
        long,
        env = "CLEW_COMPACTION_INTERVAL_SECS",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub compaction_interval_secs: Option<u64>,
    /// Blocks whose data ended longer ago than this are deleted, in hours [default: 336]
    #[arg(long, env = "CLEW_RETENTION_HOURS", value_name = "HOURS")]
    pub retention_hours: Option<u64>,
}

/// Resolved settings for `clew serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: IpAddr,
    pub otlp_grpc_port: u16,
    pub otlp_http_port: u16,
    pub zipkin_port: u16,
    pub query_port: u16,
    pub tempo_port: u16,
    pub telemetry_port: u16,
    pub sampling_port: u16,
    pub tail_sampling: Box<TailSamplingConfig>,
    pub remote_sampling: Box<RemoteSamplingConfig>,
    pub span_metrics: Box<SpanMetricsConfig>,
    pub alerts: Box<AlertsConfig>,
    pub max_request_bytes: usize,
    pub max_attributes_per_span: usize,
    pub max_attribute_value_bytes: usize,
    pub head_max_bytes: u64,
    pub head_full_wait_ms: u64,
    pub wal_segment_bytes: u64,
    pub max_inflight_bytes: u64,
    pub storage: Option<Storage>,
    pub block_cut_bytes: u64,
    pub block_max_age_secs: u64,
    pub compaction_window_secs: u64,
    pub compaction_interval_secs: u64,
    pub retention_hours: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./clew-data"),
            listen: IpAddr::from([127, 0, 0, 1]),
            otlp_grpc_port: 4317,
            otlp_http_port: 4318,
            zipkin_port: 9411,
            query_port: 16686,
            tempo_port: 3200,
            telemetry_port: 8888,
            sampling_port: 5778,
            tail_sampling: Box::default(),
            remote_sampling: Box::default(),
            span_metrics: Box::default(),
            alerts: Box::default(),
            max_request_bytes: 64 * 1024 * 1024,
            max_attributes_per_span: 256,
            max_attribute_value_bytes: 64 * 1024,
            head_max_bytes: 512 * 1024 * 1024,
            head_full_wait_ms: 3000,
            wal_segment_bytes: 64 * 1024 * 1024,
            max_inflight_bytes: 64 * 1024 * 1024,
            storage: None,
            block_cut_bytes: 256 * 1024 * 1024,
            block_max_age_secs: 300,
            compaction_window_secs: 3600,
            compaction_interval_secs: 30,
            retention_hours: 336,
        }
    }
}

impl Settings {
    pub fn load(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ServeOptions::default(),
        };
        Self::default().apply(file)?.apply(args.options)
    }

    /// Overrides every setting `options` names.
    fn apply(mut self, options: ServeOptions) -> anyhow::Result<Self> {
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = options.$field { self.$field = v; } )* };
        }
        if let Some(storage) = &options.storage {
            self.storage = Some(Storage::parse(storage).map_err(|e| anyhow::anyhow!("--storage: {e}"))?);
        }
        take!(
            data_dir,
            listen,
            otlp_grpc_port,
            otlp_http_port,
            zipkin_port,
            query_port,
            tempo_port,
            telemetry_port,
            sampling_port,
            tail_sampling,
            remote_sampling,
            span_metrics,
            alerts,
            max_request_bytes,
            max_attributes_per_span,
            max_attribute_value_bytes,
            head_max_bytes,
            head_full_wait_ms,
            wal_segment_bytes,
            max_inflight_bytes,
            block_cut_bytes,
            block_max_age_secs,
            compaction_window_secs,
            compaction_interval_secs,
            retention_hours
        );
        Ok(self)
    }
}

fn read_file(path: &Path) -> anyhow::Result<ServeOptions> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_tables_come_from_the_file() {
        let dir = std::env::temp_dir().join(format!("clew-config-sampling-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clew.toml");
        let text = "sampling_port = 6000\n[tail_sampling]\nenabled = true\ndecision_wait = \"2s\"\n\
                    [[tail_sampling.policies]]\nname = \"errors\"\ntype = \"status_code\"\n\
                    status_code = { status_codes = [\"ERROR\"] }\n\
                    [remote_sampling]\ndefault_strategy = { type = \"probabilistic\", param = 0.25 }\n";
        std::fs::write(&path, text).unwrap();
        let settings = Settings::load(ServeArgs { config: Some(path), options: ServeOptions::default() }).unwrap();
        assert_eq!(settings.sampling_port, 6000);
        assert!(settings.tail_sampling.enabled);
        assert_eq!(settings.tail_sampling.decision_wait, std::time::Duration::from_secs(2));
        assert_eq!(settings.tail_sampling.policies.len(), 1);
        assert!(settings.remote_sampling.default_strategy.is_some());
        let defaults = Settings::default();
        assert!(!defaults.tail_sampling.enabled, "tail sampling is off by default");
        assert_eq!(defaults.sampling_port, 5778);
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("clew-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clew.toml");
        std::fs::write(&path, "data_dir = \"/from/file\"\nzipkin_port = 1234\nlisten = \"0.0.0.0\"\n").unwrap();
        let args =
            ServeArgs { config: Some(path), options: ServeOptions { zipkin_port: Some(5555), ..Default::default() } };
        let settings = Settings::load(args).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("/from/file"));
        assert_eq!(settings.zipkin_port, 5555);
        assert_eq!(settings.listen, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(settings.otlp_grpc_port, 4317);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn storage_is_a_local_dir_or_an_s3_url() {
        let load = |storage: &str| {
            let options = ServeOptions { storage: Some(storage.into()), ..Default::default() };
            Settings::load(ServeArgs { config: None, options })
        };
        assert_eq!(load("/srv/blocks").unwrap().storage, Some(Storage::Local("/srv/blocks".into())));
        let s3 = Storage::S3 { bucket: "traces".into(), prefix: "clew/prod".into() };
        assert_eq!(load("s3://traces/clew/prod").unwrap().storage, Some(s3));
        let err = load("s3://Bad_Bucket/x").unwrap_err().to_string();
        assert!(err.starts_with("--storage: invalid storage"), "{err}");
        let file: ServeOptions = toml::from_str("storage = \"s3://traces\"").unwrap();
        assert_eq!(file.storage.as_deref(), Some("s3://traces"));
    }

    #[test]
    fn span_metrics_table_comes_from_the_file() {
        let text = "[span_metrics]\nenabled = false\nexclude_dimensions = [\"status.code\"]\n\
                    dimensions = [{ name = \"http.method\", default = \"GET\" }]\n\
                    [span_metrics.service_graph]\nwait = \"5s\"\n";
        let file: ServeOptions = toml::from_str(text).unwrap();
        let settings = Settings::default().apply(file).unwrap();
        assert!(!settings.span_metrics.enabled);
        assert_eq!(settings.span_metrics.dimensions[0].default.as_deref(), Some("GET"));
        assert_eq!(settings.span_metrics.service_graph.wait, std::time::Duration::from_secs(5));
        assert!(Settings::default().span_metrics.enabled, "span metrics are on by default");
    }

    #[test]
    fn alerts_table_comes_from_the_file() {
        let text = "[alerts]\nevaluation_interval = \"1s\"\nexternal_url = \"https://clew.example.com\"\n\
                    [[alerts.rules]]\nname = \"slow\"\nservice = \"api\"\ncondition = \"p99 > 500ms\"\nfor = \"5m\"\n\
                    [[alerts.webhooks]]\nurl = \"http://127.0.0.1:9000/hook\"\nformat = \"slack\"\n";
        let file: ServeOptions = toml::from_str(text).unwrap();
        let settings = Settings::default().apply(file).unwrap();
        assert_eq!(settings.alerts.evaluation_interval, std::time::Duration::from_secs(1));
        assert_eq!(settings.alerts.rules[0].for_, std::time::Duration::from_secs(300));
        assert_eq!(settings.alerts.webhooks.len(), 1);
        assert!(Settings::default().alerts.rules.is_empty(), "no rules by default");
        let err = toml::from_str::<ServeOptions>(
            "[[alerts.rules]]\nname = \"x\"\nservice = \"s\"\ncondition = \"p99 > 1\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("needs a unit"), "{err}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let err = toml::from_str::<ServeOptions>("no_such_setting = 1").unwrap_err();
        assert!(err.to_string().contains("no_such_setting"));
    }
}
