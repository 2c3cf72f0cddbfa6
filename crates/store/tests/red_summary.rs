//! Per-block RED summaries: exact counts and bucket placements, written before `meta.json` and listed there,
//! readable back, agreeing with the span scan; blocks without summaries still read.

use clew_model::latency_buckets::bucket_of_nanos;
use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value::Value};
use clew_model::{Tenant, TraceId};
use clew_store::block::red_summary::{self, RedSummary, SUMMARY_BUCKET_NANOS};
use clew_store::block::{BlockMeta, BlockOptions, BlockSpan, write_block};
use object_store::ObjectStore;
use object_store::memory::InMemory;

const S: u64 = 1_000_000_000;
const MIN: u64 = 60 * S;
/// A whole hour, so minute and hour buckets are easy to name.
const T0: u64 = 1_800_000_000 / 3600 * 3600 * S;
const ALL: (u64, u64) = (0, u64::MAX);

fn resource(service: Option<&str>) -> Option<Resource> {
    Some(Resource {
        attributes: service
            .map(|s| KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue { value: Some(Value::StringValue(s.into())) }),
                key_strindex: 0,
            })
            .into_iter()
            .collect(),
        ..Default::default()
    })
}

fn span(trace: u8, id: u8, name: &str, kind: i32, start: u64, duration: u64, error: bool) -> Span {
    Span {
        trace_id: TraceId([trace; 16]).0.to_vec(),
        span_id: vec![id, 1, 2, 3, 4, 5, 6, trace],
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration,
        status: error.then(|| Status { code: 2, message: "boom".into() }),
        ..Default::default()
    }
}

fn resource_spans(service: Option<&str>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: resource(service),
        scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
        ..Default::default()
    }
}

/// api: GET (server) at +10 s (100 ms), +50 s (failed, 300 ms), +70 s (100 ms) and +4000 s (0 ns);
/// POST at +10 s. db: SELECT (client) at +20 s (2 ms). A resource without a service: one span.
fn known_spans() -> Vec<BlockSpan> {
    BlockSpan::from_resource_spans(vec![
        resource_spans(
            Some("api"),
            vec![
                span(1, 1, "GET", 2, T0 + 10 * S, S / 10, false),
                span(2, 1, "GET", 2, T0 + 50 * S, 3 * S / 10, true),
                span(3, 1, "GET", 2, T0 + 70 * S, S / 10, false),
                span(4, 1, "GET", 2, T0 + 4000 * S, 0, false),
                span(1, 2, "POST", 2, T0 + 10 * S, S, false),
            ],
        ),
        resource_spans(Some("db"), vec![span(1, 3, "SELECT", 3, T0 + 20 * S, 2_000_000, false)]),
        resource_spans(None, vec![span(5, 1, "orphan", 1, T0, 5, false)]),
    ])
}

/// (service, name, kind, error) → [(bucket start, count, zeros, [(latency bucket, count)])].
type Flat = Vec<((Option<String>, String, i32, bool), Vec<(u64, u64, u64, Vec<(i32, u64)>)>)>;

/// The summary with each series' parts (one per section read) put together, sorted by key.
fn flat(summary: &RedSummary) -> Flat {
    let mut series: std::collections::BTreeMap<_, Vec<_>> = Default::default();
    for s in &summary.series {
        let cells =
            s.cells.iter().map(|c| (c.bucket * summary.bucket_nanos, c.count, c.zeros, c.latency_buckets().collect()));
        series.entry((s.service.clone(), s.name.clone(), s.kind, s.error)).or_default().extend(cells);
    }
    series.into_iter().collect()
}

fn key(service: Option<&str>, name: &str, kind: i32, error: bool) -> (Option<String>, String, i32, bool) {
    (service.map(str::to_owned), name.to_owned(), kind, error)
}

fn lat(nanos: u64) -> (i32, u64) {
    (bucket_of_nanos(nanos).unwrap(), 1)
}

#[tokio::test]
async fn block_summary_has_exact_counts_and_buckets() {
    let store = InMemory::new();
    let meta = write_block(&store, &Tenant::default(), known_spans(), &BlockOptions::default()).await.unwrap();
    assert_eq!(meta.red_summary_bucket_nanos, SUMMARY_BUCKET_NANOS.to_vec());

    let minute = red_summary::read_summary(&store, &meta, MIN, &[], ALL).await.unwrap().expect("a minute summary");
    let h100 = bucket_of_nanos(S / 10).unwrap();
    assert_eq!(
        flat(&minute),
        vec![
            (key(None, "orphan", 1, false), vec![(T0, 1, 0, vec![lat(5)])]),
            (
                key(Some("api"), "GET", 2, false),
                vec![(T0, 1, 0, vec![(h100, 1)]), (T0 + MIN, 1, 0, vec![(h100, 1)]), (T0 + 66 * MIN, 1, 1, vec![])]
            ),
            (key(Some("api"), "GET", 2, true), vec![(T0, 1, 0, vec![lat(3 * S / 10)])]),
            (key(Some("api"), "POST", 2, false), vec![(T0, 1, 0, vec![lat(S)])]),
            (key(Some("db"), "SELECT", 3, false), vec![(T0, 1, 0, vec![lat(2_000_000)])]),
        ]
    );
    let hour = red_summary::read_summary(&store, &meta, 3600 * S, &[], ALL).await.unwrap().expect("an hour summary");
    let get = &flat(&hour)[1];
    assert_eq!(get.0, key(Some("api"), "GET", 2, false));
    assert_eq!(get.1, vec![(T0, 2, 0, vec![(h100, 2)]), (T0 + 3600 * S, 1, 1, vec![])]);
    assert_eq!(red_summary::read_summary(&store, &meta, 7 * S, &[], ALL).await.unwrap(), None, "no such width");
    // Only the services asked for are decoded.
    let db = red_summary::read_summary(&store, &meta, MIN, &["db".into(), "nope".into()], ALL).await.unwrap().unwrap();
    assert_eq!(flat(&db), vec![(key(Some("db"), "SELECT", 3, false), vec![(T0, 1, 0, vec![lat(2_000_000)])])]);

    // The summaries are there before the meta: each is listed in the block's directory.
    let dir = object_store::path::Path::from_iter([meta.tenant.as_str(), "blocks", meta.block_id.as_str()]);
    let listed: Vec<String> = store
        .list_with_delimiter(Some(&dir))
        .await
        .unwrap()
        .objects
        .into_iter()
        .filter_map(|o| o.location.filename().map(str::to_owned))
        .collect();
    for width in SUMMARY_BUCKET_NANOS {
        assert!(listed.contains(&red_summary::summary_file(width)), "{listed:?}");
    }
}

