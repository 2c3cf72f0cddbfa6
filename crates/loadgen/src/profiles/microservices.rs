//! The `microservices` profile: call trees of 2 to 200 spans (depth up to 8, fan-out up to 10) with HTTP,
//! database and messaging attributes, events, some links, 1% error traces and a long-tailed latency.

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, LogNormal};

use super::tree::{TreeGenerator, services};
use super::{Request, SentTrace, Workload, WorkloadConfig};
use crate::request::{RequestBuilder, Service};

pub struct Microservices {
    config: WorkloadConfig,
    rng: SmallRng,
    services: Vec<Service>,
    builder: RequestBuilder,
    tree: TreeGenerator,
    size: LogNormal<f64>,
    sent: u64,
}

impl Microservices {
    pub fn new(config: WorkloadConfig) -> Self {
        let services = services();
        Self {
            rng: SmallRng::seed_from_u64(config.seed),
            builder: RequestBuilder::new(services.len()),
            services,
            tree: TreeGenerator::new(),
            size: LogNormal::new((15f64).ln(), 0.9).expect("valid log-normal"),
            config,
            sent: 0,
        }
    }
}

impl Workload for Microservices {
    fn next_request(&mut self, batch_spans: usize) -> Option<Request> {
        let mut traces = Vec::new();
        while self.builder.span_count() < batch_spans {
            if self.config.traces.is_some_and(|limit| self.sent >= limit) {
                break;
            }
            let mut trace_id = [0u8; 16];
            self.rng.fill_bytes(&mut trace_id);
            let spread = (self.config.spread_days * 86_400e9) as u64;
            let start = self.config.now_unix_nano.saturating_sub(self.rng.random_range(0..spread.max(1)));
            let target = (self.size.sample(&mut self.rng) as usize).clamp(2, 200);
            // Whole traces per request: the chunk limit is never reached inside one trace here.
            self.tree.write_trace(&mut self.rng, &trace_id, start, target, 10, &mut self.builder, |_| {}, usize::MAX);
            traces.push(SentTrace { trace_id, start_unix_nano: start });
            self.sent += 1;
        }
        if traces.is_empty() {
            return None;
        }
        let spans = self.builder.span_count();
        let mut body = Vec::with_capacity(spans * 700);
        self.builder.finish(&self.services, &mut body);
        Some(Request { body, spans, traces })
    }
}
