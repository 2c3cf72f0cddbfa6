//! Evaluates field expressions on one span.
//!
//! Event and link fields are read from one event and one link at a time: a filter that mentions them is tried
//! with each event (and each link) of the span and matches if any try does, so `{ event.a = 1 && event.b = 2 }`
//! needs one event with both.

use clew_model::otlp::span::{Event, Link};

use super::trace::{TraceIndex, find};
use super::value::{Value, arithmetic, compare, negate};
use crate::ast::{Attribute, BinaryOp, Field, FieldExpr, Intrinsic, Kind, Scope, Static, Status, UnaryOp};

/// A span, and the event and link its event and link fields read from.
pub(crate) struct SpanCtx<'t, 'a> {
    pub trace: &'t TraceIndex<'a>,
    pub span: usize,
    pub event: Option<&'a Event>,
    pub link: Option<&'a Link>,
}

pub(crate) type RegexLookup<'r> = &'r dyn Fn(&str) -> Option<regex::Regex>;

/// Which of events and links an expression reads.
pub(crate) fn uses_events_links(e: &FieldExpr) -> (bool, bool) {
    match e {
        FieldExpr::Static(_) => (false, false),
        FieldExpr::Field(f) => field_uses(f),
        FieldExpr::Unary { expr, .. } => uses_events_links(expr),
        FieldExpr::Binary { lhs, rhs, .. } => {
            let (a, b) = uses_events_links(lhs);
            let (c, d) = uses_events_links(rhs);
            (a || c, b || d)
        }
    }
}

fn field_uses(f: &Field) -> (bool, bool) {
    match f {
        Field::Attribute(a) => (a.scope == Scope::Event, a.scope == Scope::Link),
        Field::Intrinsic(i) => (
            matches!(i, Intrinsic::EventName | Intrinsic::EventTimeSinceStart),
            matches!(i, Intrinsic::LinkTraceId | Intrinsic::LinkSpanId),
        ),
    }
}

/// Whether the filter expression holds on span `i`, for some event and link of it.
pub(crate) fn matches(trace: &TraceIndex<'_>, i: usize, e: &FieldExpr, uses: (bool, bool), re: RegexLookup) -> bool {
    let span = trace.spans[i].span;
    let test = |event, link| eval(&SpanCtx { trace, span: i, event, link }, e, re) == Value::Bool(true);
    let with_links = |event| {
        if uses.1 && !span.links.is_empty() {
            span.links.iter().any(|l| test(event, Some(l)))
        } else {
            test(event, None)
        }
    };
    if uses.0 && !span.events.is_empty() { span.events.iter().any(|ev| with_links(Some(ev))) } else { with_links(None) }
}

pub(crate) fn eval(ctx: &SpanCtx<'_, '_>, e: &FieldExpr, re: RegexLookup) -> Value {
    match e {
        FieldExpr::Static(s) => Value::from(s),
        FieldExpr::Field(f) => field(ctx, f),
        FieldExpr::Unary { op: UnaryOp::Neg, expr } => negate(&eval(ctx, expr, re)),
        FieldExpr::Unary { op: UnaryOp::Not, expr } => match eval(ctx, expr, re) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Nil,
        },
        FieldExpr::Binary { op, lhs, rhs } => binary(ctx, *op, lhs, rhs, re),
    }
}

fn binary(ctx: &SpanCtx<'_, '_>, op: BinaryOp, lhs: &FieldExpr, rhs: &FieldExpr, re: RegexLookup) -> Value {
    match op {
        // A bare attribute as an operand of && or || means `= true`; anything not `true` counts as false.
        BinaryOp::And => {
            Value::Bool(eval(ctx, lhs, re) == Value::Bool(true) && eval(ctx, rhs, re) == Value::Bool(true))
        }
        BinaryOp::Or => Value::Bool(eval(ctx, lhs, re) == Value::Bool(true) || eval(ctx, rhs, re) == Value::Bool(true)),
        _ if op.is_arithmetic() => arithmetic(op, &eval(ctx, lhs, re), &eval(ctx, rhs, re)),
        _ => {
            let nil_literal = |e: &FieldExpr| matches!(e, FieldExpr::Static(Static::Nil));
            let (l, r) = (eval(ctx, lhs, re), eval(ctx, rhs, re));
            if nil_literal(lhs) || nil_literal(rhs) {
                let other = if nil_literal(lhs) { &r } else { &l };
                return match op {
                    BinaryOp::Eq => Value::Bool(other.is_nil()),
                    BinaryOp::Neq => Value::Bool(!other.is_nil()),
                    _ => Value::Bool(false),
                };
            }
            Value::Bool(compare(op, &l, &r, re))
        }
    }
}

