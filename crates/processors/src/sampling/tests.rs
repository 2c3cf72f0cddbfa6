//! Synthetic traces with known properties in, the exact kept set out.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value::Value};
use clew_model::{Accepted, SamplingDecision, SinkError, SpanBatch, SpanSink, Tenant, TraceDropper, TraceId};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

use super::*;

/// Records every drop and keep call: the sampler's only output besides `decision`.
#[derive(Default)]
struct RecordingDropper {
    calls: Mutex<Vec<(Tenant, Vec<TraceId>)>>,
    kept: Mutex<Vec<(Tenant, TraceId, SamplingDecision)>>,
}

impl TraceDropper for RecordingDropper {
    fn drop_traces(&self, tenant: &Tenant, trace_ids: &[TraceId]) {
        self.calls.lock().push((tenant.clone(), trace_ids.to_vec()));
    }

    fn keep_traces(&self, tenant: &Tenant, kept: &[(TraceId, SamplingDecision)]) {
        self.kept.lock().extend(kept.iter().map(|(id, d)| (tenant.clone(), *id, d.clone())));
    }
}

impl RecordingDropper {
    fn dropped(&self) -> BTreeSet<u128> {
        self.calls.lock().iter().flat_map(|(_, ids)| ids.iter().map(|id| u128::from_be_bytes(id.0))).collect()
    }
}

#[derive(Default)]
struct CountingSink {
    spans: Mutex<usize>,
}