#[tokio::test]
async fn scanning_a_block_gives_the_facts_the_summary_aggregates() {
    let store = InMemory::new();
    let meta = write_block(&store, &Tenant::default(), known_spans(), &BlockOptions::default()).await.unwrap();
    let mut seen = Vec::new();
    red_summary::scan_spans(&store, &meta, (T0 + 10 * S, T0 + 4000 * S), &["api".to_string()], |s| {
        seen.push((s.name.to_owned(), s.start_unix_nano - T0, s.duration_nanos, s.error, s.kind));
    })
    .await
    .unwrap();
    seen.sort_by_key(|s| (s.1, s.0.clone()));
    assert_eq!(
        seen,
        vec![
            ("GET".to_string(), 10 * S, S / 10, false, 2),
            ("POST".to_string(), 10 * S, S, false, 2),
            ("GET".to_string(), 50 * S, 3 * S / 10, true, 2),
            ("GET".to_string(), 70 * S, S / 10, false, 2),
        ],
        "api only, [start, end)"
    );
    let mut all = 0;
    red_summary::scan_spans(&store, &meta, (0, u64::MAX), &[], |_| all += 1).await.unwrap();
    assert_eq!(all, 7);
}

#[tokio::test]
async fn blocks_written_before_summaries_have_none() {
    let store = InMemory::new();
    let meta = write_block(&store, &Tenant::default(), known_spans(), &BlockOptions::default()).await.unwrap();
    let mut json: serde_json::Value = serde_json::to_value(&meta).unwrap();
    json.as_object_mut().unwrap().remove("red_summary_bucket_nanos");
    let old: BlockMeta = serde_json::from_value(json).expect("an older meta.json still parses");
    assert!(old.red_summary_bucket_nanos.is_empty());
    assert_eq!(red_summary::read_summary(&store, &old, MIN, &[], ALL).await.unwrap(), None);
}

#[tokio::test]
async fn a_reader_fetches_only_the_sections_of_its_services_and_times() {
    let store = InMemory::new();
    let meta = write_block(&store, &Tenant::default(), known_spans(), &BlockOptions::default()).await.unwrap();
    // Minute 66 after T0 is in another section (64 minutes each, from the epoch; T0 starts one) than 0 and 1.
    assert_eq!(T0 / MIN % 64, 0);
    let late = (T0 + 4000 * S, T0 + 4001 * S);
    let minute = red_summary::read_summary(&store, &meta, MIN, &[], late).await.unwrap().unwrap();
    assert_eq!(flat(&minute), vec![(key(Some("api"), "GET", 2, false), vec![(T0 + 66 * MIN, 1, 1, vec![])])]);

    // Thousands of services: the index is longer than the first read of the object's end.
    let many: Vec<ResourceSpans> = (0..4000u32)
        .map(|i| {
            let mut s = span(1, 1, "op", 2, T0 + i as u64 * S, 1000, false);
            s.trace_id = TraceId::from_slice(&[&i.to_be_bytes()[..], &[9u8; 12][..]].concat()).unwrap().0.to_vec();
            resource_spans(Some(&format!("service-number-{i:05}")), vec![s])
        })
        .collect();
    let meta = write_block(&store, &Tenant::default(), BlockSpan::from_resource_spans(many), &BlockOptions::default())
        .await
        .unwrap();
    // One span per minute and per hour cell: those summaries would cost as much as the spans, so only the
    // coarsest (daily) one is written.
    assert_eq!(meta.red_summary_bucket_nanos, vec![86_400 * S]);
    let wanted = ["service-number-03999".to_string()];
    let one = red_summary::read_summary(&store, &meta, 86_400 * S, &wanted, ALL).await.unwrap();
    let one = one.unwrap();
    assert_eq!(one.series.len(), 1);
    assert_eq!(one.series[0].cells.iter().map(|c| c.count).sum::<u64>(), 1);
    let all = red_summary::read_summary(&store, &meta, 86_400 * S, &[], ALL).await.unwrap().unwrap();
    assert_eq!(all.series.iter().flat_map(|s| &s.cells).map(|c| c.count).sum::<u64>(), 4000);
}
