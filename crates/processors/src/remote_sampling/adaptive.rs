//! Adaptive head sampling, after Jaeger's: count the root spans each service and operation sends, and move each
//! operation's probability toward `target_samples_per_second` kept traces.
//!
//! Every `calculation_interval` the counts become a bucket; the rate (QPS of sampled roots) of an operation is
//! a weighted mean over the newest `calculation_buckets` buckets (weights ∝ i⁴, newest heaviest). Then:
//! - within `delta_tolerance` of the target, the probability stays (no flapping);
//! - no roots seen: it doubles, so a quiet operation gets a chance to be seen;
//! - otherwise new = old × target / qps, where an increase is capped at +50% per interval (the dampening that
//!   keeps a burst from swinging it), a decrease applies fully;
//! - clamped to [`min_sampling_probability`, 1].
//!
//! Priority rules pin an operation's probability regardless (always sample `POST /checkout`, say).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::strategy::{
    OperationStrategy, PerOperationSampling, ProbabilisticSampling, SamplingStrategyResponse, StrategyType,
};
use crate::sampling::duration;

/// Increases are capped at this fraction of the old probability per interval.
const INCREASE_CAP: f64 = 0.5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    pub enabled: bool,
    /// Kept traces per second wanted for each operation.
    pub target_samples_per_second: f64,
    pub delta_tolerance: f64,
    #[serde(with = "duration")]
    pub calculation_interval: Duration,
    /// Buckets of counts kept.
    pub aggregation_buckets: usize,
    /// Newest buckets the rate is computed over.
    pub calculation_buckets: usize,
    /// Probability of operations never seen (served as `defaultSamplingProbability`).
    pub initial_sampling_probability: f64,
    pub min_sampling_probability: f64,
    /// Floor every SDK guarantees per operation (`defaultLowerBoundTracesPerSecond`).
    pub min_samples_per_second: f64,
    /// Bound on distinct service/operation pairs tracked; new ones past it get the default strategy.
    pub max_operations: usize,
    pub priority_rules: Vec<PriorityRule>,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            target_samples_per_second: 1.0,
            delta_tolerance: 0.3,
            calculation_interval: Duration::from_secs(60),
            aggregation_buckets: 10,
            calculation_buckets: 1,
            initial_sampling_probability: 0.001,
            min_sampling_probability: 1e-5,
            min_samples_per_second: 1.0 / 60.0,
            max_operations: 10_000,
            priority_rules: Vec::new(),
        }
    }
}

/// Pins the probability of an operation (an endpoint such as `GET /api/orders`), in one service or in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRule {
    /// Absent: every service.
    #[serde(default)]
    pub service: Option<String>,
    pub operation: String,
    #[serde(default = "always")]
    pub probability: f64,
}

fn always() -> f64 {
    1.0
}

type Counts = HashMap<String, HashMap<String, u64>>;

struct Bucket {
    counts: Counts,
    seconds: f64,
}

#[derive(Default)]
struct State {
    current: Counts,
    tracked: usize,
    /// Newest first.
    buckets: VecDeque<Bucket>,
    probabilities: HashMap<String, HashMap<String, f64>>,
}

pub struct AdaptiveSampler {
    config: AdaptiveConfig,
    state: Mutex<State>,
}

impl AdaptiveSampler {
    pub fn new(config: AdaptiveConfig) -> Result<Self, String> {
        let probability = |p: f64, name: &str| {
            if p > 0.0 && p <= 1.0 { Ok(()) } else { Err(format!("adaptive {name} must be within (0, 1], got {p}")) }
        };
        probability(config.initial_sampling_probability, "initial_sampling_probability")?;
        probability(config.min_sampling_probability, "min_sampling_probability")?;
        if config.target_samples_per_second <= 0.0 || !config.target_samples_per_second.is_finite() {
            return Err("adaptive target_samples_per_second must be positive".into());
        }
        if config.calculation_interval.is_zero() || config.aggregation_buckets == 0 || config.calculation_buckets == 0 {
            return Err(
                "adaptive calculation_interval, aggregation_buckets and calculation_buckets must be positive".into()
            );
        }
        for rule in &config.priority_rules {
            if !(0.0..=1.0).contains(&rule.probability) {
                return Err(format!("priority rule for {:?}: probability must be within 0 and 1", rule.operation));
            }
        }
        Ok(Self { config, state: Mutex::new(State::default()) })
    }

    pub fn config(&self) -> &AdaptiveConfig {
        &self.config
    }

    /// Counts one root span (a trace the SDK sampled). Cheap: a lock and two lookups, allocating only the
    /// first time a service/operation pair is seen.
    pub fn observe_root(&self, service: &str, operation: &str) {
        let mut state = self.state.lock();
        if let Some(count) = state.current.get_mut(service).and_then(|ops| ops.get_mut(operation)) {
            *count += 1;
            return;
        }
        if state.tracked >= self.config.max_operations {
            return;
        }
        state.tracked += 1;
        *state.current.entry(service.to_string()).or_default().entry(operation.to_string()).or_default() += 1;
    }

