//! Blocks: full-fidelity round trips, dedicated columns, trace lookup and pruning, listing, and size on the
//! `jaeger-ch` shape.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use clew_model::otlp::span::{Event, Link};
use clew_model::otlp::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, Resource, ResourceSpans, ScopeSpans, Span,
    Status, any_value::Value,
};
use clew_model::{Tenant, TraceId};
use clew_store::block::{
    self, AttrType, BlockMeta, BlockOptions, BlockSpan, ResourceOrigin, ScopeOrigin, list_blocks, read_all, read_trace,
    write_block,
};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use opentelemetry_proto::tonic::common::v1::EntityRef;
use prost::Message;

fn tenant(id: &str) -> Tenant {
    Tenant::parse(id).unwrap()
}

fn any(v: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue { key: key.into(), value: any(v), key_strindex: 0 }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// Every kind of attribute value OTLP has.
fn all_value_kinds(prefix: &str) -> Vec<KeyValue> {
    vec![
        kv(&format!("{prefix}.str"), s("héllo wörld ✓ 日本語")),
        kv(&format!("{prefix}.empty_str"), s("")),
        kv(&format!("{prefix}.bool_t"), Value::BoolValue(true)),
        kv(&format!("{prefix}.bool_f"), Value::BoolValue(false)),
        kv(&format!("{prefix}.int_min"), Value::IntValue(i64::MIN)),
        kv(&format!("{prefix}.int_max"), Value::IntValue(i64::MAX)),
        kv(&format!("{prefix}.int_zero"), Value::IntValue(0)),
        kv(&format!("{prefix}.double"), Value::DoubleValue(-1.5e-300)),
        kv(&format!("{prefix}.double_inf"), Value::DoubleValue(f64::INFINITY)),
        kv(&format!("{prefix}.bytes"), Value::BytesValue(vec![0, 1, 2, 255])),
        kv(&format!("{prefix}.empty_bytes"), Value::BytesValue(vec![])),
        kv(
            &format!("{prefix}.array"),
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue { value: Some(s("a")) },
                    AnyValue { value: Some(Value::IntValue(-7)) },
                    AnyValue { value: Some(Value::DoubleValue(2.5)) },
                    AnyValue { value: Some(Value::BoolValue(true)) },
                    AnyValue { value: None },
                    AnyValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: vec![AnyValue { value: Some(Value::BytesValue(vec![9])) }],
                        })),
                    },
                ],
            }),
        ),
        kv(&format!("{prefix}.empty_array"), Value::ArrayValue(ArrayValue { values: vec![] })),
        kv(
            &format!("{prefix}.kvlist"),
            Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("inner", s("x")),
                    kv(
                        "nested",
                        Value::KvlistValue(KeyValueList {
                            values: vec![
                                kv("deep", Value::IntValue(42)),
                                KeyValue { key: "none".into(), ..Default::default() },
                            ],
                        }),
                    ),
                ],
            }),
        ),
        kv(&format!("{prefix}.empty_kvlist"), Value::KvlistValue(KeyValueList { values: vec![] })),
        // A key without a value, and a value without a kind.
        KeyValue { key: format!("{prefix}.no_value"), value: None, key_strindex: 0 },
        KeyValue { key: format!("{prefix}.empty_any"), value: Some(AnyValue { value: None }), key_strindex: 0 },
        kv("", s("empty key")),
    ]
}

fn span(trace: u8, id: u8, parent: Option<u8>, start: u64) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("span-{id} ünïcode"),
        kind: (id % 6) as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000 * id as u64,
        ..Default::default()
    }
}

fn rich_span(trace: u8, id: u8, parent: Option<u8>, start: u64) -> Span {
    Span {
        trace_state: "vendor=1,other=x".into(),
        flags: 0x301,
        attributes: all_value_kinds("attr"),
        dropped_attributes_count: 3,
        events: vec![
            Event {
                time_unix_nano: start + 5,
                name: "exception".into(),
                attributes: vec![kv("exception.message", s("boom ✗")), kv("n", Value::IntValue(1))],
                dropped_attributes_count: 2,
            },
            Event { time_unix_nano: start + 6, name: String::new(), attributes: vec![], dropped_attributes_count: 0 },
        ],
        dropped_events_count: 4,
        links: vec![
            Link {
                trace_id: vec![0xab; 16],
                span_id: vec![0xcd; 8],
                trace_state: "k=v".into(),
                attributes: all_value_kinds("link"),
                dropped_attributes_count: 1,
                flags: 0x101,
            },
            // Malformed ids in links are kept as they came.
            Link { trace_id: vec![1, 2, 3], span_id: vec![], ..Default::default() },
        ],
        dropped_links_count: 5,
        status: Some(Status { message: "it failed: ✗".into(), code: 2 }),
        ..span(trace, id, parent, start)
    }
}

