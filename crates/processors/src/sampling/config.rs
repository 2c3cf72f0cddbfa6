//! Tail sampling settings, in the OpenTelemetry collector's `tail_sampling` names so a collector configuration
//! translates line by line (YAML → TOML).
//!
//! ```toml
//! [tail_sampling]
//! enabled = true
//! decision_wait = "10s"
//! num_traces = 50000
//! [[tail_sampling.policies]]
//! name = "errors"
//! type = "status_code"
//! status_code = { status_codes = ["ERROR"] }
//! [[tail_sampling.policies]]
//! name = "ten-percent"
//! type = "probabilistic"
//! probabilistic = { sampling_percentage = 10 }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TailSamplingConfig {
    /// Off by default: every trace is kept.
    #[serde(default)]
    pub enabled: bool,
    /// Time from a trace's first received span until its decision.
    #[serde(default = "default_decision_wait", with = "duration")]
    pub decision_wait: Duration,
    /// Bound on traces waiting for a decision; past it the oldest is evicted (see `on_eviction`).
    #[serde(default = "default_num_traces")]
    pub num_traces: usize,
    /// Sizing hint for the buffer's initial capacity.
    #[serde(default)]
    pub expected_new_traces_per_sec: u64,
    #[serde(default)]
    pub decision_cache: DecisionCacheConfig,
    /// Stop evaluating at the first policy that samples.
    #[serde(default)]
    pub sample_on_first_match: bool,
    /// Decide early once the root span has arrived and the trace got no new span for this long; `"0s"` decides
    /// on the root's arrival, a value of at least `decision_wait` always waits the full window (the collector's
    /// behaviour). Absent: 2 s.
    #[serde(default = "default_root_settle_time", with = "duration::option")]
    pub root_settle_time: Option<Duration>,
    /// What happens to the oldest waiting trace when `num_traces` is reached.
    #[serde(default)]
    pub on_eviction: EvictionMode,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
}

impl Default for TailSamplingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            decision_wait: default_decision_wait(),
            num_traces: default_num_traces(),
            expected_new_traces_per_sec: 0,
            decision_cache: DecisionCacheConfig::default(),
            sample_on_first_match: false,
            root_settle_time: default_root_settle_time(),
            on_eviction: EvictionMode::default(),
            policies: Vec::new(),
        }
    }
}

fn default_decision_wait() -> Duration {
    Duration::from_secs(30)
}
fn default_num_traces() -> usize {
    50_000
}
fn default_root_settle_time() -> Option<Duration> {
    Some(Duration::from_secs(2))
}

/// Sizes of the caches that remember decisions so late spans follow them. 0 turns a cache off (a late span then
/// starts a new decision window, as in the collector). Make them larger than `num_traces`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DecisionCacheConfig {
    #[serde(default = "default_cache_size")]
    pub sampled_cache_size: usize,
    #[serde(default = "default_cache_size")]
    pub non_sampled_cache_size: usize,
}

impl Default for DecisionCacheConfig {
    fn default() -> Self {
        Self { sampled_cache_size: default_cache_size(), non_sampled_cache_size: default_cache_size() }
    }
}

fn default_cache_size() -> usize {
    100_000
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvictionMode {
    /// Decide the evicted trace on what has arrived so far (its spans are already stored; errors stay kept).
    #[default]
    Decide,
    /// Drop it undecided, as the collector does when its buffer overflows.
    Drop,
}

/// One policy: `{name, type, <type> = {…}}`, exactly the collector's shape.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PolicyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_attribute: Option<NumericAttributeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilistic: Option<ProbabilisticConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<StatusCodeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_attribute: Option<StringAttributeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boolean_attribute: Option<BooleanAttributeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiting: Option<RateLimitingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_limiting: Option<BytesLimitingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_count: Option<SpanCountConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_state: Option<TraceStateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<AndConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<NotConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<DropConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite: Option<CompositeConfig>,
}

impl PolicyConfig {
    /// A policy with only its name and type; set the matching block with struct update syntax.
    pub fn new(name: impl Into<String>, kind: PolicyType) -> Self {
        Self {
            name: name.into(),
            kind,
            latency: None,
            numeric_attribute: None,
            probabilistic: None,
            status_code: None,
            string_attribute: None,
            boolean_attribute: None,
            rate_limiting: None,
            bytes_limiting: None,
            span_count: None,
            trace_state: None,
            and: None,
            not: None,
            drop: None,
            composite: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    AlwaysSample,
    Latency,
    NumericAttribute,
    Probabilistic,
    StatusCode,
    StringAttribute,
    BooleanAttribute,
    RateLimiting,
    BytesLimiting,
    SpanCount,
    TraceState,
    TraceFlags,
    And,
    Not,
    Drop,
    Composite,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencyConfig {
    pub threshold_ms: i64,
    /// 0 means no upper bound.
    #[serde(default)]
    pub upper_threshold_ms: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NumericAttributeConfig {
    pub key: String,
    #[serde(default)]
    pub min_value: Option<i64>,
    #[serde(default)]
    pub max_value: Option<i64>,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbabilisticConfig {
    /// Salt of the trace id hash; traces agree with collectors that use the same salt.
    #[serde(default)]
    pub hash_salt: String,
    pub sampling_percentage: f64,
    #[serde(default)]
    pub mode: ProbabilisticMode,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProbabilisticMode {
    /// The collector's FNV-1a hash of salt and trace id.
    #[default]
    Hash,
    /// OpenTelemetry consistent probability sampling: randomness from `ot=rv` or the trace id, thresholds
    /// from `ot=th` respected (a downstream sampler may only raise them).
    Consistent,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatusCodeConfig {
    /// `OK`, `ERROR` or `UNSET`.
    pub status_codes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StringAttributeConfig {
    pub key: String,
    pub values: Vec<String>,
    #[serde(default)]
    pub enabled_regex_matching: bool,
    /// Accepted for compatibility; regexes are compiled once and matched without a cache.
    #[serde(default)]
    pub cache_max_size: usize,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BooleanAttributeConfig {
    pub key: String,
    pub value: bool,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitingConfig {
    pub spans_per_second: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BytesLimitingConfig {
    pub bytes_per_second: u64,
    /// Bucket size; 0 means twice `bytes_per_second`.
    #[serde(default)]
    pub burst_capacity: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SpanCountConfig {
    pub min_spans: u64,
    /// 0 means no upper bound.
    #[serde(default)]
    pub max_spans: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TraceStateConfig {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AndConfig {
    pub and_sub_policy: Vec<PolicyConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotConfig {
    pub not_sub_policy: Box<PolicyConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DropConfig {
    pub drop_sub_policy: Vec<PolicyConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CompositeConfig {
    pub max_total_spans_per_second: u64,
    /// Names of the sub-policies in evaluation order.
    pub policy_order: Vec<String>,
    pub composite_sub_policy: Vec<PolicyConfig>,
    #[serde(default)]
    pub rate_allocation: Vec<RateAllocation>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateAllocation {
    pub policy: String,
    /// Share of `max_total_spans_per_second`; 0 means an equal share (total / number of sub-policies).
    pub percent: u64,
}
