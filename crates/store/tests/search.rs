//! Search over the head and blocks: every filter, paging, whole-trace summaries, tenants.

use std::sync::Arc;

use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value};
use clew_model::{SpanBatch, SpanSink, Tenant, TraceId};
use clew_store::{AttrCondition, SearchRequest, SpanFilter, Store, StoreConfig, TraceSummary};
use prometheus_client::registry::Registry;

const BASE: u64 = 1_700_000_000_000_000_000;
const SECOND: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
/// Traces 1..=10 go to the first block, 11..=20 to the second, 21..=30 stay in the head; trace 31 has its
/// root in the second block and its child in the head.
const TRACES: u32 = 31;

fn trace_id(n: u32) -> TraceId {
    let mut id = [0x5e; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[15] = n as u8;
    TraceId(id)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), key_strindex: 0 }
}

fn string(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

fn start_of(n: u32) -> u64 {
    BASE + n as u64 * SECOND
}

fn region(n: u32) -> &'static str {
    ["eu-west", "us-east", "ap-south"][n as usize % 3]
}

/// Trace `n`: a root `root` (server, service `svc-{n%3}`, n ms) and a child `query` (client, service `db`,
/// 10·n ms, error when n.is_multiple_of(7)), each in its own `ResourceSpans`.
fn trace(n: u32) -> (ResourceSpans, ResourceSpans) {
    let id = trace_id(n).0.to_vec();
    let mut root_attrs = vec![
        kv("http.status_code", any_value::Value::IntValue(if n.is_multiple_of(5) { 500 } else { 200 })),
        kv("region", string(region(n))),
        kv("ratio", any_value::Value::DoubleValue(n as f64 / 10.0)),
        kv("cached", any_value::Value::BoolValue(n.is_multiple_of(2))),
    ];
    if n == 3 {
        root_attrs.push(kv("note", string("eu west")));
    }
    let root = Span {
        trace_id: id.clone(),
        span_id: vec![1, 0, 0, 0, 0, 0, 0, n as u8],
        name: "root".into(),
        kind: 2,
        start_time_unix_nano: start_of(n),
        end_time_unix_nano: start_of(n) + n as u64 * MS,
        attributes: root_attrs,
        ..Default::default()
    };
    let mut child_attrs = vec![kv("db.system", string(if n.is_multiple_of(4) { "postgres" } else { "mysql" }))];
    if n == 13 {
        child_attrs.push(kv("rare", string("x")));
    }
    let child = Span {
        trace_id: id,
        span_id: vec![2, 0, 0, 0, 0, 0, 0, n as u8],
        parent_span_id: vec![1, 0, 0, 0, 0, 0, 0, n as u8],
        name: "query".into(),
        kind: 3,
        start_time_unix_nano: start_of(n) + MS,
        end_time_unix_nano: start_of(n) + MS + 10 * n as u64 * MS,
        status: (n.is_multiple_of(7)).then(|| Status { code: 2, message: "boom".into() }),
        attributes: child_attrs,
        ..Default::default()
    };
    let resource = |service: String, canary: bool| {
        let mut attributes = vec![
            kv("service.name", string(&service)),
            kv("deployment", string(if n <= 15 { "prod" } else { "staging" })),
        ];
        if canary {
            attributes.push(kv("canary", string("yes")));
        }
        Some(Resource { attributes, ..Default::default() })
    };
    let rs = |resource, span| ResourceSpans {
        resource,
        scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
        ..Default::default()
    };
    (rs(resource(format!("svc-{}", n % 3), n == 7), root), rs(resource("db".into(), false), child))
}

async fn send(store: &Store, tenant: &Tenant, resource_spans: Vec<ResourceSpans>) {
    store.consume(SpanBatch::from_resource_spans(tenant.clone(), resource_spans).unwrap()).await.unwrap();
}

