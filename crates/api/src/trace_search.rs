//! Whole-trace search for the ecosystem-compatible APIs (Jaeger, Zipkin).
//!
//! Their conditions are on each API's own view of a span (a Jaeger tag `error=true` made from the status, a
//! tag value compared as text with a typed attribute), which one store span filter cannot always express. So
//! each condition is pushed down as a set of alternatives the store can answer (`error=true`: status error, or
//! an `error` attribute true, or `"true"`), the search runs one store query per combination and merges them
//! newest first, and where a condition has no exact alternatives, each candidate trace is read whole and checked
//! against the API's view by a `verify` function.

use std::collections::{HashSet, VecDeque};

use clew_model::Tenant;
use clew_model::otlp::TracesData;
use clew_query::Query;
use clew_query::search::{AttrCondition, AttrOp, Literal};
use clew_query::search::{SearchCursor, SearchRequest, SpanFilter};

use crate::ApiError;

/// How many candidate traces a verified search reads before it stops with what it has.
const MAX_CANDIDATES: usize = 2000;
/// Candidates a verified search asks the store for at once (each store query ranks every match), and how many
/// of them it reads whole at once.
const VERIFIED_PAGE: usize = 500;
const VERIFIED_CHUNK: usize = 100;
/// Most store queries one search fans out to (combinations of alternatives).
const MAX_VARIANTS: usize = 8;

/// One way a span can meet a condition, in the store's terms.
#[derive(Debug, Clone)]
pub(crate) enum Alt {
    Attr(AttrCondition),
    Status(i32),
    Kind(i32),
}

impl Alt {
    /// `key = value` on an attribute.
    pub(crate) fn attr(key: &str, value: Literal) -> Self {
        Self::Attr(AttrCondition { key: key.to_owned(), op: AttrOp::Eq, value })
    }

    /// The attribute alternatives of a tag compared as text: a string attribute with that text, and the typed
    /// attribute whose text it is (`500` an int, `0.5` a double, `true` a bool).
    pub(crate) fn text(key: &str, value: &str) -> Vec<Self> {
        let mut alts = vec![Self::attr(key, Literal::Str(value.to_owned()))];
        match Literal::parse(value) {
            Literal::Str(_) => {}
            typed => alts.push(Self::attr(key, typed)),
        }
        alts
    }
}

/// How a condition goes to the store.
#[derive(Debug, Clone)]
pub(crate) enum Pushdown {
    /// A span meets the condition exactly when it meets one of these (none: no span can).
    Exact(Vec<Alt>),
    /// Only `verify` can tell.
    Verify,
}

/// A search for whole traces.
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceSearch {
    /// Conditions every variant has.
    pub filter: SpanFilter,
    /// Conditions with several alternatives (each group: one must hold).
    groups: Vec<Vec<Alt>>,
    /// Bounds (inclusive, Unix nanoseconds) on the trace's start.
    pub start_min: Option<u64>,
    pub start_max: Option<u64>,
    pub limit: usize,
    /// False when some condition is only checked by `verify`.
    pub exact: bool,
}

/// Adds an alternative to a filter; `false` when the filter already rules it out (another status or kind).
fn apply(filter: &mut SpanFilter, alt: &Alt) -> bool {
    match alt {
        Alt::Attr(condition) => filter.attrs.push(condition.clone()),
        Alt::Status(code) => return *filter.status.get_or_insert(*code) == *code,
        Alt::Kind(kind) => return *filter.kind.get_or_insert(*kind) == *kind,
    }
    true
}

