//! The tail sampler: a [`SpanSink`] that forwards every batch at once (so the write-ahead log makes spans
//! durable before they are acknowledged) and keeps, per waiting trace, only the facts its policies need.
//!
//! A trace is decided when the first of these happens:
//! - `decision_wait` has passed since its first span arrived (the collector's rule);
//! - early: its root span (no parent) has arrived and no new span came for `root_settle_time`. A span is only
//!   exported once it has ended, so the root's arrival means the request is over; the settle time lets spans
//!   from other services, exported in other batches, catch up;
//! - the buffer is full (`num_traces`) and it is the oldest waiting trace (counted as an eviction).
//!
//! A kept trace's spans are stored already; the [`TraceDropper`] is told why it was kept (policy, weight,
//! threshold), which the store keeps with the trace. A trace not kept is removed through the same
//! [`TraceDropper`]. Both calls are made before the sampler's lock is released, so a block cut (which asks
//! [`TailSampler::undecided`] under that lock) never seals a decided trace before the store heard the decision.
//! Decisions are remembered in bounded caches, so late spans follow them: those of a dropped trace are stored
//! and dropped again, those of a kept trace stay and get the decision recorded again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clew_model::otlp::Resource;
use clew_model::{Accepted, SamplingDecision, SinkError, SpanBatch, SpanSink, Tenant, TraceDropper, TraceId};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use prost::Message;

use super::cache::DecisionCache;
use super::config::{EvictionMode, TailSamplingConfig};
use super::consistent::{self, OtValues};
use super::counts::{DecisionCounts, LateSpans, NamedCounts, SamplingCounts};
use super::matcher::Conditions;
use super::metrics::{DecisionLabel, PolicyLabel, SamplingMetrics};
use super::policy::{self, NamedPolicy, Subject, TraceFacts, Verdict};
use super::span_scan::scan_span;

type TraceKey = (Tenant, TraceId);

/// How a trace was decided, for the API: why it was kept and how many traces it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub sampled: bool,
    /// The policy that kept the trace (or dropped or vetoed it); `None` when no policy voted for it.
    pub policy: Option<Arc<str>>,
    /// Adjusted count: 1 / the probability of being kept (1 for errors, 10 under a 10% policy); 0 if dropped.
    pub weight: f64,
    /// The OTEP 235 `th` value in effect when a consistent probabilistic policy kept it.
    pub threshold: Option<String>,
}

#[derive(Debug, Clone)]
struct Kept {
    policy: Option<Arc<str>>,
    weight: f64,
    threshold: Option<u64>,
}

impl Kept {
    fn to_decision(&self) -> SamplingDecision {
        SamplingDecision {
            policy: self.policy.as_deref().map(str::to_string),
            weight: self.weight,
            threshold: self.threshold.map(consistent::encode_threshold),
        }
    }
}

/// What deciding produced, for the store: traces to drop and why others were kept.
#[derive(Default)]
struct Outcomes {
    drops: Vec<TraceKey>,
    kept: Vec<(TraceKey, Kept)>,
}

struct Waiting {
    facts: TraceFacts,
    first_ms: u64,
    last_ms: u64,
}

/// What one span contributes to its trace, extracted before taking the lock.
struct Observation {
    trace_id: [u8; 16],
    start: u64,
    end: u64,
    bytes: u64,
    root: bool,
    conditions: u64,
    ot: OtValues,
}

struct State {
    policies: Vec<NamedPolicy>,
    waiting: HashMap<TraceKey, Waiting>,
    /// Waiting traces by first arrival; entries of traces decided early are skipped when they come up.
    arrivals: VecDeque<(TraceKey, u64)>,
    /// Traces whose root has arrived, with when to check whether they settled.
    settling: VecDeque<(TraceKey, u64)>,
    sampled: DecisionCache<TraceKey, Kept>,
    not_sampled: DecisionCache<TraceKey, Option<u16>>,
    counts: DecisionCounts,
    /// Traces of batches on their way into the store, not yet in `waiting` (with how many such batches).
    in_flight: HashMap<TraceKey, u32>,
}

