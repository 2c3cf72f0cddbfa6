//! Pushdown: the span conditions every matching trace must have, for narrowing a storage scan.
//!
//! Only spanset filters that must select at least one span for the query to match contribute: the filters of
//! a pipeline's spanset stages, both sides of `&&` and of the structural operators, and the right side of the
//! negated ones. Nothing comes from under `||` (either side may be empty), from the left of `!>` and friends
//! (an empty left side makes them match more), from `!` or from sub-pipelines of scalar filters. From each such
//! filter, the conjuncts of its top-level `&&` that compare a field with a literal become conditions that one
//! span must meet together. The result is conservative: a trace that fails it cannot match, a trace that
//! passes must still be evaluated.

use crate::ast::*;

/// Conditions for a storage scan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// For each entry, every matching trace has a span meeting all of the entry's conditions (different entries
    /// may be met by different spans). Empty when nothing can be pushed down.
    pub spans: Vec<SpanConditions>,
    /// `with(most_recent=true)`: return the newest matches rather than the first found.
    pub most_recent: bool,
    /// All hints as written.
    pub hints: Vec<Hint>,
}

impl Plan {
    /// The entry with the most conditions: the best single one to scan by.
    pub fn primary(&self) -> Option<&SpanConditions> {
        self.spans.iter().max_by_key(|s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Conditions one span must meet together, as in `{ a && b }`. The common ones have their own fields; the
/// rest are in `conditions`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanConditions {
    /// `resource.service.name = "…"`
    pub service: Option<String>,
    /// `name = "…"`
    pub name: Option<String>,
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    /// Inclusive bounds on the span's duration in nanoseconds.
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
    pub conditions: Vec<Condition>,
}

impl SpanConditions {
    /// How many conditions there are.
    pub fn len(&self) -> usize {
        usize::from(self.service.is_some())
            + usize::from(self.name.is_some())
            + usize::from(self.status.is_some())
            + usize::from(self.kind.is_some())
            + usize::from(self.min_duration.is_some())
            + usize::from(self.max_duration.is_some())
            + self.conditions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `field op value` with TraceQL's semantics: a span without the field fails it, whatever the operator
/// (`!=` included); regexes are anchored; for array attributes `=`, `=~` and orderings hold when an element
/// does, `!=` and `!~` when none is equal / matches. Event and link fields hold when one event or link has them.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: BinaryOp,
    pub value: Static,
}

/// Computes the pushdown of a query.
pub fn plan(query: &Query) -> Plan {
    let mut filters = Vec::new();
    required_in_pipeline(&query.pipeline, &mut filters);
    let mut spans: Vec<SpanConditions> = Vec::new();
    for f in filters {
        let c = conditions_of(f);
        if !c.is_empty() && !spans.contains(&c) {
            spans.push(c);
        }
    }
    let most_recent = query.hints.iter().any(|h| h.key == "most_recent" && h.value == Static::Bool(true));
    Plan { spans, most_recent, hints: query.hints.clone() }
}

fn required_in_pipeline<'q>(p: &'q Pipeline, out: &mut Vec<&'q FieldExpr>) {
    for stage in &p.stages {
        if let Stage::Spanset(s) = stage {
            required_in_spanset(s, out);
        }
    }
}

fn required_in_spanset<'q>(s: &'q SpansetExpr, out: &mut Vec<&'q FieldExpr>) {
    match s {
        SpansetExpr::Filter(e) => out.push(e),
        SpansetExpr::Pipeline(p) => required_in_pipeline(p, out),
        SpansetExpr::Op { op, lhs, rhs } => match op {
            SpansetOp::Union => {}
            SpansetOp::NotChild
            | SpansetOp::NotParent
            | SpansetOp::NotDescendant
            | SpansetOp::NotAncestor
            | SpansetOp::NotSibling => required_in_spanset(rhs, out),
            _ => {
                required_in_spanset(lhs, out);
                required_in_spanset(rhs, out);
            }
        },
    }
}

fn conditions_of(e: &FieldExpr) -> SpanConditions {
    let mut out = SpanConditions::default();
    let mut conjuncts = Vec::new();
    split_and(e, &mut conjuncts);
    for c in conjuncts {
        if let Some(cond) = as_condition(c) {
            add(&mut out, cond);
        }
    }
    out
}

fn split_and<'q>(e: &'q FieldExpr, out: &mut Vec<&'q FieldExpr>) {
    match e {
        FieldExpr::Binary { op: BinaryOp::And, lhs, rhs } => {
            split_and(lhs, out);
            split_and(rhs, out);
        }
        other => out.push(other),
    }
}

