//! Realistic call trees for the `microservices` and `large` profiles: HTTP calls as client/server span pairs,
//! database calls, internal work and queue hops as producer/consumer pairs, each with the semantic-convention
//! attributes an instrumented service sends; children laid out in time inside their parents, a long-tailed
//! latency, and errors that start in a leaf and surface at the root.

use rand::rngs::SmallRng;
use rand::{Rng, RngCore};
use rand_distr::{Distribution, LogNormal};

use crate::proto::{
    put_bool_attribute, put_bytes, put_double_attribute, put_fixed64, put_int_attribute, put_message, put_str,
    put_string_attribute, put_uint,
};
use crate::request::{RequestBuilder, Service};

pub const SERVICE_NAMES: [&str; 12] = [
    "frontend",
    "auth",
    "cart",
    "checkout",
    "payment",
    "inventory",
    "shipping",
    "email",
    "search",
    "catalog",
    "recommendation",
    "ads",
];
const ROUTES: [&str; 8] =
    ["/api/cart", "/api/checkout", "/api/items/{id}", "/api/users/{id}", "/api/search", "/api/orders", "/login", "/"];
const TABLES: [&str; 5] = ["orders", "items", "users", "stock", "sessions"];
const TOPICS: [&str; 3] = ["orders", "emails", "shipments"];

pub fn services() -> Vec<Service> {
    SERVICE_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Service::new(
                name,
                &[
                    ("service.version", "1.4.2"),
                    ("deployment.environment.name", "production"),
                    ("host.name", &format!("node-{}", i % 4)),
                    ("telemetry.sdk.language", ["rust", "go", "java", "python"][i % 4]),
                ],
            )
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    HttpServer,
    HttpClient,
    Database,
    Internal,
    Producer,
    Consumer,
}

/// One span to write, before encoding.
struct Node {
    id: [u8; 8],
    parent: Option<usize>,
    service: usize,
    shape: Shape,
    start: u64,
    end: u64,
    error: bool,
    detail: usize,
}

pub struct TreeGenerator {
    latency: LogNormal<f64>,
    nodes: Vec<Node>,
}

impl TreeGenerator {
    pub fn new() -> Self {
        Self { latency: LogNormal::new((2e6f64).ln(), 1.3).expect("valid log-normal"), nodes: Vec::new() }
    }

    #[allow(clippy::too_many_arguments)]
    /// Generates one trace of about `target_spans` spans (at least 2) and encodes it into `builder`, in chunks:
    /// `flush` is called whenever the builder holds `chunk_spans` spans, so huge traces span several requests.
    pub fn write_trace(
        &mut self,
        rng: &mut SmallRng,
        trace_id: &[u8; 16],
        start: u64,
        target_spans: usize,
        max_fanout: usize,
        builder: &mut RequestBuilder,
        mut flush: impl FnMut(&mut RequestBuilder),
        chunk_spans: usize,
    ) {
        self.nodes.clear();
        let error_trace = rng.random_bool(0.01);
        let root_service = 0;
        self.push(rng, None, root_service, Shape::HttpServer, start);
        // Breadth-first growth: each node gets children until the target is reached or depth runs out.
        let mut frontier = vec![(0usize, 0usize)];
        while let Some((parent, depth)) = frontier.pop() {
            if self.nodes.len() >= target_spans || depth >= 7 {
                continue;
            }
            let shape = self.nodes[parent].shape;
            if matches!(shape, Shape::Database | Shape::HttpClient | Shape::Producer) {
                continue;
            }
            let fanout = rng.random_range(1..=max_fanout);
            let mut cursor = self.nodes[parent].start + rng.random_range(10_000..200_000u64);
            for _ in 0..fanout {
                let room = target_spans.saturating_sub(self.nodes.len());
                if room == 0 {
                    break;
                }
                let service = self.nodes[parent].service;
                let child_shape = match rng.random_range(0..10) {
                    // Calls and queue hops add two spans; with room for one, the call is to a database.
                    0..=4 if room >= 2 => Shape::HttpClient,
                    9 if room >= 2 => Shape::Producer,
                    0..=6 | 9 => Shape::Database,
                    _ => Shape::Internal,
                };
                let child = self.push(rng, Some(parent), service, child_shape, cursor);
                match child_shape {
                    Shape::HttpClient => {
                        let callee = rng.random_range(1..SERVICE_NAMES.len());
                        let server_start = self.nodes[child].start + rng.random_range(50_000..300_000u64);
                        let server = self.push(rng, Some(child), callee, Shape::HttpServer, server_start);
                        frontier.push((server, depth + 1));
                        self.nodes[child].end = self.nodes[child].end.max(self.nodes[server].end + 100_000);
                    }
                    Shape::Producer => {
                        let consumer = rng.random_range(1..SERVICE_NAMES.len());
                        let at = self.nodes[child].end + rng.random_range(100_000..5_000_000u64);
                        let consumer_span = self.push(rng, Some(child), consumer, Shape::Consumer, at);
                        frontier.push((consumer_span, depth + 1));
                    }
                    Shape::Internal => frontier.push((child, depth + 1)),
                    _ => {}
                }
                // Mostly sequential calls; sometimes the next call overlaps (parallel fan-out).
                if rng.random_bool(0.7) {
                    cursor = self.nodes[child].end + rng.random_range(5_000..100_000u64);
                }
            }
        }
        self.fix_parent_ends();
        if error_trace {
            self.mark_error(rng);
        }
        for i in 0..self.nodes.len() {
            self.encode(rng, i, trace_id, builder);
            if builder.span_count() >= chunk_spans {
                flush(builder);
            }
        }
    }