/// The store with traces 1..=31 spread over two blocks and the head, and one trace of tenant `other`.
async fn populated(dir: &std::path::Path) -> Arc<Store> {
    let config = StoreConfig { data_dir: dir.to_path_buf(), ..StoreConfig::default() };
    let store = Store::open(config, &mut Registry::default()).unwrap();
    let tenant = Tenant::default();
    for n in 1..=10 {
        let (root, child) = trace(n);
        send(&store, &tenant, vec![root, child]).await;
    }
    assert_eq!(store.cut().await.unwrap().blocks, 1);
    for n in 11..=20 {
        let (root, child) = trace(n);
        send(&store, &tenant, vec![root, child]).await;
    }
    let (root31, child31) = trace(31);
    send(&store, &tenant, vec![root31]).await;
    store.cut().await.unwrap();
    for n in 21..=30 {
        let (root, child) = trace(n);
        send(&store, &tenant, vec![root, child]).await;
    }
    send(&store, &tenant, vec![child31]).await;
    let (root, _) = trace(99);
    send(&store, &Tenant::parse("other").unwrap(), vec![root]).await;
    store
}

fn request(filter: SpanFilter) -> SearchRequest {
    SearchRequest { filter, limit: 1000, ..Default::default() }
}

fn attrs(conditions: &[&str]) -> SpanFilter {
    SpanFilter { attrs: conditions.iter().map(|c| AttrCondition::parse(c).unwrap()).collect(), ..Default::default() }
}

/// Trace numbers satisfying `pred`, in result order (newest first).
fn expected(pred: impl Fn(u32) -> bool) -> Vec<TraceId> {
    (1..=TRACES).rev().filter(|&n| pred(n)).map(trace_id).collect()
}

async fn ids(store: &Store, request: &SearchRequest) -> Vec<TraceId> {
    let page = store.search(&Tenant::default(), request).await.unwrap();
    page.traces.iter().map(|t| t.trace_id).collect()
}

