//! An in-process message queue with headers, as a broker client would see it. `checkout` publishes each order
//! with the trace context in the message headers; `shipping` handles one message at a time and continues the
//! trace; `email` consumes in batches, and its batch span links to every message's context (a batch has many
//! parents, so it starts its own trace).

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation::Format;
use crate::web::{BAGGAGE_REQUEST_ID, BAGGAGE_USER_ID, REQUEST_ID_HEADER};

pub const TOPIC: &str = "orders";
const SYSTEM: &str = "in-memory";
const EMAIL_BATCH: usize = 20;

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

/// The `orders` topic, with one subscription per consumer group.
#[derive(Clone)]
pub struct Queue {
    subscriptions: Vec<mpsc::UnboundedSender<Message>>,
}

/// The receiving ends, for [`start_consumers`].
pub struct Consumers {
    shipping: mpsc::UnboundedReceiver<Message>,
    email: mpsc::UnboundedReceiver<Message>,
}

impl Queue {
    pub fn new() -> (Queue, Consumers) {
        let (shipping_tx, shipping) = mpsc::unbounded_channel();
        let (email_tx, email) = mpsc::unbounded_channel();
        (Queue { subscriptions: vec![shipping_tx, email_tx] }, Consumers { shipping, email })
    }

    /// Publishes inside a producer span whose context goes into the message headers.
    pub fn publish(&self, service: &'static str, id: &str, body: Value, request_id: Option<&str>) {
        let span = tracing::info_span!(
            "publish",
            otel.name = %format!("send {TOPIC}"),
            otel.kind = "producer",
            shop.service = service,
            messaging.system = SYSTEM,
            messaging.operation.type = "send",
            messaging.operation.name = "send",
            messaging.destination.name = TOPIC,
            messaging.message.id = id,
        );
        let _guard = span.enter();
        let mut headers = HashMap::new();
        Format::W3c.inject(&span.context(), &mut headers);
        if let Some(request_id) = request_id {
            headers.insert(REQUEST_ID_HEADER.to_string(), request_id.to_string());
        }
        let message = Message { id: id.to_string(), headers, body };
        for subscription in &self.subscriptions {
            let _ = subscription.send(message.clone());
        }
        tracing::info!(message_id = id, "order published");
    }
}

pub fn start_consumers(consumers: Consumers) -> Vec<tokio::task::JoinHandle<()>> {
    vec![tokio::spawn(shipping(consumers.shipping)), tokio::spawn(email(consumers.email))]
}

fn process_span(service: &'static str) -> tracing::Span {
    tracing::info_span!(
        "process",
        otel.name = %format!("process {TOPIC}"),
        otel.kind = "consumer",
        shop.service = service,
        messaging.system = SYSTEM,
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = TOPIC,
        messaging.consumer.group.name = service,
        messaging.message.id = Empty,
        messaging.batch.message_count = Empty,
        request.id = Empty,
        user.id = Empty,
    )
}

async fn shipping(mut messages: mpsc::UnboundedReceiver<Message>) {
    while let Some(message) = messages.recv().await {
        let parent = Format::W3c.extract(&message.headers);
        let span = process_span("shipping");
        span.record("messaging.message.id", message.id.as_str());
        let request_id = message.headers.get(REQUEST_ID_HEADER).cloned();
        if let Some(id) = request_id.or_else(|| parent.baggage().get(BAGGAGE_REQUEST_ID).map(|v| v.to_string())) {
            span.record("request.id", id);
        }
        if let Some(user) = parent.baggage().get(BAGGAGE_USER_ID) {
            span.record("user.id", user.as_str());
        }
        let _ = span.set_parent(parent);
        async {
            tokio::time::sleep(Duration::from_millis(5 + super::backends::jitter(10))).await;
            tracing::info!(order = %message.body["order_id"], "shipping label printed");
        }
        .instrument(span)
        .await;
    }
}

async fn email(mut messages: mpsc::UnboundedReceiver<Message>) {
    let mut batch = Vec::new();
    loop {
        if messages.recv_many(&mut batch, EMAIL_BATCH).await == 0 {
            return;
        }
        let span = process_span("email");
        span.record("messaging.batch.message_count", batch.len() as i64);
        for message in &batch {
            let cx = Format::W3c.extract(&message.headers);
            span.add_link(cx.span().span_context().clone());
        }
        async {
            tokio::time::sleep(Duration::from_millis(10 + 2 * batch.len() as u64)).await;
            tracing::info!(count = batch.len(), "order confirmations sent");
        }
        .instrument(span)
        .await;
        batch.clear();
        // Batches form while the mailer waits between sends.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