    fn push(&mut self, rng: &mut SmallRng, parent: Option<usize>, service: usize, shape: Shape, start: u64) -> usize {
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        let mut duration = self.latency.sample(rng) as u64;
        if rng.random_bool(0.005) {
            duration *= 20; // the long tail: a rare very slow call
        }
        self.nodes.push(Node {
            id,
            parent,
            service,
            shape,
            start,
            end: start + duration.max(1_000),
            error: false,
            detail: rng.random_range(0..1000),
        });
        self.nodes.len() - 1
    }

    /// Parents end after their synchronous children (consumers may outlive their producers).
    fn fix_parent_ends(&mut self) {
        for i in (1..self.nodes.len()).rev() {
            if self.nodes[i].shape == Shape::Consumer {
                continue;
            }
            if let Some(parent) = self.nodes[i].parent {
                let end = self.nodes[i].end + 20_000;
                if self.nodes[parent].end < end {
                    self.nodes[parent].end = end;
                }
            }
        }
    }

    /// An error starts in one leaf and surfaces through its ancestors, as an unhandled failure does.
    fn mark_error(&mut self, rng: &mut SmallRng) {
        let mut at = rng.random_range(0..self.nodes.len());
        loop {
            self.nodes[at].error = true;
            match self.nodes[at].parent {
                Some(parent) => at = parent,
                None => break,
            }
        }
    }

    fn encode(&self, rng: &mut SmallRng, i: usize, trace_id: &[u8; 16], builder: &mut RequestBuilder) {
        let node = &self.nodes[i];
        let parent_id = node.parent.map(|p| self.nodes[p].id);
        let link = (node.shape == Shape::Consumer && rng.random_bool(0.3)).then(|| {
            let mut other_trace = [0u8; 16];
            let mut other_span = [0u8; 8];
            rng.fill_bytes(&mut other_trace);
            rng.fill_bytes(&mut other_span);
            (other_trace, other_span)
        });
        let callee = self.nodes.get(i + 1).filter(|n| n.parent == Some(i)).map(|n| SERVICE_NAMES[n.service]);
        let buf = builder.span_buffer(node.service);
        put_message(buf, 2, |span| {
            put_bytes(span, 1, trace_id);
            put_bytes(span, 2, &node.id);
            if let Some(parent) = &parent_id {
                put_bytes(span, 4, parent);
            }
            let (name, kind) = name_and_kind(node);
            put_str(span, 5, &name);
            put_uint(span, 6, kind);
            put_fixed64(span, 7, node.start);
            put_fixed64(span, 8, node.end);
            attributes(span, node, callee);
            if node.error && node.parent.is_some_and(|_| node.shape != Shape::HttpServer) {
                put_message(span, 11, |event| {
                    put_fixed64(event, 1, node.end.saturating_sub(1_000));
                    put_str(event, 2, "exception");
                    put_string_attribute(event, 3, "exception.type", "TimeoutError");
                    put_string_attribute(event, 3, "exception.message", "deadline exceeded after 3 attempts");
                });
            } else if node.shape == Shape::Database && node.detail.is_multiple_of(7) {
                put_message(span, 11, |event| {
                    put_fixed64(event, 1, node.start + 1_000);
                    put_str(event, 2, "cache miss");
                    put_bool_attribute(event, 3, "cache.hit", false);
                });
            }
            if let Some((other_trace, other_span)) = &link {
                put_message(span, 13, |l| {
                    put_bytes(l, 1, other_trace);
                    put_bytes(l, 2, other_span);
                    put_string_attribute(l, 4, "messaging.batch", "true");
                });
            }
            if node.error {
                put_message(span, 15, |status| {
                    put_str(status, 2, "upstream request failed");
                    put_uint(status, 3, 2);
                });
            }
        });
    }
}