#[tokio::test]
async fn every_filter_returns_exactly_the_matching_traces_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path()).await;
    let s = |v: &str| Some(v.to_owned());

    let cases: Vec<(&str, SpanFilter, Vec<TraceId>)> = vec![
        ("no condition", SpanFilter::default(), expected(|_| true)),
        ("service db", SpanFilter { service: s("db"), ..Default::default() }, expected(|_| true)),
        ("service svc-1", SpanFilter { service: s("svc-1"), ..Default::default() }, expected(|n| n % 3 == 1)),
        ("service nope", SpanFilter { service: s("nope"), ..Default::default() }, vec![]),
        ("name root", SpanFilter { name: s("root"), ..Default::default() }, expected(|_| true)),
        (
            "conditions hold on one span",
            SpanFilter { service: s("svc-0"), name: s("query"), ..Default::default() },
            vec![],
        ),
        (
            "service and name of one span",
            SpanFilter { service: s("svc-2"), name: s("root"), ..Default::default() },
            expected(|n| n % 3 == 2),
        ),
        ("attr int =", attrs(&["http.status_code=500"]), expected(|n| n.is_multiple_of(5))),
        ("attr int !=", attrs(&["http.status_code!=200"]), expected(|n| n.is_multiple_of(5))),
        ("attr int >=", attrs(&["http.status_code>=500"]), expected(|n| n.is_multiple_of(5))),
        ("attr int <", attrs(&["http.status_code<300"]), expected(|n| !n.is_multiple_of(5))),
        ("attr int <=", attrs(&["http.status_code<=200"]), expected(|n| !n.is_multiple_of(5))),
        ("attr int >", attrs(&["http.status_code>200"]), expected(|n| n.is_multiple_of(5))),
        ("attr double > float", attrs(&["ratio>2.5"]), expected(|n| n > 25)),
        ("attr double >= int", attrs(&["ratio>=3"]), expected(|n| n >= 30)),
        ("attr int vs string literal", attrs(&["http.status_code=\"500\""]), vec![]),
        ("attr string =", attrs(&["region=us-east"]), expected(|n| n % 3 == 1)),
        ("attr string quoted", attrs(&["note=\"eu west\""]), expected(|n| n == 3)),
        ("attr regex", attrs(&["region=~eu-.*"]), expected(|n| n.is_multiple_of(3))),
        ("attr regex anchored", attrs(&["region=~eu"]), vec![]),
        ("attr not regex", attrs(&["region!~eu-.*"]), expected(|n| !n.is_multiple_of(3))),
        ("attr bool", attrs(&["cached=true"]), expected(|n| n.is_multiple_of(2))),
        ("attr generic column", attrs(&["rare=x"]), expected(|n| n == 13)),
        ("resource attr", attrs(&["deployment=prod"]), expected(|n| n <= 15)),
        ("resource attr generic", attrs(&["canary=yes"]), expected(|n| n == 7)),
        ("service.name as attr", attrs(&["service.name=svc-0"]), expected(|n| n.is_multiple_of(3))),
        ("missing attribute", attrs(&["nope!=1"]), vec![]),
        (
            "two attrs on one span",
            attrs(&["region=us-east", "cached=true"]),
            expected(|n| n % 3 == 1 && n.is_multiple_of(2)),
        ),
        ("attrs on two spans", attrs(&["region=us-east", "db.system=mysql"]), vec![]),
        (
            "attr and status",
            SpanFilter { status: Some(2), ..attrs(&["db.system=postgres"]) },
            expected(|n| n.is_multiple_of(4) && n.is_multiple_of(7)),
        ),
        ("status error", SpanFilter { status: Some(2), ..Default::default() }, expected(|n| n.is_multiple_of(7))),
        (
            "status unset on client spans",
            SpanFilter { status: Some(0), kind: Some(3), ..Default::default() },
            expected(|n| !n.is_multiple_of(7)),
        ),
        ("kind client", SpanFilter { kind: Some(3), ..Default::default() }, expected(|_| true)),
        ("kind producer", SpanFilter { kind: Some(4), ..Default::default() }, vec![]),
        (
            "min duration",
            SpanFilter { kind: Some(3), min_duration_nanos: Some(200 * MS as i64), ..Default::default() },
            expected(|n| n >= 20),
        ),
        (
            "max duration",
            SpanFilter { kind: Some(2), max_duration_nanos: Some(5 * MS as i64), ..Default::default() },
            expected(|n| n <= 5),
        ),
        (
            "duration window",
            SpanFilter {
                min_duration_nanos: Some(12 * MS as i64),
                max_duration_nanos: Some(14 * MS as i64),
                ..Default::default()
            },
            expected(|n| (12..=14).contains(&n)),
        ),
    ];
    for (what, filter, want) in cases {
        assert_eq!(ids(&store, &request(filter)).await, want, "{what}");
    }

    let window = SearchRequest {
        start_min_unix_nano: Some(start_of(10)),
        start_max_unix_nano: Some(start_of(20)),
        ..request(SpanFilter::default())
    };
    assert_eq!(ids(&store, &window).await, expected(|n| (10..=20).contains(&n)), "time range");
    let since = SearchRequest { start_min_unix_nano: Some(start_of(25)), ..request(SpanFilter::default()) };
    assert_eq!(ids(&store, &since).await, expected(|n| n >= 25), "start bound only");
}

#[tokio::test]
async fn paging_returns_every_match_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path()).await;
    for filter in [SpanFilter::default(), attrs(&["http.status_code<300"])] {
        let all = ids(&store, &request(filter.clone())).await;
        let mut paged = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let req = SearchRequest { filter: filter.clone(), limit: 4, after, ..Default::default() };
            let page = store.search(&Tenant::default(), &req).await.unwrap();
            assert!(page.traces.len() <= 4);
            paged.extend(page.traces.iter().map(|t| t.trace_id));
            pages += 1;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, all);
        assert_eq!(pages, all.len().div_ceil(4));
    }
}

