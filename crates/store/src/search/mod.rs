//! Trace search: span predicates evaluated over the head and the blocks of a tenant.
//!
//! A trace matches when one of its spans satisfies every condition of the [`SpanFilter`] (like TraceQL's
//! `{ a && b }`). Results are trace summaries over the whole trace (head and every block holding part of it),
//! ordered by (start time, trace id) descending, one page at a time after an optional [`SearchCursor`].

mod blocks;
mod filter;
mod head;
mod list;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

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

/// Where a part of a trace was found: the head, or a row of a row group of `traces.parquet` of a block (by its
/// index in the list the search took).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Head,
    Block { block: u32, group: u32, ordinal: u32 },
}

/// A trace with at least one matching span, as far as the search knows it.
#[derive(Debug, Clone)]
struct Found {
    /// The earliest start of its parts found so far.
    start: u64,
    /// Its first part found, with how many matching spans it holds (most traces have one part: no allocation).
    first: (Place, u64),
    /// Its other parts.
    more: Vec<(Place, u64)>,
    /// Whether its parts elsewhere (not matching, or in row groups not scanned) have been looked up.
    resolved: bool,
}

impl Found {
    fn new(place: Place, start: u64, matched: u64) -> Self {
        Self { start, first: (place, matched), more: Vec::new(), resolved: false }
    }

    fn places(&self) -> impl Iterator<Item = &(Place, u64)> {
        std::iter::once(&self.first).chain(&self.more)
    }

    fn parts(&self) -> usize {
        1 + self.more.len()
    }

    fn matched(&self) -> u64 {
        self.places().map(|(_, n)| n).sum()
    }

    fn add(&mut self, place: Place, start: u64, matched: u64) {
        self.start = self.start.min(start);
        match std::iter::once(&mut self.first).chain(&mut self.more).find(|(p, _)| *p == place) {
            Some((_, n)) => *n = (*n).max(matched),
            None => self.more.push((place, matched)),
        }
    }
}

/// Row groups searched at once (those of one block in one pass, blocks side by side).
const WAVE: usize = 16;

/// Matching traces ranked newest first, with what was learnt on the way.
struct Ranked {
    page: Vec<SearchCursor>,
    next: Option<SearchCursor>,
    found: IdMap<Found>,
    head_parts: Traces,
    metas: Vec<std::sync::Arc<crate::block::BlockMeta>>,
}

