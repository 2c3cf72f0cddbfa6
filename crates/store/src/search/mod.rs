//! Trace search: span predicates evaluated over the head and the blocks of a tenant.
//!
//! A trace matches when one of its spans satisfies every condition of the [`SpanFilter`] (like TraceQL's
//! `{ a && b }`). Results are trace summaries over the whole trace (head and every block holding part of it),
//! ordered by (start time, trace id) descending, one page at a time after an optional [`SearchCursor`].

mod blocks;
mod filter;
mod head;
mod list;

use std::collections::{BTreeSet, HashMap, HashSet};

use base64::Engine;
use clew_model::{Tenant, TraceId};

pub use filter::{AttrCondition, AttrOp, Literal, SpanFilter};
pub use list::{AttrScope, AttributeKey, AttributeValue, Operation};

use crate::{Store, StoreError};

/// What to search for, and which page.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub filter: SpanFilter,
    /// Bounds (inclusive) on the trace's start time.
    pub start_min_unix_nano: Option<u64>,
    pub start_max_unix_nano: Option<u64>,
    pub limit: usize,
    /// Continue strictly after this trace (in result order).
    pub after: Option<SearchCursor>,
}

/// A position in the result order: (start time, trace id), both descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SearchCursor {
    pub start_unix_nano: u64,
    pub trace_id: TraceId,
}

impl SearchCursor {
    /// URL-safe base64 of the start time (8 bytes, big endian) and the trace id.
    pub fn encode(&self) -> String {
        let mut bytes = self.start_unix_nano.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.trace_id.0);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
        if bytes.len() != 24 {
            return None;
        }
        let start_unix_nano = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let trace_id = TraceId(bytes[8..].try_into().ok()?);
        Some(Self { start_unix_nano, trace_id })
    }
}

/// One trace found: a summary of the whole trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    pub root_service: String,
    pub root_name: String,
    pub start_unix_nano: u64,
    pub duration_nanos: u64,
    pub span_count: u64,
    pub error_count: u64,
    /// Sorted.
    pub services: Vec<String>,
    /// Spans that satisfied the filter.
    pub matched_spans: u64,
}

/// One page of results, and where the next one starts (`None`: this is the last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPage {
    pub traces: Vec<TraceSummary>,
    pub next: Option<SearchCursor>,
}

/// Facts about a trace gathered from its parts (head, blocks).
#[derive(Debug, Clone)]
pub(crate) struct TraceAcc {
    start: u64,
    end: u64,
    spans: u64,
    errors: u64,
    services: BTreeSet<String>,
    /// The earliest span without a parent: (start, service, name).
    root: Option<(u64, String, String)>,
    /// The earliest span seen, for traces without a root.
    earliest: Option<(u64, String, String)>,
    matched: u64,
}

impl Default for TraceAcc {
    fn default() -> Self {
        Self {
            start: u64::MAX,
            end: 0,
            spans: 0,
            errors: 0,
            services: BTreeSet::new(),
            root: None,
            earliest: None,
            matched: 0,
        }
    }
}

fn keep_earliest(slot: &mut Option<(u64, String, String)>, start: u64, service: &str, name: &str) {
    if slot.as_ref().is_none_or(|(s, _, _)| start < *s) {
        *slot = Some((start, service.to_owned(), name.to_owned()));
    }
}

impl TraceAcc {
    /// Adds a span's share of the summary.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_span(&mut self, start: u64, end: u64, service: &str, name: &str, is_root: bool, error: bool) {
        self.start = self.start.min(start);
        self.end = self.end.max(end);
        self.spans += 1;
        self.errors += error as u64;
        if !service.is_empty() {
            self.services.insert(service.to_owned());
        }
        if is_root {
            keep_earliest(&mut self.root, start, service, name);
        }
        keep_earliest(&mut self.earliest, start, service, name);
    }

    fn merge(&mut self, other: TraceAcc) {
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.spans += other.spans;
        self.errors += other.errors;
        self.services.extend(other.services);
        if let Some((s, svc, name)) = other.root {
            keep_earliest(&mut self.root, s, &svc, &name);
        }
        if let Some((s, svc, name)) = other.earliest {
            keep_earliest(&mut self.earliest, s, &svc, &name);
        }
        self.matched += other.matched;
    }

    fn summary(self, trace_id: TraceId) -> TraceSummary {
        let (_, root_service, root_name) = self.root.or(self.earliest).unwrap_or_default();
        let start = if self.start == u64::MAX { 0 } else { self.start };
        TraceSummary {
            trace_id,
            root_service,
            root_name,
            start_unix_nano: start,
            duration_nanos: self.end.saturating_sub(start),
            span_count: self.spans,
            error_count: self.errors,
            services: self.services.into_iter().collect(),
            matched_spans: self.matched,
        }
    }
}

