//! Slack's incoming-webhook message for a notification: a `text` fallback (shown in notifications and by
//! clients without blocks) and Block Kit `blocks`.

use serde_json::{Value, json};

use super::notification::{Notification, human_duration, rfc3339};
use super::state::Transition;

/// Slack's limit on a header block's text.
const HEADER_MAX_CHARS: usize = 150;

pub fn message(n: &Notification) -> Value {
    let rule = &n.rule;
    let (mark, word) = match n.transition {
        Transition::Fired => ("🔴", "Firing"),
        Transition::Resolved => ("✅", "Resolved"),
    };
    let header: String = format!("{mark} {word}: {}", rule.name).chars().take(HEADER_MAX_CHARS).collect();
    let mut facts = format!(
        "*{}* is *{}* over the last {}\nCondition: `{}` for {}",
        escape(&n.subject()),
        escape(&n.value_text()),
        human_duration(rule.window),
        escape(rule.condition.text()),
        human_duration(rule.for_),
    );
    if let Some(description) = &rule.description {
        facts.push_str(&format!("\n{}", escape(description)));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": facts}}),
    ];
    if !n.examples.is_empty() {
        let lines: Vec<String> = n
            .examples
            .iter()
            .map(|e| {
                let outcome = if e.error { ", error" } else { "" };
                let duration = super::condition::format_seconds(e.duration_seconds);
                format!("• <{}|{}> {duration}{outcome}", e.url, &e.trace_id[..16])
            })
            .collect();
        let text = format!("*Example traces*\n{}", lines.join("\n"));
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    let mut context = format!("<{}|Clew alerts>", n.alerts_url);
    if let Some(fired_at) = n.fired_at {
        context.push_str(&format!(" · fired at {}", rfc3339(fired_at)));
    }
    if n.transition == Transition::Resolved {
        context.push_str(&format!(" · resolved at {}", rfc3339(n.at)));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    json!({
        "text": format!("[{}] {}", word.to_uppercase(), escape(&n.summary())),
        "blocks": blocks,
    })
}

/// Slack's three control characters in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::super::condition::Condition;
    use super::super::config::RuleConfig;
    use super::super::notification::ExampleTrace;
    use super::*;

    #[test]
    fn a_firing_message_escapes_text_and_links_example_traces() {
        let rule = RuleConfig {
            name: "checkout-latency".into(),
            service: "checkout".into(),
            operation: Some("POST /pay".into()),
            kind: None,
            condition: Condition::parse("p99 > 500ms").unwrap(),
            window: Duration::from_secs(300),
            for_: Duration::from_secs(300),
            keep_firing_for: Duration::ZERO,
            description: Some("Payments <slow> & failing".into()),
        };
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736".to_string();
        let n = Notification {
            rule,
            transition: Transition::Fired,
            value: Some(0.93),
            at: SystemTime::now(),
            fired_at: Some(SystemTime::now()),
            examples: vec![ExampleTrace {
                url: format!("http://localhost:16686/trace/{trace_id}"),
                trace_id,
                span_id: "00f067aa0ba902b7".into(),
                duration_seconds: 1.2,
                error: true,
            }],
            alerts_url: "http://localhost:16686/alerts".into(),
        };
        let message = message(&n);
        let text = message["text"].as_str().unwrap();
        assert!(text.starts_with("[FIRING] checkout-latency is firing: p99 of checkout"), "{text}");
        assert!(text.contains("930ms") && text.contains("(p99 &gt; 500ms)"), "{text}");
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["text"]["text"], "🔴 Firing: checkout-latency");
        assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("Payments &lt;slow&gt; &amp; failing"));
        let examples = blocks[2]["text"]["text"].as_str().unwrap();
        assert!(examples.contains("<http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736|4bf92f3577b34da6>"));
        assert!(examples.contains("1.2s, error"));
        assert_eq!(blocks.last().unwrap()["type"], "context");
    }
}
