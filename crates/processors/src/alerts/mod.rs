//! Alerts on SLOs: rules from the `[alerts]` configuration, evaluated every `evaluation_interval` over a sliding
//! window of the live span metrics (counted before sampling, so the rates are true). A rule whose condition holds
//! for its `for` fires; when it stops holding it resolves. Both are sent to every webhook (Clew's generic JSON
//! or Slack's format) with links to example traces, served by `GET /api/v1/alerts` and exposed on `/metrics`.
//!
//! One module per job: [`config`], [`condition`] (the `p99 > 500ms` grammar), [`window`] (values over the
//! window), [`state`] (inactive → pending → firing), [`notification`] and [`slack`] (what is sent), [`webhook`]
//! (delivery with retries), [`metrics`] and [`api`].

pub mod api;
pub mod condition;
mod config;
mod metrics;
mod notification;
mod slack;
mod state;
#[cfg(test)]
mod tests;
mod webhook;
mod window;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

pub use config::{AlertsConfig, DEFAULT_EXTERNAL_URL, RuleConfig, WebhookConfig, WebhookFormat};
use metrics::AlertMetrics;
use notification::{ExampleTrace, Notification, human_duration, rfc3339, rule_json};
use state::StateMachine;
pub use state::{State, Transition};
use webhook::Webhook;
use window::{Matcher, SeriesSample, Window};

use crate::span_metrics::SpanMetricsHandle;

/// One rule and what its evaluations have found.
struct Rule {
    config: RuleConfig,
    matcher: Matcher,
    window: Window,
    machine: StateMachine,
    last: Option<Evaluation>,
    /// The example traces sent when the rule last fired (sent again with the resolution).
    fired_examples: Vec<ExampleTrace>,
}

struct Evaluation {
    at: SystemTime,
    value: Option<f64>,
    calls: u64,
    errors: u64,
    examples: Vec<ExampleTrace>,
}

pub struct Alerts {
    config: AlertsConfig,
    source: Option<SpanMetricsHandle>,
    rules: Mutex<Vec<Rule>>,
    webhooks: Vec<Arc<Webhook>>,
    metrics: AlertMetrics,
    /// Webhook delivery loops, taken by [`Alerts::spawn`].
    deliveries: Mutex<Vec<BoxFuture<'static, ()>>>,
}