/// Trace id → what is known of it.
pub(crate) type Traces = IdMap<TraceAcc>;

/// Maps and sets keyed by trace id, with a fast hasher (searches hash hundreds of thousands of ids; std's SipHash
/// was a tenth of a search's time). Its seed is random per process, so crafted ids cannot force collisions.
pub(crate) type IdMap<V> = HashMap<TraceId, V, foldhash::fast::RandomState>;
pub(crate) type IdSet = HashSet<TraceId, foldhash::fast::RandomState>;

fn merge_into(all: &mut Traces, part: Traces) {
    for (id, acc) in part {
        match all.get_mut(&id) {
            Some(existing) => existing.merge(acc),
            None => {
                all.insert(id, acc);
            }
        }
    }
}

/// Up to this many matches, blocks whose trace-id filter admits none of them are not read for their starts.
const FEW_MATCHES: usize = 4096;

/// Matching traces ranked newest first, with what was learnt on the way.
struct Ranked {
    page: Vec<SearchCursor>,
    next: Option<SearchCursor>,
    matched: IdMap<u64>,
    head_parts: Traces,
    /// Where every trace of the head starts (its parts matching or not).
    head_starts: IdMap<u64>,
    metas: Vec<std::sync::Arc<crate::block::BlockMeta>>,
}

impl Store {
    /// Searches the tenant's traces (head and blocks), newest first.
    pub async fn search(&self, tenant: &Tenant, request: &SearchRequest) -> Result<SearchPage, StoreError> {
        let Ranked { page: ranked, next, mut matched, mut head_parts, head_starts, metas } =
            self.rank(tenant, request).await?;
        // 4. Whole-trace summaries of the page: head parts, plus traces.parquet rows of every block that may
        //    hold them.
        let page: Vec<TraceId> = ranked.iter().map(|c| c.trace_id).collect();
        let mut traces: Traces = Traces::default();
        let mut places: IdMap<usize> = IdMap::default();
        for id in &page {
            let part = match head_parts.remove(id) {
                Some(part) => Some(part),
                // A head part without a matching span (the match was in a block).
                None if head_starts.contains_key(id) => Some(head::summarise(&self.head.trace(tenant, id))),
                None => None,
            };
            if let Some(part) = part {
                traces.insert(*id, part);
                places.insert(*id, 1);
            }
        }
        for meta in &metas {
            let ids: Vec<TraceId> = page.iter().filter(|id| meta.may_contain(id)).copied().collect();
            if ids.is_empty() {
                continue;
            }
            let parts = blocks::summaries(self.objects.as_ref(), meta, &ids)
                .await
                .map_err(|e| StoreError::Block(format!("reading traces of block {}: {e}", meta.block_id)))?;
            parts.keys().for_each(|id| *places.entry(*id).or_default() += 1);
            merge_into(&mut traces, parts);
        }
        // 5. Parts in several places may share spans (a block and the log replayed into the head after a crash,
        //    blocks a compaction left overlapping): such traces are summarised again from their unique spans.
        //    Traces without a root span are too: their summary names the earliest span of the whole trace.
        let spread: IdSet = places.into_iter().filter(|(_, n)| *n > 1).map(|(id, _)| id).collect();
        let rootless = traces.iter().filter(|(id, acc)| acc.root.is_none() && !spread.contains(*id)).map(|(id, _)| *id);
        let spread: Vec<TraceId> = rootless.chain(spread.iter().copied()).collect();
        if !spread.is_empty() {
            for (id, spans) in self.traces_within(tenant, &spread, None).await? {
                matched.insert(id, head::count_matches(&spans, &request.filter));
                traces.insert(id, head::summarise(&spans));
            }
        }
        let found: Vec<TraceSummary> = page
            .iter()
            .filter_map(|id| {
                let mut acc = traces.remove(id)?;
                acc.matched = *matched.get(id)?;
                Some(acc.summary(*id))
            })
            .collect();
        Ok(SearchPage { traces: found, next })
    }

    /// The positions (start, trace id) of one page of matching traces, newest first, without their summaries:
    /// what a caller that reads the traces themselves (TraceQL) needs to walk through candidates.
    pub async fn search_positions(
        &self,
        tenant: &Tenant,
        request: &SearchRequest,
    ) -> Result<(Vec<SearchCursor>, Option<SearchCursor>), StoreError> {
        let ranked = self.rank(tenant, request).await?;
        Ok((ranked.page, ranked.next))
    }

