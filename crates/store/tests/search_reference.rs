//! Search against a reference: random traces over several blocks of many small row groups, with traces split
//! across blocks and the head (their earliest span sometimes arriving last), and every page of many filters
//! compared with what a plain scan of all the spans sent says.

use std::collections::{BTreeMap, HashMap};

use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value};
use clew_model::{SpanBatch, SpanSink, Tenant, TraceId};
use clew_store::{AttrCondition, AttrScope, SearchRequest, SpanFilter, Store, StoreConfig};
use prometheus_client::registry::Registry;

const BASE: u64 = 1_700_000_000_000_000_000;
const HOUR: u64 = 3_600_000_000_000;
const MS: u64 = 1_000_000;
const SERVICES: [&str; 4] = ["api", "auth", "db", "queue"];
const NAMES: [&str; 6] = ["GET /a", "GET /b", "POST /c", "query", "publish", "consume"];

/// Deterministic splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), key_strindex: 0 }
}

/// A span as sent, with its service and resource attributes.
#[derive(Clone)]
struct Sent {
    span: Span,
    service: &'static str,
    resource: Vec<KeyValue>,
}

fn value_of(kvs: &[KeyValue], key: &str) -> Option<any_value::Value> {
    kvs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

/// Whether one span meets a filter, judged on the span as sent (the reference).
fn meets(s: &Sent, filter: &SpanFilter) -> bool {
    use clew_store::AttrOp;
    let span = &s.span;
    let duration = span.end_time_unix_nano.wrapping_sub(span.start_time_unix_nano) as i64;
    let status = span.status.as_ref().map_or(0, |st| st.code);
    if filter.service.as_deref().is_some_and(|v| v != s.service)
        || filter.name.as_deref().is_some_and(|v| v != span.name)
        || filter.kind.is_some_and(|k| k != span.kind)
        || filter.status.is_some_and(|v| v != status)
        || filter.min_duration_nanos.is_some_and(|min| duration < min)
        || filter.max_duration_nanos.is_some_and(|max| duration > max)
    {
        return false;
    }
    let mut resource = s.resource.clone();
    resource.push(kv("service.name", any_value::Value::StringValue(s.service.into())));
    let holds = |c: &AttrCondition, scope: Option<AttrScope>| {
        let value = match scope {
            Some(AttrScope::Span) => value_of(&span.attributes, &c.key),
            Some(AttrScope::Resource) => value_of(&resource, &c.key),
            None => value_of(&span.attributes, &c.key).or_else(|| value_of(&resource, &c.key)),
        };
        let Some(value) = value else { return false };
        let ordering = match (&value, &c.value) {
            (any_value::Value::StringValue(v), clew_store::Literal::Str(l)) => Some(v.as_str().cmp(l.as_str())),
            (any_value::Value::IntValue(v), clew_store::Literal::Int(l)) => Some(v.cmp(l)),
            _ => None,
        };
        match (&c.op, &value) {
            (AttrOp::Match(re), any_value::Value::StringValue(v)) => re.is_match(v),
            (AttrOp::NotMatch(re), any_value::Value::StringValue(v)) => !re.is_match(v),
            (AttrOp::Eq, _) => ordering == Some(std::cmp::Ordering::Equal),
            (AttrOp::Ne, _) => ordering.is_some_and(|o| o != std::cmp::Ordering::Equal),
            (AttrOp::Gt, _) => ordering == Some(std::cmp::Ordering::Greater),
            (AttrOp::Lt, _) => ordering == Some(std::cmp::Ordering::Less),
            _ => unreachable!("conditions of this test"),
        }
    };
    filter.attrs.iter().all(|c| holds(c, None))
        && filter.span_attrs.iter().all(|c| holds(c, Some(AttrScope::Span)))
        && filter.resource_attrs.iter().all(|c| holds(c, Some(AttrScope::Resource)))
}

/// The random traces, as requests in the order they are sent, with a cut after some of them.
struct Workload {
    spans: Vec<Sent>,
    /// Requests: the spans (indexes into `spans`) of each, and whether a cut follows it.
    requests: Vec<(Vec<usize>, bool)>,
}

fn workload(traces: u64, seed: u64) -> Workload {
    let mut rng = Rng(seed);
    let mut spans: Vec<Sent> = Vec::new();
    // Parts of traces held back to a later request (after a cut).
    let mut late: Vec<usize> = Vec::new();
    let mut requests = Vec::new();
    let mut current = Vec::new();
    for t in 0..traces {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&rng.next().to_be_bytes());
        id[8..].copy_from_slice(&t.to_be_bytes());
        let start = BASE + rng.below(24 * HOUR);
        let count = 1 + rng.below(6) as usize;
        let first = spans.len();
        for i in 0..count {
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&(t as u32).to_be_bytes());
            span_id[7] = i as u8;
            let offset = if i == 0 { 0 } else { rng.below(50 * MS) };
            let duration = rng.below(200 * MS);
            // Most spans carry a region of their own; the others fall back to their resource's.
            let mut attributes = Vec::new();
            if rng.below(10) < 7 {
                attributes.push(kv("region", any_value::Value::StringValue(format!("r{}", rng.below(5)))));
            }
            // A rare key, a numeric one and a common one that some spans carry twice.
            if rng.below(40) == 0 {
                attributes.push(kv("rare", any_value::Value::StringValue(format!("v{}", rng.below(3)))));
            }
            if rng.below(2) == 0 {
                attributes
                    .push(kv("http.status_code", any_value::Value::IntValue([200, 404, 500][rng.below(3) as usize])));
            }
            if rng.below(20) == 0 {
                attributes.push(kv("region", any_value::Value::StringValue("dup".into())));
            }
            let service = SERVICES[rng.below(4) as usize];
            let resource = if rng.below(3) == 0 {
                vec![kv("zone", any_value::Value::StringValue(format!("z{}", rng.below(2))))]
            } else {
                vec![kv("region", any_value::Value::StringValue("from-resource".into()))]
            };
            spans.push(Sent {
                span: Span {
                    trace_id: id.to_vec(),
                    span_id: span_id.to_vec(),
                    parent_span_id: if i == 0 { Vec::new() } else { vec![0; 8] },
                    name: NAMES[rng.below(6) as usize].into(),
                    kind: 1 + rng.below(5) as i32,
                    start_time_unix_nano: start + offset,
                    end_time_unix_nano: start + offset + duration,
                    attributes,
                    status: (rng.below(10) == 0).then(|| Status { code: 2, message: "boom".into() }),
                    ..Default::default()
                },
                service,
                resource,
            });
        }
        // One trace in eight sends its first (earliest) span after a cut: the part in an earlier block starts
        // later than the trace does.
        if count > 1 && rng.below(8) == 0 {
            late.push(first);
            current.extend(first + 1..first + count);
        } else {
            current.extend(first..first + count);
        }
        if current.len() >= 40 {
            let cut = rng.below(6) == 0;
            requests.push((std::mem::take(&mut current), cut));
            if cut {
                requests.push((std::mem::take(&mut late), false));
            }
        }
    }
    current.extend(late);
    requests.push((current, false));
    Workload { spans, requests }
}