/// `field op literal` (either way round), or a bare attribute (which means `= true`).
fn as_condition(e: &FieldExpr) -> Option<Condition> {
    match e {
        FieldExpr::Field(f @ Field::Attribute(_)) => {
            Some(Condition { field: f.clone(), op: BinaryOp::Eq, value: Static::Bool(true) })
        }
        FieldExpr::Binary { op, lhs, rhs }
            if op.is_comparison() || matches!(op, BinaryOp::Regex | BinaryOp::NotRegex) =>
        {
            let (field, value, op) = match (lhs.as_ref(), rhs.as_ref()) {
                (FieldExpr::Field(f), FieldExpr::Static(v)) => (f, v, *op),
                (FieldExpr::Static(v), FieldExpr::Field(f)) if op.is_comparison() => (f, v, mirror(*op)),
                _ => return None,
            };
            if *value == Static::Nil {
                return None;
            }
            Some(Condition { field: field.clone(), op, value: value.clone() })
        }
        _ => None,
    }
}

fn mirror(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Lte => BinaryOp::Gte,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Gte => BinaryOp::Lte,
        other => other,
    }
}

/// Files a condition under its dedicated field when there is one (and the slot is free), else in the list.
fn add(out: &mut SpanConditions, c: Condition) {
    let service = Field::Attribute(Attribute { scope: Scope::Resource, name: "service.name".into() });
    match (&c.field, c.op, &c.value) {
        (f, BinaryOp::Eq, Static::String(s)) if *f == service && out.service.is_none() => {
            out.service = Some(s.clone());
        }
        (Field::Intrinsic(Intrinsic::Name), BinaryOp::Eq, Static::String(s)) if out.name.is_none() => {
            out.name = Some(s.clone());
        }
        (Field::Intrinsic(Intrinsic::Status), BinaryOp::Eq, Static::Status(s)) if out.status.is_none() => {
            out.status = Some(*s);
        }
        (Field::Intrinsic(Intrinsic::Kind), BinaryOp::Eq, Static::Kind(k)) if out.kind.is_none() => {
            out.kind = Some(*k);
        }
        (Field::Intrinsic(Intrinsic::Duration), op, Static::Duration(ns) | Static::Int(ns)) => {
            let (lo, hi) = match op {
                BinaryOp::Gt => (ns.checked_add(1), None),
                BinaryOp::Gte => (Some(*ns), None),
                BinaryOp::Lt => (None, ns.checked_sub(1)),
                BinaryOp::Lte => (None, Some(*ns)),
                BinaryOp::Eq => (Some(*ns), Some(*ns)),
                _ => {
                    out.conditions.push(c);
                    return;
                }
            };
            if let Some(lo) = lo {
                out.min_duration = Some(out.min_duration.map_or(lo, |m| m.max(lo)));
            }
            if let Some(hi) = hi {
                out.max_duration = Some(out.max_duration.map_or(hi, |m| m.min(hi)));
            }
        }
        _ => out.conditions.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn plan_of(q: &str) -> Plan {
        plan(&parse(q).unwrap())
    }

    fn attr(scope: Scope, name: &str) -> Field {
        Field::Attribute(Attribute { scope, name: name.into() })
    }

    #[test]
    fn single_filter_fills_the_dedicated_fields() {
        let p = plan_of(
            r#"{ resource.service.name = "api" && name = "GET /" && status = error && kind = server && duration > 100ms && duration <= 2s && span.http.status_code >= 500 }"#,
        );
        assert_eq!(p.spans.len(), 1);
        let s = &p.spans[0];
        assert_eq!(s.service.as_deref(), Some("api"));
        assert_eq!(s.name.as_deref(), Some("GET /"));
        assert_eq!(s.status, Some(Status::Error));
        assert_eq!(s.kind, Some(Kind::Server));
        assert_eq!(s.min_duration, Some(100_000_001));
        assert_eq!(s.max_duration, Some(2_000_000_000));
        assert_eq!(
            s.conditions,
            vec![Condition {
                field: attr(Scope::Span, "http.status_code"),
                op: BinaryOp::Gte,
                value: Static::Int(500)
            }]
        );
        assert_eq!(p.primary(), Some(s));
    }

    #[test]
    fn literal_on_the_left_is_mirrored_and_bare_attributes_mean_true() {
        let p = plan_of("{ 5 < span.x && .flag }");
        assert_eq!(
            p.spans[0].conditions,
            vec![
                Condition { field: attr(Scope::Span, "x"), op: BinaryOp::Gt, value: Static::Int(5) },
                Condition { field: attr(Scope::Unscoped, "flag"), op: BinaryOp::Eq, value: Static::Bool(true) },
            ]
        );
    }

    #[test]
    fn both_sides_of_and_and_structural_operators_are_required() {
        for op in ["&&", ">", ">>", "<", "<<", "~", "&>", "&>>", "&<", "&<<", "&~"] {
            let p = plan_of(&format!("{{ name = \"a\" }} {op} {{ name = \"b\" }}"));
            let names: Vec<_> = p.spans.iter().map(|s| s.name.clone().unwrap()).collect();
            assert_eq!(names, ["a", "b"], "{op}");
        }
    }

    #[test]
    fn negated_operators_push_only_the_right_side() {
        for op in ["!>", "!>>", "!<", "!<<", "!~"] {
            let p = plan_of(&format!("{{ name = \"a\" }} {op} {{ name = \"b\" }}"));
            assert_eq!(p.spans.len(), 1, "{op}");
            assert_eq!(p.spans[0].name.as_deref(), Some("b"), "{op}");
        }
    }

    #[test]
    fn nothing_is_pushed_from_or_not_nil_or_field_comparisons() {
        for q in [
            "{ }",
            r#"{ name = "a" } || { name = "b" }"#,
            r#"{ name = "a" || status = error }"#,
            r#"{ !(name = "a") }"#,
            "{ span.x = nil }",
            "{ span.x != nil }",
            "{ span.x = span.y }",
            "{ span.x + 1 = 2 }",
            "count() > 1",
            "({ .a = 1 } | count()) > 1",
            "{ } | by(.a) | count() > 2",
        ] {
            assert!(plan_of(q).is_empty(), "{q}: {:?}", plan_of(q));
        }
    }

    #[test]
    fn partial_pushdown_keeps_the_safe_conjuncts() {
        let p = plan_of(r#"{ name = "a" && (status = error || kind = server) && span.x =~ "ab.*" }"#);
        assert_eq!(p.spans.len(), 1);
        assert_eq!(p.spans[0].name.as_deref(), Some("a"));
        assert_eq!(p.spans[0].status, None);
        assert_eq!(
            p.spans[0].conditions,
            vec![Condition {
                field: attr(Scope::Span, "x"),
                op: BinaryOp::Regex,
                value: Static::String("ab.*".into())
            }]
        );
    }

    #[test]
    fn pipelines_and_hints() {
        let p = plan_of(r#"{ name = "a" } | by(.x) | { status = error } | count() > 2 with(most_recent=true)"#);
        assert_eq!(p.spans.len(), 2);
        assert_eq!(p.spans[1].status, Some(Status::Error));
        assert!(p.most_recent);
        let p = plan_of(r#"({ name = "a" } | count() > 1) && { kind = client }"#);
        assert_eq!(p.spans.len(), 2);
        let p = plan_of(r#"({ name = "a" } | count() > 1) || { kind = client }"#);
        assert!(p.is_empty());
        assert!(!plan_of("{ } with(most_recent=false)").most_recent);
    }

    #[test]
    fn duration_bounds_tighten_and_other_duration_forms_stay_generic() {
        let p = plan_of("{ duration > 1s && duration >= 2s && duration < 10s && duration < 5s }");
        assert_eq!((p.spans[0].min_duration, p.spans[0].max_duration), (Some(2_000_000_000), Some(4_999_999_999)));
        let p = plan_of("{ duration != 1s }");
        assert_eq!(p.spans[0].conditions.len(), 1);
        let p = plan_of(r#"{ trace:rootService = "x" && event.e = 1 }"#);
        assert_eq!(p.spans[0].conditions.len(), 2);
    }
}