impl SpanSink for CountingSink {
    fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        *self.spans.lock() += batch.span_count();
        Box::pin(async { Ok(Accepted::all()) })
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

fn string(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

/// A span of trace `trace` starting at `start_ms` lasting `duration_ms`; `parent` None makes it the root.
fn span(trace: u128, id: u64, parent: Option<u64>, start_ms: u64, duration_ms: u64) -> Span {
    Span {
        trace_id: trace.to_be_bytes().to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: format!("op-{id}"),
        start_time_unix_nano: 1_700_000_000_000_000_000 + start_ms * 1_000_000,
        end_time_unix_nano: 1_700_000_000_000_000_000 + (start_ms + duration_ms) * 1_000_000,
        ..Span::default()
    }
}

fn with_status(mut span: Span, code: i32) -> Span {
    span.status = Some(Status { code, message: String::new() });
    span
}

fn with_attr(mut span: Span, attr: KeyValue) -> Span {
    span.attributes.push(attr);
    span
}

fn batch_of(resource: Vec<KeyValue>, spans: Vec<Span>) -> SpanBatch {
    let rs = ResourceSpans {
        resource: Some(Resource { attributes: resource, ..Resource::default() }),
        scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
        ..ResourceSpans::default()
    };
    SpanBatch::from_resource_spans(Tenant::default_tenant(), vec![rs]).unwrap()
}

fn simple(trace: u128) -> Vec<Span> {
    vec![span(trace, 1, None, 0, 10), span(trace, 2, Some(1), 1, 5)]
}

fn config(policies: Vec<PolicyConfig>) -> TailSamplingConfig {
    TailSamplingConfig {
        enabled: true,
        decision_wait: Duration::from_secs(10),
        root_settle_time: None,
        policies,
        ..TailSamplingConfig::default()
    }
}

fn sampler(config: TailSamplingConfig) -> (Arc<TailSampler>, Arc<RecordingDropper>) {
    let dropper = Arc::new(RecordingDropper::default());
    let sampler =
        TailSampler::new(config, Arc::new(CountingSink::default()), dropper.clone(), &mut Registry::default()).unwrap();
    (sampler, dropper)
}

/// Feeds each trace's spans as one batch at t=0, runs the decision after `decision_wait`, returns the kept ids.
fn kept(policies: Vec<PolicyConfig>, traces: Vec<(u128, Vec<KeyValue>, Vec<Span>)>) -> BTreeSet<u128> {
    let (sampler, dropper) = sampler(config(policies));
    let all: BTreeSet<u128> = traces.iter().map(|(id, _, _)| *id).collect();
    for (_, resource, spans) in traces {
        sampler.record_at(&batch_of(resource, spans), 0);
    }
    sampler.tick_at(10_000);
    assert_eq!(sampler.waiting_traces(), 0);
    let dropped = dropper.dropped();
    assert!(dropped.is_subset(&all));
    all.difference(&dropped).copied().collect()
}

fn set(ids: &[u128]) -> BTreeSet<u128> {
    ids.iter().copied().collect()
}

fn policy(name: &str, kind: PolicyType) -> PolicyConfig {
    PolicyConfig::new(name, kind)
}

fn latency(name: &str, threshold_ms: i64, upper_threshold_ms: i64) -> PolicyConfig {
    PolicyConfig {
        latency: Some(LatencyConfig { threshold_ms, upper_threshold_ms }),
        ..policy(name, PolicyType::Latency)
    }
}

fn errors(name: &str) -> PolicyConfig {
    PolicyConfig {
        status_code: Some(StatusCodeConfig { status_codes: vec!["ERROR".into()] }),
        ..policy(name, PolicyType::StatusCode)
    }
}

fn probabilistic(name: &str, percentage: f64) -> PolicyConfig {
    PolicyConfig {
        probabilistic: Some(ProbabilisticConfig {
            hash_salt: String::new(),
            sampling_percentage: percentage,
            mode: ProbabilisticMode::Hash,
        }),
        ..policy(name, PolicyType::Probabilistic)
    }
}

fn string_attribute(name: &str, key: &str, values: &[&str], regex: bool, invert: bool) -> PolicyConfig {
    PolicyConfig {
        string_attribute: Some(StringAttributeConfig {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
            enabled_regex_matching: regex,
            cache_max_size: 0,
            invert_match: invert,
        }),
        ..policy(name, PolicyType::StringAttribute)
    }
}

fn plain(id: u128) -> (u128, Vec<KeyValue>, Vec<Span>) {
    (id, vec![], simple(id))
}

#[test]
fn always_sample_keeps_everything() {
    assert_eq!(kept(vec![policy("all", PolicyType::AlwaysSample)], vec![plain(1), plain(2)]), set(&[1, 2]));
}

#[test]
fn no_policy_keeps_nothing() {
    assert_eq!(kept(vec![], vec![plain(1), plain(2)]), set(&[]));
}

#[test]
fn latency_uses_the_whole_trace_duration() {
    let trace = |id, spans: Vec<(u64, u64)>| {
        let spans = spans.iter().enumerate().map(|(i, (s, d))| span(id, i as u64 + 1, (i > 0).then_some(1), *s, *d));
        (id, vec![], spans.collect())
    };
    // 1: 100ms; 2: spans 0..50 and 400..500 → 500ms overall; 3: 1000ms; 4: exactly 250ms.
    let traces = || {
        vec![
            trace(1, vec![(0, 100)]),
            trace(2, vec![(0, 50), (400, 100)]),
            trace(3, vec![(0, 1000)]),
            trace(4, vec![(0, 250)]),
        ]
    };
    assert_eq!(kept(vec![latency("slow", 250, 0)], traces()), set(&[2, 3, 4]));
    // With an upper bound the lower one is exclusive: threshold < d ≤ upper.
    assert_eq!(kept(vec![latency("band", 250, 500)], traces()), set(&[2]));
}

#[test]
fn numeric_attribute_matches_spans_and_resources() {
    let numeric = |invert| PolicyConfig {
        numeric_attribute: Some(NumericAttributeConfig {
            key: "http.status_code".into(),
            min_value: Some(500),
            max_value: Some(599),
            invert_match: invert,
        }),
        ..policy("5xx", PolicyType::NumericAttribute)
    };
    let traces = || {
        vec![
            (1, vec![], vec![with_attr(span(1, 1, None, 0, 1), kv("http.status_code", Value::IntValue(503)))]),
            (2, vec![], vec![with_attr(span(2, 1, None, 0, 1), kv("http.status_code", Value::IntValue(200)))]),
            (3, vec![kv("http.status_code", Value::IntValue(500))], simple(3)),
            (4, vec![], vec![with_attr(span(4, 1, None, 0, 1), string("http.status_code", "503"))]),
            plain(5),
        ]
    };
    assert_eq!(kept(vec![numeric(false)], traces()), set(&[1, 3]));
    // Inverted: kept when nothing matched.
    assert_eq!(kept(vec![numeric(true)], traces()), set(&[2, 4, 5]));
}

#[test]
fn status_code_keeps_traces_with_any_matching_span() {
    let traces = vec![
        (1, vec![], vec![span(1, 1, None, 0, 10), with_status(span(1, 2, Some(1), 0, 1), 2)]),
        (2, vec![], vec![with_status(span(2, 1, None, 0, 10), 1)]),
        plain(3),
    ];
    assert_eq!(kept(vec![errors("errors")], traces.clone()), set(&[1]));
    let ok_or_unset = PolicyConfig {
        status_code: Some(StatusCodeConfig { status_codes: vec!["OK".into(), "UNSET".into()] }),
        ..policy("fine", PolicyType::StatusCode)
    };
    // Trace 1 has an unset root too.
    assert_eq!(kept(vec![ok_or_unset], traces), set(&[1, 2, 3]));
}

#[test]
fn string_attribute_exact_regex_and_inverted() {
    let traces = || {
        vec![
            (1, vec![string("service.name", "checkout")], simple(1)),
            (2, vec![], vec![with_attr(span(2, 1, None, 0, 1), string("service.name", "checkout-v2"))]),
            (3, vec![string("service.name", "cart")], simple(3)),
            (4, vec![], vec![with_attr(span(4, 1, None, 0, 1), kv("service.name", Value::IntValue(1)))]),
        ]
    };
    assert_eq!(kept(vec![string_attribute("svc", "service.name", &["checkout"], false, false)], traces()), set(&[1]));
    assert_eq!(kept(vec![string_attribute("svc", "service.name", &["^check"], true, false)], traces()), set(&[1, 2]));
    assert_eq!(
        kept(vec![string_attribute("svc", "service.name", &["checkout"], false, true)], traces()),
        set(&[2, 3, 4])
    );
}

#[test]
fn boolean_attribute_and_its_inversion() {
    let boolean = |invert| PolicyConfig {
        boolean_attribute: Some(BooleanAttributeConfig { key: "debug".into(), value: true, invert_match: invert }),
        ..policy("debug", PolicyType::BooleanAttribute)
    };
    let traces = || {
        vec![
            (1, vec![], vec![with_attr(span(1, 1, None, 0, 1), kv("debug", Value::BoolValue(true)))]),
            (2, vec![], vec![with_attr(span(2, 1, None, 0, 1), kv("debug", Value::BoolValue(false)))]),
            plain(3),
        ]
    };
    assert_eq!(kept(vec![boolean(false)], traces()), set(&[1]));
    assert_eq!(kept(vec![boolean(true)], traces()), set(&[2, 3]));
}

#[test]
fn span_count_range_is_inclusive() {
    let span_count = |min, max| PolicyConfig {
        span_count: Some(SpanCountConfig { min_spans: min, max_spans: max }),
        ..policy("count", PolicyType::SpanCount)
    };
    let trace = |id: u128, n: u64| (id, vec![], (1..=n).map(|i| span(id, i, (i > 1).then_some(1), 0, 1)).collect());
    let traces = || vec![trace(1, 1), trace(2, 2), trace(3, 3), trace(4, 10)];
    assert_eq!(kept(vec![span_count(2, 3)], traces()), set(&[2, 3]));
    assert_eq!(kept(vec![span_count(3, 0)], traces()), set(&[3, 4]));
}

#[test]
fn trace_state_and_trace_flags() {
    let mut tagged = span(1, 1, None, 0, 1);
    tagged.trace_state = "vendor=a,tenant=gold".into();
    let mut other = span(2, 1, None, 0, 1);
    other.trace_state = "tenant=silver".into();
    let mut flagged = span(3, 1, None, 0, 1);
    flagged.flags = 0x101;
    let traces = || {
        vec![(1, vec![], vec![tagged.clone()]), (2, vec![], vec![other.clone()]), (3, vec![], vec![flagged.clone()])]
    };
    let state = PolicyConfig {
        trace_state: Some(TraceStateConfig { key: "tenant".into(), values: vec!["gold".into(), "platinum".into()] }),
        ..policy("gold", PolicyType::TraceState)
    };
    assert_eq!(kept(vec![state], traces()), set(&[1]));
    assert_eq!(kept(vec![policy("flags", PolicyType::TraceFlags)], traces()), set(&[3]));
}

#[test]
fn probabilistic_matches_the_collector_hash() {
    let fnv = |salt: &[u8], id: u128| {
        salt.iter()
            .chain(id.to_be_bytes().iter())
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
    };
    let ids: Vec<u128> = (1..=2000u128).map(|i| i.wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835)).collect();
    let expected: BTreeSet<u128> =
        ids.iter().copied().filter(|id| (fnv(b"default-hash-seed", *id) as f64) <= 0.25 * u64::MAX as f64).collect();
    let got = kept(vec![probabilistic("quarter", 25.0)], ids.iter().map(|id| plain(*id)).collect());
    assert_eq!(got, expected);
    assert!((400..600).contains(&got.len()), "{} of 2000 at 25%", got.len());
}

#[test]
fn probabilistic_share_is_within_statistical_bounds() {
    let (sampler, dropper) = sampler(config(vec![probabilistic("tenth", 10.0)]));
    let n = 100_000u128;
    for chunk in 0..100u128 {
        let spans = (0..1000u128)
            .map(|i| {
                let id = (chunk * 1000 + i + 1).wrapping_mul(0x2545f4914f6cdd1d_9e3779b97f4a7c15);
                span(id, 1, None, 0, 1)
            })
            .collect();
        sampler.record_at(&batch_of(vec![], spans), 0);
    }
    sampler.tick_at(10_000);
    let kept = n as usize - dropper.dropped().len();
    // Binomial(100000, 0.1): σ ≈ 95, so ±5σ.
    assert!((9525..=10475).contains(&kept), "kept {kept} of {n} at 10%");
}

#[test]
fn errors_and_slow_traces_survive_a_one_percent_policy() {
    let mut traces = Vec::new();
    for id in 1..=300u128 {
        let id = id.wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835);
        traces.push(plain(id));
    }
    let error_ids: Vec<u128> = (1000..1100u128).collect();
    for id in &error_ids {
        traces.push((*id, vec![], vec![with_status(span(*id, 1, None, 0, 10), 2)]));
    }
    let slow_ids: Vec<u128> = (2000..2100u128).collect();
    for id in &slow_ids {
        traces.push((*id, vec![], vec![span(*id, 1, None, 0, 5000)]));
    }
    let got = kept(vec![probabilistic("one-percent", 1.0), errors("errors"), latency("slow", 1000, 0)], traces);
    for id in error_ids.iter().chain(&slow_ids) {
        assert!(got.contains(id), "trace {id} must be kept");
    }
    let others = got.len() - 200;
    assert!(others <= 15, "{others} of 300 plain traces kept at 1%");
}