/// Several resources (one without `service.name`, one absent) and scopes (one absent), spans of traces 1, 2
/// and 3 spread over them.
fn rich_batch() -> Vec<ResourceSpans> {
    vec![
        ResourceSpans {
            resource: Some(Resource {
                attributes: [vec![kv("service.name", s("frontend")), kv("host.name", s("h1"))], all_value_kinds("res")]
                    .concat(),
                dropped_attributes_count: 7,
                entity_refs: vec![EntityRef {
                    schema_url: "https://e".into(),
                    r#type: "service".into(),
                    id_keys: vec!["service.name".into()],
                    description_keys: vec!["host.name".into()],
                }],
            }),
            schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
            scope_spans: vec![
                ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "io.opentelemetry.http".into(),
                        version: "1.2.3".into(),
                        attributes: all_value_kinds("scope"),
                        dropped_attributes_count: 1,
                    }),
                    schema_url: "https://scope-schema".into(),
                    spans: vec![rich_span(1, 1, None, 1000), rich_span(1, 3, Some(1), 1300), rich_span(2, 9, None, 50)],
                },
                ScopeSpans {
                    scope: Some(InstrumentationScope { name: "db".into(), ..Default::default() }),
                    schema_url: String::new(),
                    spans: vec![span(1, 2, Some(1), 1200)],
                },
                ScopeSpans { scope: None, schema_url: String::new(), spans: vec![span(3, 1, None, 7)] },
            ],
        },
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("host.name", s("no-service")), kv("service.name", Value::IntValue(5))],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            schema_url: String::new(),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "".into(), version: "v".into(), ..Default::default() }),
                schema_url: String::new(),
                spans: vec![span(1, 5, Some(1), 1100), span(1, 4, Some(1), 1100)],
            }],
        },
        ResourceSpans {
            resource: None,
            schema_url: "only-schema".into(),
            scope_spans: vec![ScopeSpans {
                scope: None,
                schema_url: String::new(),
                spans: vec![rich_span(1, 6, Some(2), 1)],
            }],
        },
    ]
}

fn sort_attrs(attrs: &mut [KeyValue]) {
    attrs.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.encode_to_vec().cmp(&b.encode_to_vec())));
}

/// Sorts what the block does not keep in order: attributes by key, spans by (start, id), groups by content.
fn normalize(mut rs: Vec<ResourceSpans>) -> Vec<ResourceSpans> {
    for r in &mut rs {
        if let Some(res) = &mut r.resource {
            sort_attrs(&mut res.attributes);
        }
        for ss in &mut r.scope_spans {
            if let Some(scope) = &mut ss.scope {
                sort_attrs(&mut scope.attributes);
            }
            for span in &mut ss.spans {
                sort_attrs(&mut span.attributes);
                for e in &mut span.events {
                    sort_attrs(&mut e.attributes);
                }
                for l in &mut span.links {
                    sort_attrs(&mut l.attributes);
                }
            }
            ss.spans.sort_by(|a, b| (a.start_time_unix_nano, &a.span_id).cmp(&(b.start_time_unix_nano, &b.span_id)));
        }
        r.scope_spans.retain(|ss| !ss.spans.is_empty());
        r.scope_spans.sort_by_key(|ss| ScopeSpans { spans: vec![], ..ss.clone() }.encode_to_vec());
    }
    rs.retain(|r| !r.scope_spans.is_empty());
    rs.sort_by_key(|r| ResourceSpans { scope_spans: vec![], ..r.clone() }.encode_to_vec());
    rs
}

fn only_trace(batch: &[ResourceSpans], trace: u8) -> Vec<ResourceSpans> {
    let mut out = batch.to_vec();
    for r in &mut out {
        for ss in &mut r.scope_spans {
            ss.spans.retain(|s| s.trace_id == vec![trace; 16]);
        }
    }
    normalize(out)
}

