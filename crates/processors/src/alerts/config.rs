//! `[alerts]` settings: rules over the live span metrics, and where notifications go.
//!
//! ```toml
//! [alerts]
//! evaluation_interval = "15s"
//! external_url = "https://clew.example.com"
//!
//! [[alerts.rules]]
//! name = "checkout-latency"
//! service = "checkout"
//! operation = "POST /pay"         # optional: every span name of the service without it
//! kind = "server"                 # optional: span kind (server, client, producer, consumer, internal)
//! condition = "p99 > 500ms"       # see `condition.rs`
//! window = "5m"                   # the sliding window the value is computed over
//! for = "5m"                      # how long the condition must hold before the rule fires
//!
//! [[alerts.webhooks]]
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! format = "slack"                # or "generic" (the default)
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::condition::Condition;
use crate::sampling::duration;

/// Where the UI answers when no `external_url` is set (the query port's default).
pub const DEFAULT_EXTERNAL_URL: &str = "http://localhost:16686";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// How often every rule is evaluated.
    #[serde(with = "duration")]
    pub evaluation_interval: Duration,
    /// The web UI's address as people reach it; links in notifications start with it.
    pub external_url: String,
    pub rules: Vec<RuleConfig>,
    pub webhooks: Vec<WebhookConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique; names the rule in the API, the UI, the metrics and the notifications.
    pub name: String,
    /// `service.name` of the spans the rule watches.
    pub service: String,
    /// Span name (operation); without it, every span of the service.
    #[serde(default)]
    pub operation: Option<String>,
    /// Span kind: `server`, `client`, `producer`, `consumer`, `internal` or `unspecified`; without it, any.
    #[serde(default)]
    pub kind: Option<String>,
    /// `<metric> <op> <threshold>`, e.g. `p99 > 500ms`, `error_ratio > 5%`, `rate < 1/s`.
    pub condition: Condition,
    /// The sliding window the value is computed over.
    #[serde(with = "duration", default = "default_window")]
    pub window: Duration,
    /// How long the condition must hold (at every evaluation) before the rule fires; 0 fires at once.
    #[serde(rename = "for", with = "duration", default)]
    pub for_: Duration,
    /// A firing rule whose condition stops holding keeps firing this long (dampens flapping); 0 resolves at once.
    #[serde(with = "duration", default)]
    pub keep_firing_for: Duration,
    /// Free text sent along with the notifications (what is wrong, what to do).
    #[serde(default)]
    pub description: Option<String>,
}

fn default_window() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Clew's own JSON document (see docs/alerts.md).
    #[default]
    Generic,
    /// Slack's incoming-webhook message: `text` plus Block Kit `blocks`.
    Slack,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names the webhook in metrics and the API (its URL may hold a secret, so it is never shown); default
    /// `<format>-<position>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Skipped when serialised: Slack's URLs are secrets.
    #[serde(skip_serializing)]
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Time allowed for one attempt (connect, send, answer).
    #[serde(with = "duration", default = "default_timeout")]
    pub timeout: Duration,
    /// Attempts per notification; a failed attempt (no answer, 429 or 5xx) is retried with backoff.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_attempts() -> u32 {
    4
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            evaluation_interval: Duration::from_secs(15),
            external_url: DEFAULT_EXTERNAL_URL.into(),
            rules: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

/// Span kinds as rules name them, and as span metrics label them.
pub const KINDS: [(&str, &str); 6] = [
    ("server", "SPAN_KIND_SERVER"),
    ("client", "SPAN_KIND_CLIENT"),
    ("producer", "SPAN_KIND_PRODUCER"),
    ("consumer", "SPAN_KIND_CONSUMER"),
    ("internal", "SPAN_KIND_INTERNAL"),
    ("unspecified", "SPAN_KIND_UNSPECIFIED"),
];