#[test]
fn and_needs_every_sub_policy() {
    let and = PolicyConfig {
        and: Some(AndConfig { and_sub_policy: vec![errors("e"), latency("l", 100, 0)] }),
        ..policy("slow-errors", PolicyType::And)
    };
    let traces = vec![
        (1, vec![], vec![with_status(span(1, 1, None, 0, 500), 2)]),
        (2, vec![], vec![with_status(span(2, 1, None, 0, 50), 2)]),
        (3, vec![], vec![span(3, 1, None, 0, 500)]),
    ];
    assert_eq!(kept(vec![and], traces), set(&[1]));
}

#[test]
fn not_inverts_its_sub_policy() {
    let not = PolicyConfig {
        not: Some(NotConfig { not_sub_policy: Box::new(errors("e")) }),
        ..policy("healthy", PolicyType::Not)
    };
    let traces = vec![(1, vec![], vec![with_status(span(1, 1, None, 0, 5), 2)]), plain(2)];
    assert_eq!(kept(vec![not], traces), set(&[2]));
}

#[test]
fn drop_beats_every_sample() {
    let drop = PolicyConfig {
        drop: Some(DropConfig {
            drop_sub_policy: vec![string_attribute("health", "http.route", &["/health"], false, false)],
        }),
        ..policy("no-health-checks", PolicyType::Drop)
    };
    let traces = vec![
        (1, vec![], vec![with_attr(with_status(span(1, 1, None, 0, 5), 2), string("http.route", "/health"))]),
        (2, vec![], vec![with_attr(span(2, 1, None, 0, 5), string("http.route", "/checkout"))]),
    ];
    // Order does not matter: the drop policy comes last and still wins over errors and always_sample.
    let got = kept(vec![policy("all", PolicyType::AlwaysSample), errors("errors"), drop], traces);
    assert_eq!(got, set(&[2]));
}

