//! The service dependency graph of stored traces, paired the way the live `servicegraph` metrics pair spans:
//! a SERVER or CONSUMER span whose parent is a CLIENT or PRODUCER span is one request from the parent's service
//! to the child's (a PRODUCER/CONSUMER pair is a messaging edge). A client span with `db.system.name` (or the
//! older `db.system`) is a call to a database node (`peer.service`, else `db.namespace` or the older `db.name`,
//! else the system); one with `peer.service` or
//! `server.address` and no server child is a call to that external node. A call counts when its client span
//! starts inside the window.

use std::collections::BTreeMap;

use clew_model::otlp::{KeyValue, Span, any_value::Value};

use crate::sketch::Sketch;
use crate::spans::TraceSpans;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

pub use clew_model::Connection;

/// Requests along one edge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeStats {
    pub calls: u64,
    pub errors: u64,
    /// Client span durations, seconds.
    pub client: Sketch,
    /// Server span durations, seconds (empty for database and external nodes).
    pub server: Sketch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub client: String,
    pub server: String,
    pub connection: Connection,
    pub stats: EdgeStats,
}

/// Accumulates traces into edges.
#[derive(Debug, Default)]
pub struct ServiceGraph {
    /// Unix nanoseconds, inclusive; `None` counts every call.
    window: Option<(u64, u64)>,
    edges: BTreeMap<(String, String, Connection), EdgeStats>,
}

impl ServiceGraph {
    pub fn new(window: Option<(u64, u64)>) -> Self {
        Self { window, edges: BTreeMap::new() }
    }

    pub fn add_trace(&mut self, trace: &[clew_model::otlp::ResourceSpans]) {
        let trace = TraceSpans::new(trace);
        for (i, flat) in trace.spans.iter().enumerate() {
            let span = flat.span;
            if !matches!(span.kind, CLIENT | PRODUCER) {
                continue;
            }
            if self.window.is_some_and(|(from, to)| flat.start < from || flat.start > to) {
                continue;
            }
            let seconds = |s: &crate::spans::FlatSpan| (s.end - s.start) as f64 / 1e9;
            let db_system = attribute(span, "db.system.name").or_else(|| attribute(span, "db.system"));
            if let Some(db_system) = db_system {
                let node = attribute(span, "peer.service")
                    .or_else(|| attribute(span, "db.namespace"))
                    .or_else(|| attribute(span, "db.name"))
                    .unwrap_or(db_system);
                self.count(flat.service, &node, Connection::Database, failed(span), Some(seconds(flat)), None);
                continue;
            }
            let server =
                trace.children[i].iter().map(|&c| &trace.spans[c]).find(|c| matches!(c.span.kind, SERVER | CONSUMER));
            if let Some(server) = server {
                let messaging = span.kind == PRODUCER || server.span.kind == CONSUMER;
                let connection = if messaging { Connection::Messaging } else { Connection::Request };
                let failed = failed(span) || failed(server.span);
                self.count(
                    flat.service,
                    server.service,
                    connection,
                    failed,
                    Some(seconds(flat)),
                    Some(seconds(server)),
                );
            } else if let Some(peer) = attribute(span, "peer.service").or_else(|| attribute(span, "server.address")) {
                self.count(flat.service, &peer, Connection::Virtual, failed(span), Some(seconds(flat)), None);
            }
        }
    }

    fn count(
        &mut self,
        client: &str,
        server: &str,
        connection: Connection,
        failed: bool,
        client_seconds: Option<f64>,
        server_seconds: Option<f64>,
    ) {
        let stats = self.edges.entry((client.to_string(), server.to_string(), connection)).or_default();
        stats.calls += 1;
        stats.errors += u64::from(failed);
        if let Some(s) = client_seconds {
            stats.client.add(s);
        }
        if let Some(s) = server_seconds {
            stats.server.add(s);
        }
    }