#[tokio::test]
async fn block_round_trip_keeps_everything() {
    // CLEW_BLOCK_DIR keeps the block for a look with other tools.
    let store: Box<dyn ObjectStore> = match std::env::var_os("CLEW_BLOCK_DIR") {
        Some(dir) => Box::new(LocalFileSystem::new_with_prefix(dir).unwrap()),
        None => Box::new(InMemory::new()),
    };
    let store = store.as_ref();
    let batch = rich_batch();
    let meta =
        write_block(store, &tenant("t1"), BlockSpan::from_resource_spans(batch.clone()), &BlockOptions::default())
            .await
            .unwrap();
    assert_eq!(meta.span_count, 8);
    assert_eq!(meta.trace_count, 3);
    assert_eq!(meta.min_start_unix_nano, 1);
    for trace in [1u8, 2, 3] {
        let got = read_trace(store, &meta, &TraceId([trace; 16])).await.unwrap();
        assert_eq!(normalize(got), only_trace(&batch, trace), "trace {trace}");
    }

    // Inside a resource group, spans of one scope come back sorted by (start, span id), like the head's.
    let got = read_trace(store, &meta, &TraceId([1; 16])).await.unwrap();
    let no_service = got
        .iter()
        .find(|r| {
            r.resource.as_ref().is_some_and(|res| res.attributes.iter().any(|kv| kv.value == any(s("no-service"))))
        })
        .unwrap();
    let ids: Vec<_> = no_service.scope_spans[0].spans.iter().map(|s| s.span_id[0]).collect();
    assert_eq!(ids, vec![4, 5]);

    // read_all returns every span, and equal origins share their Arcs.
    let all = read_all(store, &meta).await.unwrap();
    assert_eq!(all.len(), 8);
    // Regrouping all spans gives the input back: spans of traces 1, 2 and 3 share groups there.
    assert_eq!(normalize(block::regroup(all.clone())), normalize(batch.clone()));
    let distinct_origins: HashSet<*const ScopeOrigin> = all.iter().map(|s| Arc::as_ptr(&s.origin)).collect();
    assert_eq!(distinct_origins.len(), 5);
    let distinct_resources: HashSet<*const ResourceOrigin> =
        all.iter().map(|s| Arc::as_ptr(&s.origin.resource)).collect();
    assert_eq!(distinct_resources.len(), 3);
}

#[tokio::test]
async fn block_spans_are_sorted_by_trace_and_start_in_the_block() {
    let store = InMemory::new();
    let meta =
        write_block(&store, &tenant("t"), BlockSpan::from_resource_spans(rich_batch()), &BlockOptions::default())
            .await
            .unwrap();
    let all = read_all(&store, &meta).await.unwrap();
    let keys: Vec<_> =
        all.iter().map(|s| (s.span.trace_id.clone(), s.span.start_time_unix_nano, s.span.span_id.clone())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

fn simple_spans(traces: u32, spans_per_trace: u32, attrs: impl Fn(u32, u32) -> Vec<KeyValue>) -> Vec<BlockSpan> {
    let origin = Arc::new(ScopeOrigin {
        resource: Arc::new(ResourceOrigin {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("svc")), kv("k8s.pod.name", s("pod-1"))],
                ..Default::default()
            }),
            schema_url: String::new(),
        }),
        scope: Some(InstrumentationScope { name: "lib".into(), ..Default::default() }),
        schema_url: String::new(),
    });
    let mut out = Vec::new();
    for t in 0..traces {
        let mut trace_id = [0u8; 16];
        trace_id[..4].copy_from_slice(&(t.wrapping_mul(2654435761)).to_be_bytes());
        trace_id[12..].copy_from_slice(&t.to_be_bytes());
        for i in 0..spans_per_trace {
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&t.to_be_bytes());
            span_id[4..].copy_from_slice(&i.to_be_bytes());
            out.push(BlockSpan {
                origin: Arc::clone(&origin),
                span: Span {
                    trace_id: trace_id.to_vec(),
                    span_id: span_id.to_vec(),
                    name: format!("op-{}", i % 3),
                    start_time_unix_nano: 1_000_000 + t as u64 * 1000 + i as u64,
                    end_time_unix_nano: 1_000_000 + t as u64 * 1000 + i as u64 + 50,
                    attributes: attrs(t, i),
                    ..Default::default()
                },
            });
        }
    }
    out
}