impl Store {
    /// Searches the tenant's traces (head and blocks), newest first.
    pub async fn search(&self, tenant: &Tenant, request: &SearchRequest) -> Result<SearchPage, StoreError> {
        let Ranked { page, next, found, mut head_parts, metas } = self.rank(tenant, request).await?;
        // Whole-trace summaries of the page: head parts, and the traces.parquet rows of every part in a block.
        let mut traces: Traces = Traces::default();
        let mut by_block: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
        let mut spread: Vec<TraceId> = Vec::new();
        for c in &page {
            let f = &found[&c.trace_id];
            if f.parts() > 1 {
                spread.push(c.trace_id);
            }
            for (place, _) in f.places() {
                match *place {
                    Place::Head => {
                        let part = head_parts
                            .remove(&c.trace_id)
                            .unwrap_or_else(|| head::summarise(&self.head.trace(tenant, &c.trace_id)));
                        traces.entry(c.trace_id).or_default().merge(part);
                    }
                    Place::Block { block, group, ordinal } => by_block.entry(block).or_default().push((group, ordinal)),
                }
            }
        }
        for (block, places) in by_block {
            let meta = &metas[block as usize];
            let parts = blocks::summaries(self.objects.as_ref(), meta, &places)
                .await
                .map_err(|e| StoreError::Block(format!("reading traces of block {}: {e}", meta.block_id)))?;
            let ids: HashMap<(u32, u32), TraceId> = page
                .iter()
                .flat_map(|c| {
                    found[&c.trace_id].places().filter_map(move |(p, _)| match *p {
                        Place::Block { block: b, group, ordinal } if b == block => Some(((group, ordinal), c.trace_id)),
                        _ => None,
                    })
                })
                .collect();
            for (place, part) in parts {
                if let Some(id) = ids.get(&place) {
                    traces.entry(*id).or_default().merge(part);
                }
            }
        }
        // Parts in several places may share spans (a block and the log replayed into the head after a crash,
        // blocks a compaction left overlapping): such traces are summarised again from their unique spans.
        // Traces without a root span are too: their summary names the earliest span of the whole trace.
        let mut matched: IdMap<u64> = page.iter().map(|c| (c.trace_id, found[&c.trace_id].matched())).collect();
        let rootless: Vec<TraceId> =
            traces.iter().filter(|(id, acc)| acc.root.is_none() && !spread.contains(id)).map(|(id, _)| *id).collect();
        spread.extend(rootless);
        if !spread.is_empty() {
            for (id, spans) in self.traces_within(tenant, &spread, None).await? {
                matched.insert(id, head::count_matches(&spans, &request.filter));
                traces.insert(id, head::summarise(&spans));
            }
        }
        let found: Vec<TraceSummary> = page
            .iter()
            .filter_map(|c| {
                let mut acc = traces.remove(&c.trace_id)?;
                acc.matched = *matched.get(&c.trace_id)?;
                Some(acc.summary(c.trace_id))
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

    /// Finds the page: row groups are searched newest first (by the latest start of their traces), a wave at a
    /// time, until the page is full and no row group left can hold a newer match. A trace is ranked by its
    /// earliest part anywhere: the parts of the page's traces that did not match (or were not scanned) are
    /// looked up through the blocks' trace-id filters, and the search goes on while that changes the page.
    async fn rank(&self, tenant: &Tenant, request: &SearchRequest) -> Result<Ranked, StoreError> {
        let filter = &request.filter;
        let limit = request.limit.max(1);
        let mut head_matched: IdMap<u64> = IdMap::default();
        let mut head_parts: Traces = Traces::default();
        let mut head_starts: IdMap<u64> = IdMap::default();
        head::scan(&self.head, tenant, filter, &mut head_matched, &mut head_parts, &mut head_starts);
        let mut found: IdMap<Found> = IdMap::default();
        for (id, n) in head_matched {
            let start = head_starts.get(&id).copied().unwrap_or(u64::MAX);
            found.insert(id, Found::new(Place::Head, start, n));
        }

        let metas = self.blocks.of(tenant);
        // Row groups that may match, newest first.
        let mut units: Vec<(u64, usize, usize)> = Vec::new();
        for (b, meta) in metas.iter().enumerate() {
            for (g, rg) in meta.row_groups.iter().enumerate() {
                // Without span conditions a trace matches in its earliest part, which starts by the bound.
                let too_new = filter.is_empty()
                    && request.start_max_unix_nano.is_some_and(|max| rg.min_trace_start_unix_nano > max);
                if !too_new && blocks::group_may_match(meta, g, request) {
                    units.push((rg.max_trace_start_unix_nano, b, g));
                }
            }
        }
        units.sort_unstable_by(|a, b| b.cmp(a));
        let mut next = 0;
        let objects = &self.objects;
        loop {
            while let Some(&(newest, _, _)) = units.get(next) {
                if threshold(&found, request, limit).is_some_and(|t| newest < t.start_unix_nano) {
                    break;
                }
                let wave_end = (next + WAVE.max(metas.len())).min(units.len());
                let mut wave: Vec<(usize, usize)> = units[next..wave_end].iter().map(|&(_, b, g)| (b, g)).collect();
                next = wave_end;
                wave.sort_unstable();
                let mut tasks = tokio::task::JoinSet::new();
                for run in wave.chunk_by(|a, b| a.0 == b.0) {
                    let (b, groups) = (run[0].0, run.iter().map(|&(_, g)| g).collect::<Vec<_>>());
                    let (objects, meta, filter) = (Arc::clone(objects), Arc::clone(&metas[b]), filter.clone());
                    tasks.spawn(async move {
                        let hits = blocks::scan(objects.as_ref(), &meta, &groups, &filter).await;
                        (b, hits.map_err(|e| StoreError::Block(format!("searching block {}: {e}", meta.block_id))))
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    let (b, hits) = done.map_err(|e| StoreError::Block(format!("search task: {e}")))?;
                    for hit in hits? {
                        let place = Place::Block { block: b as u32, group: hit.group, ordinal: hit.ordinal };
                        match found.entry(hit.trace_id) {
                            std::collections::hash_map::Entry::Occupied(mut f) => {
                                f.get_mut().add(place, hit.start, hit.matched)
                            }
                            std::collections::hash_map::Entry::Vacant(slot) => {
                                slot.insert(Found::new(place, hit.start, hit.matched));
                            }
                        }
                    }
                }
            }
            // The page's traces, with their parts elsewhere looked up (their true start may be earlier).
            let top = ranking(&found, request, limit + 1);
            let unresolved: Vec<TraceId> =
                top.iter().filter(|c| !found[&c.trace_id].resolved).map(|c| c.trace_id).collect();
            if unresolved.is_empty() {
                break;
            }
            let mut moved = false;
            for id in &unresolved {
                let f = found.get_mut(id).expect("ranked from found");
                f.resolved = true;
                if let Some(&start) = head_starts.get(id)
                    && !f.places().any(|(p, _)| *p == Place::Head)
                {
                    moved |= start < f.start;
                    f.add(Place::Head, start, 0);
                }
            }
            for (b, meta) in metas.iter().enumerate() {
                let ids: Vec<TraceId> = unresolved
                    .iter()
                    .filter(|id| meta.may_contain(id))
                    .filter(|id| {
                        !found[*id].places().any(|(p, _)| matches!(p, Place::Block { block, .. } if *block == b as u32))
                    })
                    .copied()
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let parts = blocks::find_traces(self.objects.as_ref(), meta, &ids)
                    .await
                    .map_err(|e| StoreError::Block(format!("reading traces of block {}: {e}", meta.block_id)))?;
                for hit in parts {
                    let f = found.get_mut(&hit.trace_id).expect("looked up");
                    moved |= hit.start < f.start;
                    f.add(Place::Block { block: b as u32, group: hit.group, ordinal: hit.ordinal }, hit.start, 0);
                }
            }
            if !moved && next >= units.len() {
                break;
            }
            if !moved {
                // The page stands unless a row group not yet searched could still add to it.
                let still = units.get(next).is_some_and(|&(newest, _, _)| {
                    threshold(&found, request, limit).is_none_or(|t| newest >= t.start_unix_nano)
                });
                if !still {
                    break;
                }
            }
        }
        let mut page = ranking(&found, request, limit + 1);
        let next = (page.len() > limit).then(|| page[limit - 1]);
        page.truncate(limit);
        Ok(Ranked { page, next, found, head_parts, metas })
    }
}

/// Whether a trace starting at `position` is in the search's range and after its cursor.
fn admissible(position: &SearchCursor, request: &SearchRequest) -> bool {
    request.start_min_unix_nano.is_none_or(|min| position.start_unix_nano >= min)
        && request.start_max_unix_nano.is_none_or(|max| position.start_unix_nano <= max)
        && request.after.is_none_or(|after| *position < after)
}

/// The best `n` admissible positions, best (newest) first.
fn ranking(found: &IdMap<Found>, request: &SearchRequest, n: usize) -> Vec<SearchCursor> {
    let mut ranked: Vec<SearchCursor> = found
        .iter()
        .map(|(id, f)| SearchCursor { start_unix_nano: f.start, trace_id: *id })
        .filter(|c| admissible(c, request))
        .collect();
    if ranked.len() > n {
        ranked.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
        ranked.truncate(n);
    }
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked
}

/// The position a row group must beat to change the page: the (limit + 1)-th best so far (one more than the page,
/// to know whether a next page exists), if there are that many.
fn threshold(found: &IdMap<Found>, request: &SearchRequest, limit: usize) -> Option<SearchCursor> {
    let ranked = ranking(found, request, limit + 1);
    (ranked.len() > limit).then(|| ranked[limit])
}
