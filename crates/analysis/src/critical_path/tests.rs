use super::*;
use crate::test_support::{span, trace, with_kind};
use clew_model::otlp::Span;

/// The path as `(span id byte, [(start, end)])`, in the path's order.
fn path_of(spans: Vec<Span>) -> Vec<(u8, Vec<(u64, u64)>)> {
    let path = critical_path(&trace(vec![("svc", spans)]));
    path.spans
        .iter()
        .map(|s| (s.span_id.0[0], s.segments.iter().map(|g| (g.start_unix_nano, g.end_unix_nano)).collect()))
        .collect()
}

#[test]
fn a_single_span_is_the_whole_path() {
    assert_eq!(path_of(vec![span(1, None, "root", 10, 110)]), vec![(1, vec![(10, 110)])]);
}

#[test]
fn an_empty_trace_has_an_empty_path() {
    assert_eq!(critical_path(&[]), CriticalPath::default());
}

#[test]
fn sequential_children_take_turns_with_their_parent() {
    let spans = vec![
        span(1, None, "root", 0, 100),
        span(2, Some(1), "a", 10, 40),
        span(3, Some(1), "b", 40, 70),
        span(4, Some(1), "c", 75, 90),
    ];
    assert_eq!(
        path_of(spans),
        vec![(1, vec![(0, 10), (70, 75), (90, 100)]), (2, vec![(10, 40)]), (3, vec![(40, 70)]), (4, vec![(75, 90)])]
    );
}

#[test]
fn of_parallel_children_the_last_to_finish_is_on_the_path() {
    let spans = vec![
        span(1, None, "root", 0, 100),
        span(2, Some(1), "slow", 10, 80),
        span(3, Some(1), "fast", 10, 50),
        span(4, Some(1), "medium", 10, 60),
        span(5, Some(2), "slow-inner", 20, 70),
    ];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 10), (80, 100)]), (2, vec![(10, 20), (70, 80)]), (5, vec![(20, 70)])]);
}

#[test]
fn an_overlapping_sibling_still_running_is_not_on_the_path() {
    // b finishes last; at b's start (40) a is still running, so the path goes to c, which had finished by then.
    let spans = vec![
        span(1, None, "root", 0, 100),
        span(2, Some(1), "a", 10, 60),
        span(3, Some(1), "b", 40, 90),
        span(4, Some(1), "c", 20, 35),
    ];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 20), (35, 40), (90, 100)]), (4, vec![(20, 35)]), (3, vec![(40, 90)])]);
}

#[test]
fn children_outliving_their_parent_are_clipped_to_it() {
    // early starts before the root, late ends after it; late's child lies within the clipped window.
    let spans = vec![
        span(1, None, "root", 100, 200),
        span(2, Some(1), "early", 50, 120),
        span(3, Some(1), "late", 160, 250),
        span(4, Some(3), "late-inner", 170, 190),
    ];
    assert_eq!(
        path_of(spans),
        vec![(2, vec![(100, 120)]), (1, vec![(120, 160)]), (3, vec![(160, 170), (190, 200)]), (4, vec![(170, 190)])]
    );
}

#[test]
fn work_started_after_its_parent_ended_continues_the_path() {
    // fire-and-forget: it did not delay the root, but it is what the trace ended with, and the root started it.
    let spans = vec![span(1, None, "root", 0, 100), span(2, Some(1), "cleanup", 120, 150)];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 100)]), (2, vec![(120, 150)])]);
    // Started by a child that ended earlier: the path goes back through that child, not the root's later work.
    let spans = vec![
        span(1, None, "root", 0, 100),
        span(2, Some(1), "spawn", 10, 30),
        span(3, Some(2), "background", 40, 150),
        span(4, Some(1), "tail", 50, 100),
    ];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 10)]), (2, vec![(10, 30)]), (3, vec![(40, 150)])]);
    // A grandchild outside its parent's clipped window: detached, then back into its parent.
    let spans = vec![
        span(1, None, "root", 0, 100),
        span(2, Some(1), "late", 50, 150),
        span(3, Some(2), "late-inner", 120, 140),
    ];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 50)]), (2, vec![(50, 100)]), (3, vec![(120, 140)])]);
}