#[tokio::test]
async fn block_frequent_keys_get_columns_of_their_own_per_block() {
    let store = InMemory::new();
    // "http.method" on every span, "http.status" (int) on every span but one a string, "rare" on 1 in 50.
    let spans = simple_spans(100, 10, |t, i| {
        let mut attrs = vec![
            kv("http.method", s(["GET", "POST"][(i % 2) as usize])),
            if t == 7 && i == 3 {
                kv("http.status", s("teapot"))
            } else {
                kv("http.status", Value::IntValue(200 + i as i64))
            },
            kv("ratio", Value::DoubleValue(i as f64 / 4.0)),
            kv("ok", Value::BoolValue(i % 3 == 0)),
        ];
        if (t * 10 + i) % 50 == 0 {
            attrs.push(kv("rare", s("yes")));
        }
        if t == 3 && i == 1 {
            // A duplicate key: the second stays generic.
            attrs.push(kv("http.method", s("DUP")));
        }
        attrs
    });
    let input = spans.clone();
    let meta = write_block(&store, &tenant("t"), spans, &BlockOptions::default()).await.unwrap();

    let span_columns: Vec<_> = meta.dedicated.span.iter().map(|c| (c.key.as_str(), c.ty, c.column.as_str())).collect();
    assert_eq!(
        span_columns,
        vec![
            ("http.method", AttrType::String, "span.attr.http.method"),
            ("http.status", AttrType::Int, "span.attr.http.status"),
            ("ok", AttrType::Bool, "span.attr.ok"),
            ("ratio", AttrType::Double, "span.attr.ratio"),
        ]
    );
    let resource_columns: Vec<_> = meta.dedicated.resource.iter().map(|c| c.column.as_str()).collect();
    assert_eq!(resource_columns, vec!["resource.attr.k8s.pod.name"]);

    // The Parquet file really has these columns, and the rare key is not one.
    let bytes = store.get_opts(&meta.path(block::SPANS_FILE), Default::default()).await.unwrap().bytes().await.unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let names: Vec<_> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    for c in [
        "span.attr.http.method",
        "span.attr.http.status",
        "span.attr.ok",
        "span.attr.ratio",
        "resource.attr.k8s.pod.name",
    ] {
        assert!(names.iter().any(|n| n == c), "{c} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("rare")));
    let json = serde_json::to_value(&meta).unwrap();
    assert_eq!(json["dedicated"]["span"][0]["column"], "span.attr.http.method");

    // Both paths round-trip: dedicated values, the odd-typed value, the duplicate and the rare key.
    let mut got = read_all(&store, &meta).await.unwrap();
    let mut want = input;
    for list in [&mut got, &mut want] {
        list.sort_by(|a, b| (&a.span.trace_id, &a.span.span_id).cmp(&(&b.span.trace_id, &b.span.span_id)));
        for s in list.iter_mut() {
            sort_attrs(&mut s.span.attributes);
        }
    }
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.span, w.span);
        let mut g_res = g.origin.resource.resource.clone().unwrap();
        let mut w_res = w.origin.resource.resource.clone().unwrap();
        sort_attrs(&mut g_res.attributes);
        sort_attrs(&mut w_res.attributes);
        assert_eq!(g_res, w_res);
    }

    // Another block with other data chooses other columns.
    let spans = simple_spans(10, 10, |_, i| vec![kv("db.system", s("pg")), kv("n", Value::IntValue(i as i64))]);
    let other = write_block(&store, &tenant("t"), spans, &BlockOptions::default()).await.unwrap();
    let keys: Vec<_> = other.dedicated.span.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, vec!["db.system", "n"]);
}

