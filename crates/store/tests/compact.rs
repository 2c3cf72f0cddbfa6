//! Compaction and retention: traces split across blocks come back from one, duplicates go, old blocks go, and
//! an interruption at any step loses or duplicates nothing once the store is opened again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, any_value};
use clew_model::{SpanBatch, SpanSink, Tenant, TraceId};
use clew_store::{CompactStep, SearchRequest, Store, StoreConfig};
use prometheus_client::registry::Registry;

const NOW: u64 = 1_800_000_000_000_000_000;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig { data_dir: dir.to_path_buf(), ..StoreConfig::default() }
}

async fn open(config: StoreConfig) -> Arc<Store> {
    let store = Store::open(config, &mut Registry::default()).expect("store opens");
    store.load_blocks().await.expect("blocks load");
    store
}

fn trace_id(n: u32) -> TraceId {
    let mut id = [3u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    TraceId(id)
}

/// Span `i` of trace `n`, ending `age` before NOW.
fn span(n: u32, i: u8, age: u64) -> Span {
    Span {
        trace_id: trace_id(n).0.to_vec(),
        span_id: vec![i, 9, 9, 9, 9, 9, 9, n as u8],
        name: format!("op-{i}"),
        start_time_unix_nano: NOW - age - 1_000 + i as u64,
        end_time_unix_nano: NOW - age,
        attributes: vec![KeyValue {
            key: "i".into(),
            value: Some(AnyValue { value: Some(any_value::Value::IntValue(i as i64)) }),
            key_strindex: 0,
        }],
        ..Default::default()
    }
}

fn batch(spans: Vec<Span>) -> SpanBatch {
    let resource = Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("svc".into())) }),
            key_strindex: 0,
        }],
        ..Default::default()
    };
    let rs = ResourceSpans {
        resource: Some(resource),
        scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
        ..Default::default()
    };
    SpanBatch::from_resource_spans(Tenant::default(), vec![rs]).unwrap()
}

/// Three blocks: traces 0..10 have span 1 in the first block and span 2 in the second; the third repeats span
/// 1 of traces 0..5 (as a crash between a cut and the log's deletion leaves behind).
async fn three_blocks(store: &Store) {
    store.consume(batch((0..10).map(|n| span(n, 1, 0)).collect())).await.unwrap();
    store.cut().await.unwrap();
    store.consume(batch((0..10).map(|n| span(n, 2, 0)).collect())).await.unwrap();
    store.cut().await.unwrap();
    store.consume(batch((0..5).map(|n| span(n, 1, 0)).collect())).await.unwrap();
    store.cut().await.unwrap();
}

async fn span_ids(store: &Store, n: u32) -> Vec<u8> {
    let mut ids: Vec<u8> = store
        .trace(&Tenant::default(), &trace_id(n))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .map(|s| s.span_id[0])
        .collect();
    ids.sort();
    ids
}

fn block_count(dir: &Path) -> usize {
    walk(&dir.join("blocks")).into_iter().filter(|p| p.ends_with("meta.json")).count()
}

fn block_dirs(dir: &Path) -> usize {
    walk(&dir.join("blocks")).into_iter().filter(|p| p.ends_with("spans.parquet")).count()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Search summaries of traces 0..10 count spans 1 and 2 once each, whatever blocks overlap.
async fn assert_search_counts_each_span_once(store: &Store, when: &str) {
    let request = SearchRequest { limit: 100, ..SearchRequest::default() };
    let page = store.search(&Tenant::default(), &request).await.unwrap();
    assert_eq!(page.traces.len(), 10, "{when}");
    for summary in page.traces {
        assert_eq!((summary.span_count, summary.matched_spans), (2, 2), "trace {} {when}", summary.trace_id);
    }
}

#[tokio::test]
async fn compaction_merges_split_traces_and_drops_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(config(dir.path())).await;
    three_blocks(&store).await;
    assert_eq!(block_count(dir.path()), 3);
    let report = store.compact().await.unwrap();
    assert_eq!((report.blocks_in, report.blocks_out), (3, 1));
    assert_eq!(report.duplicates_dropped, 5);
    assert_eq!(report.spans, 20);
    assert_eq!(block_count(dir.path()), 1);
    assert_eq!(block_dirs(dir.path()), 1, "the inputs' files are gone too");
    for n in 0..10 {
        assert_eq!(span_ids(&store, n).await, vec![1, 2], "trace {n}");
    }
    assert_eq!(store.compact().await.unwrap().blocks_out, 0, "one block left: nothing to merge");
}

