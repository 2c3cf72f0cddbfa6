//! Execution on a hand-built trace with known answers, for every operator.
//!
//! The trace (times in ms after a base; spans come in four services, split over five `ResourceSpans`):
//!
//! ```text
//! 1 gateway "GET /" server            [0, 100]
//! ├─ 2 api "handler" server ok         [1, 80]   http.status_code=500, tags=["a","b"]
//! │  ├─ 3 api "db.query" client error  [2, 50]   event "exception" at +5ms, message "timeout"
//! │  │  └─ 4 db "execute" server        [3, 45]   (db spans: scope sqlx 1.2, lang=rust)
//! │  │     └─ 5 db "disk.read"          [4, 40]
//! │  │        └─ 6 db "fsync" error     [5, 30]
//! │  │           └─ 7 db "leaf"         [6, 10]
//! │  └─ 8 api "cache.get" client       [51, 60]  cache.hit=true
//! └─ 9 gateway "auth" client           [81, 95]
//!    └─ 10 auth "check" server          [82, 120] link to abab…/cdcd… with ref="follows"
//! ```

use clew_model::otlp::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value,
    span,
};
use clew_traceql::{Evaluator, TraceMatch, Value, evaluate, parse};

const BASE: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn id(n: u8) -> Vec<u8> {
    vec![0, 0, 0, 0, 0, 0, 0, n]
}

fn trace_id() -> Vec<u8> {
    (1..=16).collect()
}

struct SpanSpec {
    id: u8,
    parent: Option<u8>,
    name: &'static str,
    kind: i32,
    status: i32,
    start_ms: u64,
    end_ms: u64,
}

fn make(spec: &SpanSpec) -> Span {
    Span {
        trace_id: trace_id(),
        span_id: id(spec.id),
        parent_span_id: spec.parent.map(id).unwrap_or_default(),
        name: spec.name.into(),
        kind: spec.kind,
        start_time_unix_nano: BASE + spec.start_ms * MS,
        end_time_unix_nano: BASE + spec.end_ms * MS,
        status: Some(Status {
            code: spec.status,
            message: if spec.status == 2 { "timeout".into() } else { "".into() },
        }),
        ..Default::default()
    }
}

fn group(service: &str, scope: Option<InstrumentationScope>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource { attributes: vec![kv("service.name", s(service))], ..Default::default() }),
        scope_spans: vec![ScopeSpans { scope, spans, ..Default::default() }],
        ..Default::default()
    }
}

fn spec(id: u8, parent: Option<u8>, name: &'static str, kind: i32, status: i32, start: u64, end: u64) -> SpanSpec {
    SpanSpec { id, parent, name, kind, status, start_ms: start, end_ms: end }
}

fn trace() -> Vec<ResourceSpans> {
    let mut s2 = make(&spec(2, Some(1), "handler", 2, 1, 1, 80));
    s2.attributes = vec![
        kv("http.status_code", any_value::Value::IntValue(500)),
        kv(
            "tags",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(s("a")) }, AnyValue { value: Some(s("b")) }],
            }),
        ),
    ];
    let mut s3 = make(&spec(3, Some(2), "db.query", 3, 2, 2, 50));
    s3.events = vec![span::Event {
        time_unix_nano: BASE + 7 * MS,
        name: "exception".into(),
        attributes: vec![kv("exception.message", s("boom"))],
        ..Default::default()
    }];
    let mut s8 = make(&spec(8, Some(2), "cache.get", 3, 0, 51, 60));
    s8.attributes = vec![kv("cache.hit", any_value::Value::BoolValue(true))];
    let mut s10 = make(&spec(10, Some(9), "check", 2, 0, 82, 120));
    s10.links = vec![span::Link {
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        attributes: vec![kv("ref", s("follows"))],
        ..Default::default()
    }];
    let sqlx = InstrumentationScope {
        name: "sqlx".into(),
        version: "1.2".into(),
        attributes: vec![kv("lang", s("rust"))],
        ..Default::default()
    };
    // Deliberately out of order, and api split over two groups.
    vec![
        group(
            "db",
            Some(sqlx),
            vec![
                make(&spec(7, Some(6), "leaf", 1, 0, 6, 10)),
                make(&spec(5, Some(4), "disk.read", 1, 0, 4, 40)),
                make(&spec(6, Some(5), "fsync", 1, 2, 5, 30)),
                make(&spec(4, Some(3), "execute", 2, 0, 3, 45)),
            ],
        ),
        group("api", None, vec![s8, s3]),
        group("auth", None, vec![s10]),
        group(
            "gateway",
            None,
            vec![make(&spec(9, Some(1), "auth", 3, 0, 81, 95)), make(&spec(1, None, "GET /", 2, 0, 0, 100))],
        ),
        group("api", None, vec![s2]),
    ]
}