#[tokio::test]
async fn block_may_contain_and_read_trace_skip_absent_traces() {
    let store = InMemory::new();
    let spans = simple_spans(2_000, 5, |_, _| vec![]);
    let present: Vec<TraceId> = spans
        .iter()
        .map(|s| TraceId::from_slice(&s.span.trace_id).unwrap())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // Several row groups with several pages each, so the page index comes into play in each.
    let options = BlockOptions { row_group_spans: 3_000, page_rows: 500, ..Default::default() };
    let meta = write_block(&store, &tenant("t"), spans, &options).await.unwrap();
    assert_eq!(meta.row_groups.len(), 4, "{:?}", meta.row_groups.iter().map(|r| r.rows).collect::<Vec<_>>());
    assert!(meta.row_groups.iter().all(|rg| rg.rows % 5 == 0), "traces do not straddle row groups");
    // Row groups are slices by trace start, oldest first, and say where their rows are.
    for w in meta.row_groups.windows(2) {
        assert!(w[0].max_trace_start_unix_nano <= w[1].min_trace_start_unix_nano);
        assert_eq!(w[0].first_row + w[0].rows, w[1].first_row);
    }
    assert!(present.iter().all(|id| meta.may_contain(id)));

    // Absent ids: nearly always ruled out without I/O.
    let mut rng = Rng(42);
    let absent: Vec<TraceId> = (0..20_000).map(|_| TraceId(rng.bytes16())).collect();
    let false_positives = absent.iter().filter(|id| meta.may_contain(id)).count();
    assert!(false_positives < 400, "{false_positives} of 20000 absent ids pass");
    for id in absent.iter().filter(|id| meta.may_contain(id)).take(5) {
        assert!(read_trace(&store, &meta, id).await.unwrap().is_empty());
    }
    // Ids between present ones, inside the row groups' ranges, read empty.
    for id in present.iter().take(50) {
        let mut near = *id;
        near.0[8] = 1;
        assert!(read_trace(&store, &meta, &near).await.unwrap().is_empty());
    }

    // Present ids read back whole, from any row group.
    for id in present.iter().step_by(97) {
        let got = read_trace(&store, &meta, id).await.unwrap();
        let spans: Vec<_> = got.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
        assert_eq!(spans.len(), 5, "trace {id}");
        assert!(spans.iter().all(|s| s.trace_id == id.0));
    }
    // The meta survives JSON and still answers the same.
    let back: BlockMeta = serde_json::from_slice(&serde_json::to_vec(&meta).unwrap()).unwrap();
    assert_eq!(back, meta);
}

/// An object store that counts the bytes read through it.
#[derive(Debug, Default)]
struct Counting<S = InMemory> {
    inner: S,
    read_bytes: std::sync::atomic::AtomicU64,
    reads: std::sync::atomic::AtomicU64,
}

impl<S: ObjectStore> std::fmt::Display for Counting<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl<S> Counting<S> {
    fn new(inner: S) -> Self {
        Self { inner, read_bytes: Default::default(), reads: Default::default() }
    }

    fn take(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.reads.swap(0, Relaxed), self.read_bytes.swap(0, Relaxed))
    }

    fn count(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.reads.fetch_add(1, Relaxed);
        self.read_bytes.fetch_add(bytes, Relaxed);
    }
}

#[async_trait::async_trait]
impl<S: ObjectStore> ObjectStore for Counting<S> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        let result = self.inner.get_opts(location, options).await?;
        self.count(result.range.end - result.range.start);
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.count(ranges.iter().map(|r| r.end - r.start).sum());
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: object_store::CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn block_read_trace_reads_only_the_pages_it_needs() {
    let store = Counting::new(InMemory::new());
    let spans = simple_spans(5_000, 10, |t, i| vec![kv("k", s(&format!("v{}", (t * 7 + i) % 1000)))]);
    // No dedicated column: the attribute lives in attrs.parquet.
    let options =
        BlockOptions { row_group_spans: 20_000, page_rows: 3_000, dedicated_min_fraction: 2.0, ..Default::default() };
    let meta = write_block(&store, &tenant("t"), spans, &options).await.unwrap();
    assert_eq!(meta.row_groups.len(), 3);
    store.take();

    let id = {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&(1234u32.wrapping_mul(2654435761)).to_be_bytes());
        b[12..].copy_from_slice(&1234u32.to_be_bytes());
        TraceId(b)
    };
    let got = read_trace(&store, &meta, &id).await.unwrap();
    assert_eq!(got.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>(), 10);
    let (reads, bytes) = store.take();
    // The tails (footer and page index) of the three files; in traces.parquet, the pages of the sorted trace id
    // column that can hold the trace (one in each of the 3 row groups), then the span counts of its row group;
    // the trace's page in every column of spans.parquet; in attrs.parquet the row numbers of its row group, then
    // the page (and dictionary) of its entries: a small part of this small block, dictionary pages the largest.
    let attrs = meta.attrs_file.as_ref().expect("a generic attribute");
    let files = [&meta.spans_file, attrs, &meta.traces_file];
    let data: u64 = files.iter().map(|f| f.bytes - f.tail_bytes).sum();
    let read = bytes - files.iter().map(|f| f.tail_bytes).sum::<u64>();
    assert!(read * 5 < data, "read {bytes} of {data} bytes in {reads} reads");
    assert!(reads <= 10, "{reads} reads");

    // An absent id costs nothing when the filter rules it out.
    let mut absent = id;
    absent.0[7] ^= 0x55;
    if !meta.may_contain(&absent) {
        assert!(read_trace(&store, &meta, &absent).await.unwrap().is_empty());
        assert_eq!(store.take(), (0, 0));
    }
}