fn batch(spans: &[Sent], indexes: &[usize]) -> Vec<ResourceSpans> {
    indexes
        .iter()
        .map(|&i| {
            let s = &spans[i];
            let mut attributes = s.resource.clone();
            attributes.insert(0, kv("service.name", any_value::Value::StringValue(s.service.into())));
            ResourceSpans {
                resource: Some(Resource { attributes, ..Default::default() }),
                scope_spans: vec![ScopeSpans { spans: vec![s.span.clone()], ..Default::default() }],
                ..Default::default()
            }
        })
        .collect()
}

/// The reference answer: matching traces newest first by (start of their earliest span, id), with how many of
/// their spans match.
fn reference(spans: &[Sent], filter: &SpanFilter, request: &SearchRequest) -> Vec<(TraceId, u64, u64)> {
    let mut traces: BTreeMap<TraceId, (u64, u64)> = BTreeMap::new();
    for s in spans {
        let id = TraceId::from_slice(&s.span.trace_id).unwrap();
        let entry = traces.entry(id).or_insert((u64::MAX, 0));
        entry.0 = entry.0.min(s.span.start_time_unix_nano);
        entry.1 += meets(s, filter) as u64;
    }
    let mut found: Vec<(TraceId, u64, u64)> = traces
        .into_iter()
        .filter(|(_, (start, matched))| {
            *matched > 0
                && request.start_min_unix_nano.is_none_or(|min| *start >= min)
                && request.start_max_unix_nano.is_none_or(|max| *start <= max)
        })
        .map(|(id, (start, matched))| (id, start, matched))
        .collect();
    found.sort_by_key(|&(id, start, _)| std::cmp::Reverse((start, id)));
    found
}

fn attrs(conditions: &[&str]) -> Vec<AttrCondition> {
    conditions.iter().map(|c| AttrCondition::parse(c).unwrap()).collect()
}

