//! Cutting the head into blocks: nothing acknowledged is lost or duplicated, whenever a crash comes.

use std::path::Path;
use std::sync::Arc;

use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, any_value};
use clew_model::{SpanBatch, SpanSink, Tenant, TraceId};
use clew_store::{SearchRequest, SpanFilter, Store, StoreConfig, list_segments};
use prometheus_client::registry::Registry;

fn open(dir: &Path) -> Arc<Store> {
    let config = StoreConfig { data_dir: dir.to_path_buf(), wal_segment_bytes: 4096, ..StoreConfig::default() };
    Store::open(config, &mut Registry::default()).expect("store opens")
}

fn trace_id(n: u32) -> TraceId {
    let mut id = [7u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[15] = n as u8;
    TraceId(id)
}

/// Trace `n`: a root and two children in two services.
fn spans_of(n: u32) -> Vec<ResourceSpans> {
    let span = |i: u8, parent: Option<u8>| Span {
        trace_id: trace_id(n).0.to_vec(),
        span_id: vec![i, 1, 2, 3, 4, 5, 6, (n % 250) as u8 + 1],
        parent_span_id: parent.map(|p| vec![p, 1, 2, 3, 4, 5, 6, (n % 250) as u8 + 1]).unwrap_or_default(),
        name: format!("op-{i}"),
        start_time_unix_nano: 1_000 * n as u64 + i as u64,
        end_time_unix_nano: 1_000 * n as u64 + 500,
        attributes: vec![KeyValue {
            key: "n".into(),
            value: Some(AnyValue { value: Some(any_value::Value::IntValue(n as i64)) }),
            key_strindex: 0,
        }],
        ..Default::default()
    };
    let resource = |service: &str| Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
            key_strindex: 0,
        }],
        ..Default::default()
    };
    vec![
        ResourceSpans {
            resource: Some(resource("frontend")),
            scope_spans: vec![ScopeSpans { spans: vec![span(1, None), span(2, Some(1))], ..Default::default() }],
            ..Default::default()
        },
        ResourceSpans {
            resource: Some(resource("backend")),
            scope_spans: vec![ScopeSpans { spans: vec![span(3, Some(2))], ..Default::default() }],
            ..Default::default()
        },
    ]
}

async fn send(store: &Store, n: u32) {
    let batch = SpanBatch::from_resource_spans(Tenant::default(), spans_of(n)).unwrap();
    store.consume(batch).await.unwrap();
}

async fn assert_whole(store: &Store, n: u32) {
    let got = store.trace(&Tenant::default(), &trace_id(n)).await.unwrap();
    assert_eq!(got, spans_of(n), "trace {n}");
}

fn wal_segments(dir: &Path) -> usize {
    list_segments(&dir.join("wal")).unwrap().len()
}

#[tokio::test]
async fn a_cut_moves_the_head_into_a_block_and_frees_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for n in 0..50 {
        send(&store, n).await;
    }
    assert!(wal_segments(dir.path()) > 1);
    let report = store.cut().await.unwrap();
    assert_eq!((report.blocks, report.spans), (1, 150));
    assert_eq!(wal_segments(dir.path()), 0, "every segment is covered by the block");
    assert_eq!(store.stats().head_spans, 0);
    for n in 0..50 {
        assert_whole(&store, n).await;
    }
    // New data after the cut goes to the head and a new segment, and both are read together.
    send(&store, 50).await;
    assert_whole(&store, 50).await;
    assert!(store.trace(&Tenant::default(), &trace_id(99)).await.unwrap().is_empty());
    assert_eq!(store.cut().await.unwrap().blocks, 1);
    assert_eq!(store.cut().await.unwrap().blocks, 0, "an empty head cuts nothing");
}

#[tokio::test]
async fn a_large_head_is_cut_into_blocks_of_whole_traces_by_trace_id_range() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { data_dir: dir.path().to_path_buf(), cut_block_spans: 10, ..StoreConfig::default() };
    let store = Store::open(config, &mut Registry::default()).expect("store opens");
    for n in 0..20 {
        send(&store, n).await;
    }
    let report = store.cut().await.unwrap();
    // 3-span traces, at most 10 spans a block: 3 traces a block.
    assert_eq!((report.blocks, report.spans), (7, 60));
    let blocks = store.blocks(&Tenant::default());
    assert_eq!(blocks.len(), 7);
    let mut ranges: Vec<(TraceId, TraceId)> = blocks.iter().map(|b| (b.min_trace_id, b.max_trace_id)).collect();
    ranges.sort();
    assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "blocks hold disjoint trace-id ranges: {ranges:?}");
    assert!(blocks.iter().all(|b| b.span_count <= 10 && b.span_count % 3 == 0), "whole traces only");
    for n in 0..20 {
        assert_whole(&store, n).await;
    }
    let everything = SearchRequest { limit: 100, ..Default::default() };
    let page = store.search(&Tenant::default(), &everything).await.unwrap();
    assert_eq!(page.traces.len(), 20);
    assert!(page.traces.iter().all(|t| t.span_count == 3 && t.matched_spans == 3));
}

