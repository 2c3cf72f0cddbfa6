//! Policies compiled from configuration, and how each votes on a waiting trace.
//!
//! Votes and the final rule are the collector's: any `Dropped` drops the trace; else an `InvertNotSampled` (an
//! inverted attribute match that matched) vetoes; else any `Sampled` keeps it; else an `InvertSampled` keeps it
//! unless some policy said `NotSampled`; else it is not sampled.

use std::collections::HashSet;
use std::sync::Arc;

use regex::Regex;

use super::config::{PolicyConfig, PolicyType, ProbabilisticMode};
use super::consistent;
use super::limiter::TokenBucket;
use super::matcher::{Condition, Conditions, StringValues, status_bits};

const DEFAULT_HASH_SALT: &str = "default-hash-seed";

/// What the sampler knows about a waiting trace.
#[derive(Debug, Clone, Default)]
pub struct TraceFacts {
    pub span_count: u64,
    /// Encoded size of its spans.
    pub bytes: u64,
    pub min_start_unix_nano: u64,
    pub max_end_unix_nano: u64,
    /// One bit per [`Condition`]: some span (or its resource) matched.
    pub conditions: u64,
    pub root_seen: bool,
    /// `ot=rv` of the first span that carried one.
    pub randomness: Option<u64>,
    /// `ot=th` of the root span, else of the first span that carried one: how it was sampled upstream.
    pub incoming_threshold: Option<u64>,
}

impl TraceFacts {
    pub fn duration_ms(&self) -> i64 {
        (self.max_end_unix_nano.saturating_sub(self.min_start_unix_nano) / 1_000_000) as i64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vote {
    Sampled,
    NotSampled,
    InvertSampled,
    InvertNotSampled,
    Dropped,
}

impl Vote {
    pub fn label(self) -> &'static str {
        match self {
            Vote::Sampled => "sampled",
            Vote::NotSampled => "not_sampled",
            Vote::InvertSampled => "inverted_sampled",
            Vote::InvertNotSampled => "inverted_not_sampled",
            Vote::Dropped => "dropped",
        }
    }

    fn is_sampled(self) -> bool {
        matches!(self, Vote::Sampled | Vote::InvertSampled)
    }
}

/// A vote with what a keep means statistically: the adjusted count (1 / probability of being kept) and, for
/// consistent probability sampling, the OTEP 235 threshold in effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub vote: Vote,
    pub weight: f64,
    pub threshold: Option<u64>,
}

impl Outcome {
    fn of(vote: Vote) -> Self {
        Self { vote, weight: 1.0, threshold: None }
    }
}

/// What a policy sees: the trace, its facts and the sampler's clock.
pub struct Subject<'a> {
    pub trace_id: &'a [u8; 16],
    pub facts: &'a TraceFacts,
    pub now_ms: u64,
}

#[derive(Debug)]
pub enum Policy {
    AlwaysSample,
    Latency { threshold_ms: i64, upper_threshold_ms: i64 },
    Condition { bit: u8, invert: bool },
    HashProbabilistic { salt: Vec<u8>, threshold: u64, weight: f64 },
    ConsistentProbabilistic { threshold: Option<u64> },
    RateLimiting(TokenBucket),
    BytesLimiting(TokenBucket),
    SpanCount { min: u64, max: u64 },
    And(Vec<Policy>),
    Not(Box<Policy>),
    Drop(Vec<Policy>),
    Composite(Composite),
}

#[derive(Debug)]
pub struct Composite {
    max_total: u64,
    second: Option<u64>,
    subs: Vec<CompositeSub>,
}

#[derive(Debug)]
struct CompositeSub {
    policy: Policy,
    allocated: u64,
    used: u64,
}

/// A top-level policy and its name (the label of its counters and the recorded reason of the traces it keeps).
#[derive(Debug)]
pub struct NamedPolicy {
    pub name: Arc<str>,
    pub policy: Policy,
}

impl Policy {
    /// Whether consistent probability sampling is used anywhere in the tree (it needs spans' tracestate).
    pub fn uses_consistent(&self) -> bool {
        match self {
            Policy::ConsistentProbabilistic { .. } => true,
            Policy::And(subs) | Policy::Drop(subs) => subs.iter().any(Policy::uses_consistent),
            Policy::Not(sub) => sub.uses_consistent(),
            Policy::Composite(c) => c.subs.iter().any(|s| s.policy.uses_consistent()),
            _ => false,
        }
    }