#[tokio::test]
async fn block_only_blocks_with_meta_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    assert!(list_blocks(&store, &tenant("t")).await.unwrap().is_empty(), "no blocks directory yet");

    let a =
        write_block(&store, &tenant("t"), simple_spans(3, 2, |_, _| vec![]), &BlockOptions::default()).await.unwrap();
    let b =
        write_block(&store, &tenant("t"), simple_spans(4, 2, |_, _| vec![]), &BlockOptions::default()).await.unwrap();
    let other =
        write_block(&store, &tenant("u"), simple_spans(1, 1, |_, _| vec![]), &BlockOptions::default()).await.unwrap();
    // A block cut short before its meta was written.
    let partial = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    for file in [block::SPANS_FILE, block::ATTRS_FILE, block::TRACES_FILE] {
        store.put(&block::block_path("t", partial, file), PutPayload::from_static(b"PAR1")).await.unwrap();
    }
    // A meta.json that does not parse is skipped (and logged).
    store
        .put(&block::block_path("t", "01ARZ3NDEKTSV4RRFFQ69G5FAW", block::META_FILE), PutPayload::from_static(b"{"))
        .await
        .unwrap();
    // Stray objects are ignored too.
    store.put(&Path::from("t/blocks/README"), PutPayload::from_static(b"x")).await.unwrap();

    let listed = list_blocks(&store, &tenant("t")).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|m| m.block_id.as_str()).collect();
    let mut expected = vec![a.block_id.as_str(), b.block_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(listed[0], if a.block_id < b.block_id { a.clone() } else { b.clone() });
    let listed_u = list_blocks(&store, &tenant("u")).await.unwrap();
    assert_eq!(listed_u, vec![other]);
    // Tenant ids may hold characters that object paths escape.
    let odd = tenant("a!*'()-_.b");
    let odd_block =
        write_block(&store, &odd, simple_spans(1, 1, |_, _| vec![]), &BlockOptions::default()).await.unwrap();
    assert_eq!(list_blocks(&store, &odd).await.unwrap(), vec![odd_block.clone()]);
    assert_eq!(read_all(&store, &odd_block).await.unwrap().len(), 1);

    // The block's objects are where the layout says.
    for file in [block::SPANS_FILE, block::TRACES_FILE, block::META_FILE] {
        assert!(dir.path().join("t/blocks").join(&a.block_id).join(file).is_file());
    }
    assert_eq!(
        std::fs::metadata(dir.path().join("t/blocks").join(&a.block_id).join("spans.parquet")).unwrap().len(),
        a.spans_file.bytes
    );
}

#[tokio::test]
async fn block_bad_ids_are_refused() {
    let store = InMemory::new();
    let mut spans = simple_spans(1, 1, |_, _| vec![]);
    spans[0].span.span_id = vec![1, 2, 3];
    assert!(matches!(
        write_block(&store, &tenant("t"), spans, &BlockOptions::default()).await,
        Err(block::BlockError::InvalidSpan(_))
    ));
    assert!(matches!(
        write_block(&store, &tenant("t"), Vec::new(), &BlockOptions::default()).await,
        Err(block::BlockError::NoSpans)
    ));
    assert!(list_blocks(&store, &tenant("t")).await.unwrap().is_empty());
}

fn send<T: Send>(_: T) {}

/// Compile-time check only.
#[allow(dead_code)]
fn read_futures_are_send(store: &InMemory, meta: &BlockMeta) {
    send(read_trace(store, meta, &TraceId([1; 16])));
    send(read_all(store, meta));
}

