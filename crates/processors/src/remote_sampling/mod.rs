//! Head sampling for SDKs: Jaeger's remote sampling endpoint, serving strategies from configuration (Jaeger's
//! strategies file format, in a file or inline) or computed adaptively from observed root spans.
//!
//! ```toml
//! [remote_sampling]
//! strategies_file = "/etc/clew/sampling_strategies.json"   # optional, Jaeger's format
//! reload_interval = "30s"                                   # re-read the file; absent: read once
//! default_strategy = { type = "probabilistic", param = 0.01 }
//! [[remote_sampling.service_strategies]]
//! service = "checkout"
//! type = "ratelimiting"
//! param = 5
//! [remote_sampling.adaptive]
//! enabled = true
//! target_samples_per_second = 1
//! priority_rules = [{ service = "checkout", operation = "POST /pay", probability = 1.0 }]
//! ```
//!
//! A service with a strategy of its own in the configuration gets it; the others get the adaptive strategy when
//! adaptive sampling is on, else the default strategy.

mod adaptive;
mod http;
mod observer;
mod strategy;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

pub use adaptive::{AdaptiveConfig, AdaptiveSampler, PriorityRule};
pub use http::router;
pub use observer::RootObserver;
pub use strategy::{
    DEFAULT_SAMPLING_PROBABILITY, OperationStrategy, OperationStrategyConfig, PerOperationSampling,
    ProbabilisticSampling, RateLimitingSampling, SamplingStrategyResponse, ServiceStrategy, StaticStrategies,
    StrategiesFile, StrategyKind, StrategyType,
};

use crate::sampling::duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteSamplingConfig {
    /// Jaeger's `sampling_strategies.json`; inline strategies below override its entries.
    pub strategies_file: Option<PathBuf>,
    /// Re-read `strategies_file` this often, so edits reach SDKs without a restart.
    #[serde(with = "duration::option")]
    pub reload_interval: Option<Duration>,
    pub default_strategy: Option<ServiceStrategy>,
    pub service_strategies: Vec<ServiceStrategy>,
    pub adaptive: AdaptiveConfig,
}

/// The strategies served to SDKs.
pub struct RemoteSampling {
    config: RemoteSamplingConfig,
    statics: RwLock<StaticStrategies>,
    adaptive: Option<Arc<AdaptiveSampler>>,
}

impl RemoteSampling {
    /// Reads the strategies file (if any) and checks every strategy; errors name the bad entry.
    pub fn new(config: RemoteSamplingConfig) -> Result<Arc<Self>, String> {
        let statics = load(&config)?;
        let adaptive =
            if config.adaptive.enabled { Some(Arc::new(AdaptiveSampler::new(config.adaptive.clone())?)) } else { None };
        Ok(Arc::new(Self { config, statics: RwLock::new(statics), adaptive }))
    }

    pub fn config(&self) -> &RemoteSamplingConfig {
        &self.config
    }

    /// The adaptive sampler, when on: the write path feeds it through [`RootObserver`] (or `observe_root`).
    pub fn adaptive(&self) -> Option<&Arc<AdaptiveSampler>> {
        self.adaptive.as_ref()
    }

    /// The strategy for a service.
    pub fn strategy(&self, service: &str) -> SamplingStrategyResponse {
        let statics = self.statics.read();
        if let Some(own) = statics.for_service(service) {
            return own.clone();
        }
        match &self.adaptive {
            Some(adaptive) => adaptive.strategy(service),
            None => statics.default_strategy().clone(),
        }
    }

    /// Re-reads the configured strategies; on error the previous ones stay in effect.
    pub fn reload(&self) -> Result<(), String> {
        let statics = load(&self.config)?;
        *self.statics.write() = statics;
        Ok(())
    }

    /// Starts the adaptive calculation and the file reload, as configured, on the current tokio runtime.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(adaptive) = &self.adaptive {
            tasks.push(adaptive.spawn());
        }
        if let (Some(_), Some(period)) = (&self.config.strategies_file, self.config.reload_interval) {
            let sampling = Arc::clone(self);
            tasks.push(tokio::spawn(async move {
                let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    interval.tick().await;
                    if let Err(err) = sampling.reload() {
                        tracing::warn!("keeping the previous sampling strategies: {err}");
                    }
                }
            }));
        }
        tasks
    }
}

fn load(config: &RemoteSamplingConfig) -> Result<StaticStrategies, String> {
    let mut file = match &config.strategies_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read sampling strategies file {}: {e}", path.display()))?;
            serde_json::from_str::<StrategiesFile>(&text)
                .map_err(|e| format!("invalid sampling strategies file {}: {e}", path.display()))?
        }
        None => StrategiesFile::default(),
    };
    if config.default_strategy.is_some() {
        file.default_strategy = config.default_strategy.clone();
    }
    for inline in &config.service_strategies {
        file.service_strategies.retain(|s| s.service != inline.service);
        file.service_strategies.push(inline.clone());
    }
    StaticStrategies::from_file(&file)
}

#[cfg(test)]
mod tests;
