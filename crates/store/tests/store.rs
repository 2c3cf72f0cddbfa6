//! The store through its public API: durability across reopen, group commit, crash damage, admission.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clew_model::otlp::{
    AnyValue, InstrumentationScope, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, any_value,
};
use clew_model::{Accepted, SinkError, SpanBatch, SpanSink, Tenant, TraceId};
use clew_store::{SegmentInfo, Store, StoreConfig, list_segments};
use prometheus_client::registry::Registry;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig { data_dir: dir.to_path_buf(), ..StoreConfig::default() }
}

fn open(config: StoreConfig) -> Arc<Store> {
    Store::open(config, &mut Registry::default()).expect("store opens")
}

fn tenant(id: &str) -> Tenant {
    Tenant::parse(id).unwrap()
}

/// Trace ids spread over shards and differ per `n`.
fn trace_id(n: u32) -> TraceId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[15] = (n % 251) as u8;
    TraceId(id)
}

/// One request: two resources, the first with two scopes, three spans of trace `n` in all.
fn batch(tenant_id: &str, n: u32) -> SpanBatch {
    batch_of(tenant_id, spans_of(n))
}

fn batch_of(tenant_id: &str, resource_spans: Vec<ResourceSpans>) -> SpanBatch {
    SpanBatch::from_resource_spans(tenant(tenant_id), resource_spans).unwrap()
}

/// The resources, scopes and spans of [`batch`].
fn spans_of(n: u32) -> Vec<ResourceSpans> {
    let span = |i: u8| Span {
        trace_id: trace_id(n).0.to_vec(),
        span_id: vec![i; 8],
        name: format!("op-{n}-{i}"),
        start_time_unix_nano: 1_000 + i as u64,
        end_time_unix_nano: 2_000,
        attributes: vec![KeyValue {
            key: "i".into(),
            value: Some(AnyValue { value: Some(any_value::Value::IntValue(i as i64)) }),
            key_strindex: 0,
        }],
        ..Default::default()
    };
    let resource = |service: &str| {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
                key_strindex: 0,
            }],
            ..Default::default()
        })
    };
    let scope =
        |name: &str| Some(InstrumentationScope { name: name.into(), version: "2".into(), ..Default::default() });
    vec![
        ResourceSpans {
            resource: resource("frontend"),
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            scope_spans: vec![
                ScopeSpans { scope: scope("http"), schema_url: "s1".into(), spans: vec![span(1)] },
                ScopeSpans { scope: scope("grpc"), schema_url: String::new(), spans: vec![span(2)] },
            ],
        },
        ResourceSpans {
            resource: resource("backend"),
            schema_url: String::new(),
            scope_spans: vec![ScopeSpans { scope: None, schema_url: String::new(), spans: vec![span(3)] }],
        },
    ]
}

/// The store's answer for a trace; no blocks exist in these tests, so no I/O runs and `block_on` is enough.
fn trace_now(store: &Store, tenant: &Tenant, id: &TraceId) -> Vec<ResourceSpans> {
    futures::executor::block_on(store.trace(tenant, id)).unwrap()
}

/// Asserts the head returns trace `n` exactly as `batch` sent it.
fn assert_has(store: &Store, tenant_id: &str, n: u32) {
    let got = trace_now(store, &tenant(tenant_id), &trace_id(n));
    assert_eq!(got, spans_of(n), "trace {n} of {tenant_id}");
}

fn assert_lacks(store: &Store, tenant_id: &str, n: u32) {
    assert!(trace_now(store, &tenant(tenant_id), &trace_id(n)).is_empty(), "trace {n} of {tenant_id} should be gone");
}

fn segments(data_dir: &Path) -> Vec<SegmentInfo> {
    list_segments(&data_dir.join("wal")).unwrap()
}

/// Offsets at which each record of a segment starts, read with the documented layout.
fn record_offsets(path: &Path) -> Vec<u64> {
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"CLEWWAL1");
    let mut offsets = Vec::new();
    let mut pos = 8;
    while pos < bytes.len() {
        offsets.push(pos as u64);
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    assert_eq!(pos, bytes.len());
    offsets
}