#[tokio::test]
async fn summaries_cover_the_whole_trace_across_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path()).await;
    // Trace 31's child (in the head) matches; its root is in the second block.
    let req = request(SpanFilter { service: Some("db".into()), ..attrs(&["db.system=mysql"]) });
    let page = store.search(&Tenant::default(), &req).await.unwrap();
    let t31: &TraceSummary = page.traces.iter().find(|t| t.trace_id == trace_id(31)).unwrap();
    assert_eq!(
        *t31,
        TraceSummary {
            trace_id: trace_id(31),
            root_service: "svc-1".into(),
            root_name: "root".into(),
            start_unix_nano: start_of(31),
            duration_nanos: MS + 310 * MS,
            span_count: 2,
            error_count: 0,
            services: vec!["db".into(), "svc-1".into()],
            matched_spans: 1,
        }
    );
    // A trace wholly in a block, matched on its root: the summary still counts the child's error.
    let req = request(SpanFilter { name: Some("root".into()), ..Default::default() });
    let page = store.search(&Tenant::default(), &req).await.unwrap();
    let t14 = page.traces.iter().find(|t| t.trace_id == trace_id(14)).unwrap();
    assert_eq!((t14.span_count, t14.error_count, t14.matched_spans), (2, 1, 1));
    assert_eq!(t14.services, vec!["db".to_string(), "svc-2".to_string()]);
    assert_eq!(t14.duration_nanos, MS + 140 * MS);
    let all = store.search(&Tenant::default(), &request(SpanFilter::default())).await.unwrap();
    assert!(all.traces.iter().all(|t| t.span_count == 2 && t.matched_spans == 2 && t.root_name == "root"));
}

#[tokio::test]
async fn tenants_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path()).await;
    let other = Tenant::parse("other").unwrap();
    let page = store.search(&other, &request(SpanFilter::default())).await.unwrap();
    assert_eq!(page.traces.iter().map(|t| t.trace_id).collect::<Vec<_>>(), vec![trace_id(99)]);
    assert!(!ids(&store, &request(SpanFilter::default())).await.contains(&trace_id(99)));
    let nobody = Tenant::parse("nobody").unwrap();
    assert!(store.search(&nobody, &request(SpanFilter::default())).await.unwrap().traces.is_empty());
}

#[tokio::test]
async fn listings_cover_head_and_blocks() {
    use clew_store::{AttrScope, AttributeKey, AttributeValue, Operation};
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path()).await;
    let tenant = Tenant::default();
    assert_eq!(store.services(&tenant).await.unwrap(), vec!["db", "svc-0", "svc-1", "svc-2"]);
    assert_eq!(store.services(&Tenant::parse("other").unwrap()).await.unwrap(), vec!["svc-0"]);
    assert_eq!(store.operations(&tenant, "db").await.unwrap(), vec![Operation { name: "query".into(), kind: 3 }]);
    assert_eq!(store.operations(&tenant, "svc-1").await.unwrap(), vec![Operation { name: "root".into(), kind: 2 }]);
    assert!(store.operations(&tenant, "nope").await.unwrap().is_empty());

    let keys = store.attribute_keys(&tenant).await.unwrap();
    for (key, scope) in [
        ("http.status_code", AttrScope::Span),
        ("rare", AttrScope::Span),
        ("note", AttrScope::Span),
        ("db.system", AttrScope::Span),
        ("deployment", AttrScope::Resource),
        ("canary", AttrScope::Resource),
        ("service.name", AttrScope::Resource),
    ] {
        assert!(keys.contains(&AttributeKey { key: key.into(), scope }), "{key} in {keys:?}");
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let values = store.attribute_values(&tenant, "db.system", 10).await.unwrap();
    // n.is_multiple_of(4) among 1..=31: 7 postgres, 24 mysql.
    assert_eq!(
        values,
        vec![
            AttributeValue { value: "mysql".into(), count: 24 },
            AttributeValue { value: "postgres".into(), count: 7 }
        ]
    );
    let values = store.attribute_values(&tenant, "http.status_code", 1).await.unwrap();
    assert_eq!(values, vec![AttributeValue { value: "200".into(), count: 25 }]);
    let values = store.attribute_values(&tenant, "deployment", 10).await.unwrap();
    assert_eq!(
        values,
        vec![AttributeValue { value: "staging".into(), count: 32 }, AttributeValue { value: "prod".into(), count: 30 }]
    );
    let values = store.attribute_values(&tenant, "rare", 10).await.unwrap();
    assert_eq!(values, vec![AttributeValue { value: "x".into(), count: 1 }]);
}

