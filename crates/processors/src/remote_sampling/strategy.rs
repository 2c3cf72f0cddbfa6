//! Jaeger's sampling strategy response (the JSON SDKs fetch) and Jaeger's strategies file format.

use std::collections::HashMap;

use serde::{Deserialize, Serialize, Serializer};

/// `SamplingStrategyResponse` as Jaeger renders it: ProtoJSON with enum names, default values emitted and
/// absent messages left out, fields in proto order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplingStrategyResponse {
    pub strategy_type: StrategyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilistic_sampling: Option<ProbabilisticSampling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limiting_sampling: Option<RateLimitingSampling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_sampling: Option<PerOperationSampling>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StrategyType {
    Probabilistic,
    RateLimiting,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbabilisticSampling {
    #[serde(serialize_with = "number")]
    pub sampling_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitingSampling {
    pub max_traces_per_second: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerOperationSampling {
    #[serde(serialize_with = "number")]
    pub default_sampling_probability: f64,
    #[serde(serialize_with = "number")]
    pub default_lower_bound_traces_per_second: f64,
    #[serde(default)]
    pub per_operation_strategies: Vec<OperationStrategy>,
    #[serde(default, serialize_with = "number")]
    pub default_upper_bound_traces_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStrategy {
    pub operation: String,
    pub probabilistic_sampling: ProbabilisticSampling,
}

/// Doubles as Go renders them: integral values without a fraction (`1`, not `1.0`).
fn number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

impl SamplingStrategyResponse {
    pub fn probabilistic(rate: f64) -> Self {
        Self {
            strategy_type: StrategyType::Probabilistic,
            probabilistic_sampling: Some(ProbabilisticSampling { sampling_rate: rate }),
            rate_limiting_sampling: None,
            operation_sampling: None,
        }
    }

    pub fn rate_limiting(max_traces_per_second: i32) -> Self {
        Self {
            strategy_type: StrategyType::RateLimiting,
            probabilistic_sampling: None,
            rate_limiting_sampling: Some(RateLimitingSampling { max_traces_per_second }),
            operation_sampling: None,
        }
    }
}

/// Jaeger's `sampling_strategies.json`, also accepted inline in Clew's TOML.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategiesFile {
    #[serde(default)]
    pub default_strategy: Option<ServiceStrategy>,
    #[serde(default)]
    pub service_strategies: Vec<ServiceStrategy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceStrategy {
    /// Absent in `default_strategy`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    #[serde(rename = "type")]
    pub kind: StrategyKind,
    /// Probability for `probabilistic`, traces per second for `ratelimiting`.
    pub param: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operation_strategies: Vec<OperationStrategyConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationStrategyConfig {
    pub operation: String,
    #[serde(rename = "type")]
    pub kind: StrategyKind,
    pub param: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyKind {
    Probabilistic,
    Ratelimiting,
}

/// Jaeger's default when nothing is configured: probabilistic 0.001.
pub const DEFAULT_SAMPLING_PROBABILITY: f64 = 0.001;

/// Strategies from configuration, resolved per service as Jaeger's file provider does.
#[derive(Debug, Clone)]
pub struct StaticStrategies {
    default: SamplingStrategyResponse,
    services: HashMap<String, SamplingStrategyResponse>,
}

impl Default for StaticStrategies {
    fn default() -> Self {
        Self {
            default: SamplingStrategyResponse::probabilistic(DEFAULT_SAMPLING_PROBABILITY),
            services: HashMap::new(),
        }
    }
}

impl StaticStrategies {
    pub fn from_file(file: &StrategiesFile) -> Result<Self, String> {
        let mut out = Self::default();
        if let Some(default) = &file.default_strategy {
            out.default = service_response(default)?;
        }
        for strategy in &file.service_strategies {
            if strategy.service.is_empty() {
                return Err("every service_strategies entry needs a service".into());
            }
            let mut response = service_response(strategy)?;
            // A service without its own operation rules inherits the default's; with its own, they are merged
            // (the service's win).
            if let Some(default_ops) = &out.default.operation_sampling {
                match &mut response.operation_sampling {
                    None => {
                        let mut ops = default_ops.clone();
                        if let Some(p) = &response.probabilistic_sampling {
                            ops.default_sampling_probability = p.sampling_rate;
                        }
                        response.operation_sampling = Some(ops);
                    }
                    Some(ops) => {
                        for op in &default_ops.per_operation_strategies {
                            if !ops.per_operation_strategies.iter().any(|o| o.operation == op.operation) {
                                ops.per_operation_strategies.push(op.clone());
                            }
                        }
                    }
                }
            }
            out.services.insert(strategy.service.clone(), response);
        }
        Ok(out)
    }

    /// The service's configured strategy, if it has one of its own.
    pub fn for_service(&self, service: &str) -> Option<&SamplingStrategyResponse> {
        self.services.get(service)
    }

    pub fn default_strategy(&self) -> &SamplingStrategyResponse {
        &self.default
    }
}

fn check_probability(p: f64, what: &str) -> Result<f64, String> {
    if (0.0..=1.0).contains(&p) { Ok(p) } else { Err(format!("{what}: probability {p} is not within 0 and 1")) }
}

fn strategy_response(kind: StrategyKind, param: f64, what: &str) -> Result<SamplingStrategyResponse, String> {
    match kind {
        StrategyKind::Probabilistic => Ok(SamplingStrategyResponse::probabilistic(check_probability(param, what)?)),
        StrategyKind::Ratelimiting if (0.0..=i32::MAX as f64).contains(&param) => {
            Ok(SamplingStrategyResponse::rate_limiting(param as i32))
        }
        StrategyKind::Ratelimiting => Err(format!("{what}: {param} traces per second is not a valid rate")),
    }
}

fn service_response(strategy: &ServiceStrategy) -> Result<SamplingStrategyResponse, String> {
    let what = if strategy.service.is_empty() { "default_strategy".to_string() } else { strategy.service.clone() };
    let mut response = strategy_response(strategy.kind, strategy.param, &what)?;
    if strategy.operation_strategies.is_empty() {
        return Ok(response);
    }
    let default_probability =
        response.probabilistic_sampling.as_ref().map_or(DEFAULT_SAMPLING_PROBABILITY, |p| p.sampling_rate);
    let mut ops = PerOperationSampling {
        default_sampling_probability: default_probability,
        default_lower_bound_traces_per_second: 0.0,
        per_operation_strategies: Vec::new(),
        default_upper_bound_traces_per_second: 0.0,
    };
    for op in &strategy.operation_strategies {
        // Jaeger's per-operation strategies are probabilistic only; a rate limit there is an error here.
        if op.kind != StrategyKind::Probabilistic {
            return Err(format!(
                "{what}: operation {:?}: operation strategies can only be probabilistic",
                op.operation
            ));
        }
        let rate = check_probability(op.param, &format!("{what}: operation {:?}", op.operation))?;
        ops.per_operation_strategies.push(OperationStrategy {
            operation: op.operation.clone(),
            probabilistic_sampling: ProbabilisticSampling { sampling_rate: rate },
        });
    }
    response.operation_sampling = Some(ops);
    Ok(response)
}