/// The value of a field on the context's span.
pub(crate) fn field(ctx: &SpanCtx<'_, '_>, f: &Field) -> Value {
    match f {
        Field::Attribute(a) => attribute(ctx, a),
        Field::Intrinsic(i) => intrinsic(ctx, *i),
    }
}

fn attribute(ctx: &SpanCtx<'_, '_>, a: &Attribute) -> Value {
    let s = &ctx.trace.spans[ctx.span];
    let found = match a.scope {
        Scope::Span => find(&s.span.attributes, &a.name),
        Scope::Resource => s.resource.and_then(|r| find(&r.attributes, &a.name)),
        Scope::Unscoped => {
            find(&s.span.attributes, &a.name).or_else(|| s.resource.and_then(|r| find(&r.attributes, &a.name)))
        }
        Scope::Event => ctx.event.and_then(|e| find(&e.attributes, &a.name)),
        Scope::Link => ctx.link.and_then(|l| find(&l.attributes, &a.name)),
        Scope::Instrumentation => s.scope.and_then(|sc| find(&sc.attributes, &a.name)),
    };
    found.map_or(Value::Nil, Value::from)
}

fn hex_or_nil(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Nil;
    }
    Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn non_empty(s: &str) -> Value {
    if s.is_empty() { Value::Nil } else { Value::String(s.to_string()) }
}

fn intrinsic(ctx: &SpanCtx<'_, '_>, i: Intrinsic) -> Value {
    let trace = ctx.trace;
    let s = &trace.spans[ctx.span];
    let span = s.span;
    match i {
        Intrinsic::Name => Value::String(span.name.clone()),
        Intrinsic::Status => Value::Status(status(span)),
        Intrinsic::StatusMessage => Value::String(span.status.as_ref().map(|s| s.message.clone()).unwrap_or_default()),
        Intrinsic::Duration => Value::Duration(duration(span.start_time_unix_nano, span.end_time_unix_nano)),
        Intrinsic::Kind => Value::Kind(kind(span.kind)),
        Intrinsic::SpanId => hex_or_nil(&span.span_id),
        Intrinsic::ParentId => hex_or_nil(&span.parent_span_id),
        Intrinsic::ChildCount => Value::Int(trace.children[ctx.span].len() as i64),
        Intrinsic::TraceDuration => Value::Duration(duration(trace.start, trace.end)),
        Intrinsic::TraceRootName => trace.root.map_or(Value::Nil, |r| Value::String(trace.spans[r].span.name.clone())),
        Intrinsic::TraceRootService => {
            trace.root.and_then(|r| trace.service_name(r)).map_or(Value::Nil, |s| Value::String(s.to_string()))
        }
        Intrinsic::TraceId => hex_or_nil(&span.trace_id),
        Intrinsic::EventName => ctx.event.map_or(Value::Nil, |e| Value::String(e.name.clone())),
        Intrinsic::EventTimeSinceStart => ctx.event.map_or(Value::Nil, |e| {
            Value::Duration((e.time_unix_nano as i128 - span.start_time_unix_nano as i128) as i64)
        }),
        Intrinsic::LinkTraceId => ctx.link.map_or(Value::Nil, |l| hex_or_nil(&l.trace_id)),
        Intrinsic::LinkSpanId => ctx.link.map_or(Value::Nil, |l| hex_or_nil(&l.span_id)),
        Intrinsic::InstrumentationName => s.scope.map_or(Value::Nil, |sc| non_empty(&sc.name)),
        Intrinsic::InstrumentationVersion => s.scope.map_or(Value::Nil, |sc| non_empty(&sc.version)),
    }
}

pub(crate) fn duration(start: u64, end: u64) -> i64 {
    i64::try_from(end.saturating_sub(start)).unwrap_or(i64::MAX)
}

pub(crate) fn status(span: &clew_model::otlp::Span) -> Status {
    match span.status.as_ref().map(|s| s.code) {
        Some(1) => Status::Ok,
        Some(2) => Status::Error,
        _ => Status::Unset,
    }
}

fn kind(k: i32) -> Kind {
    match k {
        1 => Kind::Internal,
        2 => Kind::Server,
        3 => Kind::Client,
        4 => Kind::Producer,
        5 => Kind::Consumer,
        _ => Kind::Unspecified,
    }
}