async fn write_sequentially(store: &Store, tenant_id: &str, traces: std::ops::Range<u32>) {
    for n in traces {
        assert_eq!(store.consume(batch(tenant_id, n)).await.unwrap(), Accepted::all());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                store.consume(batch(if t % 2 == 0 { "even" } else { "odd" }, t * 100 + i)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = store.stats();
    assert_eq!((stats.head_spans, stats.head_traces, stats.wal_records), (600, 200, 200));
    assert_eq!(stats.wal_bytes, segments(dir.path()).iter().map(|s| s.bytes).sum::<u64>());
    drop(store);

    let store = open(config(dir.path()));
    for t in 0..8u32 {
        for i in 0..25 {
            assert_has(&store, if t % 2 == 0 { "even" } else { "odd" }, t * 100 + i);
            assert_lacks(&store, if t % 2 == 0 { "odd" } else { "even" }, t * 100 + i);
        }
    }
    let stats = store.stats();
    assert_eq!((stats.head_spans, stats.head_traces, stats.wal_records), (600, 200, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    let calls = 200;
    let results = futures::future::join_all((0..calls).map(|n| store.consume(batch("t", n)))).await;
    assert!(results.iter().all(Result::is_ok));
    let stats = store.stats();
    assert_eq!(stats.wal_records, calls as u64);
    assert!(stats.wal_syncs < calls as u64 / 2, "{} syncs for {calls} requests", stats.wal_syncs);
}

#[tokio::test]
async fn a_torn_last_record_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    write_sequentially(&store, "t", 0..5).await;
    drop(store);

    let newest = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&newest.path);
    assert_eq!(offsets.len(), 5);
    OpenOptions::new().write(true).open(&newest.path).unwrap().set_len(newest.bytes - 3).unwrap();

    let store = open(config(dir.path()));
    (0..4).for_each(|n| assert_has(&store, "t", n));
    assert_lacks(&store, "t", 4);
    assert_eq!(fs::metadata(&newest.path).unwrap().len(), offsets[4], "cut at the last good record");
    write_sequentially(&store, "t", 10..11).await;
    assert_has(&store, "t", 10);
    drop(store);

    let all = segments(dir.path());
    assert_eq!(all.len(), 2, "writes after a cut go to a new segment");
    let store = open(config(dir.path()));
    (0..4).chain(10..11).for_each(|n| assert_has(&store, "t", n));
    assert_lacks(&store, "t", 4);
}

#[tokio::test]
async fn a_bad_checksum_keeps_the_records_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    write_sequentially(&store, "t", 0..5).await;
    drop(store);

    let newest = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&newest.path);
    let mut bytes = fs::read(&newest.path).unwrap();
    bytes[offsets[2] as usize + 20] ^= 0xff; // inside the third record's payload
    fs::write(&newest.path, &bytes).unwrap();

    let store = open(config(dir.path()));
    (0..2).for_each(|n| assert_has(&store, "t", n));
    (2..5).for_each(|n| assert_lacks(&store, "t", n));
    assert_eq!(fs::metadata(&newest.path).unwrap().len(), offsets[2]);
}

#[tokio::test]
async fn damage_in_an_older_segment_does_not_hide_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    // Every group commit fills a segment, so each record gets its own.
    let small = StoreConfig { wal_segment_bytes: 1, ..config(dir.path()) };
    let store = open(small.clone());
    write_sequentially(&store, "t", 0..4).await;
    drop(store);

    let all = segments(dir.path());
    assert_eq!(all.len(), 4, "one full segment per record, none left empty");
    // Garbage length in the second segment's only record, and a newest segment torn before its magic.
    let mut bytes = fs::read(&all[1].path).unwrap();
    bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&all[1].path, &bytes).unwrap();
    let torn = dir.path().join("wal").join(format!("{:020}.wal", 5));
    fs::write(&torn, b"CLE").unwrap();

    let store = open(small);
    assert_has(&store, "t", 0);
    assert_lacks(&store, "t", 1);
    assert_has(&store, "t", 2);
    assert_has(&store, "t", 3);
    assert_eq!(fs::read(&torn).unwrap(), b"CLEWWAL1", "a torn header becomes an empty segment");
    write_sequentially(&store, "t", 7..8).await;
    drop(store);
    let store = open(config(dir.path()));
    [0, 2, 3, 7].into_iter().for_each(|n| assert_has(&store, "t", n));
}

#[tokio::test]
async fn an_empty_or_garbage_wal_directory_opens() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("wal")).unwrap();
    fs::write(dir.path().join("wal").join(format!("{:020}.wal", 1)), b"not a wal at all").unwrap();
    let store = open(config(dir.path()));
    assert_eq!(store.stats().head_spans, 0);
    write_sequentially(&store, "t", 0..1).await;
    assert_eq!(segments(dir.path()).iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
}