impl RuleConfig {
    /// The span-metrics label value of `kind` (`server` or `SPAN_KIND_SERVER` alike).
    pub fn kind_label(&self) -> Option<&'static str> {
        let kind = self.kind.as_deref()?;
        KINDS.iter().find(|(short, label)| kind.eq_ignore_ascii_case(short) || kind == *label).map(|(_, l)| *l)
    }
}

impl WebhookConfig {
    pub fn display_name(&self, position: usize) -> String {
        self.name.clone().unwrap_or_else(|| {
            let format = if self.format == WebhookFormat::Slack { "slack" } else { "generic" };
            format!("{format}-{position}")
        })
    }
}

impl AlertsConfig {
    /// Checks what serde cannot: unique names, known kinds, usable durations and URLs.
    pub fn validate(&self) -> Result<(), String> {
        if self.evaluation_interval < Duration::from_millis(100) {
            return Err("evaluation_interval must be at least 100ms".into());
        }
        if !(self.external_url.starts_with("http://") || self.external_url.starts_with("https://")) {
            return Err(format!("external_url {:?} must start with http:// or https://", self.external_url));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("rules[{i}] ({:?})", rule.name);
            if rule.name.trim().is_empty() {
                return Err(format!("rules[{i}]: name is empty"));
            }
            if self.rules[..i].iter().any(|r| r.name == rule.name) {
                return Err(format!("{at}: the name is used by another rule"));
            }
            if rule.service.is_empty() {
                return Err(format!("{at}: service is empty"));
            }
            if rule.kind.is_some() && rule.kind_label().is_none() {
                let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
                return Err(format!("{at}: unknown kind {:?} (known: {known:?})", rule.kind.as_deref().unwrap_or("")));
            }
            if rule.window < self.evaluation_interval {
                return Err(format!("{at}: window must be at least the evaluation_interval"));
            }
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                return Err(format!("webhooks[{i}]: url must start with http:// or https://"));
            }
            if hook.max_attempts == 0 || hook.timeout.is_zero() {
                return Err(format!("webhooks[{i}]: max_attempts and timeout must be above 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_table_parses_with_defaults() {
        let text = r#"
            evaluation_interval = "1s"
            [[rules]]
            name = "slow"
            service = "checkout"
            kind = "server"
            condition = "p99 > 500ms"
            for = "5m"
            [[webhooks]]
            url = "http://127.0.0.1:9/hook"
            format = "slack"
        "#;
        let config: AlertsConfig = toml::from_str(text).unwrap();
        config.validate().unwrap();
        let rule = &config.rules[0];
        assert_eq!(rule.for_, Duration::from_secs(300));
        assert_eq!(rule.window, Duration::from_secs(300));
        assert_eq!(rule.kind_label(), Some("SPAN_KIND_SERVER"));
        assert_eq!(config.external_url, DEFAULT_EXTERNAL_URL);
        assert_eq!(config.webhooks[0].display_name(0), "slack-0");
        assert_eq!(config.webhooks[0].max_attempts, 4);
    }

    #[test]
    fn bad_rules_are_explained() {
        let parse = |text: &str| toml::from_str::<AlertsConfig>(text).map_err(|e| e.to_string());
        let err = parse("[[rules]]\nname = \"x\"\nservice = \"s\"\ncondition = \"p99 >> 1s\"\n").unwrap_err();
        assert!(err.contains("operator"), "{err}");
        let twice = "[[rules]]\nname = \"x\"\nservice = \"s\"\ncondition = \"rate < 1\"\n".repeat(2);
        assert!(parse(&twice).unwrap().validate().unwrap_err().contains("used by another rule"));
        let kind = "[[rules]]\nname = \"x\"\nservice = \"s\"\nkind = \"serv\"\ncondition = \"rate < 1\"\n";
        assert!(parse(kind).unwrap().validate().unwrap_err().contains("unknown kind"));
        let hook = "[[webhooks]]\nurl = \"ftp://x\"\n";
        assert!(parse(hook).unwrap().validate().unwrap_err().contains("http://"));
    }
}