#[test]
fn inverted_matches_veto_and_yield_to_not_sampled() {
    let not_checkout = || string_attribute("not-checkout", "service.name", &["checkout"], false, true);
    let traces = || {
        vec![
            (1, vec![string("service.name", "checkout")], simple(1)),
            (2, vec![string("service.name", "cart")], simple(2)),
        ]
    };
    // A matching inverted policy vetoes even always_sample.
    assert_eq!(kept(vec![policy("all", PolicyType::AlwaysSample), not_checkout()], traces()), set(&[2]));
    // An inverted keep loses to a plain NotSampled.
    assert_eq!(kept(vec![not_checkout(), errors("errors")], traces()), set(&[]));
    assert_eq!(kept(vec![not_checkout()], traces()), set(&[2]));
}

#[test]
fn composite_allocates_rates_in_order_without_fall_through() {
    let composite = PolicyConfig {
        composite: Some(CompositeConfig {
            max_total_spans_per_second: 10,
            policy_order: vec!["errors".into(), "everything".into()],
            composite_sub_policy: vec![errors("errors"), policy("everything", PolicyType::AlwaysSample)],
            rate_allocation: vec![
                RateAllocation { policy: "errors".into(), percent: 30 },
                RateAllocation { policy: "everything".into(), percent: 70 },
            ],
        }),
        ..policy("budget", PolicyType::Composite)
    };
    let (sampler, dropper) = sampler(config(vec![composite]));
    // One-span traces: errors may use 3 spans/s, the rest 7 spans/s, all within one second.
    let error_ids: Vec<u128> = (1..=5).collect();
    let plain_ids: Vec<u128> = (101..=110).collect();
    for id in &error_ids {
        sampler.record_at(&batch_of(vec![], vec![with_status(span(*id, 1, None, 0, 1), 2)]), 0);
    }
    for id in &plain_ids {
        sampler.record_at(&batch_of(vec![], vec![span(*id, 1, None, 0, 1)]), 0);
    }
    sampler.tick_at(10_000);
    let dropped = dropper.dropped();
    let kept_errors: Vec<_> = error_ids.iter().filter(|id| !dropped.contains(id)).collect();
    let kept_plain: Vec<_> = plain_ids.iter().filter(|id| !dropped.contains(id)).collect();
    // Errors past their share are not given to the "everything" share: no fall-through.
    assert_eq!(kept_errors, vec![&1, &2, &3]);
    assert_eq!(kept_plain.len(), 7);
    // A new second resets the shares.
    sampler.record_at(&batch_of(vec![], vec![with_status(span(50, 1, None, 0, 1), 2)]), 10_500);
    sampler.tick_at(21_000);
    assert!(!dropper.dropped().contains(&50));
}

#[test]
fn rate_limiting_holds_over_time() {
    let limit = PolicyConfig {
        rate_limiting: Some(RateLimitingConfig { spans_per_second: 100 }),
        ..policy("limit", PolicyType::RateLimiting)
    };
    let (sampler, dropper) = sampler(config(vec![limit]));
    // 60 simulated seconds of 50 traces of 10 spans per second: 500 spans/s offered against 100 allowed.
    let mut id = 0u128;
    let mut offered = Vec::new();
    for second in 0..60u64 {
        for i in 0..50u64 {
            id += 1;
            let spans = (1..=10).map(|s| span(id, s, (s > 1).then_some(1), 0, 1)).collect();
            let now = second * 1000 + i * 20;
            sampler.record_at(&batch_of(vec![], spans), now);
            offered.push(id);
            sampler.tick_at(now + 10_000);
        }
    }
    sampler.tick_at(100_000);
    let kept_spans = (offered.len() - dropper.dropped().len()) * 10;
    // Token bucket: burst of 2 × 100 plus 100 per second over the decision span of 60 seconds.
    assert!(kept_spans <= 200 + 100 * 60, "kept {kept_spans} spans");
    assert!(kept_spans >= 100 * 59, "kept {kept_spans} spans");
}

#[test]
fn bytes_limiting_counts_encoded_span_bytes() {
    let limit = PolicyConfig {
        bytes_limiting: Some(BytesLimitingConfig { bytes_per_second: 1, burst_capacity: 450 }),
        ..policy("bytes", PolicyType::BytesLimiting)
    };
    let big = |id: u128| (id, vec![], vec![with_attr(span(id, 1, None, 0, 1), string("payload", &"x".repeat(300)))]);
    let small = (3, vec![], vec![span(3, 1, None, 0, 1)]);
    // The first ~340-byte trace fits the 450-byte bucket, the second does not; a small one still fits.
    assert_eq!(kept(vec![limit], vec![big(1), big(2), small]), set(&[1, 3]));
}