    /// Closes the current interval (of length `elapsed`) into a bucket and recomputes every probability.
    pub fn calculate(&self, elapsed: Duration) {
        let mut state = self.state.lock();
        let state = &mut *state;
        let counts = std::mem::take(&mut state.current);
        // Pairs stay tracked while any kept bucket mentions them; recount so the bound follows the buckets.
        state.buckets.push_front(Bucket { counts, seconds: elapsed.as_secs_f64().max(1e-3) });
        state.buckets.truncate(self.config.aggregation_buckets);
        let mut next: HashMap<String, HashMap<String, f64>> = HashMap::new();
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for bucket in &state.buckets {
            for (service, ops) in &bucket.counts {
                pairs.extend(ops.keys().map(|op| (service.as_str(), op.as_str())));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        for (service, operation) in pairs {
            let qps = self.weighted_qps(&state.buckets, service, operation);
            let old = state
                .probabilities
                .get(service)
                .and_then(|ops| ops.get(operation))
                .copied()
                .unwrap_or(self.config.initial_sampling_probability);
            next.entry(service.to_string()).or_default().insert(operation.to_string(), self.adjust(old, qps));
        }
        state.tracked = next.values().map(HashMap::len).sum();
        state.probabilities = next;
    }

    /// Rates of the newest `calculation_buckets` buckets that saw the operation, weighted i⁴ (newest heaviest).
    fn weighted_qps(&self, buckets: &VecDeque<Bucket>, service: &str, operation: &str) -> f64 {
        let rates: Vec<f64> = buckets
            .iter()
            .filter_map(|b| b.counts.get(service)?.get(operation).map(|c| *c as f64 / b.seconds))
            .take(self.config.calculation_buckets)
            .collect();
        let n = rates.len();
        let weights: Vec<f64> = (0..n).map(|i| ((n - i) as f64).powi(4)).collect();
        let total: f64 = weights.iter().sum();
        if total == 0.0 {
            return 0.0;
        }
        rates.iter().zip(&weights).map(|(r, w)| r * w).sum::<f64>() / total
    }

    fn adjust(&self, old: f64, qps: f64) -> f64 {
        let target = self.config.target_samples_per_second;
        if (qps - target).abs() / target < self.config.delta_tolerance {
            return old;
        }
        let new = if qps == 0.0 {
            old * 2.0
        } else {
            let proposed = old * target / qps;
            if proposed > old { proposed.min(old * (1.0 + INCREASE_CAP)) } else { proposed }
        };
        new.clamp(self.config.min_sampling_probability, 1.0)
    }

    /// The probability currently served for an operation (before priority rules).
    pub fn probability(&self, service: &str, operation: &str) -> Option<f64> {
        self.state.lock().probabilities.get(service)?.get(operation).copied()
    }

    /// The strategy for a service: per-operation probabilities, priority rules applied, Jaeger's defaults.
    pub fn strategy(&self, service: &str) -> SamplingStrategyResponse {
        let mut operations: Vec<(String, f64)> = self
            .state
            .lock()
            .probabilities
            .get(service)
            .map(|ops| ops.iter().map(|(op, p)| (op.clone(), *p)).collect())
            .unwrap_or_default();
        for rule in &self.config.priority_rules {
            if rule.service.as_deref().is_some_and(|s| s != service) {
                continue;
            }
            match operations.iter_mut().find(|(op, _)| *op == rule.operation) {
                Some((_, p)) => *p = rule.probability,
                None => operations.push((rule.operation.clone(), rule.probability)),
            }
        }
        operations.sort_by(|a, b| a.0.cmp(&b.0));
        SamplingStrategyResponse {
            strategy_type: StrategyType::Probabilistic,
            probabilistic_sampling: None,
            rate_limiting_sampling: None,
            operation_sampling: Some(PerOperationSampling {
                default_sampling_probability: self.config.initial_sampling_probability,
                default_lower_bound_traces_per_second: self.config.min_samples_per_second,
                per_operation_strategies: operations
                    .into_iter()
                    .map(|(operation, rate)| OperationStrategy {
                        operation,
                        probabilistic_sampling: ProbabilisticSampling { sampling_rate: rate },
                    })
                    .collect(),
                default_upper_bound_traces_per_second: 0.0,
            }),
        }
    }

    /// Recalculates every `calculation_interval` on the current tokio runtime.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sampler = Arc::clone(self);
        tokio::spawn(async move {
            let period = sampler.config.calculation_interval;
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = tokio::time::Instant::now();
            loop {
                let now = interval.tick().await;
                sampler.calculate(now - last);
                last = now;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(config: AdaptiveConfig) -> AdaptiveSampler {
        AdaptiveSampler::new(AdaptiveConfig { enabled: true, ..config }).unwrap()
    }

    /// Simulates SDKs obeying the served probabilities: each interval, an operation with `rate` requests per
    /// second sends `rate × p × interval` sampled roots (rounded: deterministic).
    fn simulate(sampler: &AdaptiveSampler, traffic: &[(&str, f64)], intervals: usize) {
        let seconds = sampler.config().calculation_interval.as_secs_f64();
        for _ in 0..intervals {
            for (op, rate) in traffic {
                let p = sampler.probability("svc", op).unwrap_or(sampler.config().initial_sampling_probability);
                let roots = (rate * p * seconds).round() as u64;
                for _ in 0..roots {
                    sampler.observe_root("svc", op);
                }
                if roots == 0 {
                    // Jaeger's lower-bound sampler still reports the operation; register it with no count.
                    sampler.state.lock().current.entry("svc".into()).or_default().entry(op.to_string()).or_default();
                }
            }
            sampler.calculate(sampler.config().calculation_interval);
        }
    }

    #[test]
    fn converges_to_the_target_for_very_different_traffic() {
        let sampler = sampler(AdaptiveConfig::default());
        let traffic = [("rare", 0.5), ("low", 5.0), ("mid", 300.0), ("high", 20_000.0), ("huge", 90_000.0)];
        simulate(&sampler, &traffic, 60);
        for (op, rate) in traffic {
            let p = sampler.probability("svc", op).unwrap();
            let kept = rate * p;
            if rate < 1.0 {
                assert_eq!(p, 1.0, "{op}: an operation below the target is sampled fully");
            } else {
                assert!((kept - 1.0).abs() < 0.3 + 1e-9, "{op}: {rate}/s × {p} = {kept} kept per second");
            }
        }
    }

    #[test]
    fn increases_are_dampened_and_decreases_apply_fully() {
        let s = sampler(AdaptiveConfig::default());
        // Far above target: the full cut. Far below: at most +50%. None seen: doubled.
        assert!((s.adjust(0.1, 100.0) - 0.001).abs() < 1e-12);
        assert!((s.adjust(0.1, 0.01) - 0.15).abs() < 1e-12);
        assert!((s.adjust(0.1, 0.0) - 0.2).abs() < 1e-12);
        // Within tolerance: unchanged; bounds hold.
        assert_eq!(s.adjust(0.1, 1.2), 0.1);
        assert_eq!(s.adjust(0.9, 0.0), 1.0);
        assert_eq!(s.adjust(1e-5, 1e9), 1e-5);
    }

    #[test]
    fn weighted_rate_favours_recent_buckets() {
        let s = sampler(AdaptiveConfig { calculation_buckets: 2, ..AdaptiveConfig::default() });
        for _ in 0..60 {
            s.observe_root("svc", "op");
        }
        s.calculate(Duration::from_secs(60)); // 1/s
        for _ in 0..120 {
            s.observe_root("svc", "op");
        }
        s.calculate(Duration::from_secs(60)); // 2/s
        let state = s.state.lock();
        let qps = s.weighted_qps(&state.buckets, "svc", "op");
        // (2 × 16 + 1 × 1) / 17
        assert!((qps - 33.0 / 17.0).abs() < 1e-12, "{qps}");
    }

    #[test]
    fn priority_rules_override_and_default_fields_follow_jaeger() {
        let config = AdaptiveConfig {
            priority_rules: vec![
                PriorityRule { service: Some("shop".into()), operation: "POST /checkout".into(), probability: 1.0 },
                PriorityRule { service: None, operation: "GET /health".into(), probability: 0.0 },
            ],
            ..AdaptiveConfig::default()
        };
        let s = sampler(config);
        for _ in 0..3000 {
            s.observe_root("shop", "POST /checkout");
            s.observe_root("shop", "GET /items");
        }
        s.calculate(Duration::from_secs(60));
        let json = serde_json::to_value(s.strategy("shop")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "strategyType": "PROBABILISTIC",
                "operationSampling": {
                    "defaultSamplingProbability": 0.001,
                    "defaultLowerBoundTracesPerSecond": 1.0 / 60.0,
                    "perOperationStrategies": [
                        {"operation": "GET /health", "probabilisticSampling": {"samplingRate": 0}},
                        {"operation": "GET /items", "probabilisticSampling": {"samplingRate": 0.001 / 50.0}},
                        {"operation": "POST /checkout", "probabilisticSampling": {"samplingRate": 1}},
                    ],
                    "defaultUpperBoundTracesPerSecond": 0
                }
            })
        );
        // Another service gets only the global rule.
        let other = s.strategy("cart").operation_sampling.unwrap().per_operation_strategies;
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].operation, "GET /health");
    }

    #[test]
    fn tracked_operations_are_bounded() {
        let s = sampler(AdaptiveConfig { max_operations: 3, ..AdaptiveConfig::default() });
        for i in 0..100 {
            s.observe_root("svc", &format!("op-{i}"));
        }
        s.calculate(Duration::from_secs(60));
        assert_eq!(s.strategy("svc").operation_sampling.unwrap().per_operation_strategies.len(), 3);
    }

    #[test]
    fn rejects_nonsense_settings() {
        assert!(
            AdaptiveSampler::new(AdaptiveConfig { target_samples_per_second: 0.0, ..AdaptiveConfig::default() })
                .is_err()
        );
        assert!(
            AdaptiveSampler::new(AdaptiveConfig { min_sampling_probability: 2.0, ..AdaptiveConfig::default() })
                .is_err()
        );
    }
}
