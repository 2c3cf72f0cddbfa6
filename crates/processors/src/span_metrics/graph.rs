//! The live service graph, as the collector's `servicegraph` connector builds it: a CLIENT or PRODUCER span
//! waits under (trace id, its span id), a SERVER or CONSUMER span under (trace id, its parent span id); when
//! both sides are there the edge (client service → server service) counts one request. A client span with
//! `db.system` is a call to a database node at once; one with `peer.service` or `server.address` that finds no
//! server side within `wait` is a call to that external node. (`db.system.name` and `db.namespace`, the current
//! semantic conventions' names, are read as well as the older `db.system` and `db.name`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fast_hash::FastMap;
use super::openmetrics::{self, Counter, Exemplar, Histogram};

pub const KIND_SERVER: i32 = 2;
pub const KIND_CLIENT: i32 = 3;
pub const KIND_PRODUCER: i32 = 4;
pub const KIND_CONSUMER: i32 = 5;

pub use clew_model::Connection;

/// One side of a call, as a span reports it.
#[derive(Debug, Clone)]
pub struct Side {
    /// Shared by the spans of one resource.
    pub service: Arc<str>,
    pub seconds: f64,
    pub failed: bool,
    pub exemplar: Option<Exemplar>,
}

/// What a client span says about its peer, for the virtual node it becomes when no server side appears.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub peer_service: Option<Box<str>>,
    pub server_address: Option<Box<str>>,
    pub db_system: Option<Box<str>>,
    pub db_name: Option<Box<str>>,
}

impl Peer {
    /// The database node's name: `peer.service`, else `db.namespace` (`db.name`), else `db.system.name`
    /// (`db.system`); `None` for no database call.
    pub fn database(&self) -> Option<&str> {
        self.db_system.as_ref()?;
        self.peer_service.as_deref().or(self.db_name.as_deref()).or(self.db_system.as_deref())
    }

    /// The external node's name: `peer.service`, else `server.address`.
    pub fn external(&self) -> Option<&str> {
        self.peer_service.as_deref().or(self.server_address.as_deref())
    }
}

#[derive(Debug)]
struct Pending {
    client: Option<(Side, Peer)>,
    server: Option<Side>,
    messaging: bool,
    since: Instant,
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub client: Box<str>,
    pub server: Box<str>,
    pub connection: Connection,
    pub requests: Counter,
    pub failed: Counter,
    pub client_seconds: Histogram,
    pub server_seconds: Histogram,
}

#[derive(Debug)]
pub struct GraphState {
    pending: FastMap<([u8; 16], [u8; 8]), Pending>,
    edges: FastMap<Box<str>, Edge>,
    overflow: Option<Edge>,
    unpaired: u64,
    dropped: u64,
    wait: Duration,
    max_items: usize,
    max_edges: usize,
    last_sweep: Instant,
}

impl GraphState {
    pub fn new(wait: Duration, max_items: usize, max_edges: usize) -> Self {
        Self {
            pending: FastMap::default(),
            edges: FastMap::default(),
            overflow: None,
            unpaired: 0,
            dropped: 0,
            wait,
            max_items,
            max_edges,
            last_sweep: Instant::now(),
        }
    }

    /// A CLIENT or PRODUCER span.
    pub fn client(&mut self, bounds: &[f64], trace: [u8; 16], span: [u8; 8], kind: i32, side: Side, peer: Peer) {
        if let Some(database) = peer.database() {
            let database: Box<str> = database.into();
            self.complete(bounds, &side.service.clone(), &database, Connection::Database, Some(&side), None);
            return;
        }
        self.wait_for(bounds, (trace, span), kind == KIND_PRODUCER, |p| p.client = Some((side, peer)));
    }

    /// A SERVER or CONSUMER span with a parent.
    pub fn server(&mut self, bounds: &[f64], trace: [u8; 16], parent: [u8; 8], kind: i32, side: Side) {
        self.wait_for(bounds, (trace, parent), kind == KIND_CONSUMER, |p| p.server = Some(side));
    }

    fn wait_for(&mut self, bounds: &[f64], key: ([u8; 16], [u8; 8]), messaging: bool, fill: impl FnOnce(&mut Pending)) {
        if !self.pending.contains_key(&key) && self.pending.len() >= self.max_items {
            self.dropped += 1;
            return;
        }
        let pending = self.pending.entry(key).or_insert_with(|| Pending {
            client: None,
            server: None,
            messaging: false,
            since: Instant::now(),
        });
        pending.messaging |= messaging;
        fill(pending);
        if pending.client.is_some() && pending.server.is_some() {
            let pending = self.pending.remove(&key).expect("just seen");
            let ((client, _), server) = (pending.client.expect("checked"), pending.server.expect("checked"));
            let connection = if pending.messaging { Connection::Messaging } else { Connection::Request };
            let (c, s) = (client.service.clone(), server.service.clone());
            self.complete(bounds, &c, &s, connection, Some(&client), Some(&server));
        }
    }

