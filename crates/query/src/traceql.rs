//! TraceQL over the store: the query's span-level conditions narrow the candidate traces with the store's
//! search (column scans with pruning), then each candidate is read whole and the query evaluated on it.
//!
//! Candidates come newest first, so results are newest first and deterministic; the walk stops as soon as
//! `limit` traces matched. The pushdown is conservative (every matching trace has a span meeting it), so it
//! never loses a match; a query with nothing to push down visits every trace in the time range.

use std::collections::BTreeMap;

use clew_model::otlp::{ResourceSpans, status};
use clew_model::{Tenant, TraceId, service_name};
use clew_store::{AttrCondition, AttrOp, Literal, SearchCursor, SearchRequest, SpanFilter, StoreError};
use clew_traceql::ast::{BinaryOp, Field, Kind, Scope, Static, Status};
use clew_traceql::eval::{Evaluator, TraceMatch};

use crate::Query;

/// Default and largest number of traces; default spans per spanset (Tempo's `spss`).
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_SPSS: usize = 3;
/// Candidates read whole at first, and at most at once.
const FIRST_CANDIDATES: usize = 64;
const CANDIDATES_PER_STEP: usize = 256;

#[derive(Debug, Clone)]
pub struct TraceQlRequest {
    pub query: String,
    /// Bounds (inclusive, Unix nanoseconds) on the trace's start.
    pub start_min_unix_nano: Option<u64>,
    pub start_max_unix_nano: Option<u64>,
    /// Bounds (inclusive) on the whole trace's duration (Tempo's `minDuration`/`maxDuration`).
    pub min_trace_duration_nanos: Option<u64>,
    pub max_trace_duration_nanos: Option<u64>,
    pub limit: usize,
}

impl TraceQlRequest {
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            start_min_unix_nano: None,
            start_max_unix_nano: None,
            min_trace_duration_nanos: None,
            max_trace_duration_nanos: None,
            limit: DEFAULT_LIMIT,
        }
    }

    fn admits_duration(&self, duration: u64) -> bool {
        self.min_trace_duration_nanos.is_none_or(|min| duration >= min)
            && self.max_trace_duration_nanos.is_none_or(|max| duration <= max)
    }
}

/// One matching trace: its summary over all its spans, and what the query returned.
#[derive(Debug, Clone)]
pub struct FoundTrace {
    pub trace_id: TraceId,
    pub root_service: String,
    pub root_name: String,
    pub start_unix_nano: u64,
    pub duration_nanos: u64,
    pub span_count: u64,
    pub error_count: u64,
    pub services: Vec<String>,
    /// Spans and error spans per service, sorted by service.
    pub service_stats: Vec<(String, u64, u64)>,
    pub matched: TraceMatch,
}