    pub fn evaluate(&mut self, subject: &Subject<'_>) -> Outcome {
        let facts = subject.facts;
        match self {
            Policy::AlwaysSample => Outcome::of(Vote::Sampled),
            Policy::Latency { threshold_ms, upper_threshold_ms } => {
                let d = facts.duration_ms();
                let hit = if *upper_threshold_ms == 0 {
                    d >= *threshold_ms
                } else {
                    *threshold_ms < d && d <= *upper_threshold_ms
                };
                Outcome::of(if hit { Vote::Sampled } else { Vote::NotSampled })
            }
            Policy::Condition { bit, invert } => {
                let matched = facts.conditions & (1 << *bit) != 0;
                Outcome::of(match (*invert, matched) {
                    (false, true) => Vote::Sampled,
                    (false, false) => Vote::NotSampled,
                    (true, true) => Vote::InvertNotSampled,
                    (true, false) => Vote::InvertSampled,
                })
            }
            Policy::HashProbabilistic { salt, threshold, weight } => {
                if hash_trace_id(salt, subject.trace_id) <= *threshold {
                    Outcome { vote: Vote::Sampled, weight: *weight, threshold: None }
                } else {
                    Outcome::of(Vote::NotSampled)
                }
            }
            Policy::ConsistentProbabilistic { threshold } => {
                let Some(ours) = *threshold else { return Outcome::of(Vote::NotSampled) };
                let randomness = facts.randomness.unwrap_or_else(|| consistent::trace_id_randomness(subject.trace_id));
                match consistent::equalize(randomness, facts.incoming_threshold, ours) {
                    Some(t) => {
                        // The weight is relative to what arrived: upstream already accounted for its own share.
                        let upstream = facts.incoming_threshold.map_or(1.0, consistent::adjusted_count);
                        Outcome {
                            vote: Vote::Sampled,
                            weight: consistent::adjusted_count(t) / upstream,
                            threshold: Some(t),
                        }
                    }
                    None => Outcome::of(Vote::NotSampled),
                }
            }
            Policy::RateLimiting(bucket) => Outcome::of(if bucket.allow(subject.now_ms, facts.span_count) {
                Vote::Sampled
            } else {
                Vote::NotSampled
            }),
            Policy::BytesLimiting(bucket) => {
                Outcome::of(if bucket.allow(subject.now_ms, facts.bytes) { Vote::Sampled } else { Vote::NotSampled })
            }
            Policy::SpanCount { min, max } => {
                let n = facts.span_count;
                Outcome::of(if n >= *min && (*max == 0 || n <= *max) { Vote::Sampled } else { Vote::NotSampled })
            }
            Policy::And(subs) => {
                let mut combined = Outcome::of(Vote::Sampled);
                for sub in subs {
                    let outcome = sub.evaluate(subject);
                    if !outcome.vote.is_sampled() {
                        return Outcome::of(Vote::NotSampled);
                    }
                    // Independent filters multiply: kept by a 10% policy among slow traces stands for 10 of them.
                    combined.weight *= outcome.weight;
                    combined.threshold = combined.threshold.max(outcome.threshold);
                }
                combined
            }
            Policy::Not(sub) => match sub.evaluate(subject).vote {
                Vote::Sampled | Vote::InvertSampled => Outcome::of(Vote::NotSampled),
                Vote::NotSampled | Vote::InvertNotSampled => Outcome::of(Vote::Sampled),
                Vote::Dropped => Outcome::of(Vote::Dropped),
            },
            Policy::Drop(subs) => {
                for sub in subs {
                    if !sub.evaluate(subject).vote.is_sampled() {
                        return Outcome::of(Vote::NotSampled);
                    }
                }
                Outcome::of(Vote::Dropped)
            }
            Policy::Composite(composite) => composite.evaluate(subject),
        }
    }
}

impl Composite {
    /// The first sub-policy (in `policy_order`) that samples decides: the trace is kept iff its spans still fit
    /// that sub-policy's share and the total for the current second. No fall-through to later sub-policies.
    fn evaluate(&mut self, subject: &Subject<'_>) -> Outcome {
        let second = subject.now_ms / 1000;
        if self.second != Some(second) {
            self.second = Some(second);
            self.subs.iter_mut().for_each(|s| s.used = 0);
        }
        let spans = subject.facts.span_count;
        let total_used: u64 = self.subs.iter().map(|s| s.used).sum();
        for sub in &mut self.subs {
            let outcome = sub.policy.evaluate(subject);
            if outcome.vote.is_sampled() {
                let after = sub.used + spans;
                if after <= sub.allocated && total_used + spans <= self.max_total {
                    sub.used = after;
                    return Outcome { vote: Vote::Sampled, ..outcome };
                }
                return Outcome::of(Vote::NotSampled);
            }
        }
        Outcome::of(Vote::NotSampled)
    }
}

