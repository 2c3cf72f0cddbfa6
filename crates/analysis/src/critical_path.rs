//! The critical path of a trace: the chain of work that decided when the trace finished.
//!
//! The algorithm is the one Jaeger UI uses. Start at the end of the root span and walk back in time: at each
//! point, the child of the current span that finished last (at or before that point) is what the span was
//! waiting for, so the path descends into it; once a span has no such child left, the span itself was working
//! from its start to that point, and the walk returns to its parent at the span's start.
//!
//! The rules, where traces are not tidy:
//! - **Children are clipped to their parent**: a child that starts before or ends after its parent counts only
//!   for the parent's window (its own children are clipped to the clipped window in turn).
//! - **Overlapping children**: when the walk comes back from a child at that child's start, only children that
//!   had finished by then are candidates; a sibling still running at that point is not on the path (the
//!   parent's own time covers it), as in Jaeger UI. A child ending exactly when the next one starts is a
//!   sequential step and is on the path (Jaeger UI asks for a strictly earlier end and would skip it).
//! - **Asynchronous work does not block its parent**: a `CONSUMER` child of a `PRODUCER` span (a message
//!   handled asynchronously) and a child lying wholly outside its parent's window (say, started after its parent
//!   ended: fire-and-forget, or a consumer of a message sent at the end) are detached from their parent into a
//!   tree of their own. But their parent caused them: when the walk comes back to the start of such a tree, it
//!   continues into the span it was detached from, at that start (or at that span's end, if earlier; the time
//!   between, a message waiting in a queue, is on no span). So a consumer that ends the trace is on the path,
//!   preceded by its producer and what led to it, not by work that ran concurrently. OTLP has no
//!   `FOLLOWS_FROM`; such work is either one of these cases or a trace of its own joined by a link.
//! - **Orphans and several roots**: the trace's root is its span without a parent that started first (ties:
//!   the longer one). Orphans (spans whose parent is not in the trace) are taken as the root's children, their
//!   best known ancestor, and clipped like any child. Other parentless spans, orphans of a trace without a root,
//!   and detached subtrees are trees of their own. All trees are walked as the children of one virtual span
//!   covering the whole trace, whose own time is not reported: the path starts in the tree that finished last
//!   and, at its start (unless it continues into its cause, above), continues into the tree that finished last
//!   before that, as with overlapping siblings. Gaps where no tree can be blamed are on no span.
//! - Spans in a parent-id cycle are reached from no root and are not on the path.
//! - Ties in end time go to the child that started first (it explains more of its parent's time), then to the
//!   one that comes first in the trace.

use std::cmp::Reverse;
use std::collections::HashMap;

use clew_model::SpanId;
use clew_model::otlp::{ResourceSpans, span::SpanKind};

use crate::spans::TraceSpans;

/// A stretch of time `[start, end)` in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

impl Segment {
    pub fn nanos(&self) -> u64 {
        self.end_unix_nano - self.start_unix_nano
    }
}

/// A span on the critical path and the stretches of its own time on it, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSpan {
    pub span_id: SpanId,
    pub segments: Vec<Segment>,
}

/// The critical path: its spans ordered by their first segment, earliest first. Segments never overlap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriticalPath {
    pub spans: Vec<PathSpan>,
}

impl CriticalPath {
    pub fn contains(&self, span_id: &SpanId) -> bool {
        self.spans.iter().any(|s| s.span_id == *span_id)
    }

    /// Time on the path, summed over all segments.
    pub fn total_nanos(&self) -> u64 {
        self.spans.iter().flat_map(|s| &s.segments).map(Segment::nanos).sum()
    }
}

/// Computes the critical path of a whole trace (see the module documentation for the rules).
pub fn critical_path(trace: &[ResourceSpans]) -> CriticalPath {
    let trace = TraceSpans::new(trace);
    let tree = BlockingTree::build(&trace);
    let mut reversed = tree.walk_back();
    reversed.reverse();
    group_by_span(&trace, tree.virtual_root, reversed)
}

/// The spans as they block one another: each span's window (clipped to its parent) and its blocking children,
/// sorted for the walk. Index `virtual_root` (one past the spans) is the virtual span over the whole trace.
struct BlockingTree {
    virtual_root: usize,
    window: Vec<(u64, u64)>,
    parent: Vec<usize>,
    /// For the root of a detached subtree, the span it was detached from.
    cause: Vec<Option<usize>>,
    /// By end descending, then start ascending, then trace order: the first is the last-finishing child.
    children: Vec<Vec<usize>>,
}

impl BlockingTree {
    fn build(trace: &TraceSpans) -> Self {
        let n = trace.spans.len();
        let virtual_root = n;
        let mut window = vec![(0, 0); n + 1];
        let mut parent = vec![virtual_root; n + 1];
        let mut cause = vec![None; n + 1];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n + 1];