#[tokio::test]
async fn blocks_are_found_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        for n in 0..10 {
            send(&store, n).await;
        }
        store.cut().await.unwrap();
        send(&store, 10).await;
        store.shutdown();
    }
    let store = open(dir.path());
    assert_eq!(store.load_blocks().await.unwrap(), 1);
    for n in 0..11 {
        assert_whole(&store, n).await;
    }
}

/// Ten traces, cut into a block, with the log put back as it was before the cut: as if the process died after
/// writing the block but before deleting the segments. Returns the store reopened on it.
async fn crashed_between_block_meta_and_log_deletion(dir: &Path) -> Arc<Store> {
    let saved = tempfile::tempdir().unwrap();
    {
        let store = open(dir);
        for n in 0..10 {
            send(&store, n).await;
        }
        store.shutdown();
    }
    for segment in list_segments(&dir.join("wal")).unwrap() {
        std::fs::copy(&segment.path, saved.path().join(segment.path.file_name().unwrap())).unwrap();
    }
    {
        let store = open(dir);
        assert_eq!(store.cut().await.unwrap().blocks, 1);
        store.shutdown();
    }
    for entry in std::fs::read_dir(saved.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join("wal").join(entry.file_name())).unwrap();
    }
    let store = open(dir);
    store.load_blocks().await.unwrap();
    assert_eq!(store.stats().head_spans, 30, "the log was replayed into the head");
    store
}

#[tokio::test]
async fn a_crash_before_the_log_is_freed_leaves_no_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = crashed_between_block_meta_and_log_deletion(dir.path()).await;
    for n in 0..10 {
        assert_whole(&store, n).await;
    }
}

#[tokio::test]
async fn search_counts_a_span_in_a_block_and_the_replayed_head_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = crashed_between_block_meta_and_log_deletion(dir.path()).await;
    let every = SearchRequest { limit: 100, ..SearchRequest::default() };
    let by_service = SearchRequest {
        filter: SpanFilter { service: Some("frontend".into()), ..SpanFilter::default() },
        ..every.clone()
    };
    for (request, matched) in [(&every, 3), (&by_service, 2)] {
        let page = store.search(&Tenant::default(), request).await.unwrap();
        assert_eq!(page.traces.len(), 10);
        for summary in &page.traces {
            let what = format!("trace {} searched with {:?}", summary.trace_id, request.filter);
            assert_eq!((summary.span_count, summary.matched_spans, summary.error_count), (3, matched, 0), "{what}");
            assert_eq!(summary.services, ["backend", "frontend"], "{what}");
            assert_eq!((summary.root_service.as_str(), summary.root_name.as_str()), ("frontend", "op-1"), "{what}");
        }
    }
}

#[tokio::test]
async fn a_block_left_without_meta_is_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let half = dir.path().join("blocks/single-tenant/blocks/01J00000000000000000000000");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("spans.parquet"), b"half written").unwrap();
    let store = open(dir.path());
    assert_eq!(store.load_blocks().await.unwrap(), 0);
    assert!(!half.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cuts_during_ingest_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let senders: Vec<_> = (0..4u32)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..100 {
                    send(&store, t * 1000 + i).await;
                }
            })
        })
        .collect();
    let mut cuts = 0;
    while senders.iter().any(|s| !s.is_finished()) {
        cuts += store.cut().await.unwrap().blocks;
        tokio::task::yield_now().await;
    }
    for sender in senders {
        sender.await.unwrap();
    }
    cuts += store.cut().await.unwrap().blocks;
    assert!(cuts >= 2, "{cuts} cuts");
    assert_eq!(wal_segments(dir.path()), 0);
    for t in 0..4u32 {
        for i in 0..100 {
            assert_whole(&store, t * 1000 + i).await;
        }
    }
    // And the same after a restart, from the blocks alone.
    store.shutdown();
    drop(store);
    let store = open(dir.path());
    store.load_blocks().await.unwrap();
    assert_eq!(store.stats().head_spans, 0);
    for t in 0..4u32 {
        for i in (0..100).step_by(9) {
            assert_whole(&store, t * 1000 + i).await;
        }
    }
}
