//! Alert rules on `/metrics`: whether each fires, its latest value and threshold, and webhook deliveries.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::state::State;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    pub webhook: String,
    pub outcome: &'static str,
}

#[derive(Clone, Default)]
pub struct AlertMetrics {
    firing: Family<RuleLabel, Gauge>,
    pending: Family<RuleLabel, Gauge>,
    value: Family<RuleLabel, Gauge<f64, AtomicU64>>,
    threshold: Family<RuleLabel, Gauge<f64, AtomicU64>>,
    notifications: Family<DeliveryLabel, Counter>,
}

impl AlertMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register("clew_alert_firing", "Alert rules: 1 while the rule fires, else 0", metrics.firing.clone());
        registry.register(
            "clew_alert_pending",
            "Alert rules: 1 while the condition holds but not yet for the rule's `for`, else 0",
            metrics.pending.clone(),
        );
        registry.register(
            "clew_alert_value",
            "Alert rules: the value at the latest evaluation, in the condition's unit (seconds, ratio, per second); \
             absent while the window has no spans",
            metrics.value.clone(),
        );
        registry.register(
            "clew_alert_threshold",
            "Alert rules: the condition's threshold, in the same unit as clew_alert_value",
            metrics.threshold.clone(),
        );
        registry.register(
            "clew_alert_notifications",
            "Alert notifications per webhook: sent, or failed after every attempt",
            metrics.notifications.clone(),
        );
        metrics
    }

    pub fn rule(&self, rule: &str, state: State, value: Option<f64>, threshold: f64) {
        let label = RuleLabel { rule: rule.to_string() };
        self.firing.get_or_create(&label).set(i64::from(state == State::Firing));
        self.pending.get_or_create(&label).set(i64::from(state == State::Pending));
        self.threshold.get_or_create(&label).set(threshold);
        match value {
            Some(v) => {
                self.value.get_or_create(&label).set(v);
            }
            None => {
                self.value.remove(&label);
            }
        }
    }

    pub fn notification(&self, webhook: &str, outcome: &'static str) {
        self.notifications.get_or_create(&DeliveryLabel { webhook: webhook.to_string(), outcome }).inc();
    }
}