    async fn rank(&self, tenant: &Tenant, request: &SearchRequest) -> Result<Ranked, StoreError> {
        let filter = &request.filter;
        // 1. Which traces have a matching span, and how many.
        let mut matched: IdMap<u64> = IdMap::default();
        let mut head_parts: Traces = Traces::default();
        let mut head_starts: IdMap<u64> = IdMap::default();
        head::scan(&self.head, tenant, filter, &mut matched, &mut head_parts, &mut head_starts);
        let metas = self.blocks.of(tenant);
        // Without span conditions every trace matches: traces.parquet alone says which and where they start.
        let everything = filter.is_empty();
        let mut starts: IdMap<u64> = IdMap::default();
        let block_error = |meta: &crate::block::BlockMeta| {
            let id = meta.block_id.clone();
            move |e: crate::block::BlockError| StoreError::Block(format!("searching block {id}: {e}"))
        };
        let min = request.start_min_unix_nano.unwrap_or(0);
        for meta in &metas {
            if everything {
                // Parts starting before the bound are left out here; their traces are struck off below.
                blocks::for_each_trace(self.objects.as_ref(), meta, |id, start, spans| {
                    if start >= min {
                        *matched.entry(id).or_default() += spans;
                        starts.entry(id).and_modify(|s| *s = (*s).min(start)).or_insert(start);
                    }
                })
                .await
                .map_err(block_error(meta))?;
            } else {
                blocks::scan(self.objects.as_ref(), meta, request, &mut matched).await.map_err(block_error(meta))?;
            }
        }
        if everything && min > 0 && metas.len() + usize::from(!head_parts.is_empty()) > 1 {
            // A trace with a part that starts before the bound starts before it too.
            let mut early: IdSet = head_parts
                .iter()
                .filter(|(id, p)| p.start < min && starts.contains_key(id))
                .map(|(id, _)| *id)
                .collect();
            for meta in &metas {
                blocks::for_each_trace(self.objects.as_ref(), meta, |id, start, _| {
                    if start < min && starts.contains_key(&id) {
                        early.insert(id);
                    }
                })
                .await
                .map_err(block_error(meta))?;
            }
            for id in early {
                starts.remove(&id);
                matched.remove(&id);
            }
        }
        if matched.is_empty() {
            return Ok(Ranked { page: Vec::new(), next: None, matched, head_parts, head_starts, metas });
        }

        // 2. The order key of every match, its true start (the earliest of its parts), read cheaply: head parts
        //    and the start column of traces.parquet. Only the page's traces are then summarised in full.
        for (id, part) in &head_parts {
            starts.entry(*id).and_modify(|s| *s = (*s).min(part.start)).or_insert(part.start);
        }
        for id in matched.keys() {
            if let Some(&start) = head_starts.get(id) {
                starts.entry(*id).and_modify(|s| *s = (*s).min(start)).or_insert(start);
            }
        }
        for meta in metas.iter().filter(|_| !everything) {
            // With few matches the block's trace-id filter may rule it out; with many it never does.
            let few = matched.len() <= FEW_MATCHES;
            if few && !matched.keys().any(|id| meta.may_contain(id)) {
                continue;
            }
            blocks::starts(self.objects.as_ref(), meta, |id| matched.contains_key(id), &mut starts)
                .await
                .map_err(|e| StoreError::Block(format!("reading traces of block {}: {e}", meta.block_id)))?;
        }

        // 3. Bounds, order, page.
        let mut ranked: Vec<SearchCursor> = starts
            .into_iter()
            .map(|(trace_id, start_unix_nano)| SearchCursor { start_unix_nano, trace_id })
            .filter(|c| request.start_min_unix_nano.is_none_or(|min| c.start_unix_nano >= min))
            .filter(|c| request.start_max_unix_nano.is_none_or(|max| c.start_unix_nano <= max))
            .filter(|c| request.after.is_none_or(|after| *c < after))
            .collect();
        let limit = request.limit.max(1);
        if ranked.len() > limit + 1 {
            ranked.select_nth_unstable_by(limit, |a, b| b.cmp(a));
            ranked.truncate(limit + 1);
        }
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let next = (ranked.len() > limit).then(|| ranked[limit - 1]);
        ranked.truncate(limit);
        Ok(Ranked { page: ranked, next, matched, head_parts, head_starts, metas })
    }
}