    fn complete(
        &mut self,
        bounds: &[f64],
        client_service: &str,
        server_service: &str,
        connection: Connection,
        client: Option<&Side>,
        server: Option<&Side>,
    ) {
        let key = format!("{client_service}\u{1f}{server_service}\u{1f}{}", connection.label());
        let new_edge = |client: &str, server: &str| Edge {
            client: client.into(),
            server: server.into(),
            connection,
            requests: Counter::default(),
            failed: Counter::default(),
            client_seconds: Histogram::new(bounds),
            server_seconds: Histogram::new(bounds),
        };
        let edge = if self.edges.contains_key(key.as_str()) || self.edges.len() < self.max_edges {
            self.edges.entry(key.into()).or_insert_with(|| new_edge(client_service, server_service))
        } else {
            self.overflow.get_or_insert_with(|| new_edge("", ""))
        };
        let exemplar = client.or(server).and_then(|s| s.exemplar).map(|e| Exemplar { value: 1.0, ..e });
        edge.requests.inc(exemplar);
        if client.is_some_and(|s| s.failed) || server.is_some_and(|s| s.failed) {
            edge.failed.inc(exemplar);
        }
        if let Some(c) = client {
            edge.client_seconds.observe(bounds, c.seconds, c.exemplar);
        }
        if let Some(s) = server {
            edge.server_seconds.observe(bounds, s.seconds, s.exemplar);
        }
    }

    /// Ends the wait of calls older than `wait` (at most once a second unless `force`): a client side with an
    /// external peer becomes an edge to that peer, anything else counts as unpaired.
    pub fn sweep(&mut self, bounds: &[f64], now: Instant, force: bool) {
        if !force && now.duration_since(self.last_sweep) < Duration::from_secs(1) {
            return;
        }
        self.last_sweep = now;
        let wait = self.wait;
        let expired: Vec<_> =
            self.pending.iter().filter(|(_, p)| now.duration_since(p.since) >= wait).map(|(key, _)| *key).collect();
        for key in expired {
            let pending = self.pending.remove(&key).expect("listed");
            match pending.client {
                Some((side, peer)) if pending.server.is_none() && peer.external().is_some() => {
                    let server: Box<str> = peer.external().expect("checked").into();
                    let client = side.service.clone();
                    self.complete(bounds, &client, &server, Connection::Virtual, Some(&side), None);
                }
                _ => self.unpaired += 1,
            }
        }
    }

    /// The counted edges and counters, without the calls still waiting.
    pub fn snapshot(&self) -> GraphCounts {
        GraphCounts {
            edges: self.edges.values().cloned().collect(),
            overflow: self.overflow.clone(),
            unpaired: self.unpaired,
            dropped: self.dropped,
        }
    }
}

/// What [`GraphState::snapshot`] copies out for encoding.
pub struct GraphCounts {
    edges: Vec<Edge>,
    overflow: Option<Edge>,
    unpaired: u64,
    dropped: u64,
}

impl GraphCounts {
    pub fn encode(&self, out: &mut String, bounds: &[f64]) {
        let mut edges: Vec<&Edge> = self.edges.iter().collect();
        edges.sort_by(|a, b| (&a.client, &a.server, a.connection).cmp(&(&b.client, &b.server, b.connection)));
        edges.extend(self.overflow.as_ref());
        let labels = |e: &Edge| -> Vec<(&str, String)> {
            if e.client.is_empty() && e.server.is_empty() {
                return vec![("otel_metric_overflow", "true".into())];
            }
            vec![
                ("client", e.client.to_string()),
                ("server", e.server.to_string()),
                ("connection_type", e.connection.label().to_string()),
            ]
        };
        let labelled: Vec<(Vec<(&str, String)>, &Edge)> = edges.iter().map(|e| (labels(e), *e)).collect();
        let families: [(&str, &str, &str, Option<&str>); 4] = [
            ("traces_service_graph_request", "counter", "Requests between two nodes.", None),
            ("traces_service_graph_request_failed", "counter", "Failed requests between two nodes.", None),
            ("traces_service_graph_request_server_seconds", "histogram", "Server-side durations.", Some("seconds")),
            ("traces_service_graph_request_client_seconds", "histogram", "Client-side durations.", Some("seconds")),
        ];
        for (i, (name, kind, help, unit)) in families.into_iter().enumerate() {
            openmetrics::family_header(out, name, kind, help, unit);
            for (l, e) in &labelled {
                let p: Vec<(&str, &str)> =
                    l.iter().filter(|(_, v)| !v.is_empty()).map(|(n, v)| (*n, v.as_str())).collect();
                match i {
                    0 => openmetrics::counter(out, name, &p, &e.requests),
                    1 => openmetrics::counter(out, name, &p, &e.failed),
                    2 => openmetrics::histogram(out, name, &p, bounds, &e.server_seconds),
                    _ => openmetrics::histogram(out, name, &p, bounds, &e.client_seconds),
                }
            }
        }
        for (name, help, value) in [
            ("traces_service_graph_unpaired_spans", "Spans whose other side never arrived.", self.unpaired),
            ("traces_service_graph_dropped_spans", "Spans not paired because too many calls waited.", self.dropped),
        ] {
            openmetrics::family_header(out, name, "counter", help, None);
            openmetrics::counter_value(out, name, &[], value);
        }
    }
}