impl Alerts {
    /// Checks the configuration against what the span metrics count. `source` is `None` when span metrics are
    /// off, which only a configuration without rules accepts.
    pub fn new(
        config: AlertsConfig,
        source: Option<SpanMetricsHandle>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, String> {
        config.validate()?;
        if let Some(rule) = config.rules.first() {
            let Some(source) = &source else {
                return Err(format!("rule {:?}: alert rules read the span metrics; enable [span_metrics]", rule.name));
            };
            for rule in &config.rules {
                let mut needed = vec!["service.name"];
                needed.extend(rule.operation.as_ref().map(|_| "span.name"));
                needed.extend(rule.kind.as_ref().map(|_| "span.kind"));
                if rule.condition.metric.is_about_errors() {
                    needed.push("status.code");
                }
                if let Some(missing) = needed.iter().find(|d| !source.has_dimension(d)) {
                    return Err(format!(
                        "rule {:?} needs the span metrics dimension {missing:?}, which exclude_dimensions removes",
                        rule.name
                    ));
                }
            }
        }
        let metrics = AlertMetrics::register(registry);
        let mut webhooks = Vec::new();
        let mut deliveries: Vec<BoxFuture<'static, ()>> = Vec::new();
        for (position, hook) in config.webhooks.iter().enumerate() {
            let (hook, delivery) = Webhook::new(hook.clone(), position, metrics.clone())?;
            webhooks.push(hook);
            deliveries.push(Box::pin(delivery));
        }
        let (start, wall) = (Instant::now(), SystemTime::now());
        let rules = config
            .rules
            .iter()
            .map(|rule| {
                let matcher = Matcher {
                    service: rule.service.clone(),
                    operation: rule.operation.clone(),
                    kind: rule.kind_label(),
                };
                metrics.rule(&rule.name, State::Inactive, None, rule.condition.threshold);
                Rule {
                    config: rule.clone(),
                    matcher,
                    window: Window::new(rule.window, start),
                    machine: StateMachine::new(rule.for_, rule.keep_firing_for, wall),
                    last: None,
                    fired_examples: Vec::new(),
                }
            })
            .collect();
        Ok(Arc::new(Self {
            config,
            source,
            rules: Mutex::new(rules),
            webhooks,
            metrics,
            deliveries: Mutex::new(deliveries),
        }))
    }

    /// Starts the webhook deliveries and, with rules, the evaluation loop.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks: Vec<_> = self.deliveries.lock().drain(..).map(tokio::spawn).collect();
        if !self.config.rules.is_empty() {
            let alerts = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(alerts.config.evaluation_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    alerts.evaluate(Instant::now(), SystemTime::now());
                }
            }));
        }
        tasks
    }

    /// Evaluates every rule once and sends what fired or resolved.
    pub fn evaluate(&self, now: Instant, wall: SystemTime) {
        let Some(source) = &self.source else { return };
        let mut rules = self.rules.lock();
        let mut samples: Vec<Vec<SeriesSample>> = vec![Vec::new(); rules.len()];
        source.for_each_series(|series| {
            for (rule, found) in rules.iter().zip(samples.iter_mut()) {
                if rule.matcher.matches(series) {
                    found.push(SeriesSample::of(series));
                }
            }
        });
        let bounds = source.buckets();
        let mut notifications = Vec::new();
        for (rule, samples) in rules.iter_mut().zip(&samples) {
            let condition = &rule.config.condition;
            let totals = rule.window.advance(now, samples, condition.metric.is_about_errors());
            let value = totals.value(condition.metric, bounds);
            let holds = value.is_some_and(|v| condition.holds(v));
            let transition = rule.machine.step(holds, now, wall);
            let examples: Vec<ExampleTrace> =
                totals.examples.iter().map(|e| ExampleTrace::new(e, &self.config.external_url)).collect();
            self.metrics.rule(&rule.config.name, rule.machine.state, value, condition.threshold);
            if let Some(transition) = transition {
                if transition == Transition::Fired {
                    rule.fired_examples = examples.clone();
                }
                let notification = Notification {
                    rule: rule.config.clone(),
                    transition,
                    value,
                    at: wall,
                    fired_at: rule.machine.fired_at,
                    examples: rule.fired_examples.clone(),
                    alerts_url: format!("{}/alerts", self.config.external_url.trim_end_matches('/')),
                };
                tracing::info!(rule = %rule.config.name, summary = %notification.summary(), "alert {}", notification.status());
                notifications.push(notification);
            }
            rule.last = Some(Evaluation { at: wall, value, calls: totals.calls, errors: totals.errors, examples });
        }
        drop(rules);
        for notification in notifications {
            for hook in &self.webhooks {
                hook.notify(notification.clone());
            }
        }
    }

    /// `GET /api/v1/alerts`: every rule with its state, and the webhooks (without their URLs).
    pub fn overview(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .lock()
            .iter()
            .map(|rule| {
                let metric = rule.config.condition.metric;
                let machine = &rule.machine;
                let mut entry = rule_json(&rule.config);
                let last = rule.last.as_ref();
                let fields = json!({
                    "state": machine.state,
                    "since": rfc3339(machine.since),
                    "value": last.and_then(|l| l.value),
                    "valueText": last.and_then(|l| l.value).map(|v| metric.format(v)),
                    "threshold": rule.config.condition.threshold,
                    "thresholdText": metric.format(rule.config.condition.threshold),
                    "calls": last.map(|l| l.calls),
                    "errors": last.map(|l| l.errors),
                    "lastEvaluation": last.map(|l| rfc3339(l.at)),
                    "firedAt": machine.fired_at.map(rfc3339),
                    "resolvedAt": machine.resolved_at.map(rfc3339),
                    "summary": notification::subject(&rule.config),
                    "exampleTraces": last.map(|l| l.examples.iter().map(ExampleTrace::to_json).collect::<Vec<_>>()),
                });
                if let (Value::Object(entry), Value::Object(fields)) = (&mut entry, fields) {
                    entry.extend(fields);
                }
                entry
            })
            .collect();
        let webhooks: Vec<Value> = self
            .webhooks
            .iter()
            .map(|hook| {
                json!({
                    "name": hook.name,
                    "format": hook.format,
                    "sent": hook.sent.load(std::sync::atomic::Ordering::Relaxed),
                    "failed": hook.failed.load(std::sync::atomic::Ordering::Relaxed),
                    "lastError": *hook.last_error.lock(),
                })
            })
            .collect();
        json!({
            "evaluationInterval": human_duration(self.config.evaluation_interval),
            "externalUrl": self.config.external_url,
            "rules": rules,
            "webhooks": webhooks,
        })
    }
}