#[test]
fn block_futures_are_send() {
    let store = InMemory::new();
    let t = tenant("t");
    let options = BlockOptions::default();
    send(write_block(&store, &t, Vec::new(), &options));
    send(list_blocks(&store, &t));
}

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

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit().max(f64::MIN_POSITIVE), self.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn bytes16(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_le_bytes());
        b[8..].copy_from_slice(&self.next().to_le_bytes());
        b
    }
}

/// The `jaeger-ch` load generator profile's shape (see crates/loadgen/src/profiles/jaeger_ch.rs).
fn jaeger_ch(spans: usize, seed: u64) -> Vec<BlockSpan> {
    const SERVICES: [&str; 10] =
        ["frontend", "auth", "cart", "checkout", "payment", "inventory", "shipping", "email", "search", "catalog"];
    const VERBS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    const RESOURCES: [&str; 4] = ["items", "orders", "users", "sessions"];
    let mut rng = Rng(seed);
    let origins: Vec<Arc<ScopeOrigin>> = SERVICES
        .iter()
        .map(|name| {
            Arc::new(ScopeOrigin {
                resource: Arc::new(ResourceOrigin {
                    resource: Some(Resource { attributes: vec![kv("service.name", s(name))], ..Default::default() }),
                    schema_url: String::new(),
                }),
                scope: Some(InstrumentationScope {
                    name: "clew-loadgen".into(),
                    version: "0.1.0".into(),
                    ..Default::default()
                }),
                schema_url: String::new(),
            })
        })
        .collect();
    let names: Vec<Vec<String>> = SERVICES
        .iter()
        .map(|svc| (0..20).map(|i| format!("{} /{}/{}/{i}", VERBS[i % 5], svc, RESOURCES[i % 4])).collect())
        .collect();
    let keys: Vec<String> = (0..97).map(|k| format!("app.attr_{k:02}")).collect();
    let values: Vec<String> = (0..1000).map(|v| format!("value-{v:04}")).collect();
    let now: u64 = 1_800_000_000_000_000_000;
    let spread: u64 = 10 * 86_400 * 1_000_000_000;

    let make = |rng: &mut Rng,
                trace_id: &[u8; 16],
                span_id: [u8; 8],
                parent: Option<[u8; 8]>,
                start: u64,
                end: u64,
                kind: i32| {
        let service = rng.below(10) as usize;
        let name = names[service][rng.below(20) as usize].clone();
        let mut pool: Vec<usize> = (0..97).collect();
        let mut attributes = Vec::with_capacity(11);
        for j in 0..11 {
            let pick = j + rng.below((97 - j) as u64) as usize;
            pool.swap(j, pick);
            attributes.push(kv(&keys[pool[j]], s(&values[rng.below(1000) as usize])));
        }
        BlockSpan {
            origin: Arc::clone(&origins[service]),
            span: Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                ..Default::default()
            },
        }
    };
    let mut out = Vec::with_capacity(spans);
    while out.len() < spans {
        let trace_id = rng.bytes16();
        let start = now - rng.below(spread);
        let root_id = rng.next().to_le_bytes();
        let mut root_end = start + 1;
        for _ in 1..10 {
            let child_start = start + rng.below(2_000_000);
            let duration = ((5e6f64).ln() + rng.normal()).exp() as u64;
            let child_end = child_start + duration;
            root_end = root_end.max(child_end);
            let kind = [1, 2, 3][rng.below(3) as usize];
            let id = rng.next().to_le_bytes();
            out.push(make(&mut rng, &trace_id, id, Some(root_id), child_start, child_end, kind));
        }
        root_end += rng.below(1_000_000);
        out.push(make(&mut rng, &trace_id, root_id, None, start, root_end, 2));
    }
    out.truncate(spans);
    out
}

/// Compressed bytes per column of a Parquet file, largest first.
fn column_sizes(bytes: bytes::Bytes) -> Vec<(String, u64)> {
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes).unwrap();
    use parquet::file::reader::FileReader;
    let metadata = reader.metadata();
    let mut sizes: std::collections::BTreeMap<String, u64> = Default::default();
    for rg in metadata.row_groups() {
        for c in rg.columns() {
            *sizes.entry(c.column_path().string()).or_default() += c.compressed_size() as u64;
        }
    }
    let mut sizes: Vec<_> = sizes.into_iter().collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.1));
    sizes
}