#[test]
fn a_consumer_does_not_block_its_producer() {
    // The consumer ran until 95, longer than everything but the root: it is still not on the root's path.
    let spans = vec![
        with_kind(span(1, None, "POST /order", 0, 100), SpanKind::Server),
        with_kind(span(2, Some(1), "publish", 10, 20), SpanKind::Producer),
        span(3, Some(1), "store", 20, 50),
        with_kind(span(4, Some(2), "process", 15, 95), SpanKind::Consumer),
    ];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 10), (50, 100)]), (2, vec![(10, 20)]), (3, vec![(20, 50)])]);
}

#[test]
fn a_consumer_ending_the_trace_follows_its_producer() {
    // The root's work after publishing ran alongside and did not delay the consumer; the queue wait is on no span.
    let spans = vec![
        with_kind(span(1, None, "POST /order", 0, 100), SpanKind::Server),
        with_kind(span(2, Some(1), "publish", 10, 20), SpanKind::Producer),
        with_kind(span(3, Some(2), "process", 150, 180), SpanKind::Consumer),
        span(4, Some(3), "write", 160, 170),
    ];
    assert_eq!(
        path_of(spans),
        vec![(1, vec![(0, 10)]), (2, vec![(10, 20)]), (3, vec![(150, 160), (170, 180)]), (4, vec![(160, 170)])]
    );
    // Also when the consumer started while the root was still running.
    let spans = vec![
        with_kind(span(1, None, "POST /order", 0, 100), SpanKind::Server),
        span(5, Some(1), "validate", 2, 8),
        with_kind(span(2, Some(1), "publish", 10, 20), SpanKind::Producer),
        with_kind(span(3, Some(2), "process", 50, 150), SpanKind::Consumer),
    ];
    assert_eq!(
        path_of(spans),
        vec![(1, vec![(0, 2), (8, 10)]), (5, vec![(2, 8)]), (2, vec![(10, 20)]), (3, vec![(50, 150)])]
    );
}

#[test]
fn orphans_hang_under_the_root() {
    // late's parent (9) is missing: it is clipped to the root like a child; mid overlaps a and is not on the path.
    let spans = vec![
        span(1, None, "root", 0, 100),
        span(2, Some(1), "a", 10, 50),
        span(3, Some(9), "late", 80, 150),
        span(4, Some(8), "mid", 20, 30),
    ];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 10), (50, 80)]), (2, vec![(10, 50)]), (3, vec![(80, 100)])]);
}

#[test]
fn without_a_root_each_orphan_is_a_tree_of_its_own() {
    let spans = vec![span(1, Some(9), "x", 0, 50), span(2, Some(8), "y", 60, 90), span(3, Some(2), "y-inner", 70, 80)];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 50)]), (2, vec![(60, 70), (80, 90)]), (3, vec![(70, 80)])]);
}

#[test]
fn the_root_is_the_first_parentless_span_and_other_roots_are_trees() {
    // As with overlapping siblings: at the start of the later-ending tree the root was still running, so the
    // root is not on the path; once it had finished by then, the path continues into it.
    let spans = vec![span(2, None, "second", 50, 120), span(1, None, "root", 0, 100), span(3, Some(1), "a", 10, 20)];
    assert_eq!(path_of(spans), vec![(2, vec![(50, 120)])]);
    let spans = vec![span(2, None, "second", 100, 120), span(1, None, "root", 0, 100), span(3, Some(1), "a", 10, 20)];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 10), (20, 100)]), (3, vec![(10, 20)]), (2, vec![(100, 120)])]);
}

#[test]
fn instantaneous_children_and_ties_terminate_and_merge() {
    // z takes no time: the root's two segments around it touch and merge.
    assert_eq!(path_of(vec![span(1, None, "root", 0, 100), span(2, Some(1), "z", 50, 50)]), vec![(1, vec![(0, 100)])]);
    // a and z both end at 50: a started first and explains more, so it is on the path.
    let spans = vec![
        span(1, None, "root", 0, 100),
        span(2, Some(1), "a", 20, 50),
        span(3, Some(1), "z", 50, 50),
        span(4, Some(1), "b", 50, 80),
    ];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 20), (80, 100)]), (2, vec![(20, 50)]), (4, vec![(50, 80)])]);
}