        let parentless = || (0..n).filter(|&i| trace.spans[i].parent.is_none());
        let root = parentless()
            .filter(|&i| !trace.spans[i].names_parent)
            .min_by_key(|&i| (trace.spans[i].start, Reverse(trace.spans[i].end), i));
        let adopted_by_root = |i: &usize| root.is_some() && trace.spans[*i].names_parent;
        let orphans: Vec<usize> = parentless().filter(adopted_by_root).collect();
        // Top-down from the trees (an explicit stack: traces can be deeper than the call stack allows), so a
        // child is clipped to its parent's already clipped window.
        let mut stack: Vec<usize> = parentless().filter(|i| !adopted_by_root(i)).collect();
        for &tree in &stack {
            window[tree] = (trace.spans[tree].start, trace.spans[tree].end);
            children[virtual_root].push(tree);
        }
        while let Some(p) = stack.pop() {
            let (parent_start, parent_end) = window[p];
            let parent_kind = trace.spans[p].span.kind;
            let adopted = if Some(p) == root { orphans.as_slice() } else { &[] };
            for &c in trace.children[p].iter().chain(adopted) {
                let child = &trace.spans[c];
                let (start, end) = (child.start.max(parent_start), child.end.min(parent_end));
                let outside = start > end || (start == end && child.end > child.start);
                let asynchronous =
                    parent_kind == SpanKind::Producer as i32 && child.span.kind == SpanKind::Consumer as i32;
                if outside || asynchronous {
                    window[c] = (child.start, child.end);
                    cause[c] = Some(p);
                    children[virtual_root].push(c);
                } else {
                    window[c] = (start, end);
                    parent[c] = p;
                    children[p].push(c);
                }
                stack.push(c);
            }
        }

        let roots = &children[virtual_root];
        let start = roots.iter().map(|&r| window[r].0).min().unwrap_or(0);
        let end = roots.iter().map(|&r| window[r].1).max().unwrap_or(0);
        window[virtual_root] = (start, end);
        for kids in &mut children {
            kids.sort_by_key(|&c| (Reverse(window[c].1), window[c].0, c));
        }
        Self { virtual_root, window, parent, cause, children }
    }

    /// Walks back from the end of the trace; returns `(span, start, end)` segments, latest first.
    fn walk_back(&self) -> Vec<(usize, u64, u64)> {
        let mut segments = Vec::new();
        let mut emit = |span: usize, start: u64, end: u64| {
            if start < end && span != self.virtual_root {
                segments.push((span, start, end));
            }
        };
        // Per span, how many of its sorted children are used up. `until` only moves back in time (down to a
        // child's end, up to a span's start, over to a cause no later than that), so a child finishing after it
        // can never become a candidate again, segments never overlap, and every span is left at most once
        // through each way in: the walk ends.
        let mut next_child = vec![0usize; self.children.len()];
        let (mut span, mut until) = (self.virtual_root, self.window[self.virtual_root].1);
        loop {
            let kids = &self.children[span];
            let cursor = &mut next_child[span];
            while *cursor < kids.len() && self.window[kids[*cursor]].1 > until {
                *cursor += 1;
            }
            if let Some(&child) = kids.get(*cursor) {
                *cursor += 1;
                let child_end = self.window[child].1;
                emit(span, child_end, until);
                (span, until) = (child, child_end);
            } else {
                let start = self.window[span].0;
                emit(span, start, until);
                if span == self.virtual_root {
                    return segments;
                }
                // A cause may start after what it caused (clock skew): `until` must still not move forward.
                let until_now = until.min(start);
                (span, until) = match self.cause[span] {
                    Some(cause) => (cause, until_now.min(self.window[cause].1)),
                    None => (self.parent[span], until_now),
                };
            }
        }
    }
}

/// Groups time-ordered segments by span (spans in order of their first segment), merging touching segments.
fn group_by_span(trace: &TraceSpans, virtual_root: usize, segments: Vec<(usize, u64, u64)>) -> CriticalPath {
    let mut spans: Vec<PathSpan> = Vec::new();
    let mut position: HashMap<usize, usize> = HashMap::new();
    for (span, start, end) in segments {
        debug_assert!(span != virtual_root);
        let at = *position.entry(span).or_insert_with(|| {
            spans.push(PathSpan { span_id: trace.spans[span].id, segments: Vec::new() });
            spans.len() - 1
        });
        let list = &mut spans[at].segments;
        match list.last_mut() {
            Some(last) if last.end_unix_nano == start => last.end_unix_nano = end,
            _ => list.push(Segment { start_unix_nano: start, end_unix_nano: end }),
        }
    }
    CriticalPath { spans }
}

#[cfg(test)]
mod tests;