pub struct TailSampler {
    config: TailSamplingConfig,
    conditions: Conditions,
    /// Spans must be decoded (attribute, status or tracestate conditions, or consistent sampling).
    decode_spans: bool,
    state: Mutex<State>,
    next: Arc<dyn SpanSink>,
    dropper: Arc<dyn TraceDropper>,
    metrics: SamplingMetrics,
    epoch: Instant,
}

impl TailSampler {
    /// Compiles the policies (an invalid configuration is an error naming the policy) and registers the
    /// `clew_sampling_*` metrics.
    pub fn new(
        config: TailSamplingConfig,
        next: Arc<dyn SpanSink>,
        dropper: Arc<dyn TraceDropper>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, String> {
        if config.num_traces == 0 {
            return Err("tail_sampling.num_traces must be at least 1".into());
        }
        let mut conditions = Conditions::default();
        let policies = policy::compile(&config.policies, &mut conditions)?;
        let decode_spans = !conditions.is_empty() || policies.iter().any(|p| p.policy.uses_consistent());
        let capacity = (config.expected_new_traces_per_sec as usize)
            .saturating_mul(config.decision_wait.as_secs().max(1) as usize)
            .min(config.num_traces);
        let state = State {
            counts: DecisionCounts::new(policies.len()),
            in_flight: HashMap::new(),
            policies,
            waiting: HashMap::with_capacity(capacity),
            arrivals: VecDeque::with_capacity(capacity),
            settling: VecDeque::new(),
            sampled: DecisionCache::new(config.decision_cache.sampled_cache_size),
            not_sampled: DecisionCache::new(config.decision_cache.non_sampled_cache_size),
        };
        Ok(Arc::new(Self {
            config,
            conditions,
            decode_spans,
            state: Mutex::new(state),
            next,
            dropper,
            metrics: SamplingMetrics::register(registry),
            epoch: Instant::now(),
        }))
    }

    pub fn config(&self) -> &TailSamplingConfig {
        &self.config
    }

    /// Starts the decision timer on the current tokio runtime.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sampler = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(sampler.tick_period());
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                sampler.tick_at(sampler.now_ms());
            }
        })
    }

    /// How a trace was decided, if it was and the decision is still remembered; `None` while it waits.
    pub fn decision(&self, tenant: &Tenant, trace_id: &TraceId) -> Option<Decision> {
        let state = self.state.lock();
        let key = (tenant.clone(), *trace_id);
        let name = |i: Option<u16>| i.map(|i| Arc::clone(&state.policies[i as usize].name));
        if let Some(kept) = state.sampled.get(&key) {
            return Some(Decision {
                sampled: true,
                policy: kept.policy.clone(),
                weight: kept.weight,
                threshold: kept.threshold.map(consistent::encode_threshold),
            });
        }
        state.not_sampled.get(&key).map(|policy| Decision {
            sampled: false,
            policy: name(*policy),
            weight: 0.0,
            threshold: None,
        })
    }

    /// Every trace not decided yet: waiting, or in a batch on its way into the store. A block cut must leave
    /// these in the head, where a drop can still reach them.
    pub fn undecided(&self) -> HashMap<Tenant, HashSet<TraceId>> {
        let state = self.state.lock();
        let mut out: HashMap<Tenant, HashSet<TraceId>> = HashMap::new();
        for (tenant, id) in state.waiting.keys().chain(state.in_flight.keys()) {
            out.entry(tenant.clone()).or_default().insert(*id);
        }
        out
    }

    /// Whether the trace is waiting for its decision.
    pub fn is_waiting(&self, tenant: &Tenant, trace_id: &TraceId) -> bool {
        self.state.lock().waiting.contains_key(&(tenant.clone(), *trace_id))
    }

    /// Decisions per policy, waiting traces, evictions and late spans, as counted since the start.
    pub fn counts(&self) -> SamplingCounts {
        let state = self.state.lock();
        let late = |decision| self.metrics.late_spans.get_or_create(&DecisionLabel { decision }).get();
        SamplingCounts {
            policies: (state.policies.iter().enumerate())
                .map(|(i, p)| NamedCounts { name: p.name.to_string(), counts: state.counts.snapshot(i) })
                .collect(),
            no_policy: state.counts.snapshot(state.policies.len()),
            waiting_traces: state.waiting.len(),
            evictions: self.metrics.evictions.get(),
            late_spans: LateSpans { sampled: late("sampled"), not_sampled: late("not_sampled") },
        }
    }

    /// Number of traces waiting for a decision.
    pub fn waiting_traces(&self) -> usize {
        self.state.lock().waiting.len()
    }

    /// Decides every waiting trace now, on what has arrived (for shutdown).
    pub fn flush(&self) {
        let now = self.now_ms();
        let mut out = Outcomes::default();
        let mut state = self.state.lock();
        let keys: Vec<TraceKey> = state.waiting.keys().cloned().collect();
        for key in keys {
            self.decide(&mut state, key, now, &mut out);
        }
        state.arrivals.clear();
        state.settling.clear();
        self.metrics.traces_waiting.set(0);
        self.report(out);
    }

    /// Remembers a decision the store gave back after a restart (the trace's spans and its decision were in the
    /// write-ahead log), so late spans follow it and the trace is not decided again.
    pub fn restore_kept(&self, tenant: &Tenant, trace_id: &TraceId, decision: &SamplingDecision) {
        let kept = Kept {
            policy: decision.policy.as_deref().map(Arc::from),
            weight: decision.weight,
            threshold: decision.threshold.as_deref().and_then(consistent::decode_threshold),
        };
        self.state.lock().sampled.insert((tenant.clone(), *trace_id), kept);
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn tick_period(&self) -> Duration {
        let shortest =
            self.config.root_settle_time.map_or(self.config.decision_wait, |s| s.min(self.config.decision_wait));
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Reads what the policies need from a batch's spans, decoding only when conditions or consistent
    /// sampling need span contents.
    fn observe(&self, batch: &SpanBatch) -> Vec<Observation> {
        let request = batch.request();
        let index = batch.index();
        let mut resource_bits: HashMap<u32, u64> = HashMap::new();
        let mut out = Vec::with_capacity(index.spans.len());
        for facts in &index.spans {
            if facts.trace_id_len != 16 {
                continue;
            }
            let mut observation = Observation {
                trace_id: facts.trace_id,
                start: facts.start_unix_nano,
                end: facts.end_unix_nano,
                bytes: (facts.range.end - facts.range.start) as u64,
                root: facts.parent_span_id_len == 0,
                conditions: 0,
                ot: OtValues::default(),
            };
            if self.decode_spans {
                let bytes = &request[facts.range.start as usize..facts.range.end as usize];
                // The wire scan checked these bytes; a span that still fails to scan contributes its times only.
                if let Some(span) = scan_span(bytes, &|key| self.conditions.wants_key(key)) {
                    observation.conditions = self.conditions.span_bits(&span);
                    observation.ot = consistent::parse_tracestate(span.trace_state);
                }
                let group = facts.group;
                observation.conditions |= *resource_bits.entry(group).or_insert_with(|| {
                    let resource = index.groups.get(group as usize).and_then(|g| g.resource.clone());
                    let decoded =
                        resource.and_then(|r| Resource::decode(&request[r.start as usize..r.end as usize]).ok());
                    self.conditions.resource_bits(decoded.as_ref())
                });
            }
            out.push(observation);
        }
        out
    }

    /// Records a batch's spans (already stored by the next sink) at `now_ms` on the sampler's clock.
    /// `arrived` are the batch's traces counted in `in_flight`, which they leave here.
    fn observe_at(&self, tenant: &Tenant, observations: Vec<Observation>, now_ms: u64, arrived: &[TraceKey]) {
        let mut out = Outcomes::default();
        {
            let mut state = self.state.lock();
            leave_in_flight(&mut state, arrived);
            let mut decide_now = Vec::new();
            for obs in observations {
                let key = (tenant.clone(), TraceId(obs.trace_id));
                if let Some(waiting) = state.waiting.get_mut(&key) {
                    let root_before = waiting.facts.root_seen;
                    add_span(&mut waiting.facts, &obs);
                    waiting.last_ms = now_ms;
                    if obs.root && !root_before {
                        self.schedule_settle(&mut state, key, now_ms, &mut decide_now);
                    }
                    continue;
                }
                if let Some(kept) = state.sampled.get(&key) {
                    self.metrics.late_spans.get_or_create(&DecisionLabel { decision: "sampled" }).inc();
                    // Recorded again, so the late spans' head entry (and block) carries the decision too.
                    let kept = kept.clone();
                    if out.kept.last().is_none_or(|(last, _)| *last != key) {
                        out.kept.push((key, kept));
                    }
                    continue;
                }
                if state.not_sampled.get(&key).is_some() {
                    self.metrics.late_spans.get_or_create(&DecisionLabel { decision: "not_sampled" }).inc();
                    out.drops.push(key);
                    continue;
                }
                while state.waiting.len() >= self.config.num_traces {
                    self.evict_oldest(&mut state, now_ms, &mut out);
                }
                let mut facts = TraceFacts { min_start_unix_nano: u64::MAX, ..TraceFacts::default() };
                add_span(&mut facts, &obs);
                state.waiting.insert(key.clone(), Waiting { facts, first_ms: now_ms, last_ms: now_ms });
                state.arrivals.push_back((key.clone(), now_ms));
                if obs.root {
                    self.schedule_settle(&mut state, key, now_ms, &mut decide_now);
                }
            }
            for key in decide_now {
                if state.waiting.contains_key(&key) {
                    self.decide(&mut state, key, now_ms, &mut out);
                }
            }
            self.metrics.traces_waiting.set(state.waiting.len() as i64);
            self.report(out);
        }
    }

    fn schedule_settle(&self, state: &mut State, key: TraceKey, now_ms: u64, decide_now: &mut Vec<TraceKey>) {
        match self.config.root_settle_time {
            Some(settle) if settle.is_zero() => decide_now.push(key),
            Some(settle) => state.settling.push_back((key, now_ms + settle.as_millis() as u64)),
            None => {}
        }
    }

    /// Decides the traces whose window ended or that settled after their root, as of `now_ms`.
    pub(crate) fn tick_at(&self, now_ms: u64) {
        let mut out = Outcomes::default();
        {
            let mut state = self.state.lock();
            let state = &mut *state;
            if let Some(settle) = self.config.root_settle_time {
                let settle = settle.as_millis() as u64;
                while state.settling.front().is_some_and(|(_, due)| *due <= now_ms) {
                    let (key, _) = state.settling.pop_front().expect("front exists");
                    let Some(waiting) = state.waiting.get(&key) else { continue };
                    if now_ms.saturating_sub(waiting.last_ms) >= settle {
                        self.decide(state, key, now_ms, &mut out);
                    } else {
                        let due = waiting.last_ms + settle;
                        state.settling.push_back((key, due));
                    }
                }
            }
            let wait = self.config.decision_wait.as_millis() as u64;
            while state.arrivals.front().is_some_and(|(_, first)| first + wait <= now_ms) {
                let (key, first) = state.arrivals.pop_front().expect("front exists");
                if state.waiting.get(&key).is_some_and(|w| w.first_ms == first) {
                    self.decide(state, key, now_ms, &mut out);
                }
            }
            compact(state);
            self.metrics.traces_waiting.set(state.waiting.len() as i64);
            self.report(out);
        }
    }

    fn evict_oldest(&self, state: &mut State, now_ms: u64, out: &mut Outcomes) {
        while let Some((key, first)) = state.arrivals.pop_front() {
            if state.waiting.get(&key).is_none_or(|w| w.first_ms != first) {
                continue;
            }
            self.metrics.evictions.inc();
            match self.config.on_eviction {
                EvictionMode::Decide => self.decide(state, key, now_ms, out),
                EvictionMode::Drop => {
                    state.waiting.remove(&key);
                    state.not_sampled.insert(key.clone(), None);
                    out.drops.push(key);
                }
            }
            return;
        }
        // Every waiting trace has an arrival entry, so this is unreachable; never loop forever on a bug.
        if let Some(key) = state.waiting.keys().next().cloned() {
            self.decide(state, key, now_ms, out);
        }
    }

    fn decide(&self, state: &mut State, key: TraceKey, now_ms: u64, out: &mut Outcomes) {
        let Some(waiting) = state.waiting.remove(&key) else { return };
        let subject = Subject { trace_id: &key.1.0, facts: &waiting.facts, now_ms };
        let metrics = &self.metrics;
        let names: Vec<Arc<str>> = state.policies.iter().map(|p| Arc::clone(&p.name)).collect();
        let counts = &mut state.counts;
        let verdict: Verdict =
            policy::decide(&mut state.policies, &subject, self.config.sample_on_first_match, |i, vote| {
                counts.vote(i, vote);
                metrics
                    .policy_votes
                    .get_or_create(&PolicyLabel { policy: names[i].to_string(), decision: vote.label() })
                    .inc();
            });
        let policy_label = verdict.policy.map_or_else(|| "none".to_string(), |i| names[i].to_string());
        let decision = if verdict.sampled { "sampled" } else { "not_sampled" };
        metrics.traces_decided.get_or_create(&PolicyLabel { policy: policy_label, decision }).inc();
        state.counts.decided(verdict.policy, verdict.sampled);
        if verdict.sampled {
            let policy = verdict.policy.map(|i| Arc::clone(&names[i]));
            let kept = Kept { policy, weight: verdict.weight, threshold: verdict.threshold };
            state.sampled.insert(key.clone(), kept.clone());
            out.kept.push((key, kept));
        } else {
            state.not_sampled.insert(key.clone(), verdict.policy.map(|i| i as u16));
            out.drops.push(key);
        }
    }

    /// Tells the store what was decided, per tenant. Called with the state lock held (see the module docs).
    fn report(&self, out: Outcomes) {
        let Outcomes { mut drops, mut kept } = out;
        drops.sort_unstable();
        drops.dedup();
        for chunk in drops.chunk_by(|a, b| a.0 == b.0) {
            let ids: Vec<TraceId> = chunk.iter().map(|(_, id)| *id).collect();
            self.dropper.drop_traces(&chunk[0].0, &ids);
        }
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        kept.dedup_by(|a, b| a.0 == b.0);
        for chunk in kept.chunk_by(|a, b| a.0.0 == b.0.0) {
            let decisions: Vec<(TraceId, SamplingDecision)> =
                chunk.iter().map(|((_, id), kept)| (*id, kept.to_decision())).collect();
            self.dropper.keep_traces(&chunk[0].0.0, &decisions);
        }
    }
}

fn add_span(facts: &mut TraceFacts, obs: &Observation) {
    facts.span_count += 1;
    facts.bytes += obs.bytes;
    facts.min_start_unix_nano = facts.min_start_unix_nano.min(obs.start);
    facts.max_end_unix_nano = facts.max_end_unix_nano.max(obs.end);
    facts.conditions |= obs.conditions;
    if facts.randomness.is_none() {
        facts.randomness = obs.ot.randomness;
    }
    // The root's threshold is the head sampler's; any span's will do until the root arrives.
    if (obs.root && obs.ot.threshold.is_some()) || facts.incoming_threshold.is_none() {
        facts.incoming_threshold = obs.ot.threshold;
    }
    facts.root_seen |= obs.root;
}

/// Drops queue entries of traces decided early once they dominate, so the queues stay proportional to the
/// number of waiting traces even when most traces are decided early.
fn compact(state: &mut State) {
    let bound = 2 * state.waiting.len() + 1024;
    if state.arrivals.len() > bound {
        let waiting = &state.waiting;
        state.arrivals.retain(|(key, first)| waiting.get(key).is_some_and(|w| w.first_ms == *first));
    }
    if state.settling.len() > bound {
        let waiting = &state.waiting;
        state.settling.retain(|(key, _)| waiting.contains_key(key));
    }
}

impl TailSampler {
    /// Records spans that are already stored without forwarding them: after a restart, the traces the
    /// write-ahead log gave back still wait for their decision.
    pub fn observe_stored(&self, batch: &SpanBatch) {
        let observations = self.observe(batch);
        self.observe_at(&batch.tenant, observations, self.now_ms(), &[]);
    }
}

fn leave_in_flight(state: &mut State, keys: &[TraceKey]) {
    for key in keys {
        if let Some(count) = state.in_flight.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                state.in_flight.remove(key);
            }
        }
    }
}