    /// The edges, sorted by client, server and connection.
    pub fn edges(self) -> Vec<Edge> {
        self.edges
            .into_iter()
            .map(|((client, server, connection), stats)| Edge { client, server, connection, stats })
            .collect()
    }
}

fn failed(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|s| s.code == 2)
}

/// A scalar span attribute as text.
fn attribute(span: &Span, key: &str) -> Option<String> {
    let kv: &KeyValue = span.attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) if !s.is_empty() => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::span::SpanKind;
    use clew_model::otlp::{AnyValue, Status};

    use super::*;
    use crate::test_support::{span, trace, with_kind};

    fn attr(mut s: Span, key: &str, value: &str) -> Span {
        s.attributes.push(KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
            ..Default::default()
        });
        s
    }

    fn failing(mut s: Span) -> Span {
        s.status = Some(Status { code: 2, message: String::new() });
        s
    }

    /// web → api (HTTP), api → worker (queue), api → orders (database), api → payments.example.com (external),
    /// api → api internal span (no edge), and an unpaired server span.
    fn topology(error: bool) -> Vec<clew_model::otlp::ResourceSpans> {
        let ms = 1_000_000;
        let pay = attr(
            with_kind(span(6, Some(3), "charge", 20 * ms, 50 * ms), SpanKind::Client),
            "server.address",
            "payments.example.com",
        );
        trace(vec![
            (
                "web",
                vec![
                    with_kind(span(1, None, "GET /", 0, 100 * ms), SpanKind::Server),
                    with_kind(span(2, Some(1), "GET /api", ms, 90 * ms), SpanKind::Client),
                ],
            ),
            (
                "api",
                vec![
                    with_kind(span(3, Some(2), "GET /api", 2 * ms, 80 * ms), SpanKind::Server),
                    attr(
                        attr(
                            with_kind(span(5, Some(3), "SELECT", 3 * ms, 7 * ms), SpanKind::Client),
                            "db.system",
                            "postgresql",
                        ),
                        "db.name",
                        "orders",
                    ),
                    if error { failing(pay) } else { pay },
                    with_kind(span(7, Some(3), "publish", 60 * ms, 61 * ms), SpanKind::Producer),
                    span(9, Some(3), "internal", 62 * ms, 63 * ms),
                ],
            ),
            ("worker", vec![with_kind(span(8, Some(7), "process", 70 * ms, 90 * ms), SpanKind::Consumer)]),
            ("lost", vec![with_kind(span(10, Some(99), "orphan", 0, ms), SpanKind::Server)]),
        ])
    }

    #[test]
    fn finds_every_edge_with_counts_errors_and_latencies() {
        let mut graph = ServiceGraph::new(None);
        graph.add_trace(&topology(false));
        graph.add_trace(&topology(true));
        let edges = graph.edges();
        let summary: Vec<(&str, &str, Connection, u64, u64)> = edges
            .iter()
            .map(|e| (e.client.as_str(), e.server.as_str(), e.connection, e.stats.calls, e.stats.errors))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("api", "orders", Connection::Database, 2, 0),
                ("api", "payments.example.com", Connection::Virtual, 2, 1),
                ("api", "worker", Connection::Messaging, 2, 0),
                ("web", "api", Connection::Request, 2, 0),
            ]
        );
        let web_api = &edges[3].stats;
        let (client, server) = (web_api.client.quantile(0.5).unwrap(), web_api.server.quantile(0.5).unwrap());
        assert!((client - 0.089).abs() < 0.001 && (server - 0.078).abs() < 0.001, "{client} {server}");
        assert_eq!(edges[0].stats.server.count(), 0, "a database has no server side");
    }

    #[test]
    fn the_window_selects_calls_by_their_client_start() {
        let mut graph = ServiceGraph::new(Some((10_000_000, 65_000_000)));
        graph.add_trace(&topology(false));
        let servers: Vec<String> = graph.edges().into_iter().map(|e| e.server).collect();
        assert_eq!(servers, vec!["payments.example.com", "worker"]);
    }
}
