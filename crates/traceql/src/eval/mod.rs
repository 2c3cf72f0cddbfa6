//! Runs a query on one whole trace held in memory (decoded OTLP), with Tempo's semantics.
//!
//! A pipeline starts from one spanset holding every span of the trace; each stage maps the list of spansets to
//! a new list (filters keep matching spans, scalar filters keep or drop spansets, `by()` splits them,
//! `coalesce()` merges them). The trace matches when a non-empty spanset is left at the end.

mod field;
mod structural;
mod trace;
mod value;

use std::collections::{BTreeMap, HashMap};

use clew_model::otlp::ResourceSpans;

pub use value::Value;

use crate::ast::*;
use field::{RegexLookup, SpanCtx};
use trace::TraceIndex;

/// Compiles a TraceQL regex: Go-like syntax, anchored at both ends.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// What a matching trace returns.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceMatch {
    /// Hex trace id (from the first span).
    pub trace_id: String,
    pub root_service_name: Option<String>,
    pub root_span_name: Option<String>,
    /// Earliest span start and latest span end over the whole trace.
    pub start_time_unix_nano: u64,
    pub duration_nanos: u64,
    /// The spansets the pipeline returned: one, or one per group after `by()`.
    pub spansets: Vec<MatchedSpanset>,
}