/// A batch on its way into the store: its traces count as undecided (a cut leaves them in the head) until
/// [`TailSampler::observe_at`] has them waiting. Dropped unfinished (the request was cancelled), the batch still
/// reaches the store, so it is observed then.
struct InFlightBatch<'a> {
    sampler: &'a TailSampler,
    tenant: Tenant,
    keys: Vec<TraceKey>,
    observations: Option<Vec<Observation>>,
}

impl<'a> InFlightBatch<'a> {
    fn enter(sampler: &'a TailSampler, tenant: Tenant, observations: Vec<Observation>) -> Self {
        let mut keys: Vec<TraceKey> = observations.iter().map(|o| (tenant.clone(), TraceId(o.trace_id))).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut state = sampler.state.lock();
        for key in &keys {
            *state.in_flight.entry(key.clone()).or_default() += 1;
        }
        drop(state);
        Self { sampler, tenant, keys, observations: Some(observations) }
    }

    /// `stored`: the next stage took the batch, so its traces wait for their decision; else they are forgotten.
    fn finish(&mut self, stored: bool) {
        let Some(observations) = self.observations.take() else { return };
        if stored {
            self.sampler.observe_at(&self.tenant, observations, self.sampler.now_ms(), &self.keys);
        } else {
            leave_in_flight(&mut self.sampler.state.lock(), &self.keys);
        }
    }
}