#[tokio::test]
async fn many_traces_at_once_match_one_by_one_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path()).await;
    let tenant = Tenant::default();
    // Traces from the first block, the second, the head, one split (31), and one that does not exist.
    let ids: Vec<TraceId> = [1, 5, 10, 11, 19, 22, 30, 31, 999].into_iter().map(trace_id).collect();
    let many = store.traces_within(&tenant, &ids, None).await.unwrap();
    assert_eq!(many.len(), 8, "every stored trace and only those");
    for id in &ids {
        let one = store.trace(&tenant, id).await.unwrap();
        let count = |rs: &[ResourceSpans]| rs.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>();
        match many.get(id) {
            None => assert!(one.is_empty(), "trace {id} missing"),
            Some(found) => {
                assert_eq!(count(found), 2, "trace {id}: root and child");
                let mut a: Vec<Span> =
                    found.iter().flat_map(|r| &r.scope_spans).flat_map(|s| s.spans.clone()).collect();
                let mut b: Vec<Span> = one.iter().flat_map(|r| &r.scope_spans).flat_map(|s| s.spans.clone()).collect();
                a.sort_by(|x, y| x.span_id.cmp(&y.span_id));
                b.sort_by(|x, y| x.span_id.cmp(&y.span_id));
                assert_eq!(a, b, "trace {id}");
            }
        }
    }
    // A window before every trace reads no block; the head is still read.
    let early = store.traces_within(&tenant, &ids, Some((0, BASE))).await.unwrap();
    assert!(early.keys().all(|id| [22, 30, 31].map(trace_id).contains(id)), "{:?}", early.keys());
}

#[tokio::test]
async fn scoped_conditions_look_only_in_their_scope() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path()).await;
    let cond = |c: &str| vec![AttrCondition::parse(c).unwrap()];
    let span = |c: &str| request(SpanFilter { span_attrs: cond(c), ..Default::default() });
    let resource = |c: &str| request(SpanFilter { resource_attrs: cond(c), ..Default::default() });
    // `region` is a span attribute, `deployment` and `service.name` resource attributes.
    assert_eq!(ids(&store, &span("region=eu-west")).await, expected(|n| region(n) == "eu-west"));
    assert_eq!(ids(&store, &resource("region=eu-west")).await, Vec::<TraceId>::new());
    assert_eq!(ids(&store, &resource("deployment=staging")).await, expected(|n| n > 15));
    assert_eq!(ids(&store, &span("deployment=staging")).await, Vec::<TraceId>::new());
    assert_eq!(ids(&store, &resource("service.name=svc-1")).await, expected(|n| n % 3 == 1));
    assert_eq!(ids(&store, &span("service.name=svc-1")).await, Vec::<TraceId>::new());
    // Scoped and unscoped conditions hold on the same span.
    let both = SpanFilter {
        span_attrs: cond("http.status_code=500"),
        resource_attrs: cond("deployment=prod"),
        ..Default::default()
    };
    assert_eq!(ids(&store, &request(both)).await, expected(|n| n % 5 == 0 && n <= 15));
}
