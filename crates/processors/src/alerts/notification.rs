//! What a firing or resolving rule tells people, and Clew's generic webhook document for it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::config::RuleConfig;
use super::state::Transition;
use super::window::Example;

/// A span to look at, with the UI's link to its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleTrace {
    pub trace_id: String,
    pub span_id: String,
    pub duration_seconds: f64,
    pub error: bool,
    pub url: String,
}

impl ExampleTrace {
    pub fn new(example: &Example, external_url: &str) -> Self {
        let trace_id = hex(&example.trace_id);
        Self {
            url: format!("{}/trace/{trace_id}", external_url.trim_end_matches('/')),
            trace_id,
            span_id: hex(&example.span_id),
            duration_seconds: example.seconds,
            error: example.failing,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "durationSeconds": self.duration_seconds,
            "error": self.error,
            "url": self.url,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub rule: RuleConfig,
    pub transition: Transition,
    /// The value at this evaluation; `None` when the window had no spans to compute it from.
    pub value: Option<f64>,
    pub at: SystemTime,
    pub fired_at: Option<SystemTime>,
    /// When firing, spans of the window; when resolved, the ones sent when the rule fired.
    pub examples: Vec<ExampleTrace>,
    /// The UI's alerts page.
    pub alerts_url: String,
}

impl Notification {
    pub fn status(&self) -> &'static str {
        match self.transition {
            Transition::Fired => "firing",
            Transition::Resolved => "resolved",
        }
    }

    pub fn value_text(&self) -> String {
        match self.value {
            Some(v) => self.rule.condition.metric.format(v),
            None => "no data".into(),
        }
    }

    /// `p99 of checkout "POST /pay" (server spans)`.
    pub fn subject(&self) -> String {
        subject(&self.rule)
    }

    /// One line: `checkout-latency is firing: p99 of checkout "POST /pay" is 950ms over the last 5m (p99 > 500ms)`.
    pub fn summary(&self) -> String {
        let rule = &self.rule;
        format!(
            "{} is {}: {} is {} over the last {} ({})",
            rule.name,
            self.status(),
            self.subject(),
            self.value_text(),
            human_duration(rule.window),
            rule.condition
        )
    }

    /// Clew's generic webhook document (docs/alerts.md).
    pub fn generic_json(&self) -> Value {
        let rule = &self.rule;
        let metric = rule.condition.metric;
        json!({
            "version": "1",
            "status": self.status(),
            "summary": self.summary(),
            "rule": rule_json(rule),
            "value": self.value,
            "valueText": self.value_text(),
            "threshold": rule.condition.threshold,
            "thresholdText": metric.format(rule.condition.threshold),
            "at": rfc3339(self.at),
            "firedAt": self.fired_at.map(rfc3339),
            "resolvedAt": (self.transition == Transition::Resolved).then(|| rfc3339(self.at)),
            "exampleTraces": self.examples.iter().map(ExampleTrace::to_json).collect::<Vec<_>>(),
            "alertsUrl": self.alerts_url,
        })
    }
}

pub fn subject(rule: &RuleConfig) -> String {
    let metric = match rule.condition.metric {
        super::condition::Metric::Quantile(_) | super::condition::Metric::Avg => {
            rule.condition.text().split_whitespace().next().unwrap_or("value").to_string()
        }
        super::condition::Metric::ErrorRatio => "error ratio".into(),
        super::condition::Metric::Rate => "rate".into(),
        super::condition::Metric::ErrorRate => "error rate".into(),
    };
    let mut text = format!("{metric} of {}", rule.service);
    if let Some(operation) = &rule.operation {
        text.push_str(&format!(" {operation:?}"));
    }
    if let Some(kind) = &rule.kind {
        text.push_str(&format!(" ({} spans)", kind.to_ascii_lowercase()));
    }
    text
}

/// The rule as configured, for webhooks and the API.
pub fn rule_json(rule: &RuleConfig) -> Value {
    json!({
        "name": rule.name,
        "service": rule.service,
        "operation": rule.operation,
        "kind": rule.kind,
        "condition": rule.condition.text(),
        "window": human_duration(rule.window),
        "for": human_duration(rule.for_),
        "keepFiringFor": human_duration(rule.keep_firing_for),
        "description": rule.description,
    })
}

/// `5m`, `90s`, `1h`, `1500ms`.
pub fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        0 => "0s".into(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// UTC, to the millisecond: `2026-11-22T07:30:00.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, rest) = ((since.as_secs() / 86_400) as i64, since.as_secs() % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_durations_read_well() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // a leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(90)), "90s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2h");
    }
}