#[tokio::test]
async fn compaction_interrupted_at_any_step_loses_and_duplicates_nothing() {
    for step in [CompactStep::DataWritten, CompactStep::BlockWritten, CompactStep::FirstInputRetired] {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(config(dir.path())).await;
            three_blocks(&store).await;
            store.compact_until(step).await.unwrap();
            store.shutdown();
        }
        // The process died at `step`: a fresh start sees a consistent set of blocks.
        let store = open(config(dir.path())).await;
        for n in 0..10 {
            assert_eq!(span_ids(&store, n).await, vec![1, 2], "trace {n} after stopping at {step:?}");
        }
        assert_search_counts_each_span_once(&store, &format!("after stopping at {step:?}")).await;
        assert_eq!(block_dirs(dir.path()), block_count(dir.path()), "no half-written block after {step:?}");
        store.compact().await.unwrap();
        assert_eq!(block_count(dir.path()), 1, "compaction finishes the job after {step:?}");
        for n in 0..10 {
            assert_eq!(span_ids(&store, n).await, vec![1, 2], "trace {n} after finishing from {step:?}");
        }
    }
}

#[tokio::test]
async fn blocks_of_different_windows_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(StoreConfig { compaction_window: Duration::from_secs(60), ..config(dir.path()) }).await;
    store.consume(batch(vec![span(1, 1, 0)])).await.unwrap();
    store.cut().await.unwrap();
    store.consume(batch(vec![span(2, 1, 3_600_000_000_000)])).await.unwrap();
    store.cut().await.unwrap();
    assert_eq!(store.compact().await.unwrap().blocks_out, 0);
    assert_eq!(block_count(dir.path()), 2);
}

#[tokio::test]
async fn retention_deletes_only_blocks_past_their_age() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000_000_000u64;
    let store = open(StoreConfig {
        retention: Duration::from_secs(7 * 86_400),
        compaction_window: Duration::from_secs(60),
        ..config(dir.path())
    })
    .await;
    store.consume(batch(vec![span(1, 1, 10 * day)])).await.unwrap();
    store.cut().await.unwrap();
    store.consume(batch(vec![span(2, 1, day)])).await.unwrap();
    store.cut().await.unwrap();
    assert_eq!(store.apply_retention(NOW).await.unwrap(), 1);
    assert!(span_ids(&store, 1).await.is_empty());
    assert_eq!(span_ids(&store, 2).await, vec![1]);
    assert_eq!((block_count(dir.path()), block_dirs(dir.path())), (1, 1));
    assert_eq!(store.apply_retention(NOW).await.unwrap(), 0);
    // Reopened, the deleted block stays deleted.
    store.shutdown();
    drop(store);
    let store = open(config(dir.path())).await;
    assert!(span_ids(&store, 1).await.is_empty());
    assert_eq!(span_ids(&store, 2).await, vec![1]);
}

#[tokio::test]
async fn blocks_of_a_quarter_of_the_budget_or_more_are_left_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    // A budget of 40 spans: blocks of 10 spans or more are large.
    let store = open(StoreConfig { compaction_max_spans: 40, ..config(dir.path()) }).await;
    three_blocks(&store).await; // 10, 10 and 5 spans
    store.consume(batch((0..3).map(|n| span(n, 3, 0)).collect())).await.unwrap();
    store.cut().await.unwrap(); // 3 spans
    let report = store.compact().await.unwrap();
    assert_eq!((report.blocks_in, report.blocks_out), (2, 1), "only the two small blocks are merged");
    assert_eq!(block_count(dir.path()), 3);
    for n in 0..10 {
        let expected = if n < 3 { vec![1, 2, 3] } else { vec![1, 2] };
        assert_eq!(span_ids(&store, n).await, expected, "trace {n}");
    }
}
