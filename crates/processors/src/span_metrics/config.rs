//! `[span_metrics]` settings, named after the OpenTelemetry collector's `spanmetrics` and `servicegraph`
//! connectors.
//!
//! ```toml
//! [span_metrics]
//! enabled = true
//! exclude_dimensions = ["status.code"]
//! dimensions = [{ name = "http.method" }, { name = "deployment.environment", default = "none" }]
//! buckets = [0.005, 0.05, 0.5, 5]
//! max_series = 2000
//! [span_metrics.service_graph]
//! wait = "2s"
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sampling::duration;

/// The dimensions every series has unless excluded, in the collector's names.
pub const DEFAULT_DIMENSIONS: [&str; 4] = ["service.name", "span.name", "span.kind", "status.code"];

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanMetricsConfig {
    /// On by default; off removes the stage from the write path.
    pub enabled: bool,
    /// Default dimensions to leave out (of [`DEFAULT_DIMENSIONS`]).
    pub exclude_dimensions: Vec<String>,
    /// Extra dimensions, read from span attributes, then resource attributes.
    pub dimensions: Vec<DimensionConfig>,
    /// Upper bounds of the duration histogram buckets, in seconds, ascending (`+Inf` is implied).
    pub buckets: Vec<f64>,
    /// Most series per metric; spans of further label sets go to one series labelled `otel_metric_overflow="true"`.
    pub max_series: usize,
    /// Attach the latest (trace id, span id) to each counter and histogram bucket.
    pub exemplars: bool,
    pub service_graph: ServiceGraphConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DimensionConfig {
    pub name: String,
    /// Used when neither the span nor its resource has the attribute; without it the label is left out.
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceGraphConfig {
    pub enabled: bool,
    /// How long one side of a call waits for the other (client and server spans arrive separately).
    #[serde(with = "duration")]
    pub wait: Duration,
    /// Bound on calls waiting for their other side; past it spans are counted as dropped.
    pub max_items: usize,
    /// Most edges; further (client, server) pairs go to one overflow edge.
    pub max_edges: usize,
}

impl Default for SpanMetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            exclude_dimensions: Vec::new(),
            dimensions: Vec::new(),
            // The collector's default milliseconds buckets, in seconds.
            buckets: vec![0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0],
            max_series: 2000,
            exemplars: true,
            service_graph: ServiceGraphConfig::default(),
        }
    }
}

impl Default for ServiceGraphConfig {
    fn default() -> Self {
        Self { enabled: true, wait: Duration::from_secs(2), max_items: 10_000, max_edges: 1000 }
    }
}

impl SpanMetricsConfig {
    /// Checks what serde cannot: bucket order, known exclusions, non-zero limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.buckets.iter().any(|b| !b.is_finite() || *b <= 0.0) || self.buckets.windows(2).any(|w| w[0] >= w[1]) {
            return Err("buckets must be positive, finite and strictly ascending".into());
        }
        if let Some(unknown) = self.exclude_dimensions.iter().find(|d| !DEFAULT_DIMENSIONS.contains(&d.as_str())) {
            return Err(format!("exclude_dimensions: unknown dimension {unknown:?} (known: {DEFAULT_DIMENSIONS:?})"));
        }
        if let Some(empty) = self.dimensions.iter().find(|d| d.name.is_empty()) {
            return Err(format!("dimensions: empty name in {empty:?}"));
        }
        if self.max_series == 0 || self.service_graph.max_edges == 0 {
            return Err("max_series and service_graph.max_edges must be at least 1".into());
        }
        Ok(())
    }
}
