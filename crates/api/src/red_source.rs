//! Feeds historical RED ([`clew_analysis::red::Red`]) from the store: each block the range admits through its
//! pre-aggregated RED summary when every summary interval it needs lies inside one requested time bucket
//! (the coarsest summary width that fits is tried first), otherwise by scanning that block's spans; then the
//! head's spans. Both ways count the same spans in the same buckets, so the answer does not depend on which
//! was taken.

use clew_analysis::red::{Interval, Red, RedRequest, RedSeries, SpanFacts, UNKNOWN_SERVICE};
use clew_model::Tenant;
use clew_query::Query;
use clew_query::red::{RedSpan, RedSummary, SUMMARY_BUCKET_NANOS};

use crate::ApiError;

/// How the blocks were read (for tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RedReads {
    pub summaries: usize,
    pub scans: usize,
}

fn facts(span: RedSpan<'_>) -> SpanFacts<'_> {
    SpanFacts {
        service: span.service,
        name: span.name,
        kind: span.kind,
        error: span.error,
        start_unix_nano: span.start_unix_nano,
        duration_nanos: span.duration_nanos,
    }
}

/// Whether every interval of `summary` that the request counts can be taken whole.
fn fits(red: &Red, summary: &RedSummary) -> bool {
    let width = summary.bucket_nanos;
    summary.series.iter().filter(|s| red.wants(s.service.as_deref(), &s.name, s.kind)).all(|s| {
        s.cells.iter().all(|c| c.bucket.checked_mul(width).is_some_and(|start| red.takes_interval(start, width)))
    })
}

fn add_summary(red: &mut Red, summary: &RedSummary) {
    let width = summary.bucket_nanos;
    for s in &summary.series {
        let intervals = s.cells.iter().map(|c| Interval {
            start_unix_nano: c.bucket * width,
            calls: c.count,
            zeros: c.zeros,
            latency_buckets: c.latency_buckets(),
            sum_seconds: c.sum_nanos as f64 / 1e9,
        });
        red.add_intervals((s.service.as_deref(), &s.name, s.kind, s.error), width, intervals);
    }
}

/// RED over the request's range from every block and the head. With `use_summaries` false every block is
/// scanned (the reference the summaries are tested against).
pub(crate) async fn compute_red(
    query: &Query,
    tenant: &Tenant,
    request: RedRequest,
    use_summaries: bool,
) -> Result<(Vec<RedSeries>, RedReads), ApiError> {
    let range = (request.start_unix_nano, request.end_unix_nano);
    // The store prunes by the services asked for; spans without a service name count as `unknown_service`,
    // so asking for that one reads everything (the analysis filters).
    let services =
        if request.services.iter().any(|s| s == UNKNOWN_SERVICE) { Vec::new() } else { request.services.clone() };
    // A summary interval wider than a step can never sit inside one bucket.
    let widths: Vec<u64> =
        SUMMARY_BUCKET_NANOS.iter().rev().copied().filter(|w| use_summaries && *w <= request.step_nanos).collect();
    let mut red = Red::new(request);
    let mut reads = RedReads::default();
    for block in query.blocks(tenant) {
        let max_start = block.row_groups.iter().map(|rg| rg.max_start_unix_nano).max().unwrap_or(0);
        if block.span_count == 0 || block.min_start_unix_nano >= range.1 || max_start < range.0 {
            continue;
        }
        let mut summarized = false;
        for &width in &widths {
            if let Some(summary) =
                query.red_summary(tenant, &block, width, &services, range).await.map_err(ApiError::internal)?
                && fits(&red, &summary)
            {
                add_summary(&mut red, &summary);
                summarized = true;
                break;
            }
        }
        if summarized {
            reads.summaries += 1;
        } else {
            query
                .scan_red_spans(tenant, &block, range, &services, |span| red.add_span(&facts(span)))
                .await
                .map_err(ApiError::internal)?;
            reads.scans += 1;
        }
    }
    query.scan_head_red_spans(tenant, range, &services, |span| red.add_span(&facts(span)));
    Ok((red.finish(), reads))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value};
    use clew_model::{SpanBatch, SpanSink};
    use clew_store::{Store, StoreConfig};

    use super::*;

    const S: u64 = 1_000_000_000;
    /// A whole hour.
    const T0: u64 = 1_800_000_000 / 3600 * 3600 * S;

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// `count` spans of three services (one without `service.name`), several names and kinds, some failed,
    /// durations from 0 to seconds, starting anywhere in three hours from T0, one resource per span.
    fn traffic(rng: &mut Rng, first_trace: u64, count: u64) -> Vec<ResourceSpans> {
        (0..count)
            .map(|i| {
                let n = first_trace + i;
                let service = ["api", "db", ""][rng.next(3) as usize];
                let start = T0 + rng.next(3 * 3600 * S);
                let duration = [0, 1, 999, 1_500_000, 20_000_000, 2 * S][rng.next(6) as usize] + rng.next(1000);
                let mut trace_id = [7u8; 16];
                trace_id[..8].copy_from_slice(&n.to_be_bytes());
                let span = Span {
                    trace_id: trace_id.to_vec(),
                    span_id: n.to_le_bytes().to_vec(),
                    name: format!("op-{}", rng.next(3)),
                    kind: rng.next(4) as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + duration,
                    status: (rng.next(5) == 0).then(|| Status { code: 2, message: String::new() }),
                    ..Default::default()
                };
                let attributes = (!service.is_empty())
                    .then(|| KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
                        key_strindex: 0,
                    })
                    .into_iter()
                    .collect();
                ResourceSpans {
                    resource: Some(Resource { attributes, ..Default::default() }),
                    scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
                    ..Default::default()
                }
            })
            .collect()
    }

    fn request(start: u64, end: u64, step: u64) -> RedRequest {
        RedRequest {
            start_unix_nano: start,
            end_unix_nano: end,
            step_nanos: step,
            services: Vec::new(),
            operation: None,
            kinds: Vec::new(),
            group_by_operation: false,
        }
    }

    /// The requests compared: aligned to hours and to minutes (summaries), unaligned (scans), one bucket
    /// over everything, and filtered and grouped ones.
    fn requests() -> Vec<RedRequest> {
        let h = 3600 * S;
        vec![
            request(T0, T0 + 3 * h, h),
            request(T0 + h, T0 + 2 * h, 60 * S),
            request(T0 + 7 * S, T0 + 3 * h, 90 * S),
            request(T0 - h, T0 + 4 * h + 13 * S, 5 * h + 13 * S),
            RedRequest { services: vec!["api".into()], group_by_operation: true, ..request(T0, T0 + 3 * h, 600 * S) },
            RedRequest { kinds: vec![2, 3], operation: Some("op-1".into()), ..request(T0, T0 + 2 * h, 120 * S) },
            RedRequest { services: vec!["unknown_service".into()], ..request(T0 + 30 * S, T0 + h, 30 * S) },
        ]
    }

    /// What must agree: per series and bucket the calls, errors and the sketch's buckets (its float sum may
    /// differ in the last bits with the order of addition).
    type View = Vec<(String, Option<String>, Vec<(u64, u64, Vec<(i32, u64)>, u64)>)>;

    fn view(series: &[RedSeries]) -> View {
        series
            .iter()
            .map(|s| {
                let buckets = s
                    .buckets
                    .iter()
                    .map(|b| {
                        let (latency, zeros) = b.durations.buckets();
                        (b.calls, b.errors, latency.collect(), zeros)
                    })
                    .collect();
                (s.service.clone(), s.operation.clone(), buckets)
            })
            .collect()
    }

    async fn batch(store: &Store, resource_spans: Vec<ResourceSpans>) {
        let batch = SpanBatch::from_resource_spans(Default::default(), resource_spans).unwrap();
        store.consume(batch).await.unwrap();
    }

    /// Summaries and scans both agree with counting the original spans one by one; returns how many block
    /// reads used a summary.
    async fn check_all(query: &Query, sent: &[ResourceSpans]) -> usize {
        let tenant = Tenant::default();
        let mut summarized = 0;
        for request in requests() {
            let mut expected = Red::new(request.clone());
            expected.add_trace(sent);
            let expected = view(&expected.finish());
            assert!(expected.iter().map(|s| s.2.len()).sum::<usize>() > 0);
            let (fast, reads) = compute_red(query, &tenant, request.clone(), true).await.unwrap();
            let (slow, slow_reads) = compute_red(query, &tenant, request.clone(), false).await.unwrap();
            assert_eq!(view(&fast), expected, "summaries, {request:?} ({reads:?})");
            assert_eq!(view(&slow), expected, "scans, {request:?}");
            assert_eq!(slow_reads.summaries, 0);
            summarized += reads.summaries;
            if request.start_unix_nano == T0 + 7 * S {
                assert_eq!(reads.summaries, 0, "an unaligned step needs the spans");
            }
        }
        summarized
    }

    #[tokio::test]
    async fn summaries_and_scans_give_identical_series_before_and_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            data_dir: dir.path().to_path_buf(),
            compaction_window: Duration::from_secs(86_400),
            ..StoreConfig::default()
        };
        let store: Arc<Store> = Store::open(config, &mut Default::default()).unwrap();
        store.load_blocks().await.unwrap();
        let query = Query::new(Arc::clone(&store));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut sent = Vec::new();
        // Three blocks, and some spans left in the head.
        for part in 0..4 {
            let spans = traffic(&mut rng, part * 1000, 700);
            sent.extend(spans.clone());
            batch(&store, spans).await;
            if part < 3 {
                store.cut().await.unwrap();
            }
        }
        assert_eq!(query.blocks(&Tenant::default()).len(), 3);
        assert!(check_all(&query, &sent).await >= 3 * 4, "the aligned requests read summaries");

        let report = store.compact().await.unwrap();
        assert_eq!((report.blocks_in, report.blocks_out), (3, 1));
        assert!(check_all(&query, &sent).await >= 4, "the merged block has its summaries");

        // A damaged summary is not used: the block's spans are scanned instead.
        let block = &query.blocks(&Tenant::default())[0];
        for width in SUMMARY_BUCKET_NANOS {
            let file = dir.path().join("blocks").join(block.tenant.as_str()).join("blocks").join(&block.block_id);
            std::fs::write(file.join(clew_query::red::summary_file(width)), b"not a summary").unwrap();
        }
        assert_eq!(check_all(&query, &sent).await, 0);
    }
}