#[test]
fn late_spans_follow_the_decision() {
    let mut config = config(vec![errors("errors")]);
    config.decision_cache = DecisionCacheConfig { sampled_cache_size: 100, non_sampled_cache_size: 100 };
    let (sampler, dropper) = sampler(config);
    sampler.record_at(&batch_of(vec![], vec![with_status(span(1, 1, None, 0, 1), 2)]), 0);
    sampler.record_at(&batch_of(vec![], vec![span(2, 1, None, 0, 1)]), 0);
    sampler.tick_at(10_000);
    assert_eq!(dropper.dropped(), set(&[2]));
    let calls_before = dropper.calls.lock().len();
    // Late spans: the dropped trace is dropped again (no new decision), the kept one is left alone even though
    // the late span on its own would not match.
    sampler.record_at(&batch_of(vec![], vec![with_status(span(2, 7, Some(1), 0, 1), 2)]), 20_000);
    sampler.record_at(&batch_of(vec![], vec![span(1, 7, Some(1), 0, 1)]), 20_000);
    assert_eq!(sampler.waiting_traces(), 0);
    let calls = dropper.calls.lock().clone();
    assert_eq!(calls.len(), calls_before + 1);
    assert_eq!(calls.last().unwrap().1, vec![TraceId(2u128.to_be_bytes())]);
    let tenant = Tenant::default_tenant();
    let kept = sampler.decision(&tenant, &TraceId(1u128.to_be_bytes())).unwrap();
    assert!(kept.sampled);
    assert_eq!(kept.policy.as_deref(), Some("errors"));
    assert_eq!(kept.weight, 1.0);
    assert!(!sampler.decision(&tenant, &TraceId(2u128.to_be_bytes())).unwrap().sampled);
    assert_eq!(sampler.decision(&tenant, &TraceId(3u128.to_be_bytes())), None);
}

#[test]
fn without_caches_a_late_span_starts_a_new_window() {
    let mut config = config(vec![errors("errors")]);
    config.decision_cache = DecisionCacheConfig { sampled_cache_size: 0, non_sampled_cache_size: 0 };
    let (sampler, _dropper) = sampler(config);
    sampler.record_at(&batch_of(vec![], simple(1)), 0);
    sampler.tick_at(10_000);
    sampler.record_at(&batch_of(vec![], vec![span(1, 9, Some(1), 0, 1)]), 11_000);
    assert_eq!(sampler.waiting_traces(), 1);
}

#[test]
fn kept_traces_record_reason_and_weight() {
    let mut config = config(vec![probabilistic("tenth", 10.0), errors("errors")]);
    config.decision_cache.sampled_cache_size = 10_000;
    let (sampler, _dropper) = sampler(config);
    let ids: Vec<u128> = (1..=500u128).map(|i| i.wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835)).collect();
    for id in &ids {
        sampler.record_at(&batch_of(vec![], vec![span(*id, 1, None, 0, 1)]), 0);
    }
    let error_ids: Vec<u128> = (1..=50u128).collect();
    for id in &error_ids {
        sampler.record_at(&batch_of(vec![], vec![with_status(span(*id, 1, None, 0, 1), 2)]), 0);
    }
    sampler.tick_at(10_000);
    let tenant = Tenant::default_tenant();
    for id in &error_ids {
        // Even when the 10% policy also voted to keep it, an error is kept with certainty: weight 1.
        let d = sampler.decision(&tenant, &TraceId(id.to_be_bytes())).unwrap();
        assert_eq!((d.sampled, d.policy.as_deref(), d.weight), (true, Some("errors"), 1.0));
    }
    let mut by_probability = 0;
    for id in &ids {
        let d = sampler.decision(&tenant, &TraceId(id.to_be_bytes())).unwrap();
        if d.sampled {
            by_probability += 1;
            assert_eq!((d.policy.as_deref(), d.weight), (Some("tenth"), 10.0));
        } else {
            assert_eq!(d.weight, 0.0);
        }
    }
    assert!((25..=80).contains(&by_probability), "{by_probability} of 500 at 10%");
}

#[test]
fn consistent_probability_uses_rv_and_respects_incoming_thresholds() {
    let consistent = PolicyConfig {
        probabilistic: Some(ProbabilisticConfig {
            hash_salt: String::new(),
            sampling_percentage: 50.0,
            mode: ProbabilisticMode::Consistent,
        }),
        ..policy("half", PolicyType::Probabilistic)
    };
    let with_state = |id: u128, state: &str| {
        let mut s = span(id, 1, None, 0, 1);
        s.trace_state = state.into();
        (id, vec![], vec![s])
    };
    // Randomness from the trace id's low 56 bits: 0x80… ≥ T(50%) = 0x80000000000000 keeps, 0x7f… does not.
    let high = 0x0000_0000_0000_0000_0080_0000_0000_0001u128;
    let low = 0x0000_0000_0000_0000_007f_ffff_ffff_ffffu128;
    let traces = vec![
        (high, vec![], simple(high)),
        (low, vec![], simple(low)),
        // rv overrides the trace id: kept despite a low id, dropped despite a high one.
        with_state(3, "ot=rv:c0000000000000"),
        with_state(0x00ff_ffff_ffff_ffffu128, "ot=rv:10000000000000"),
        // Sampled upstream at 25% (th:c) with rv above it: still kept, weight stays relative to arrival.
        with_state(5, "ot=th:c;rv:d0000000000000"),
    ];
    let mut cfg = config(vec![consistent]);
    cfg.decision_cache.sampled_cache_size = 100;
    let (sampler, dropper) = sampler(cfg);
    for (_, resource, spans) in traces {
        sampler.record_at(&batch_of(resource, spans), 0);
    }
    sampler.tick_at(10_000);
    assert_eq!(dropper.dropped(), set(&[low, 0x00ff_ffff_ffff_ffff]));
    let tenant = Tenant::default_tenant();
    let d = sampler.decision(&tenant, &TraceId(high.to_be_bytes())).unwrap();
    assert_eq!((d.weight, d.threshold.as_deref()), (2.0, Some("8")));
    let d = sampler.decision(&tenant, &TraceId(5u128.to_be_bytes())).unwrap();
    assert_eq!((d.weight, d.threshold.as_deref()), (1.0, Some("c")));
}

