//! Why tail sampling kept a trace is stored with it: in the head, the write-ahead log, `traces.parquet`, and
//! through compaction; a consistent probabilistic decision's `th` reaches every stored span's tracestate.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use clew_model::otlp::{ResourceSpans, ScopeSpans, Span};
use clew_model::{SamplingDecision, SpanBatch, SpanSink, Tenant, TraceId};
use clew_store::{Store, StoreConfig};
use prometheus_client::registry::Registry;

async fn open(dir: &Path) -> Arc<Store> {
    let config = StoreConfig { data_dir: dir.to_path_buf(), wal_segment_bytes: 4096, ..StoreConfig::default() };
    let store = Store::open(config, &mut Registry::default()).expect("store opens");
    store.load_blocks().await.expect("blocks load");
    store
}

fn trace_id(n: u8) -> TraceId {
    TraceId([n; 16])
}

fn spans(n: u8, ids: &[u8], trace_state: &str) -> Vec<ResourceSpans> {
    let spans = ids
        .iter()
        .map(|&i| Span {
            trace_id: trace_id(n).0.to_vec(),
            span_id: vec![i; 8],
            parent_span_id: if i == 1 { Vec::new() } else { vec![1; 8] },
            name: format!("op-{i}"),
            trace_state: trace_state.into(),
            start_time_unix_nano: 1_000 + i as u64,
            end_time_unix_nano: 2_000,
            ..Default::default()
        })
        .collect();
    vec![ResourceSpans { scope_spans: vec![ScopeSpans { spans, ..Default::default() }], ..Default::default() }]
}

async fn send(store: &Store, n: u8, ids: &[u8], trace_state: &str) {
    let batch = SpanBatch::from_resource_spans(Tenant::default(), spans(n, ids, trace_state)).unwrap();
    store.consume(batch).await.unwrap();
}

fn decision(policy: &str, weight: f64, threshold: Option<&str>) -> SamplingDecision {
    SamplingDecision { policy: Some(policy.into()), weight, threshold: threshold.map(str::to_string) }
}

async fn stored(store: &Store, n: u8) -> Option<SamplingDecision> {
    store.sampling_decision(&Tenant::default(), &trace_id(n)).await.unwrap()
}

/// Every stored span's tracestate, by span id.
async fn trace_states(store: &Store, n: u8) -> HashMap<u8, String> {
    let trace = store.trace(&Tenant::default(), &trace_id(n)).await.unwrap();
    let spans = trace.into_iter().flat_map(|rs| rs.scope_spans).flat_map(|ss| ss.spans);
    spans.map(|s| (s.span_id[0], s.trace_state)).collect()
}

const RV: &str = "ot=rv:f0000000000000,vendor=x";
const WITH_TH: &str = "ot=th:e666;rv:f0000000000000,vendor=x";