impl TraceMatch {
    /// Every matched span id once, in trace order (start time, then span id).
    pub fn span_ids(&self) -> Vec<Vec<u8>> {
        let mut seen = std::collections::HashSet::new();
        let mut all: Vec<&MatchedSpan> = self.spansets.iter().flat_map(|s| &s.spans).collect();
        all.sort_by_key(|s| s.order);
        all.into_iter().filter(|s| seen.insert(s.order)).map(|s| s.span_id.clone()).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MatchedSpanset {
    pub spans: Vec<MatchedSpan>,
    /// `by()` groups this spanset belongs to: the printed expression and its value.
    pub group: Vec<(String, Value)>,
    /// Values of the scalar filters it passed, such as `("count()", Int(3))`.
    pub aggregates: Vec<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MatchedSpan {
    pub span_id: Vec<u8>,
    pub name: String,
    pub service_name: Option<String>,
    pub start_time_unix_nano: u64,
    pub duration_nanos: u64,
    /// Fields named in `select()`, attributes the query's filters test and fields a metrics stage reads, where
    /// the span has them.
    pub attributes: Vec<(Field, Value)>,
    /// Position of the span in trace order.
    pub order: usize,
}

/// A parsed query ready to run on many traces: static regexes are compiled once.
#[derive(Debug, Clone)]
pub struct Evaluator {
    query: Query,
    regexes: HashMap<String, regex::Regex>,
    /// Attributes the filters test, returned with matched spans as Tempo does.
    filter_attributes: Vec<Field>,
}

/// Runs `query` on one trace; `None` when it does not match.
pub fn evaluate(query: &Query, trace: &[ResourceSpans]) -> Option<TraceMatch> {
    Evaluator::new(query.clone()).evaluate(trace)
}

/// A spanset during evaluation.
#[derive(Debug, Clone, Default)]
struct Spanset {
    spans: Vec<usize>,
    group: Vec<(String, Value)>,
    aggregates: Vec<(String, Value)>,
    select: Vec<Field>,
}

impl Spanset {
    fn with_spans(&self, spans: Vec<usize>) -> Self {
        Self { spans, ..self.clone() }
    }

    fn merge_meta(&mut self, other: &Spanset) {
        for g in &other.group {
            if !self.group.contains(g) {
                self.group.push(g.clone());
            }
        }
        for a in &other.aggregates {
            if !self.aggregates.contains(a) {
                self.aggregates.push(a.clone());
            }
        }
        for f in &other.select {
            if !self.select.contains(f) {
                self.select.push(f.clone());
            }
        }
    }
}

impl Evaluator {
    pub fn new(query: Query) -> Self {
        let mut patterns = Vec::new();
        let mut filter_attributes = Vec::new();
        walk_pipeline(&query.pipeline, &mut |e| collect(e, &mut patterns, &mut filter_attributes));
        // A metrics stage reads its fields from every matched span.
        for f in query.metrics.iter().flat_map(Metrics::fields) {
            if !filter_attributes.contains(&f) {
                filter_attributes.push(f);
            }
        }
        let regexes = patterns.into_iter().filter_map(|p| compile_regex(&p).ok().map(|r| (p, r))).collect();
        Self { query, regexes, filter_attributes }
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    pub fn evaluate(&self, trace: &[ResourceSpans]) -> Option<TraceMatch> {
        let index = TraceIndex::new(trace);
        if index.len() == 0 {
            return None;
        }
        let lookup = |p: &str| self.regexes.get(p).cloned().or_else(|| compile_regex(p).ok());
        let run = Run { trace: &index, regex: &lookup };
        let all = Spanset { spans: (0..index.len()).collect(), ..Default::default() };
        let out: Vec<Spanset> =
            run.pipeline(&self.query.pipeline, vec![all]).into_iter().filter(|s| !s.spans.is_empty()).collect();
        if out.is_empty() {
            return None;
        }
        let root = index.root;
        let first = index.spans[0].span;
        Some(TraceMatch {
            trace_id: first.trace_id.iter().map(|b| format!("{b:02x}")).collect(),
            root_service_name: root.and_then(|r| index.service_name(r)).map(str::to_string),
            root_span_name: root.map(|r| index.spans[r].span.name.clone()),
            start_time_unix_nano: index.start,
            duration_nanos: index.end.saturating_sub(index.start),
            spansets: out.iter().map(|s| self.matched(&run, s)).collect(),
        })
    }

    fn matched(&self, run: &Run<'_, '_>, s: &Spanset) -> MatchedSpanset {
        let spans = s
            .spans
            .iter()
            .map(|&i| {
                let span = run.trace.spans[i].span;
                let ctx = SpanCtx { trace: run.trace, span: i, event: None, link: None };
                let mut attributes: Vec<(Field, Value)> = Vec::new();
                for f in s.select.iter().chain(&self.filter_attributes) {
                    if attributes.iter().any(|(g, _)| g == f) {
                        continue;
                    }
                    let v = field::field(&ctx, f);
                    if !v.is_nil() {
                        attributes.push((f.clone(), v));
                    }
                }
                MatchedSpan {
                    span_id: span.span_id.clone(),
                    name: span.name.clone(),
                    service_name: run.trace.service_name(i).map(str::to_string),
                    start_time_unix_nano: span.start_time_unix_nano,
                    duration_nanos: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
                    attributes,
                    order: i,
                }
            })
            .collect();
        MatchedSpanset { spans, group: s.group.clone(), aggregates: s.aggregates.clone() }
    }
}

/// Static regex patterns and tested span/resource attributes of every filter.
fn collect(e: &FieldExpr, patterns: &mut Vec<String>, attributes: &mut Vec<Field>) {
    match e {
        FieldExpr::Binary { op, lhs, rhs } => {
            if matches!(op, BinaryOp::Regex | BinaryOp::NotRegex)
                && let FieldExpr::Static(Static::String(p)) = rhs.as_ref()
            {
                patterns.push(p.clone());
            }
            collect(lhs, patterns, attributes);
            collect(rhs, patterns, attributes);
        }
        FieldExpr::Unary { expr, .. } => collect(expr, patterns, attributes),
        FieldExpr::Field(f @ Field::Attribute(a))
            if matches!(a.scope, Scope::Span | Scope::Resource | Scope::Unscoped) && !attributes.contains(f) =>
        {
            attributes.push(f.clone());
        }
        _ => {}
    }
}

/// Calls `visit` on the expression of every spanset filter in the pipeline.
fn walk_pipeline(p: &Pipeline, visit: &mut dyn FnMut(&FieldExpr)) {
    for stage in &p.stages {
        match stage {
            Stage::Spanset(s) => walk_spanset(s, visit),
            Stage::ScalarFilter(sf) => {
                walk_scalar(&sf.lhs, visit);
                walk_scalar(&sf.rhs, visit);
            }
            _ => {}
        }
    }
}

fn walk_spanset(s: &SpansetExpr, visit: &mut dyn FnMut(&FieldExpr)) {
    match s {
        SpansetExpr::Filter(e) => visit(e),
        SpansetExpr::Op { lhs, rhs, .. } => {
            walk_spanset(lhs, visit);
            walk_spanset(rhs, visit);
        }
        SpansetExpr::Pipeline(p) => walk_pipeline(p, visit),
    }
}

fn walk_scalar(s: &ScalarExpr, visit: &mut dyn FnMut(&FieldExpr)) {
    match s {
        ScalarExpr::Binary { lhs, rhs, .. } => {
            walk_scalar(lhs, visit);
            walk_scalar(rhs, visit);
        }
        ScalarExpr::Pipeline { pipeline, .. } => walk_pipeline(pipeline, visit),
        _ => {}
    }
}

/// One evaluation: the trace and the regex cache.
struct Run<'t, 'a> {
    trace: &'t TraceIndex<'a>,
    regex: RegexLookup<'t>,
}

impl Run<'_, '_> {
    fn pipeline(&self, p: &Pipeline, input: Vec<Spanset>) -> Vec<Spanset> {
        p.stages.iter().fold(input, |sets, stage| self.stage(stage, sets))
    }

    fn stage(&self, stage: &Stage, sets: Vec<Spanset>) -> Vec<Spanset> {
        match stage {
            Stage::Spanset(expr) => {
                sets.iter().flat_map(|s| self.spanset(expr, s)).filter(|s| !s.spans.is_empty()).collect()
            }
            Stage::ScalarFilter(sf) => sets.iter().filter_map(|s| self.scalar_filter(sf, s)).collect(),
            Stage::GroupBy(e) => sets.iter().flat_map(|s| self.group_by(e, s)).collect(),
            Stage::Coalesce => {
                let mut merged = Spanset::default();
                for s in &sets {
                    merged.spans = structural::union(&merged.spans, &s.spans);
                    for f in &s.select {
                        if !merged.select.contains(f) {
                            merged.select.push(f.clone());
                        }
                    }
                }
                if merged.spans.is_empty() { Vec::new() } else { vec![merged] }
            }
            Stage::Select(fields) => sets
                .into_iter()
                .map(|mut s| {
                    for f in fields {
                        if !s.select.contains(f) {
                            s.select.push(f.clone());
                        }
                    }
                    s
                })
                .collect(),
        }
    }

    /// The spansets `expr` selects from `input` (possibly empty ones, which callers drop).
    fn spanset(&self, expr: &SpansetExpr, input: &Spanset) -> Vec<Spanset> {
        match expr {
            SpansetExpr::Filter(e) => {
                let uses = field::uses_events_links(e);
                let spans = input
                    .spans
                    .iter()
                    .copied()
                    .filter(|&i| field::matches(self.trace, i, e, uses, self.regex))
                    .collect();
                vec![input.with_spans(spans)]
            }
            SpansetExpr::Pipeline(p) => self.pipeline(p, vec![input.clone()]),
            SpansetExpr::Op { op, lhs, rhs } => {
                // As in Tempo, each side's spansets are pooled (a side may be a pipeline that split or dropped
                // them), and the result is one spanset per input.
                let (left, right) = (self.spanset(lhs, input), self.spanset(rhs, input));
                let pool = |sets: &[Spanset]| sets.iter().fold(Vec::new(), |acc, s| structural::union(&acc, &s.spans));
                let mut out = input.with_spans(structural::combine(self.trace, *op, &pool(&left), &pool(&right)));
                for s in left.iter().chain(&right) {
                    out.merge_meta(s);
                }
                vec![out]
            }
        }
    }

    fn scalar_filter(&self, sf: &ScalarFilter, input: &Spanset) -> Option<Spanset> {
        let mut from_pipelines = None;
        let lhs = self.scalar(&sf.lhs, input, &mut from_pipelines);
        let rhs = self.scalar(&sf.rhs, input, &mut from_pipelines);
        if lhs.is_nil() || rhs.is_nil() || !value::compare(sf.op, &lhs, &rhs, self.regex) {
            return None;
        }
        let mut out = match from_pipelines {
            Some(spans) => input.with_spans(spans),
            None => input.clone(),
        };
        for (e, v) in [(&sf.lhs, lhs), (&sf.rhs, rhs)] {
            if !matches!(e, ScalarExpr::Static(_)) {
                out.aggregates.push((e.to_string(), v));
            }
        }
        Some(out)
    }

    /// A scalar's value over `input`. Spans returned by sub-pipelines are collected in `from_pipelines`: a
    /// filter over pipelines returns their spans rather than its input.
    fn scalar(&self, e: &ScalarExpr, input: &Spanset, from_pipelines: &mut Option<Vec<usize>>) -> Value {
        match e {
            ScalarExpr::Static(s) => Value::from(s),
            ScalarExpr::Aggregate(a) => self.aggregate(a, &input.spans),
            ScalarExpr::Binary { op, lhs, rhs } => {
                let l = self.scalar(lhs, input, from_pipelines);
                let r = self.scalar(rhs, input, from_pipelines);
                value::arithmetic(*op, &l, &r)
            }
            ScalarExpr::Pipeline { pipeline, aggregate } => {
                let out = self.pipeline(pipeline, vec![input.clone()]);
                let spans = out.iter().fold(Vec::new(), |acc, s| structural::union(&acc, &s.spans));
                if spans.is_empty() {
                    return Value::Nil;
                }
                let v = self.aggregate(aggregate, &spans);
                let all = from_pipelines.take().unwrap_or_default();
                *from_pipelines = Some(structural::union(&all, &spans));
                v
            }
        }
    }

    fn aggregate(&self, a: &Aggregate, spans: &[usize]) -> Value {
        let Some(e) = &a.field else { return Value::Int(spans.len() as i64) };
        let values: Vec<Value> = spans
            .iter()
            .map(|&i| field::eval(&SpanCtx { trace: self.trace, span: i, event: None, link: None }, e, self.regex))
            .filter(|v| v.as_f64().is_some())
            .collect();
        if values.is_empty() {
            return Value::Nil;
        }
        let all_durations = values.iter().all(|v| matches!(v, Value::Duration(_)));
        match a.op {
            AggregateOp::Count => Value::Int(spans.len() as i64),
            AggregateOp::Min | AggregateOp::Max => {
                let pick = |best: Value, v: Value| {
                    let ord = v.partial_cmp_value(&best).unwrap_or(std::cmp::Ordering::Equal);
                    let better = if a.op == AggregateOp::Min { ord.is_lt() } else { ord.is_gt() };
                    if better { v } else { best }
                };
                values.into_iter().reduce(pick).unwrap_or(Value::Nil)
            }
            AggregateOp::Sum => {
                values.into_iter().reduce(|acc, v| value::arithmetic(BinaryOp::Add, &acc, &v)).unwrap_or(Value::Nil)
            }
            AggregateOp::Avg => {
                let n = values.len() as f64;
                let avg = values.iter().filter_map(Value::as_f64).sum::<f64>() / n;
                if all_durations { Value::Duration(avg.round() as i64) } else { Value::Float(avg) }
            }
        }
    }

    fn group_by(&self, e: &FieldExpr, input: &Spanset) -> Vec<Spanset> {
        let label = e.to_string();
        let mut groups: BTreeMap<String, (Value, Vec<usize>)> = BTreeMap::new();
        for &i in &input.spans {
            let v = field::eval(&SpanCtx { trace: self.trace, span: i, event: None, link: None }, e, self.regex);
            groups.entry(format!("{v:?}")).or_insert_with(|| (v, Vec::new())).1.push(i);
        }
        groups
            .into_values()
            .map(|(v, spans)| {
                let mut s = input.with_spans(spans);
                s.group.push((label.clone(), v));
                s
            })
            .collect()
    }
}