#[test]
fn root_span_triggers_an_early_decision_after_settling() {
    let mut cfg = config(vec![errors("errors")]);
    cfg.root_settle_time = Some(Duration::from_secs(2));
    let (sampler, dropper) = sampler(cfg);
    // A child first, the root at 1s, another child at 2.5s postpones the settle to 4.5s.
    sampler.record_at(&batch_of(vec![], vec![span(1, 2, Some(1), 0, 1)]), 0);
    sampler.record_at(&batch_of(vec![], vec![span(1, 1, None, 0, 10)]), 1_000);
    sampler.tick_at(2_500);
    sampler.record_at(&batch_of(vec![], vec![span(1, 3, Some(1), 0, 1)]), 2_500);
    sampler.tick_at(3_000);
    assert_eq!(sampler.waiting_traces(), 1);
    sampler.tick_at(4_000);
    assert_eq!(sampler.waiting_traces(), 1);
    sampler.tick_at(4_500);
    assert_eq!(sampler.waiting_traces(), 0);
    assert_eq!(dropper.dropped(), set(&[1]));
    // A trace without a root waits the full decision window.
    sampler.record_at(&batch_of(vec![], vec![span(2, 2, Some(1), 0, 1)]), 5_000);
    sampler.tick_at(14_000);
    assert_eq!(sampler.waiting_traces(), 1);
    sampler.tick_at(15_000);
    assert_eq!(sampler.waiting_traces(), 0);
}

#[test]
fn zero_settle_time_decides_when_the_root_arrives() {
    let mut cfg = config(vec![errors("errors")]);
    cfg.root_settle_time = Some(Duration::ZERO);
    let (sampler, dropper) = sampler(cfg);
    sampler.record_at(&batch_of(vec![], vec![span(1, 2, Some(1), 0, 1), span(1, 1, None, 0, 5)]), 0);
    assert_eq!(sampler.waiting_traces(), 0);
    assert_eq!(dropper.dropped(), set(&[1]));
}