#[tokio::test]
async fn a_decision_survives_replay_a_cut_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tenant::default();
    {
        let store = open(dir.path()).await;
        send(&store, 1, &[1, 2], RV).await;
        send(&store, 2, &[1], "").await;
        send(&store, 3, &[1], "").await;
        assert_eq!(stored(&store, 1).await, None, "undecided");
        store.keep_traces(&t, &[(trace_id(1), decision("ten-percent", 10.0, Some("e666")))]);
        store.keep_traces(&t, &[(trace_id(2), decision("errors", 1.0, None))]);
        // A decision for a trace with nothing in the head has nothing to attach to.
        store.keep_traces(&t, &[(trace_id(9), decision("errors", 1.0, None))]);
        assert_eq!(stored(&store, 1).await, Some(decision("ten-percent", 10.0, Some("e666"))));
        assert_eq!(stored(&store, 9).await, None);
        assert_eq!(trace_states(&store, 1).await, HashMap::from([(1, WITH_TH.into()), (2, WITH_TH.into())]));
        assert_eq!(trace_states(&store, 2).await, HashMap::from([(1, String::new())]), "no threshold, no edit");
    }
    // The log gives the decisions back to the head.
    {
        let store = open(dir.path()).await;
        assert_eq!(stored(&store, 1).await, Some(decision("ten-percent", 10.0, Some("e666"))));
        assert_eq!(stored(&store, 2).await, Some(decision("errors", 1.0, None)));
        assert_eq!(stored(&store, 3).await, None);
        let mut seen = HashSet::new();
        store.for_each_head_trace(|_, id, _, decision| {
            seen.insert((id.0[0], decision.and_then(|d| d.policy.clone())));
        });
        assert_eq!(
            seen,
            HashSet::from([(1, Some("ten-percent".into())), (2, Some("errors".into())), (3, None)]),
            "restarted samplers learn which traces were decided"
        );
        // Into a block: traces.parquet holds the decision, spans.parquet the threshold.
        assert_eq!(store.cut().await.unwrap().blocks, 1);
        assert_eq!(store.stats().head_spans, 0);
        assert_eq!(stored(&store, 1).await, Some(decision("ten-percent", 10.0, Some("e666"))));
        assert_eq!(stored(&store, 2).await, Some(decision("errors", 1.0, None)));
        assert_eq!(stored(&store, 3).await, None);
        assert_eq!(trace_states(&store, 1).await, HashMap::from([(1, WITH_TH.into()), (2, WITH_TH.into())]));
    }
    let store = open(dir.path()).await;
    assert_eq!(store.stats().head_spans, 0, "the log went with the cut");
    assert_eq!(stored(&store, 1).await, Some(decision("ten-percent", 10.0, Some("e666"))));
    assert_eq!(trace_states(&store, 1).await, HashMap::from([(1, WITH_TH.into()), (2, WITH_TH.into())]));
}

#[tokio::test]
async fn a_held_trace_gets_its_decision_into_its_block_and_compaction_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tenant::default();
    let store = open(dir.path()).await;
    send(&store, 1, &[1], RV).await;
    send(&store, 2, &[1], "").await;
    // Trace 1 waits for its decision: the cut leaves it in the head.
    let undecided = Arc::new(parking_lot::Mutex::new(HashSet::from([trace_id(1)])));
    let hold = Arc::clone(&undecided);
    store.hold_at_cut(Arc::new(move || HashMap::from([(Tenant::default(), hold.lock().clone())])));
    store.keep_traces(&t, &[(trace_id(2), decision("errors", 1.0, None))]);
    assert_eq!(store.cut().await.unwrap().spans, 1);
    store.keep_traces(&t, &[(trace_id(1), decision("ten-percent", 10.0, Some("e666")))]);
    undecided.lock().clear();
    assert_eq!(store.cut().await.unwrap().spans, 1);
    // A late span of trace 1, recorded again as the sampler does, lands in a third block with the decision.
    send(&store, 1, &[2], RV).await;
    store.keep_traces(&t, &[(trace_id(1), decision("ten-percent", 10.0, Some("e666")))]);
    assert_eq!(store.cut().await.unwrap().spans, 1);
    assert_eq!(store.blocks(&t).len(), 3);
    assert_eq!(trace_states(&store, 1).await, HashMap::from([(1, WITH_TH.into()), (2, WITH_TH.into())]));

    let report = store.compact().await.unwrap();
    assert_eq!((report.blocks_in, report.blocks_out), (3, 1));
    assert_eq!(stored(&store, 1).await, Some(decision("ten-percent", 10.0, Some("e666"))));
    assert_eq!(stored(&store, 2).await, Some(decision("errors", 1.0, None)));
    assert_eq!(trace_states(&store, 1).await, HashMap::from([(1, WITH_TH.into()), (2, WITH_TH.into())]));
    let block = store.blocks(&t).pop().unwrap();
    let in_block = clew_store::block::read_decisions(&*object_store_of(dir.path()), &block).await.unwrap();
    assert_eq!(in_block.len(), 2, "{in_block:?}");
}

fn object_store_of(dir: &Path) -> Arc<dyn object_store::ObjectStore> {
    Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.join("blocks")).unwrap())
}