/// FNV-1a (64 bit) over the salt and the 16-byte trace id: the collector's probabilistic policy hash.
pub fn hash_trace_id(salt: &[u8], trace_id: &[u8; 16]) -> u64 {
    const OFFSET: u64 = 0xcbf29ce484222325;
    const PRIME: u64 = 0x100000001b3;
    salt.iter().chain(trace_id.iter()).fold(OFFSET, |hash, byte| (hash ^ *byte as u64).wrapping_mul(PRIME))
}

/// ⌊ratio × (2^64 − 1)⌋ computed as the collector does: the product rounded to 64 significant bits (nearest
/// even), then truncated to an integer.
pub fn hash_threshold(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio >= 1.0 {
        return u64::MAX;
    }
    let bits = ratio.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, mut exp) = if exponent == 0 { (fraction, -1074) } else { (fraction | (1 << 52), exponent - 1075) };
    let mut product = u64::MAX as u128 * mantissa as u128;
    let significant = 128 - product.leading_zeros() as i32;
    if significant > 64 {
        let drop = (significant - 64) as u32;
        let rest = product & ((1u128 << drop) - 1);
        let half = 1u128 << (drop - 1);
        product >>= drop;
        if rest > half || (rest == half && product & 1 == 1) {
            product += 1;
        }
        exp += drop as i32;
    }
    let value = if exp >= 0 {
        product.checked_shl(exp as u32).unwrap_or(u128::MAX)
    } else if -exp >= 128 {
        0
    } else {
        product >> (-exp) as u32
    };
    value.min(u64::MAX as u128) as u64
}

/// Compiles the configured policies; errors name the policy.
pub fn compile(configs: &[PolicyConfig], conditions: &mut Conditions) -> Result<Vec<NamedPolicy>, String> {
    let mut names = HashSet::new();
    configs
        .iter()
        .map(|config| {
            if config.name.is_empty() {
                return Err("every policy needs a name".to_string());
            }
            if !names.insert(config.name.as_str()) {
                return Err(format!("policy name {:?} is used twice", config.name));
            }
            let policy = compile_one(config, conditions, true).map_err(|e| format!("policy {:?}: {e}", config.name))?;
            Ok(NamedPolicy { name: Arc::from(config.name.as_str()), policy })
        })
        .collect()
}

fn block<'a, T>(value: &'a Option<T>, kind: &str) -> Result<&'a T, String> {
    value.as_ref().ok_or_else(|| format!("type {kind} needs a `{kind}` block with its settings"))
}