impl TraceSearch {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, exact: true, ..Self::default() }
    }

    pub(crate) fn push(&mut self, pushdown: Pushdown) {
        match pushdown {
            Pushdown::Verify => self.exact = false,
            Pushdown::Exact(alts) if alts.len() == 1 => {
                if !apply(&mut self.filter, &alts[0]) {
                    self.groups.push(Vec::new());
                }
            }
            Pushdown::Exact(alts) => {
                let variants: usize = self.groups.iter().map(|g| g.len().max(1)).product();
                if variants * alts.len().max(1) <= MAX_VARIANTS || alts.is_empty() {
                    self.groups.push(alts);
                } else {
                    self.exact = false;
                }
            }
        }
    }

    /// The store filters to run: one per combination of alternatives (none when no span can match).
    fn variants(&self) -> Vec<SpanFilter> {
        let mut variants = vec![self.filter.clone()];
        for group in &self.groups {
            variants = variants
                .iter()
                .flat_map(|base| {
                    group.iter().filter_map(move |alt| {
                        let mut filter = base.clone();
                        apply(&mut filter, alt).then_some(filter)
                    })
                })
                .collect();
        }
        variants
    }

    /// Traces matching the search, newest first: candidates from every variant, merged; each read whole and,
    /// unless the pushdown was exact, kept only when `verify` accepts it.
    pub(crate) async fn run(
        &self,
        query: &Query,
        tenant: &Tenant,
        verify: impl Fn(&TracesData) -> bool,
    ) -> Result<Vec<TracesData>, ApiError> {
        let (page, chunk) = if self.exact { (self.limit, self.limit) } else { (VERIFIED_PAGE, VERIFIED_CHUNK) };
        let mut streams: Vec<Candidates> = self.variants().into_iter().map(Candidates::new).collect();
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        loop {
            // The next `page` candidates, newest first, over all variants.
            let mut batch = Vec::new();
            while batch.len() < page && seen.len() < MAX_CANDIDATES {
                let mut best: Option<SearchCursor> = None;
                for stream in &mut streams {
                    if let Some(head) = stream.peek(self, query, tenant, page).await? {
                        best = best.max(Some(head));
                    }
                }
                let Some(best) = best else { break };
                for stream in &mut streams {
                    stream.pop_if(best);
                }
                if seen.insert(best.trace_id) {
                    batch.push(best.trace_id);
                }
            }
            if batch.is_empty() {
                return Ok(found);
            }
            for ids in batch.chunks(chunk.max(1)) {
                let mut traces = query.traces_within(tenant, ids, None).await.map_err(ApiError::internal)?;
                for id in ids {
                    let Some(trace) = traces.remove(id) else { continue };
                    if self.exact || verify(&trace) {
                        found.push(trace);
                        if found.len() >= self.limit {
                            return Ok(found);
                        }
                    }
                }
            }
        }
    }
}

/// The matches of one store filter, newest first, read a page at a time.
struct Candidates {
    filter: SpanFilter,
    buffer: VecDeque<SearchCursor>,
    next: Option<SearchCursor>,
    done: bool,
}

impl Candidates {
    fn new(filter: SpanFilter) -> Self {
        Self { filter, buffer: VecDeque::new(), next: None, done: false }
    }

    async fn peek(
        &mut self,
        search: &TraceSearch,
        query: &Query,
        tenant: &Tenant,
        page: usize,
    ) -> Result<Option<SearchCursor>, ApiError> {
        if self.buffer.is_empty() && !self.done {
            let request = SearchRequest {
                filter: self.filter.clone(),
                start_min_unix_nano: search.start_min,
                start_max_unix_nano: search.start_max,
                limit: page.max(1),
                after: self.next,
            };
            let result = query.search(tenant, &request).await.map_err(ApiError::internal)?;
            self.buffer.extend(
                result.traces.iter().map(|t| SearchCursor { start_unix_nano: t.start_unix_nano, trace_id: t.trace_id }),
            );
            self.next = result.next;
            self.done = result.next.is_none();
        }
        Ok(self.buffer.front().copied())
    }

    fn pop_if(&mut self, head: SearchCursor) {
        if self.buffer.front() == Some(&head) {
            self.buffer.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_multiply_into_variants() {
        let mut search = TraceSearch::new(10);
        search.push(Pushdown::Exact(Alt::text("region", "eu")));
        assert_eq!(search.variants().len(), 1, "a plain string has one alternative");
        search.push(Pushdown::Exact(Alt::text("http.status_code", "500")));
        search.push(Pushdown::Exact(vec![Alt::Status(2), Alt::attr("error", Literal::Bool(true))]));
        let variants = search.variants();
        assert_eq!(variants.len(), 4);
        assert!(variants.iter().all(|v| v.attrs[0].key == "region"));
        assert_eq!(variants.iter().filter(|v| v.status == Some(2)).count(), 2);
        assert!(search.exact);
    }

    #[test]
    fn contradictions_and_impossible_conditions_leave_no_variant() {
        let mut search = TraceSearch::new(10);
        search.push(Pushdown::Exact(vec![Alt::Status(1)]));
        search.push(Pushdown::Exact(vec![Alt::Status(2)]));
        assert!(search.variants().is_empty());
        let mut search = TraceSearch::new(10);
        search.push(Pushdown::Exact(vec![]));
        assert!(search.variants().is_empty());
        let mut search = TraceSearch::new(10);
        search.push(Pushdown::Exact(vec![Alt::Kind(2), Alt::Kind(3)]));
        search.push(Pushdown::Exact(vec![Alt::Kind(3)]));
        assert_eq!(search.variants().len(), 1);
    }

    #[test]
    fn too_many_combinations_fall_back_to_verification() {
        let mut search = TraceSearch::new(10);
        for key in ["a", "b", "c", "d"] {
            search.push(Pushdown::Exact(Alt::text(key, "1")));
        }
        assert_eq!(search.variants().len(), MAX_VARIANTS);
        assert!(!search.exact);
    }
}