#[test]
fn buffer_stays_bounded_under_a_flood_of_new_traces() {
    let registry = &mut Registry::default();
    let dropper = Arc::new(RecordingDropper::default());
    let mut cfg = config(vec![errors("errors")]);
    cfg.num_traces = 1000;
    cfg.root_settle_time = Some(Duration::from_secs(1));
    cfg.decision_cache = DecisionCacheConfig { sampled_cache_size: 2000, non_sampled_cache_size: 2000 };
    let sampler = TailSampler::new(cfg, Arc::new(CountingSink::default()), dropper.clone(), registry).unwrap();
    for chunk in 0..50u128 {
        let spans = (0..1000u128)
            .map(|i| {
                let id = chunk * 1000 + i + 1;
                if id % 100 == 0 { with_status(span(id, 1, None, 0, 1), 2) } else { span(id, 1, None, 0, 1) }
            })
            .collect();
        sampler.record_at(&batch_of(vec![], spans), chunk as u64);
        let (waiting, arrivals, settling, cached) = sampler.buffer_sizes();
        assert!(waiting <= 1000, "{waiting} waiting");
        assert!(arrivals <= 2 * 1000 + 1024 + 1000 && settling <= 2 * 1000 + 1024 + 1000, "{arrivals} {settling}");
        assert!(cached <= 4000);
        sampler.tick_at(chunk as u64);
    }
    // Evicted traces were decided on what had arrived: errors kept, the rest dropped.
    let dropped = dropper.dropped();
    assert_eq!(dropped.len(), 49_000 - 490);
    assert!(dropped.iter().all(|id| id % 100 != 0));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    assert!(text.contains("clew_sampling_evictions_total 49000"), "{text}");
    assert!(text.contains(r#"clew_sampling_traces_total{policy="errors",decision="sampled"} 490"#), "{text}");
    assert!(text.contains(r#"clew_sampling_policy_votes_total{policy="errors",decision="not_sampled"} 48510"#));
}

#[test]
fn eviction_can_drop_undecided_traces_like_the_collector() {
    let mut cfg = config(vec![policy("all", PolicyType::AlwaysSample)]);
    cfg.num_traces = 2;
    cfg.on_eviction = EvictionMode::Drop;
    let (sampler, dropper) = sampler(cfg);
    for id in 1..=4u128 {
        sampler.record_at(&batch_of(vec![], simple(id)), 0);
    }
    assert_eq!(dropper.dropped(), set(&[1, 2]));
    sampler.tick_at(10_000);
    assert_eq!(dropper.dropped(), set(&[1, 2]));
}

#[tokio::test]
async fn the_sink_forwards_every_batch_before_deciding() {
    let next = Arc::new(CountingSink::default());
    let dropper = Arc::new(RecordingDropper::default());
    let mut cfg = config(vec![errors("errors")]);
    cfg.root_settle_time = Some(Duration::ZERO);
    let sampler = TailSampler::new(cfg, next.clone(), dropper.clone(), &mut Registry::default()).unwrap();
    let accepted = sampler.consume(batch_of(vec![], simple(1))).await.unwrap();
    assert_eq!(accepted, Accepted::all());
    // Stored first, then dropped by the decision its root triggered.
    assert_eq!(*next.spans.lock(), 2);
    assert_eq!(dropper.dropped(), set(&[1]));
}

/// Sees, while storing a batch, which traces the sampler counts as undecided (what a block cut holds back).
#[derive(Default)]
struct UndecidedProbe {
    sampler: std::sync::OnceLock<std::sync::Weak<TailSampler>>,
    seen: Mutex<Vec<BTreeSet<u128>>>,
}

impl UndecidedProbe {
    fn undecided(sampler: &TailSampler) -> BTreeSet<u128> {
        sampler.undecided().into_values().flatten().map(|id| u128::from_be_bytes(id.0)).collect()
    }
}

impl SpanSink for UndecidedProbe {
    fn consume(&self, _batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        let sampler = self.sampler.get().and_then(|s| s.upgrade()).unwrap();
        self.seen.lock().push(Self::undecided(&sampler));
        Box::pin(async { Ok(Accepted::all()) })
    }
}

#[tokio::test]
async fn traces_are_undecided_from_the_store_until_their_decision() {
    let probe = Arc::new(UndecidedProbe::default());
    let sampler = TailSampler::new(
        config(vec![errors("errors")]),
        probe.clone(),
        Arc::new(RecordingDropper::default()),
        &mut Registry::default(),
    )
    .unwrap();
    probe.sampler.set(Arc::downgrade(&sampler)).unwrap();
    sampler.consume(batch_of(vec![], simple(1))).await.unwrap();
    sampler.consume(batch_of(vec![], simple(2))).await.unwrap();
    // While being stored, a batch's trace is already undecided (a cut then cannot seal it), as are the waiting.
    assert_eq!(*probe.seen.lock(), vec![set(&[1]), set(&[1, 2])]);
    assert_eq!(UndecidedProbe::undecided(&sampler), set(&[1, 2]));
    sampler.flush();
    assert!(sampler.undecided().is_empty());
}

#[test]
fn parses_a_collector_style_toml_configuration() {
    let text = r#"
        enabled = true
        decision_wait = "5s"
        num_traces = 1000
        root_settle_time = "500ms"
        decision_cache = { sampled_cache_size = 5000, non_sampled_cache_size = 5000 }

        [[policies]]
        name = "errors"
        type = "status_code"
        status_code = { status_codes = ["ERROR"] }

        [[policies]]
        name = "slow"
        type = "latency"
        latency = { threshold_ms = 1000 }

        [[policies]]
        name = "checkout-users"
        type = "and"
        [[policies.and.and_sub_policy]]
        name = "svc"
        type = "string_attribute"
        string_attribute = { key = "service.name", values = ["checkout.*"], enabled_regex_matching = true }
        [[policies.and.and_sub_policy]]
        name = "some"
        type = "probabilistic"
        probabilistic = { sampling_percentage = 10, hash_salt = "fleet" }

        [[policies]]
        name = "budget"
        type = "composite"
        [policies.composite]
        max_total_spans_per_second = 1000
        policy_order = ["all"]
        rate_allocation = [{ policy = "all", percent = 100 }]
        [[policies.composite.composite_sub_policy]]
        name = "all"
        type = "always_sample"
    "#;
    let cfg: TailSamplingConfig = toml::from_str(text).unwrap();
    assert_eq!(cfg.decision_wait, Duration::from_secs(5));
    assert_eq!(cfg.root_settle_time, Some(Duration::from_millis(500)));
    assert_eq!(cfg.policies.len(), 4);
    assert_eq!(
        cfg.policies[2].and.as_ref().unwrap().and_sub_policy[1].probabilistic.as_ref().unwrap().hash_salt,
        "fleet"
    );
    let (sampler, _) = sampler(cfg);
    assert_eq!(sampler.config().num_traces, 1000);
}

#[test]
fn invalid_configurations_are_named_errors() {
    let build = |policies| {
        TailSampler::new(
            config(policies),
            Arc::new(CountingSink::default()),
            Arc::new(RecordingDropper::default()),
            &mut Registry::default(),
        )
        .err()
        .unwrap_or_default()
    };
    assert!(
        build(vec![policy("slow", PolicyType::Latency)]).contains("\"slow\": type latency needs a `latency` block")
    );
    assert!(build(vec![string_attribute("bad", "k", &["("], true, false)]).contains("invalid regex"));
    assert!(build(vec![errors("twice"), errors("twice")]).contains("used twice"));
    assert!(build(vec![probabilistic("p", 150.0)]).contains("within 0 and 100"));
    let unknown = PolicyConfig {
        status_code: Some(StatusCodeConfig { status_codes: vec!["FAILED".into()] }),
        ..policy("s", PolicyType::StatusCode)
    };
    assert!(build(vec![unknown]).contains("unknown status code \"FAILED\""));
    let bad_toml = toml::from_str::<TailSamplingConfig>("[[policies]]\nname = \"x\"\ntype = \"sometimes\"\n");
    assert!(bad_toml.unwrap_err().to_string().contains("unknown variant `sometimes`"));
}

/// Cost of tail sampling per span next to the wire scan every ingest already pays. Run with
/// `cargo test --release -p clew-processors -- --ignored --nocapture sampling_cost`.
#[test]
#[ignore]
fn sampling_cost() {
    use prost::Message;
    let policies = vec![errors("errors"), latency("slow", 1000, 0), probabilistic("tenth", 10.0)];
    let (sampler, _) = sampler(config(policies));
    let requests: Vec<bytes::Bytes> = (0..2000u128)
        .map(|b| {
            let spans = (0..100u128)
                .map(|i| {
                    let trace = (b * 10 + i / 10 + 1).wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835);
                    let mut s = span(trace, i as u64 % 10 + 1, (i % 10 != 0).then_some(1), 0, 20);
                    for k in 0..5 {
                        s.attributes.push(string(&format!("attr.{k}"), "some value of moderate length"));
                    }
                    s.attributes.push(kv("http.status_code", Value::IntValue(200)));
                    if i % 37 == 0 { with_status(s, 2) } else { s }
                })
                .collect();
            let rs = ResourceSpans {
                resource: Some(Resource { attributes: vec![string("service.name", "bench")], ..Resource::default() }),
                scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            };
            clew_model::otlp::ExportTraceServiceRequest { resource_spans: vec![rs] }.encode_to_vec().into()
        })
        .collect();
    let spans = 2000.0 * 100.0;
    let start = std::time::Instant::now();
    let batches: Vec<SpanBatch> =
        requests.iter().map(|r| SpanBatch::from_protobuf(Tenant::default_tenant(), r.clone()).unwrap()).collect();
    let scan = start.elapsed().as_nanos() as f64 / spans;
    let start = std::time::Instant::now();
    for (i, batch) in batches.iter().enumerate() {
        sampler.record_at(batch, i as u64);
    }
    sampler.tick_at(1_000_000);
    let sampling = start.elapsed().as_nanos() as f64 / spans;
    let start = std::time::Instant::now();
    for batch in &batches {
        std::hint::black_box(batch.decode().unwrap());
    }
    let decode = start.elapsed().as_nanos() as f64 / spans;
    println!("per span: wire scan {scan:.0} ns, tail sampling {sampling:.0} ns, full prost decode {decode:.0} ns");
}

#[test]
fn kept_traces_are_reported_with_policy_weight_and_threshold() {
    let tenth = PolicyConfig {
        probabilistic: Some(ProbabilisticConfig {
            hash_salt: String::new(),
            sampling_percentage: 10.0,
            mode: ProbabilisticMode::Consistent,
        }),
        ..policy("tenth", PolicyType::Probabilistic)
    };
    let (sampler, dropper) = sampler(config(vec![errors("errors"), tenth]));
    let error_trace = 1u128;
    // Randomness 0xf0… is above the 10% threshold 0xe666…; 0x10… is below it.
    let lucky = 0x0000_0000_0000_0000_00f0_0000_0000_0000u128;
    let unlucky = 0x0000_0000_0000_0000_0010_0000_0000_0000u128;
    sampler.record_at(&batch_of(vec![], vec![with_status(span(error_trace, 1, None, 0, 1), 2)]), 0);
    sampler.record_at(&batch_of(vec![], simple(lucky)), 0);
    sampler.record_at(&batch_of(vec![], simple(unlucky)), 0);
    assert!(dropper.kept.lock().is_empty(), "nothing is reported before the decision");
    sampler.tick_at(10_000);
    let kept: Vec<(u128, SamplingDecision)> =
        dropper.kept.lock().iter().map(|(_, id, d)| (u128::from_be_bytes(id.0), d.clone())).collect();
    let by_id: std::collections::HashMap<u128, SamplingDecision> = kept.iter().cloned().collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(by_id[&error_trace], SamplingDecision { policy: Some("errors".into()), weight: 1.0, threshold: None });
    let d = &by_id[&lucky];
    assert_eq!((d.policy.as_deref(), d.threshold.as_deref()), (Some("tenth"), Some("e6666666666666")));
    assert!((d.weight - 10.0).abs() < 1e-9, "{}", d.weight);
    assert_eq!(dropper.dropped(), set(&[unlucky]));

    // A late span of a kept trace is reported again (its spans get the decision too); a dropped one is not.
    sampler.record_at(&batch_of(vec![], vec![span(lucky, 7, Some(1), 0, 1), span(lucky, 8, Some(1), 0, 1)]), 11_000);
    sampler.record_at(&batch_of(vec![], vec![span(unlucky, 7, Some(1), 0, 1)]), 11_000);
    let again: Vec<u128> = dropper.kept.lock()[2..].iter().map(|(_, id, _)| u128::from_be_bytes(id.0)).collect();
    assert_eq!(again, vec![lucky]);
}

#[test]
fn a_restored_decision_is_followed_by_late_spans() {
    let (sampler, dropper) = sampler(config(vec![errors("errors")]));
    let tenant = Tenant::default_tenant();
    let stored = SamplingDecision { policy: Some("gone".into()), weight: 4.0, threshold: Some("c".into()) };
    sampler.restore_kept(&tenant, &TraceId(9u128.to_be_bytes()), &stored);
    let d = sampler.decision(&tenant, &TraceId(9u128.to_be_bytes())).unwrap();
    assert_eq!(
        (d.sampled, d.policy.as_deref(), d.weight, d.threshold.as_deref()),
        (true, Some("gone"), 4.0, Some("c"))
    );
    // Without an error this trace would be dropped if it were decided again: it is not.
    sampler.record_at(&batch_of(vec![], simple(9)), 0);
    assert_eq!(sampler.waiting_traces(), 0);
    sampler.tick_at(10_000);
    assert!(dropper.dropped().is_empty());
    assert_eq!(dropper.kept.lock().len(), 1);
    assert_eq!(dropper.kept.lock()[0].2, stored);
}