fn compile_one(config: &PolicyConfig, conditions: &mut Conditions, allow_composite: bool) -> Result<Policy, String> {
    Ok(match config.kind {
        PolicyType::AlwaysSample => Policy::AlwaysSample,
        PolicyType::Latency => {
            let c = block(&config.latency, "latency")?;
            if c.upper_threshold_ms != 0 && c.upper_threshold_ms < c.threshold_ms {
                return Err("latency upper_threshold_ms must be at least threshold_ms".into());
            }
            Policy::Latency { threshold_ms: c.threshold_ms, upper_threshold_ms: c.upper_threshold_ms }
        }
        PolicyType::NumericAttribute => {
            let c = block(&config.numeric_attribute, "numeric_attribute")?;
            if c.min_value.is_none() && c.max_value.is_none() {
                return Err("numeric_attribute needs min_value, max_value or both".into());
            }
            let condition = Condition::Numeric {
                key: c.key.clone(),
                min: c.min_value.unwrap_or(i64::MIN),
                max: c.max_value.unwrap_or(i64::MAX),
            };
            Policy::Condition { bit: conditions.add(condition)?, invert: c.invert_match }
        }
        PolicyType::Probabilistic => {
            let c = block(&config.probabilistic, "probabilistic")?;
            if !(0.0..=100.0).contains(&c.sampling_percentage) {
                return Err("sampling_percentage must be within 0 and 100".into());
            }
            let ratio = c.sampling_percentage / 100.0;
            match c.mode {
                ProbabilisticMode::Hash => {
                    let salt = if c.hash_salt.is_empty() { DEFAULT_HASH_SALT } else { c.hash_salt.as_str() };
                    Policy::HashProbabilistic {
                        salt: salt.as_bytes().to_vec(),
                        threshold: hash_threshold(ratio),
                        weight: if ratio > 0.0 { 1.0 / ratio } else { 1.0 },
                    }
                }
                ProbabilisticMode::Consistent => {
                    Policy::ConsistentProbabilistic { threshold: consistent::probability_to_threshold(ratio, 14) }
                }
            }
        }
        PolicyType::StatusCode => {
            let c = block(&config.status_code, "status_code")?;
            let condition = Condition::Status { codes: status_bits(&c.status_codes)? };
            Policy::Condition { bit: conditions.add(condition)?, invert: false }
        }
        PolicyType::StringAttribute => {
            let c = block(&config.string_attribute, "string_attribute")?;
            if c.values.is_empty() {
                return Err("string_attribute needs at least one value".into());
            }
            let values = if c.enabled_regex_matching {
                let patterns = c.values.iter().map(|v| Regex::new(v).map_err(|e| format!("invalid regex {v:?}: {e}")));
                StringValues::Regex(patterns.collect::<Result<_, _>>()?)
            } else {
                StringValues::Exact(c.values.iter().cloned().collect())
            };
            let condition = Condition::StringValue { key: c.key.clone(), values };
            Policy::Condition { bit: conditions.add(condition)?, invert: c.invert_match }
        }
        PolicyType::BooleanAttribute => {
            let c = block(&config.boolean_attribute, "boolean_attribute")?;
            let condition = Condition::Boolean { key: c.key.clone(), value: c.value };
            Policy::Condition { bit: conditions.add(condition)?, invert: c.invert_match }
        }
        PolicyType::RateLimiting => {
            let c = block(&config.rate_limiting, "rate_limiting")?;
            Policy::RateLimiting(TokenBucket::new(c.spans_per_second, c.spans_per_second.saturating_mul(2)))
        }
        PolicyType::BytesLimiting => {
            let c = block(&config.bytes_limiting, "bytes_limiting")?;
            let burst = if c.burst_capacity == 0 { c.bytes_per_second.saturating_mul(2) } else { c.burst_capacity };
            Policy::BytesLimiting(TokenBucket::new(c.bytes_per_second, burst))
        }
        PolicyType::SpanCount => {
            let c = block(&config.span_count, "span_count")?;
            if c.max_spans != 0 && c.max_spans < c.min_spans {
                return Err("span_count max_spans must be at least min_spans".into());
            }
            Policy::SpanCount { min: c.min_spans, max: c.max_spans }
        }
        PolicyType::TraceState => {
            let c = block(&config.trace_state, "trace_state")?;
            if c.values.is_empty() {
                return Err("trace_state needs at least one value".into());
            }
            let condition = Condition::TraceState { key: c.key.clone(), values: c.values.clone() };
            Policy::Condition { bit: conditions.add(condition)?, invert: false }
        }
        PolicyType::TraceFlags => Policy::Condition { bit: conditions.add(Condition::SampledFlag)?, invert: false },
        PolicyType::And => {
            let c = block(&config.and, "and")?;
            Policy::And(compile_subs(&c.and_sub_policy, conditions, "and")?)
        }
        PolicyType::Not => {
            let c = block(&config.not, "not")?;
            Policy::Not(Box::new(compile_one(&c.not_sub_policy, conditions, false)?))
        }
        PolicyType::Drop => {
            let c = block(&config.drop, "drop")?;
            Policy::Drop(compile_subs(&c.drop_sub_policy, conditions, "drop")?)
        }
        PolicyType::Composite => {
            if !allow_composite {
                return Err("a composite policy cannot be nested".into());
            }
            let c = block(&config.composite, "composite")?;
            let n = c.composite_sub_policy.len().max(1) as u64;
            let mut subs = Vec::new();
            // `policy_order` first; sub-policies it leaves out follow in declaration order, as the collector
            // evaluates every declared sub-policy.
            let unlisted = c.composite_sub_policy.iter().map(|p| &p.name).filter(|n| !c.policy_order.contains(n));
            for name in c.policy_order.iter().chain(unlisted) {
                let sub = c
                    .composite_sub_policy
                    .iter()
                    .find(|p| &p.name == name)
                    .ok_or_else(|| format!("policy_order names {name:?}, which is not a composite_sub_policy"))?;
                // Collector rule: a listed share of 0 means an equal share; a sub-policy not listed gets none.
                let allocated = match c.rate_allocation.iter().find(|a| &a.policy == name) {
                    Some(a) if a.percent > 0 => c.max_total_spans_per_second * a.percent / 100,
                    Some(_) => c.max_total_spans_per_second / n,
                    None => 0,
                };
                let policy = compile_one(sub, conditions, false).map_err(|e| format!("sub-policy {name:?}: {e}"))?;
                subs.push(CompositeSub { policy, allocated, used: 0 });
            }
            if subs.is_empty() {
                return Err("composite needs at least one composite_sub_policy".into());
            }
            Policy::Composite(Composite { max_total: c.max_total_spans_per_second, second: None, subs })
        }
    })
}