fn name_and_kind(node: &Node) -> (String, u64) {
    let route = ROUTES[node.detail % ROUTES.len()];
    let method = ["GET", "POST", "GET", "PUT"][node.detail % 4];
    match node.shape {
        Shape::HttpServer => (format!("{method} {route}"), 2),
        Shape::HttpClient => (method.to_string(), 3),
        Shape::Database => (format!("SELECT {}", TABLES[node.detail % TABLES.len()]), 3),
        Shape::Internal => (["render", "validate", "compute-price", "serialize"][node.detail % 4].to_string(), 1),
        Shape::Producer => (format!("{} publish", TOPICS[node.detail % TOPICS.len()]), 4),
        Shape::Consumer => (format!("{} process", TOPICS[node.detail % TOPICS.len()]), 5),
    }
}

fn attributes(span: &mut Vec<u8>, node: &Node, callee: Option<&str>) {
    let route = ROUTES[node.detail % ROUTES.len()];
    let status = if node.error { 500 } else { 200 };
    match node.shape {
        Shape::HttpServer => {
            put_string_attribute(span, 9, "http.request.method", ["GET", "POST", "GET", "PUT"][node.detail % 4]);
            put_string_attribute(span, 9, "http.route", route);
            put_string_attribute(span, 9, "url.path", &route.replace("{id}", &node.detail.to_string()));
            put_int_attribute(span, 9, "http.response.status_code", status);
            put_string_attribute(span, 9, "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)");
        }
        Shape::HttpClient => {
            let host = callee.unwrap_or("unknown");
            put_string_attribute(span, 9, "http.request.method", ["GET", "POST", "GET", "PUT"][node.detail % 4]);
            put_string_attribute(span, 9, "server.address", host);
            put_int_attribute(span, 9, "server.port", 8080);
            put_string_attribute(span, 9, "url.full", &format!("http://{host}:8080{route}"));
            put_int_attribute(span, 9, "http.response.status_code", status);
        }
        Shape::Database => {
            let table = TABLES[node.detail % TABLES.len()];
            put_string_attribute(span, 9, "db.system.name", "postgresql");
            put_string_attribute(span, 9, "db.namespace", "shop");
            put_string_attribute(span, 9, "db.operation.name", "SELECT");
            put_string_attribute(span, 9, "db.collection.name", table);
            put_string_attribute(span, 9, "db.query.text", &format!("SELECT * FROM {table} WHERE id = $1"));
            put_string_attribute(span, 9, "server.address", "postgres");
        }
        Shape::Internal => {
            put_string_attribute(span, 9, "code.function.name", "handle");
            put_double_attribute(span, 9, "app.order.total", node.detail as f64 * 1.25);
        }
        Shape::Producer | Shape::Consumer => {
            put_string_attribute(span, 9, "messaging.system", "kafka");
            put_string_attribute(span, 9, "messaging.destination.name", TOPICS[node.detail % TOPICS.len()]);
            put_string_attribute(
                span,
                9,
                "messaging.operation.type",
                if node.shape == Shape::Producer { "send" } else { "process" },
            );
            put_string_attribute(span, 9, "messaging.message.id", &format!("msg-{}", node.detail));
        }
    }
}