impl Drop for InFlightBatch<'_> {
    fn drop(&mut self) {
        self.finish(true);
    }
}

impl SpanSink for TailSampler {
    fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        Box::pin(async move {
            let observations = self.observe(&batch);
            let mut in_flight = InFlightBatch::enter(self, batch.tenant.clone(), observations);
            let stored = self.next.consume(batch).await;
            // Only after the spans are stored, so a drop can never overtake them.
            in_flight.finish(stored.is_ok());
            stored
        })
    }
}

#[cfg(test)]
impl TailSampler {
    /// Records a batch at a chosen time, without forwarding it (tests drive the clock).
    pub(crate) fn record_at(&self, batch: &SpanBatch, now_ms: u64) {
        let observations = self.observe(batch);
        self.observe_at(&batch.tenant, observations, now_ms, &[]);
    }

    /// Waiting traces, queue entries and cached decisions: what the memory bound is about.
    pub(crate) fn buffer_sizes(&self) -> (usize, usize, usize, usize) {
        let state = self.state.lock();
        (state.waiting.len(), state.arrivals.len(), state.settling.len(), state.sampled.len() + state.not_sampled.len())
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// The memory bound per waiting trace stays small: a map entry, an arrival entry and at most a settle entry.
    #[test]
    fn a_waiting_trace_costs_a_few_hundred_bytes() {
        let entry = std::mem::size_of::<(TraceKey, Waiting)>();
        let queued = std::mem::size_of::<(TraceKey, u64)>();
        println!("waiting trace: map entry {entry} B, queue entry {queued} B");
        assert!(entry + 2 * queued <= 256, "{entry} + 2 × {queued}");
    }
}
