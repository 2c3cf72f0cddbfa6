//! Delivers notifications to one webhook, in order: each POST gets `timeout`; a failure (no answer, 408, 429 or
//! 5xx) is retried with exponential backoff up to `max_attempts`; any other 4xx is final (the request is wrong
//! and would stay wrong).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;

use super::config::{WebhookConfig, WebhookFormat};
use super::metrics::AlertMetrics;
use super::notification::Notification;
use super::slack;

/// Notifications waiting for one webhook; past it new ones are dropped (and counted), so a dead receiver
/// cannot grow memory.
const QUEUE: usize = 256;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Webhook {
    pub name: String,
    pub format: WebhookFormat,
    config: WebhookConfig,
    client: reqwest::Client,
    queue: mpsc::Sender<Notification>,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    metrics: AlertMetrics,
}

impl Webhook {
    /// The webhook and its delivery loop (to spawn).
    pub fn new(
        config: WebhookConfig,
        position: usize,
        metrics: AlertMetrics,
    ) -> Result<(Arc<Self>, impl Future<Output = ()>), String> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .user_agent(concat!("clew/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("webhooks[{position}]: {e}"))?;
        let (queue, mut queued) = mpsc::channel(QUEUE);
        let hook = Arc::new(Self {
            name: config.display_name(position),
            format: config.format,
            config,
            client,
            queue,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
            metrics,
        });
        let worker = hook.clone();
        let deliveries = async move {
            while let Some(notification) = queued.recv().await {
                worker.deliver(&notification).await;
            }
        };
        Ok((hook, deliveries))
    }

    /// Queues a notification without waiting.
    pub fn notify(&self, notification: Notification) {
        if self.queue.try_send(notification).is_err() {
            self.record(Err(format!("queue full ({QUEUE} notifications waiting): dropped")));
        }
    }

    pub fn body(&self, notification: &Notification) -> Value {
        match self.format {
            WebhookFormat::Generic => notification.generic_json(),
            WebhookFormat::Slack => slack::message(notification),
        }
    }

    async fn deliver(&self, notification: &Notification) {
        let body = self.body(notification);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let outcome = loop {
            let (error, retry) = match self.post(&body).await {
                Ok(()) => break Ok(()),
                Err(failure) => failure,
            };
            if !retry || attempt >= self.config.max_attempts {
                let attempts = if attempt == 1 { "1 attempt".to_string() } else { format!("{attempt} attempts") };
                break Err(format!("{error} (after {attempts})"));
            }
            tracing::debug!(webhook = %self.name, attempt, %error, "webhook failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        };
        if let Err(error) = &outcome {
            tracing::warn!(webhook = %self.name, rule = %notification.rule.name, %error, "alert notification lost");
        }
        self.record(outcome);
    }

    /// One attempt; the error says whether another could succeed.
    async fn post(&self, body: &Value) -> Result<(), (String, bool)> {
        let response = self
            .client
            .post(&self.config.url)
            .timeout(self.config.timeout)
            .json(body)
            .send()
            .await
            // Without the URL: a Slack webhook's URL is its secret.
            .map_err(|e| (format!("sending failed: {}", without_url(e)), true))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry = status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
        Err((format!("the receiver answered {status}"), retry))
    }

    fn record(&self, outcome: Result<(), String>) {
        let outcome_label = match outcome {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
                "sent"
            }
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock() = Some(error);
                "failed"
            }
        };
        self.metrics.notification(&self.name, outcome_label);
    }
}

fn without_url(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request error"
    };
    let error = error.without_url();
    format!("{kind}: {error}")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::SystemTime;

    use axum::http::StatusCode;
    use axum::routing::post;

    use super::super::condition::Condition;
    use super::super::config::RuleConfig;
    use super::super::state::Transition;
    use super::*;

    fn notification() -> Notification {
        Notification {
            rule: RuleConfig {
                name: "errors".into(),
                service: "checkout".into(),
                operation: None,
                kind: None,
                condition: Condition::parse("error_ratio > 5%").unwrap(),
                window: Duration::from_secs(60),
                for_: Duration::ZERO,
                keep_firing_for: Duration::ZERO,
                description: None,
            },
            transition: Transition::Fired,
            value: Some(0.5),
            at: SystemTime::now(),
            fired_at: Some(SystemTime::now()),
            examples: Vec::new(),
            alerts_url: "http://localhost:16686/alerts".into(),
        }
    }

    /// A receiver answering the `answers` in turn (the last one from then on), after `delay`; returns its URL
    /// and how many requests it got.
    async fn receiver(answers: Vec<StatusCode>, delay: Duration) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |body: axum::Json<Value>| {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let answer = answers[n.min(answers.len() - 1)];
                async move {
                    assert_eq!(body["status"], "firing");
                    tokio::time::sleep(delay).await;
                    answer
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, hits)
    }

    /// Delivers one notification and waits for its outcome: (sent, failed, last error).
    async fn deliver(url: String, timeout: Duration, max_attempts: u32) -> (u64, u64, Option<String>) {
        // The binary installs the TLS crypto provider at start (the workspace builds reqwest without one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = WebhookConfig { name: None, url, format: WebhookFormat::Generic, timeout, max_attempts };
        let (hook, deliveries) = Webhook::new(config, 0, AlertMetrics::default()).unwrap();
        tokio::spawn(deliveries);
        hook.notify(notification());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while hook.sent.load(Ordering::SeqCst) + hook.failed.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no outcome");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (hook.sent.load(Ordering::SeqCst), hook.failed.load(Ordering::SeqCst), hook.last_error.lock().clone())
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_delivered() {
        let answers = vec![StatusCode::SERVICE_UNAVAILABLE, StatusCode::TOO_MANY_REQUESTS, StatusCode::OK];
        let (url, hits) = receiver(answers, Duration::ZERO).await;
        assert_eq!(deliver(url, Duration::from_secs(5), 4).await, (1, 0, None));
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_client_error_is_final() {
        let (url, hits) = receiver(vec![StatusCode::BAD_REQUEST], Duration::ZERO).await;
        let (sent, failed, error) = deliver(url, Duration::from_secs(5), 4).await;
        assert_eq!((sent, failed, hits.load(Ordering::SeqCst)), (0, 1, 1));
        assert_eq!(error.unwrap(), "the receiver answered 400 Bad Request (after 1 attempt)");
    }

    #[tokio::test]
    async fn a_silent_receiver_times_out_each_attempt() {
        let (url, hits) = receiver(vec![StatusCode::OK], Duration::from_secs(30)).await;
        let (sent, failed, error) = deliver(url.clone(), Duration::from_millis(200), 2).await;
        assert_eq!((sent, failed, hits.load(Ordering::SeqCst)), (0, 1, 2));
        let error = error.unwrap();
        assert!(error.starts_with("sending failed: timed out") && error.ends_with("(after 2 attempts)"), "{error}");
        assert!(!error.contains(&url), "the URL (a secret for Slack) stays out of errors: {error}");
    }
}