fn compile_subs(configs: &[PolicyConfig], conditions: &mut Conditions, kind: &str) -> Result<Vec<Policy>, String> {
    if configs.is_empty() {
        return Err(format!("{kind} needs at least one sub-policy"));
    }
    configs
        .iter()
        .map(|c| compile_one(c, conditions, false).map_err(|e| format!("sub-policy {:?}: {e}", c.name)))
        .collect()
}

/// The outcome of all policies for one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub sampled: bool,
    /// The policy that kept the trace, or that dropped or vetoed it.
    pub policy: Option<usize>,
    pub weight: f64,
    pub threshold: Option<u64>,
}

/// Runs the policies in order and applies the final decision rule. `on_vote` sees every policy's vote (for
/// the per-policy counters).
pub fn decide(
    policies: &mut [NamedPolicy],
    subject: &Subject<'_>,
    sample_on_first_match: bool,
    mut on_vote: impl FnMut(usize, Vote),
) -> Verdict {
    let mut first_dropped = None;
    let mut first_veto = None;
    let mut best_sampled: Option<(usize, Outcome)> = None;
    let mut first_invert_sampled = None;
    let mut any_not_sampled = false;
    for (i, named) in policies.iter_mut().enumerate() {
        let outcome = named.policy.evaluate(subject);
        on_vote(i, outcome.vote);
        match outcome.vote {
            Vote::Dropped => {
                first_dropped = Some(i);
                break;
            }
            Vote::InvertNotSampled => {
                first_veto.get_or_insert(i);
            }
            Vote::Sampled => {
                // The reason recorded is the policy that keeps it with the highest probability (an error
                // policy over a 10% one): its adjusted count is the right one for scaling counts back.
                if best_sampled.is_none_or(|(_, best)| outcome.weight < best.weight) {
                    best_sampled = Some((i, outcome));
                }
                if sample_on_first_match {
                    break;
                }
            }
            Vote::InvertSampled => {
                first_invert_sampled.get_or_insert((i, outcome));
            }
            Vote::NotSampled => any_not_sampled = true,
        }
    }
    let not_sampled = |policy| Verdict { sampled: false, policy, weight: 0.0, threshold: None };
    let kept =
        |(i, o): (usize, Outcome)| Verdict { sampled: true, policy: Some(i), weight: o.weight, threshold: o.threshold };
    if first_dropped.is_some() {
        return not_sampled(first_dropped);
    }
    if first_veto.is_some() {
        return not_sampled(first_veto);
    }
    if let Some(best) = best_sampled {
        return kept(best);
    }
    match first_invert_sampled {
        Some(invert) if !any_not_sampled => kept(invert),
        _ => not_sampled(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        let fnv =
            |bytes: &[u8]| bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3));
        assert_eq!(fnv(b""), 0xcbf29ce484222325);
        assert_eq!(fnv(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv(b"foobar"), 0x85944171f73967e8);
        let id = [7u8; 16];
        let mut joined = b"salt".to_vec();
        joined.extend_from_slice(&id);
        assert_eq!(hash_trace_id(b"salt", &id), fnv(&joined));
    }

    #[test]
    fn hash_thresholds_scale_the_full_range() {
        assert_eq!(hash_threshold(0.0), 0);
        assert_eq!(hash_threshold(1.0), u64::MAX);
        assert_eq!(hash_threshold(0.5), (1u64 << 63) - 1);
        assert_eq!(hash_threshold(0.25), (1u64 << 62) - 1);
        let tenth = hash_threshold(0.1);
        assert!((tenth as f64 / u64::MAX as f64 - 0.1).abs() < 1e-15);
    }
}
