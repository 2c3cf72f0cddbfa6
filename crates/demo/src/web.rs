//! HTTP instrumentation shared by the services: a server span around every request (the context extracted in
//! the service's header format) and client spans around outgoing calls (the context injected in the callee's).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::{Context, KeyValue};
use serde_json::Value;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation::{Format, HeaderCarrier, HeaderReader};

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Set by the (imagined) gateway in front of the shop once it has authenticated the shopper.
pub const USER_ID_HEADER: &str = "x-user-id";
/// Baggage keys the shop sets at the entry and every service reads.
pub const BAGGAGE_REQUEST_ID: &str = "request.id";
pub const BAGGAGE_USER_ID: &str = "user.id";

/// What a service's server middleware needs to know about it.
#[derive(Clone, Copy)]
pub struct Inbound {
    pub service: &'static str,
    pub format: Format,
    pub port: u16,
    /// The entry point generates the correlation id when the caller sent none, and starts the baggage.
    pub entry: bool,
}

/// The correlation id of the request being served, for handlers to pass on.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn header_request_id(request: &Request) -> Option<String> {
    let value = request.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?.trim();
    let valid = !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| value.to_string())
}

fn new_request_id() -> String {
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
    let id = RandomIdGenerator::default().new_trace_id().to_string();
    format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..])
}

/// Axum middleware: one server span per request, child of the caller's span when the headers carry one.
pub async fn server_span(State(inbound): State<Inbound>, mut request: Request, next: Next) -> Response {
    let mut parent = inbound.format.extract(&HeaderReader(request.headers()));
    let from_baggage = parent.baggage().get(BAGGAGE_REQUEST_ID).map(|v| v.as_str().to_string());
    let request_id = header_request_id(&request).or(from_baggage).or_else(|| inbound.entry.then(new_request_id));
    if inbound.entry {
        // The entry starts the baggage: the correlation id, and the user the gateway in front authenticated.
        if let Some(id) = &request_id {
            parent = with_baggage_entry(&parent, BAGGAGE_REQUEST_ID, id);
        }
        if let Some(user) = request.headers().get(USER_ID_HEADER).and_then(|v| v.to_str().ok()) {
            parent = with_baggage_entry(&parent, BAGGAGE_USER_ID, user);
        }
    }
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_string(),
        None => request.uri().path().to_string(),
    };
    let method = request.method().as_str().to_string();
    let user_agent = request.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let span = tracing::info_span!(
        "server",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        shop.service = inbound.service,
        http.request.method = %method,
        http.route = %route,
        url.path = %request.uri().path(),
        url.scheme = "http",
        server.address = "127.0.0.1",
        server.port = inbound.port as i64,
        user_agent.original = %user_agent,
        propagation.format = inbound.format.name(),
        request.id = Empty,
        user.id = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    if let Some(id) = &request_id {
        span.record("request.id", id.as_str());
    }
    if let Some(user) = parent.baggage().get(BAGGAGE_USER_ID) {
        span.record("user.id", user.as_str());
    }
    let _ = span.set_parent(parent);
    if let Some(id) = &request_id {
        request.extensions_mut().insert(RequestId(id.clone()));
    }
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16() as i64);
    if status.is_server_error() {
        span.record("otel.status_code", "error");
        span.record("error.type", status.as_str());
    }
    if let Some(value) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// `cx` with one more baggage entry, keeping the others.
pub fn with_baggage_entry(cx: &Context, key: &str, value: &str) -> Context {
    let mut entries: Vec<KeyValue> =
        cx.baggage().iter().map(|(k, (v, _))| KeyValue::new(k.clone(), v.as_str().to_string())).collect();
    entries.retain(|kv| kv.key.as_str() != key);
    entries.push(KeyValue::new(key.to_string(), value.to_string()));
    cx.with_baggage(entries.into_iter().collect::<Baggage>())
}

/// One outgoing HTTP call.
pub struct Call<'a> {
    /// The calling service (owner of the client span).
    service: &'static str,
    /// The called service, for `peer.service`.
    peer: &'static str,
    format: Format,
    method: Method,
    base_url: &'a str,
    path: String,
    request_id: Option<&'a str>,
    /// How many times this request was sent before (retries), for `http.request.resend_count`.
    resend_count: u32,
}

impl<'a> Call<'a> {
    pub fn new(service: &'static str, peer: &'static str, format: Format, method: Method, base_url: &'a str) -> Self {
        Call { service, peer, format, method, base_url, path: String::new(), request_id: None, resend_count: 0 }
    }

    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Forwards the correlation id as `x-request-id`.
    pub fn request_id(mut self, request_id: Option<&'a str>) -> Self {
        self.request_id = request_id;
        self
    }

    pub fn resend_count(mut self, resend_count: u32) -> Self {
        self.resend_count = resend_count;
        self
    }
}

/// A call that failed: the status when the callee answered, else the transport error.
#[derive(Debug)]
pub struct CallError {
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "HTTP {status}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// Sends `body` (JSON) and returns the JSON answer, inside a client span.
pub async fn call(client: &reqwest::Client, call: Call<'_>, body: Option<&Value>) -> Result<Value, CallError> {
    let url = format!("{}{}", call.base_url, call.path);
    let port = port_of(call.base_url);
    let span = tracing::info_span!(
        "client",
        otel.name = %call.method,
        otel.kind = "client",
        otel.status_code = Empty,
        shop.service = call.service,
        peer.service = call.peer,
        http.request.method = %call.method,
        url.full = %url,
        server.address = "127.0.0.1",
        server.port = port,
        propagation.format = call.format.name(),
        http.request.resend_count = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    if call.resend_count > 0 {
        span.record("http.request.resend_count", call.resend_count as i64);
    }
    let mut headers = axum::http::HeaderMap::new();
    call.format.inject(&span.context(), &mut HeaderCarrier(&mut headers));
    if let Some(value) = call.request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    let mut request = client.request(call.method.clone(), &url).headers(headers);
    if let Some(body) = body {
        request = request.json(body);
    }
    let result = async {
        let response = request.send().await.map_err(|e| CallError { status: None, message: e.to_string() })?;
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16() as i64);
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(answer)
        } else {
            let message = answer.get("error").and_then(Value::as_str).unwrap_or("request failed").to_string();
            Err(CallError { status: Some(status.as_u16()), message })
        }
    }
    .instrument(span.clone())
    .await;
    if let Err(err) = &result {
        span.record("otel.status_code", "error");
        match err.status {
            Some(status) => span.record("error.type", status.to_string()),
            None => span.record("error.type", "transport"),
        };
        span.in_scope(|| tracing::warn!(peer = call.peer, "call failed: {err}"));
    }
    result
}

/// The port of `http://127.0.0.1:PORT`.
fn port_of(base_url: &str) -> i64 {
    base_url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap_or(80)
}