fn run(q: &str) -> Option<TraceMatch> {
    let query = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    evaluate(&query, &trace())
}

/// The last byte of each matched span id, in trace order; `None` when the trace does not match.
fn ids(q: &str) -> Option<Vec<u8>> {
    run(q).map(|m| m.span_ids().iter().map(|i| i[7]).collect())
}

fn check(cases: &[(&str, Option<&[u8]>)]) {
    let mut failures = Vec::new();
    for (q, want) in cases {
        let got = ids(q);
        if got.as_deref() != *want {
            failures.push(format!("{q}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn intrinsics() {
    check(&[
        ("{ }", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        (r#"{ name = "fsync" }"#, Some(&[6])),
        (r#"{ span:name = "nope" }"#, None),
        ("{ status = error }", Some(&[3, 6])),
        ("{ status = ok }", Some(&[2])),
        ("{ status = unset }", Some(&[1, 4, 5, 7, 8, 9, 10])),
        ("{ status != unset }", Some(&[2, 3, 6])),
        (r#"{ statusMessage = "timeout" }"#, Some(&[3, 6])),
        ("{ kind = client }", Some(&[3, 8, 9])),
        ("{ span:kind = internal }", Some(&[5, 6, 7])),
        ("{ duration > 40ms }", Some(&[1, 2, 3, 4])),
        ("{ duration >= 42ms && duration < 80ms }", Some(&[2, 3, 4])),
        ("{ span:duration = 4ms }", Some(&[7])),
        (r#"{ span:id = "0000000000000007" }"#, Some(&[7])),
        (r#"{ span:parentID = "0000000000000006" }"#, Some(&[7])),
        ("{ span:parentID = nil }", Some(&[1])),
        ("{ span:childCount = 0 }", Some(&[7, 8, 10])),
        ("{ span:childCount > 1 }", Some(&[1, 2])),
        ("{ trace:duration = 120ms }", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ("{ trace:duration > 120ms }", None),
        (r#"{ trace:rootName = "GET /" && name = "leaf" }"#, Some(&[7])),
        (r#"{ trace:rootService = "gateway" && kind = server }"#, Some(&[1, 2, 4, 10])),
        (r#"{ trace:id = "0102030405060708090a0b0c0d0e0f10" && span:childCount = 2 }"#, Some(&[1, 2])),
        (r#"{ event:name = "exception" }"#, Some(&[3])),
        (r#"{ event.exception.message = "boom" }"#, Some(&[3])),
        (r#"{ event:name = "exception" && event.exception.message = "other" }"#, None),
        ("{ event:timeSinceStart > 4ms }", Some(&[3])),
        ("{ event:timeSinceStart > 6ms }", None),
        ("{ event.exception.message = nil && kind = client }", Some(&[8, 9])),
        (r#"{ link:traceID = "abababababababababababababababab" }"#, Some(&[10])),
        (r#"{ link:spanID = "cdcdcdcdcdcdcdcd" && link.ref = "follows" }"#, Some(&[10])),
        (r#"{ instrumentation:name = "sqlx" && instrumentation:version = "1.2" }"#, Some(&[4, 5, 6, 7])),
        (r#"{ instrumentation.lang = "rust" && status = error }"#, Some(&[6])),
        ("{ instrumentation:name = nil && kind = server }", Some(&[1, 2, 10])),
    ]);
}

#[test]
fn attributes_literals_and_operators() {
    check(&[
        ("{ .http.status_code = 500 }", Some(&[2])),
        ("{ span.http.status_code >= 500 && span.http.status_code < 600 }", Some(&[2])),
        (r#"{ .service.name = "api" }"#, Some(&[2, 3, 8])),
        (r#"{ span.service.name = "api" }"#, None),
        (r#"{ resource.service.name =~ "a.*" }"#, Some(&[2, 3, 8, 10])),
        ("{ span.http.status_code != 500 }", None),
        ("{ span.http.status_code != 400 }", Some(&[2])),
        (r#"{ span.http.status_code = "500" }"#, None),
        ("{ span.http.status_code = 500.0 }", Some(&[2])),
        ("{ span.http.status_code = nil && kind = client }", Some(&[3, 8, 9])),
        ("{ span.http.status_code != nil }", Some(&[2])),
        (r#"{ span.tags = "b" }"#, Some(&[2])),
        (r#"{ span.tags != "b" }"#, None),
        (r#"{ span.tags != "c" }"#, Some(&[2])),
        (r#"{ span.tags =~ "[ab]" }"#, Some(&[2])),
        ("{ span.cache.hit }", Some(&[8])),
        ("{ span.cache.hit = true }", Some(&[8])),
        (r#"{ span.cache.hit || name = "leaf" }"#, Some(&[7, 8])),
        ("{ !span.cache.hit }", None),
        (r#"{ !(name = "leaf") && resource.service.name = "db" }"#, Some(&[4, 5, 6])),
        (r#"{ name =~ "db.*" }"#, Some(&[3])),
        (r#"{ name =~ "query" }"#, None),
        (r#"{ name !~ ".*e.*" }"#, Some(&[1, 6, 9])),
        (r#"{ name > "f" && name < "h" }"#, Some(&[6])),
        ("{ duration * 2 > 150ms }", Some(&[1, 2])),
        ("{ span.http.status_code - 400 = 100 }", Some(&[2])),
        ("{ duration / 1ms > 90 }", Some(&[1])),
        ("{ span.http.status_code % 7 = 3 && span.http.status_code ^ 2 = 250000 }", Some(&[2])),
        ("{ -span.http.status_code = -500 }", Some(&[2])),
        ("{ false }", None),
    ]);
}

#[test]
fn spanset_logic() {
    check(&[
        (r#"{ resource.service.name = "db" } && { resource.service.name = "auth" }"#, Some(&[4, 5, 6, 7, 10])),
        (r#"{ resource.service.name = "db" } && { name = "nope" }"#, None),
        (r#"{ name = "nope" } || { resource.service.name = "auth" }"#, Some(&[10])),
        (r#"{ name = "leaf" } || { name = "check" }"#, Some(&[7, 10])),
        (r#"{ name = "nope" } || { name = "nope2" }"#, None),
    ]);
}

#[test]
fn structural_operators() {
    check(&[
        (r#"{ name = "handler" } > { }"#, Some(&[3, 8])),
        (r#"{ name = "handler" } >> { }"#, Some(&[3, 4, 5, 6, 7, 8])),
        (r#"{ name = "leaf" } < { }"#, Some(&[6])),
        (r#"{ name = "leaf" } << { }"#, Some(&[1, 2, 3, 4, 5, 6])),
        (r#"{ name = "cache.get" } ~ { }"#, Some(&[3])),
        (r#"{ name = "GET /" } ~ { }"#, None),
        (r#"{ name = "handler" } &> { }"#, Some(&[2, 3, 8])),
        (r#"{ name = "leaf" } &< { }"#, Some(&[6, 7])),
        (r#"{ name = "handler" } &>> { status = error }"#, Some(&[2, 3, 6])),
        (r#"{ name = "leaf" } &<< { }"#, Some(&[1, 2, 3, 4, 5, 6, 7])),
        (r#"{ name = "cache.get" } &~ { }"#, Some(&[3, 8])),
        (r#"{ name = "cache.get" } &~ { name = "auth" }"#, None),
        ("{ } !< { }", Some(&[7, 8, 10])),
        ("{ } !> { }", Some(&[1])),
        (r#"{ resource.service.name = "db" } !>> { status = error }"#, Some(&[3])),
        ("{ status = error } !<< { }", Some(&[6, 7, 8, 9, 10])),
        (r#"{ name = "cache.get" } !~ { kind = client }"#, Some(&[8, 9])),
        (r#"{ name = "nope" } !> { name = "check" }"#, Some(&[10])),
        (r#"{ name = "nope" } > { }"#, None),
        (r#"{ name = "GET /" } >> { name = "leaf" }"#, Some(&[7])),
        (r#"{ name = "GET /" } > { name = "leaf" }"#, None),
        (r#"{ name = "leaf" } << { name = "GET /" }"#, Some(&[1])),
        (
            r#"{ name = "GET /" } > { name = "handler" } > { name = "db.query" } > { name = "execute" } > { name = "disk.read" } > { name = "fsync" } > { name = "leaf" }"#,
            Some(&[7]),
        ),
        (r#"{ name = "GET /" } > { name = "handler" } > { name = "execute" }"#, None),
        (r#"{ status = error } >> { status = error }"#, Some(&[6])),
        (r#"{ status = error } !< { status = error }"#, Some(&[3, 6])),
        (r#"({ name = "handler" } > { }) && { name = "check" }"#, Some(&[3, 8, 10])),
        (r#"{ name = "handler" } > ({ kind = client } || { kind = server })"#, Some(&[3, 8])),
        (r#"{ resource.service.name = "gateway" } > { } > { }"#, Some(&[3, 8, 10])),
    ]);
}

#[test]
fn pipelines() {
    check(&[
        (r#"{ resource.service.name = "db" } | count() > 3"#, Some(&[4, 5, 6, 7])),
        (r#"{ resource.service.name = "db" } | count() > 4"#, None),
        ("{ } | avg(duration) > 40ms", None),
        ("{ } | avg(duration) > 39ms", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ("{ } | max(duration) = 100ms", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ("{ kind = client } | max(duration) = 48ms", Some(&[3, 8, 9])),
        ("{ } | min(duration) = 4ms", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ("{ } | sum(duration) = 395ms", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ("{ } | sum(span.http.status_code) = 500", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ("{ } | count() * 2 = 20", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ("{ } | by(resource.service.name) | count() > 2", Some(&[2, 3, 4, 5, 6, 7, 8])),
        ("{ status = error } | by(resource.service.name)", Some(&[3, 6])),
        ("{ } | by(resource.service.name) | coalesce()", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        (r#"({ resource.service.name = "db" } | count() > 3) && { name = "auth" }"#, Some(&[4, 5, 6, 7, 9])),
        (r#"({ resource.service.name = "db" } | count() > 4) && { name = "auth" }"#, None),
        (r#"({ resource.service.name = "db" } | count() > 4) || { name = "auth" }"#, Some(&[9])),
        ("({ status = error } | count()) > 1", Some(&[3, 6])),
        ("({ status = error } | count()) > 2", None),
        ("({ status = error } | count()) + ({ kind = client } | count()) = 5", Some(&[3, 6, 8, 9])),
        ("{ } | { status = error }", Some(&[3, 6])),
        ("count() > 9", Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
        ("count() > 10", None),
        (r#"{ kind = client } | by(name) | { status = error }"#, Some(&[3])),
        ("{ status = error } with(most_recent=true)", Some(&[3, 6])),
        ("{ status = error } | select(span.http.status_code)", Some(&[3, 6])),
        (r#"({ } | by(resource.service.name) | count() > 3) && { name = "auth" }"#, Some(&[4, 5, 6, 7, 9])),
        ("({ } | by(resource.service.name) | count() > 2) > { }", Some(&[3, 4, 5, 6, 7, 8])),
        ("({ } | by(resource.service.name) | count() > 9) !> { kind = server }", Some(&[1, 2, 4, 10])),
    ]);
}

#[test]
fn groups_aggregates_and_selected_fields_are_returned() {
    let m = run("{ } | by(resource.service.name) | count() > 2").unwrap();
    let groups: Vec<_> = m.spansets.iter().map(|s| s.group.clone()).collect();
    assert_eq!(
        groups,
        vec![
            vec![("resource.service.name".to_string(), Value::String("api".into()))],
            vec![("resource.service.name".to_string(), Value::String("db".into()))],
        ]
    );
    assert_eq!(m.spansets[1].aggregates, vec![("count()".to_string(), Value::Int(4))]);
    assert_eq!(m.trace_id, "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(m.root_service_name.as_deref(), Some("gateway"));
    assert_eq!(m.root_span_name.as_deref(), Some("GET /"));
    assert_eq!((m.start_time_unix_nano, m.duration_nanos), (BASE, 120 * MS));

    let m = run("{ } | avg(duration) > 1ms").unwrap();
    assert_eq!(m.spansets[0].aggregates, vec![("avg(duration)".to_string(), Value::Duration(39_500_000))]);

    let m = run(r#"{ span.http.status_code = 500 } | select(resource.service.name, name, span:childCount)"#).unwrap();
    let span = &m.spansets[0].spans[0];
    assert_eq!((span.name.as_str(), span.service_name.as_deref()), ("handler", Some("api")));
    assert_eq!(span.duration_nanos, 79 * MS);
    let attrs: Vec<String> = span.attributes.iter().map(|(f, v)| format!("{f}={v}")).collect();
    assert_eq!(attrs, ["resource.service.name=api", "name=handler", "span:childCount=2", "span.http.status_code=500"]);
}

#[test]
fn spans_are_ordered_by_start_time_whatever_the_input_order() {
    let query = parse("{ }").unwrap();
    let evaluator = Evaluator::new(query);
    let mut reversed = trace();
    reversed.reverse();
    for rs in &mut reversed {
        for ss in &mut rs.scope_spans {
            ss.spans.reverse();
        }
    }
    let a = evaluator.evaluate(&trace()).unwrap().span_ids();
    let b = evaluator.evaluate(&reversed).unwrap().span_ids();
    assert_eq!(a, b);
    assert_eq!(a.iter().map(|i| i[7]).collect::<Vec<_>>(), (1..=10).collect::<Vec<u8>>());
}

#[test]
fn a_trace_without_its_root_has_no_root_fields() {
    let mut partial = trace();
    partial.retain(|rs| {
        rs.resource.as_ref().and_then(|r| r.attributes.first()).and_then(|kv| kv.value.as_ref())
            != Some(&AnyValue { value: Some(s("gateway")) })
    });
    let q = |text: &str| evaluate(&parse(text).unwrap(), &partial).map(|m| m.span_ids().len());
    assert_eq!(q("{ trace:rootName = nil }"), Some(8));
    assert_eq!(q(r#"{ trace:rootName = "GET /" }"#), None);
    // The handler's parent is missing: it starts a tree of its own.
    assert_eq!(q(r#"{ } !> { name = "handler" }"#), Some(1));
    assert_eq!(q(r#"{ name = "handler" } >> { name = "leaf" }"#), Some(1));
    assert_eq!(evaluate(&parse("{ }").unwrap(), &[]), None);
}

#[test]
fn deep_chains_do_not_blow_up() {
    // A 2000-deep chain: descendant and ancestor questions walk it without recursion.
    let spans: Vec<Span> = (1..=2000u32)
        .map(|i| Span {
            trace_id: trace_id(),
            span_id: i.to_be_bytes().repeat(2),
            parent_span_id: if i == 1 { Vec::new() } else { (i - 1).to_be_bytes().repeat(2) },
            name: format!("s{i}"),
            start_time_unix_nano: BASE + u64::from(i),
            end_time_unix_nano: BASE + 10_000,
            ..Default::default()
        })
        .collect();
    let deep = vec![group("chain", None, spans)];
    let count = |q: &str| evaluate(&parse(q).unwrap(), &deep).map_or(0, |m| m.span_ids().len());
    assert_eq!(count(r#"{ name = "s1" } >> { }"#), 1999);
    assert_eq!(count(r#"{ name = "s2000" } << { }"#), 1999);
    assert_eq!(count(r#"{ name = "s1000" } &<< { name = "s10" }"#), 2);
    assert_eq!(count("{ span:childCount = 0 }"), 1);
}