#[tokio::test]
async fn block_jaeger_ch_size() {
    const SPANS: usize = 200_000;
    let spans = jaeger_ch(SPANS, 7);
    let sample: Vec<TraceId> =
        spans.iter().step_by(997).map(|s| TraceId::from_slice(&s.span.trace_id).unwrap()).collect();
    // CLEW_BLOCK_DIR keeps the block for a look with other tools (DuckDB, pyarrow).
    let temp = tempfile::tempdir().unwrap();
    let dir_path =
        std::env::var_os("CLEW_BLOCK_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| temp.path().to_owned());
    let store = Counting::new(LocalFileSystem::new_with_prefix(&dir_path).unwrap());
    let options = BlockOptions {
        page_rows: std::env::var("CLEW_BLOCK_PAGE_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(BlockOptions::default().page_rows),
        page_bytes: std::env::var("CLEW_BLOCK_PAGE_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(BlockOptions::default().page_bytes),
        row_group_spans: std::env::var("CLEW_BLOCK_ROW_GROUP")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(BlockOptions::default().row_group_spans),
        ..Default::default()
    };

    // Timed from encoded spans, as a cut writes the head's request bytes.
    let encoded = block::EncodedSpans::new(&spans);
    drop(spans);
    let started = Instant::now();
    let meta =
        block::write_encoded(&store, &tenant("bench"), &encoded.source(), &Default::default(), &options).await.unwrap();
    let write_secs = started.elapsed().as_secs_f64();
    assert_eq!(meta.span_count, SPANS as u64);
    assert_eq!(meta.trace_count, SPANS as u64 / 10);
    assert!(meta.dedicated.span.is_empty(), "keys on ~11% of spans stay generic: {:?}", meta.dedicated.span);

    let per_span = |b: u64| b as f64 / SPANS as f64;
    let attrs_bytes = meta.attrs_file.as_ref().map_or(0, |f| f.bytes);
    let total = meta.spans_file.bytes + meta.traces_file.bytes + attrs_bytes;
    let meta_bytes =
        std::fs::metadata(dir_path.join("bench/blocks").join(&meta.block_id).join("meta.json")).unwrap().len();
    println!(
        "jaeger-ch {SPANS} spans: spans.parquet {:.2} B/span, attrs.parquet {:.2} B/span, traces.parquet {:.2} B/span, \
         together {:.2} B/span; meta.json {} bytes; {} row group(s); footer and page index {} bytes; \
         write {:.2}s = {:.0} spans/s",
        per_span(meta.spans_file.bytes),
        per_span(attrs_bytes),
        per_span(meta.traces_file.bytes),
        per_span(total),
        meta_bytes,
        meta.row_groups.len(),
        meta.spans_file.tail_bytes,
        write_secs,
        SPANS as f64 / write_secs,
    );
    for file in [block::SPANS_FILE, block::ATTRS_FILE, block::TRACES_FILE] {
        let bytes = std::fs::read(dir_path.join("bench/blocks").join(&meta.block_id).join(file)).unwrap();
        for (column, size) in column_sizes(bytes.into()) {
            if per_span(size) >= 0.01 {
                println!("  {file:15} {column:40} {:6.2} B/span", per_span(size));
            }
        }
    }

    store.take();
    let started = Instant::now();
    for id in &sample {
        let got = read_trace(&store, &meta, id).await.unwrap();
        assert_eq!(got.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>(), 10);
    }
    let lookup_ms = started.elapsed().as_secs_f64() * 1000.0 / sample.len() as f64;
    let (reads, read_bytes) = store.take();
    println!(
        "read_trace: {:.1} reads and {:.0} KiB per trace ({} KiB of it footer and page index)",
        reads as f64 / sample.len() as f64,
        read_bytes as f64 / sample.len() as f64 / 1024.0,
        meta.spans_file.tail_bytes / 1024
    );
    let started = Instant::now();
    let all = read_all(&store, &meta).await.unwrap();
    let read_secs = started.elapsed().as_secs_f64();
    assert_eq!(all.len(), SPANS);
    println!(
        "read_trace {lookup_ms:.1} ms per trace; read_all {read_secs:.2}s = {:.0} spans/s",
        SPANS as f64 / read_secs
    );

    assert!(per_span(total) < 60.0, "{:.2} bytes/span", per_span(total));
}