#[tokio::test]
async fn same_trace_id_under_two_tenants_stays_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    let mut other = spans_of(1);
    other.truncate(1);
    store.consume(batch("a", 1)).await.unwrap();
    store.consume(batch_of("b", other.clone())).await.unwrap();
    assert_has(&store, "a", 1);
    assert_eq!(trace_now(&store, &tenant("b"), &trace_id(1)), other);
    assert_eq!(store.stats().head_traces, 2);
}

#[tokio::test]
async fn a_full_head_refuses_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(StoreConfig { head_max_bytes: 1, ..config(dir.path()) });
    store.consume(batch("t", 0)).await.unwrap();
    let err = store.consume(batch("t", 1)).await.unwrap_err();
    assert!(matches!(&err, SinkError::Exhausted(m) if m.contains("head is full")), "{err:?}");
    assert_eq!(store.stats().wal_records, 1, "a refused batch is not logged");
}

#[tokio::test]
async fn empty_batches_are_accepted_without_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    let empty = batch_of("t", vec![ResourceSpans::default()]);
    assert_eq!(store.consume(empty).await.unwrap(), Accepted::all());
    assert_eq!(store.stats().wal_records, 0);
}

#[tokio::test]
async fn spans_with_bad_trace_ids_are_logged_but_not_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    let mut spans = spans_of(3);
    spans[1].scope_spans[0].spans[0].trace_id = vec![1, 2, 3];
    store.consume(batch_of("t", spans)).await.unwrap();
    assert_eq!(store.stats().head_spans, 2);
    assert_eq!(trace_now(&store, &tenant("t"), &trace_id(3)).len(), 1);
}

#[tokio::test]
async fn after_shutdown_batches_fail_instead_of_being_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    store.consume(batch("t", 0)).await.unwrap();
    store.shutdown();
    store.shutdown();
    let err = store.consume(batch("t", 1)).await.unwrap_err();
    assert!(matches!(err, SinkError::Internal(_)), "{err:?}");
}

#[tokio::test]
async fn a_cancelled_request_still_reaches_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path()));
    let mut request = store.consume(batch("t", 5));
    // One poll hands the record to the writer; then the client "hangs up".
    let _ = futures::poll!(&mut request);
    drop(request);
    for _ in 0..500 {
        if store.stats().head_spans == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_has(&store, "t", 5);
}

#[test]
fn metrics_are_registered_under_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::default();
    let _store = Store::open(config(dir.path()), &mut registry).unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for name in [
        "clew_wal_sync_duration_seconds_bucket{le=\"0.0005\"}",
        "clew_wal_sync_duration_seconds_bucket{le=\"1.024\"}",
        "clew_wal_bytes ",
        "clew_wal_segments ",
        "clew_wal_records_total ",
        "clew_head_spans ",
        "clew_head_traces ",
        "clew_head_bytes ",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
}

async fn spans(store: &Store, n: u32) -> usize {
    let rs = store.trace(&tenant("single-tenant"), &trace_id(n)).await.unwrap();
    rs.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

#[tokio::test]
async fn dropped_traces_leave_the_head_and_stay_dropped_after_replay() {
    let dir = tempfile::tempdir().unwrap();
    let t = tenant("single-tenant");
    {
        let store = open(config(dir.path()));
        for n in 1..=3 {
            store.consume(batch("single-tenant", n)).await.unwrap();
        }
        store.drop_traces(&t, &[trace_id(2), trace_id(99)]);
        assert_eq!((spans(&store, 1).await, spans(&store, 2).await, spans(&store, 3).await), (3, 0, 3));
        // A late part of the dropped trace comes back until it is dropped again.
        store.consume(batch("single-tenant", 2)).await.unwrap();
        assert_eq!(spans(&store, 2).await, 3);
        store.drop_traces(&t, &[trace_id(2)]);
        // A later sync carries the drop records along with this batch.
        store.consume(batch("single-tenant", 4)).await.unwrap();
        store.shutdown();
    }
    let store = open(config(dir.path()));
    assert_eq!((spans(&store, 1).await, spans(&store, 2).await, spans(&store, 4).await), (3, 0, 3));
    // Other tenants are untouched by a drop.
    store.consume(batch("team-b", 2)).await.unwrap();
    store.drop_traces(&t, &[trace_id(2)]);
    let other = store.trace(&tenant("team-b"), &trace_id(2)).await.unwrap();
    assert_eq!(other.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>(), 3);
}