#[test]
fn spans_in_a_parent_cycle_are_not_on_the_path() {
    let spans = vec![span(1, None, "root", 0, 100), span(2, Some(3), "c2", 10, 90), span(3, Some(2), "c3", 20, 80)];
    assert_eq!(path_of(spans), vec![(1, vec![(0, 100)])]);
}

#[test]
fn a_deep_chain_is_walked_without_recursion() {
    // Each span nests in the previous one, 1 ns in from both sides: every span gets its two edges on the path.
    let depth: u64 = 50_000;
    let id = |i: u64| (i + 1).to_be_bytes().to_vec();
    let spans: Vec<Span> = (0..depth)
        .map(|i| Span {
            span_id: id(i),
            parent_span_id: if i == 0 { Vec::new() } else { id(i - 1) },
            start_time_unix_nano: i,
            end_time_unix_nano: 2 * depth - i,
            ..Default::default()
        })
        .collect();
    let path = critical_path(&trace(vec![("svc", spans)]));
    assert_eq!(path.spans.len(), depth as usize);
    assert_eq!(path.total_nanos(), 2 * depth);
    assert_eq!(
        path.spans[0].segments,
        vec![
            Segment { start_unix_nano: 0, end_unix_nano: 1 },
            Segment { start_unix_nano: 2 * depth - 1, end_unix_nano: 2 * depth }
        ]
    );
    let deepest = path.spans.last().unwrap();
    assert_eq!(deepest.segments, vec![Segment { start_unix_nano: depth - 1, end_unix_nano: depth + 1 }]);
}

#[test]
fn random_traces_give_disjoint_segments_within_their_spans() {
    // A small linear congruential generator keeps the test deterministic without a dependency.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    for _ in 0..2_000 {
        let count = 1 + next(40) as u8;
        let spans: Vec<Span> = (1..=count)
            .map(|id| {
                // Parents among earlier ids, sometimes none, sometimes missing (orphans) or later (cycles).
                let parent = match next(10) {
                    0 => None,
                    1 => Some(200),
                    2 => Some(1 + next(count as u64) as u8),
                    _ if id > 1 => Some(1 + next(id as u64 - 1) as u8),
                    _ => None,
                };
                let start = next(1_000);
                let kinds = [SpanKind::Internal, SpanKind::Producer, SpanKind::Consumer, SpanKind::Server];
                with_kind(span(id, parent, "op", start, start + next(300)), kinds[next(4) as usize])
            })
            .collect();
        let bounds: HashMap<u8, (u64, u64)> =
            spans.iter().map(|s| (s.span_id[0], (s.start_time_unix_nano, s.end_time_unix_nano))).collect();
        let path = path_of(spans);
        let mut all: Vec<(u64, u64)> = Vec::new();
        for (id, segments) in &path {
            let (start, end) = bounds[id];
            for &(from, to) in segments {
                assert!(start <= from && from < to && to <= end, "segment {from}..{to} outside span {id}: {path:?}");
                all.push((from, to));
            }
        }
        all.sort_unstable();
        assert!(all.windows(2).all(|w| w[0].1 <= w[1].0), "overlapping segments: {path:?}");
    }
}

#[test]
fn a_tidy_tree_is_covered_end_to_end() {
    // Children within their parents and no asynchronous kinds: every instant of the root is on the path once.
    let mut state: u64 = 42;
    let mut next = move |bound: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound.max(1)
    };
    for _ in 0..500 {
        let mut spans = vec![span(1, None, "root", 1_000, 2_000)];
        for id in 2..=1 + next(60) as u8 {
            let parent = &spans[next(spans.len() as u64) as usize];
            let (parent_id, from, to) = (parent.span_id[0], parent.start_time_unix_nano, parent.end_time_unix_nano);
            let start = from + next(to - from + 1);
            let end = start + next(to - start + 1);
            spans.push(span(id, Some(parent_id), "op", start, end));
        }
        let path = path_of(spans);
        let mut all: Vec<(u64, u64)> = path.iter().flat_map(|(_, segments)| segments.iter().copied()).collect();
        all.sort_unstable();
        assert_eq!(all.first().map(|s| s.0), Some(1_000), "{path:?}");
        assert_eq!(all.last().map(|s| s.1), Some(2_000), "{path:?}");
        assert!(all.windows(2).all(|w| w[0].1 == w[1].0), "gaps or overlaps: {path:?}");
    }
}
