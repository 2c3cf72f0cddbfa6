//! The `large` profile: traces of 10,000 to 50,000 spans, each sent over several requests of `batch_spans`.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use super::tree::{TreeGenerator, services};
use super::{Request, SentTrace, Workload, WorkloadConfig};
use crate::request::{RequestBuilder, Service};

pub struct Large {
    config: WorkloadConfig,
    rng: SmallRng,
    services: Vec<Service>,
    tree: TreeGenerator,
    /// Requests of the trace being sent, generated together and handed out one by one.
    pending: VecDeque<Request>,
    sent: u64,
}

impl Large {
    pub fn new(config: WorkloadConfig) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(config.seed),
            services: services(),
            tree: TreeGenerator::new(),
            pending: VecDeque::new(),
            config,
            sent: 0,
        }
    }

    fn generate_trace(&mut self, batch_spans: usize) {
        let mut trace_id = [0u8; 16];
        self.rng.fill_bytes(&mut trace_id);
        let spread = (self.config.spread_days * 86_400e9) as u64;
        let start = self.config.now_unix_nano.saturating_sub(self.rng.random_range(0..spread.max(1)));
        let target = self.rng.random_range(10_000..=50_000);
        let mut builder = RequestBuilder::new(self.services.len());
        let services = &self.services;
        let pending = &mut self.pending;
        let mut take = |builder: &mut RequestBuilder| {
            let spans = builder.span_count();
            let mut body = Vec::with_capacity(spans * 700);
            builder.finish(services, &mut body);
            pending.push_back(Request { body, spans, traces: Vec::new() });
        };
        // Wide trees: a fan-out of up to 40 reaches tens of thousands of spans within depth 8.
        self.tree.write_trace(&mut self.rng, &trace_id, start, target, 40, &mut builder, &mut take, batch_spans);
        if builder.span_count() > 0 {
            take(&mut builder);
        }
        if let Some(first) = self.pending.front_mut() {
            first.traces.push(SentTrace { trace_id, start_unix_nano: start });
        }
    }
}

impl Workload for Large {
    fn next_request(&mut self, batch_spans: usize) -> Option<Request> {
        if self.pending.is_empty() {
            if self.config.traces.is_some_and(|limit| self.sent >= limit) {
                return None;
            }
            self.generate_trace(batch_spans.max(1));
            self.sent += 1;
        }
        self.pending.pop_front()
    }
}