#[tokio::test]
async fn every_page_of_every_filter_matches_a_scan_of_all_spans() {
    let dir = tempfile::tempdir().unwrap();
    // Small row groups: each block has many, so the search stops early and resumes across them.
    let config = StoreConfig { data_dir: dir.path().to_path_buf(), row_group_spans: 150, ..StoreConfig::default() };
    let store = Store::open(config, &mut Registry::default()).unwrap();
    let tenant = Tenant::default();
    let work = workload(2_500, 11);
    let mut cuts = 0;
    for (indexes, cut) in &work.requests {
        if indexes.is_empty() {
            continue;
        }
        let batch = SpanBatch::from_resource_spans(tenant.clone(), batch(&work.spans, indexes)).unwrap();
        store.consume(batch).await.unwrap();
        if *cut {
            store.cut().await.unwrap();
            cuts += 1;
        }
    }
    let blocks = store.blocks(&tenant);
    assert!(cuts >= 5 && blocks.len() >= 5, "{cuts} cuts, {} blocks", blocks.len());
    let groups: Vec<usize> = blocks.iter().map(|b| b.row_groups.len()).collect();
    assert!(groups.iter().filter(|&&g| g >= 3).count() >= 4, "several row groups in most blocks: {groups:?}");
    assert!(store.stats().head_spans > 0, "some spans stay in the head");

    let middle = BASE + 12 * HOUR;
    // (what, filter, start range)
    type Case = (&'static str, SpanFilter, Option<(u64, u64)>);
    let filters: Vec<Case> = vec![
        ("everything", SpanFilter::default(), None),
        ("time range only", SpanFilter::default(), Some((middle - 2 * HOUR, middle + HOUR))),
        ("service", SpanFilter { service: Some("auth".into()), ..Default::default() }, None),
        (
            "service and name",
            SpanFilter { service: Some("db".into()), name: Some("query".into()), ..Default::default() },
            None,
        ),
        ("kind", SpanFilter { kind: Some(4), ..Default::default() }, None),
        ("status", SpanFilter { status: Some(2), ..Default::default() }, None),
        (
            "duration range",
            SpanFilter {
                min_duration_nanos: Some(20 * MS as i64),
                max_duration_nanos: Some(25 * MS as i64),
                ..Default::default()
            },
            None,
        ),
        ("rare attribute", SpanFilter { attrs: attrs(&["rare=v1"]), ..Default::default() }, None),
        ("attribute regex", SpanFilter { attrs: attrs(&["rare=~v[02]"]), ..Default::default() }, None),
        ("numeric attribute", SpanFilter { attrs: attrs(&["http.status_code>404"]), ..Default::default() }, None),
        (
            "span first, then resource",
            SpanFilter { attrs: attrs(&["region=from-resource"]), ..Default::default() },
            None,
        ),
        ("duplicated key: first wins", SpanFilter { span_attrs: attrs(&["region=dup"]), ..Default::default() }, None),
        ("resource scope", SpanFilter { resource_attrs: attrs(&["zone=z1"]), ..Default::default() }, None),
        (
            "everything at once",
            SpanFilter {
                service: Some("api".into()),
                min_duration_nanos: Some(50 * MS as i64),
                attrs: attrs(&["region!=r0", "http.status_code=500"]),
                ..Default::default()
            },
            Some((middle - 6 * HOUR, middle + 6 * HOUR)),
        ),
    ];
    for (what, filter, range) in filters {
        let base = SearchRequest {
            filter: filter.clone(),
            start_min_unix_nano: range.map(|r| r.0),
            start_max_unix_nano: range.map(|r| r.1),
            limit: 1000,
            after: None,
        };
        let expected = reference(&work.spans, &filter, &base);
        assert!(!expected.is_empty(), "{what}: the workload has matches");
        for limit in [7, 1000] {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let request = SearchRequest { limit, after, ..base.clone() };
                let page = store.search(&tenant, &request).await.unwrap();
                assert!(page.traces.len() <= limit, "{what}");
                got.extend(page.traces.iter().map(|t| (t.trace_id, t.start_unix_nano, t.matched_spans)));
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(got.len(), expected.len(), "{what}, pages of {limit}");
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(g, e, "{what}, pages of {limit}: result {i}");
            }
            // Positions alone (what TraceQL walks) give the same order.
            let (positions, _) =
                store.search_positions(&tenant, &SearchRequest { limit: 50, ..base.clone() }).await.unwrap();
            let ids: Vec<TraceId> = positions.iter().map(|p| p.trace_id).collect();
            let want: Vec<TraceId> = expected.iter().take(50).map(|e| e.0).collect();
            assert_eq!(ids, want, "{what}: positions");
        }
    }

    // Whole-trace summaries count every span of a split trace once.
    let page = store.search(&tenant, &SearchRequest { limit: 1000, ..Default::default() }).await.unwrap();
    let mut spans_of: HashMap<TraceId, u64> = HashMap::new();
    for s in &work.spans {
        *spans_of.entry(TraceId::from_slice(&s.span.trace_id).unwrap()).or_default() += 1;
    }
    for t in &page.traces {
        assert_eq!(t.span_count, spans_of[&t.trace_id], "trace {}", t.trace_id);
    }
}