#[derive(Debug, Clone, Default)]
pub struct TraceQlResult {
    pub traces: Vec<FoundTrace>,
    /// Traces read whole and evaluated.
    pub inspected_traces: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceQlError {
    #[error("{0}")]
    Parse(#[from] clew_traceql::ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Query {
    /// Runs a TraceQL query: matching traces newest first, at most `limit`.
    pub async fn traceql(&self, tenant: &Tenant, request: &TraceQlRequest) -> Result<TraceQlResult, TraceQlError> {
        let query = clew_traceql::parse_search(&request.query)?;
        let filter = pushdown(&query);
        let evaluator = Evaluator::new(query);
        let limit = request.limit.clamp(1, MAX_LIMIT);
        let mut result = TraceQlResult::default();
        let mut after: Option<SearchCursor> = None;
        let mut step = limit.clamp(FIRST_CANDIDATES, CANDIDATES_PER_STEP);
        loop {
            let search = SearchRequest {
                filter: filter.clone(),
                start_min_unix_nano: request.start_min_unix_nano,
                start_max_unix_nano: request.start_max_unix_nano,
                limit: CANDIDATES_PER_STEP.max(limit * 2),
                after,
            };
            let (candidates, next) = self.store.search_positions(tenant, &search).await?;
            // Read as many candidates as could fill the page first, then more at a time: most queries are
            // answered by their first candidates, and each read costs a pass over the blocks' trace ids.
            let mut rest = candidates.as_slice();
            while !rest.is_empty() {
                let take = step.min(rest.len());
                let (chunk, remaining) = rest.split_at(take);
                rest = remaining;
                step = (step * 4).min(CANDIDATES_PER_STEP);
                let ids: Vec<TraceId> = chunk.iter().map(|c| c.trace_id).collect();
                let mut traces = self.store.traces_within(tenant, &ids, None).await?;
                for id in &ids {
                    let Some(trace) = traces.remove(id) else { continue };
                    result.inspected_traces += 1;
                    if let Some(matched) = evaluator.evaluate(&trace)
                        && request.admits_duration(matched.duration_nanos)
                    {
                        result.traces.push(found(*id, &trace, matched));
                        if result.traces.len() == limit {
                            return Ok(result);
                        }
                    }
                }
            }
            match next {
                Some(cursor) => after = Some(cursor),
                None => return Ok(result),
            }
        }
    }
}

/// The store filter every matching trace satisfies on at least one span: the plan's entry with the most
/// conditions, less what the store cannot judge exactly as TraceQL does (those conditions are left out, which
/// only widens the candidates).
pub fn pushdown(query: &clew_traceql::Query) -> SpanFilter {
    let plan = clew_traceql::plan::plan(query);
    let Some(span) = plan.primary() else { return SpanFilter::default() };
    let mut filter = SpanFilter {
        service: span.service.clone(),
        name: span.name.clone(),
        status: span.status.map(|s| match s {
            Status::Unset => 0,
            Status::Ok => 1,
            Status::Error => 2,
        }),
        kind: span.kind.map(|k| match k {
            Kind::Unspecified => 0,
            Kind::Internal => 1,
            Kind::Server => 2,
            Kind::Client => 3,
            Kind::Producer => 4,
            Kind::Consumer => 5,
        }),
        min_duration_nanos: span.min_duration,
        max_duration_nanos: span.max_duration,
        non_scalars_match: true,
        ..SpanFilter::default()
    };
    for condition in &span.conditions {
        let Field::Attribute(attribute) = &condition.field else { continue };
        let Some(store_condition) = attr_condition(&attribute.name, condition.op, &condition.value) else { continue };
        match attribute.scope {
            Scope::Unscoped => filter.attrs.push(store_condition),
            Scope::Span => filter.span_attrs.push(store_condition),
            Scope::Resource => filter.resource_attrs.push(store_condition),
            Scope::Event | Scope::Link | Scope::Instrumentation => {}
        }
    }
    filter
}

fn attr_condition(key: &str, op: BinaryOp, value: &Static) -> Option<AttrCondition> {
    let literal = match value {
        Static::String(s) => Literal::Str(s.clone()),
        Static::Int(i) => Literal::Int(*i),
        Static::Float(f) => Literal::Float(*f),
        Static::Bool(b) => Literal::Bool(*b),
        _ => return None,
    };
    let regex = |negated: bool| {
        let Literal::Str(pattern) = &literal else { return None };
        let re = clew_traceql::eval::compile_regex(pattern).ok()?;
        Some(if negated { AttrOp::NotMatch(re) } else { AttrOp::Match(re) })
    };
    let op = match op {
        BinaryOp::Eq => AttrOp::Eq,
        BinaryOp::Neq => AttrOp::Ne,
        BinaryOp::Lt => AttrOp::Lt,
        BinaryOp::Lte => AttrOp::Le,
        BinaryOp::Gt => AttrOp::Gt,
        BinaryOp::Gte => AttrOp::Ge,
        BinaryOp::Regex => regex(false)?,
        BinaryOp::NotRegex => regex(true)?,
        _ => return None,
    };
    Some(AttrCondition { key: key.to_owned(), op, value: literal })
}

fn found(trace_id: TraceId, trace: &[ResourceSpans], matched: TraceMatch) -> FoundTrace {
    let mut per_service: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for rs in trace {
        let service = service_name(rs.resource.as_ref()).unwrap_or_default().to_owned();
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            let error = span.status.as_ref().is_some_and(|s| s.code == status::StatusCode::Error as i32);
            let entry = per_service.entry(service.clone()).or_default();
            entry.0 += 1;
            entry.1 += error as u64;
        }
    }
    FoundTrace {
        trace_id,
        root_service: matched.root_service_name.clone().unwrap_or_default(),
        root_name: matched.root_span_name.clone().unwrap_or_default(),
        start_unix_nano: matched.start_time_unix_nano,
        duration_nanos: matched.duration_nanos,
        span_count: per_service.values().map(|(spans, _)| spans).sum(),
        error_count: per_service.values().map(|(_, errors)| errors).sum(),
        services: per_service.keys().filter(|s| !s.is_empty()).cloned().collect(),
        service_stats: per_service.into_iter().map(|(service, (spans, errors))| (service, spans, errors)).collect(),
        matched,
    }
}
