//! Prints queries back as TraceQL. `{}` adds only the parentheses the precedence rules need; `{:#}` wraps every
//! binary operation, which shows the tree's shape (the parser tests compare against it). Either form parses
//! back to the same tree.

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::*;

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        fmt_pipeline(&self.pipeline, f)?;
        if let Some(m) = &self.metrics {
            write!(f, " | {m}")?;
        }
        if !self.hints.is_empty() {
            f.write_str(" with(")?;
            for (i, h) in self.hints.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}=", h.key)?;
                fmt_static(&h.value, f)?;
            }
            f.write_char(')')?;
        }
        Ok(())
    }
}

impl Display for Metrics {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.function.name())?;
        if let Some(field) = self.function.field() {
            field.fmt(f)?;
        }
        if let MetricsFunction::QuantileOverTime(_, qs) = &self.function {
            for q in qs {
                write!(f, ", {q:?}")?;
            }
        }
        f.write_char(')')?;
        if !self.by.is_empty() {
            f.write_str(" by (")?;
            for (i, field) in self.by.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                field.fmt(f)?;
            }
            f.write_char(')')?;
        }
        if let Some(s) = &self.second_stage {
            write!(f, " | {}({})", s.op.name(), s.limit)?;
        }
        Ok(())
    }
}

impl Display for Pipeline {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        fmt_pipeline(self, f)
    }
}

impl Display for SpansetExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        fmt_spanset(self, f)
    }
}

impl Display for FieldExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        fmt_field(self, f)
    }
}

impl Display for ScalarExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        fmt_scalar(self, f)
    }
}

impl Display for Aggregate {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op.name())?;
        if let Some(e) = &self.field {
            fmt_field(e, f)?;
        }
        f.write_char(')')
    }
}

impl Display for Field {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Field::Intrinsic(i) => f.write_str(i.name()),
            Field::Attribute(a) => a.fmt(f),
        }
    }
}

impl Display for Attribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.scope.prefix())?;
        // `.5` would read as a number, `..x` not at all: such names are quoted.
        let starts_badly = self.name.starts_with('.')
            || (self.scope == Scope::Unscoped && self.name.starts_with(|c: char| c.is_ascii_digit()));
        let plain = !starts_badly && self.name.chars().all(|c| !(c.is_whitespace() || "{}()=~!<>&|^,\"".contains(c)));
        if plain {
            return f.write_str(&self.name);
        }
        f.write_char('"')?;
        for c in self.name.chars() {
            if c == '"' || c == '\\' {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
        f.write_char('"')
    }
}

impl Display for Static {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        fmt_static(self, f)
    }
}

fn fmt_pipeline(p: &Pipeline, f: &mut Formatter<'_>) -> fmt::Result {
    for (i, stage) in p.stages.iter().enumerate() {
        if i > 0 {
            f.write_str(" | ")?;
        }
        match stage {
            Stage::Spanset(s) => fmt_spanset(s, f)?,
            Stage::ScalarFilter(sf) => {
                fmt_scalar_operand(&sf.lhs, sf.op.precedence(), f)?;
                write!(f, " {} ", sf.op.symbol())?;
                fmt_scalar_operand(&sf.rhs, sf.op.precedence(), f)?;
            }
            Stage::GroupBy(e) => {
                f.write_str("by(")?;
                fmt_field(e, f)?;
                f.write_char(')')?;
            }
            Stage::Coalesce => f.write_str("coalesce()")?,
            Stage::Select(fields) => {
                f.write_str("select(")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    field.fmt(f)?;
                }
                f.write_char(')')?;
            }
        }
    }
    Ok(())
}

fn fmt_spanset(s: &SpansetExpr, f: &mut Formatter<'_>) -> fmt::Result {
    match s {
        SpansetExpr::Filter(FieldExpr::Static(Static::Bool(true))) => f.write_str("{ }"),
        SpansetExpr::Filter(e) => {
            f.write_str("{ ")?;
            fmt_field(e, f)?;
            f.write_str(" }")
        }
        SpansetExpr::Pipeline(p) => {
            f.write_char('(')?;
            fmt_pipeline(p, f)?;
            f.write_char(')')
        }
        SpansetExpr::Op { op, lhs, rhs } => {
            let p = op.precedence();
            let wrap = |child: &SpansetExpr, right: bool| match child {
                SpansetExpr::Op { op: c, .. } => f.alternate() || c.precedence() < p || (right && c.precedence() == p),
                _ => false,
            };
            let (wl, wr) = (wrap(lhs, false), wrap(rhs, true));
            paren(f, wl, |f| fmt_spanset(lhs, f))?;
            write!(f, " {} ", op.symbol())?;
            paren(f, wr, |f| fmt_spanset(rhs, f))
        }
    }
}

fn paren(f: &mut Formatter<'_>, wrap: bool, inner: impl FnOnce(&mut Formatter<'_>) -> fmt::Result) -> fmt::Result {
    if wrap {
        f.write_char('(')?;
    }
    inner(f)?;
    if wrap {
        f.write_char(')')?;
    }
    Ok(())
}

/// Whether a binary operand needs parentheses under an operator of precedence `p`.
fn operand_needs_parens(child_prec: Option<u8>, p: u8, op_right_assoc: bool, right: bool, full: bool) -> bool {
    match child_prec {
        None => false,
        Some(c) => full || c < p || (c == p && right != op_right_assoc),
    }
}

fn fmt_field(e: &FieldExpr, f: &mut Formatter<'_>) -> fmt::Result {
    match e {
        FieldExpr::Static(v) => fmt_static(v, f),
        FieldExpr::Field(field) => field.fmt(f),
        FieldExpr::Unary { op, expr } => {
            f.write_str(if *op == UnaryOp::Neg { "-" } else { "!" })?;
            let bare = match expr.as_ref() {
                FieldExpr::Field(_) => true,
                FieldExpr::Static(v) => !v.is_negative_number(),
                _ => false,
            };
            paren(f, !bare, |f| fmt_field(expr, f))
        }
        FieldExpr::Binary { op, lhs, rhs } => {
            let p = op.precedence();
            for (i, child) in [lhs, rhs].into_iter().enumerate() {
                if i == 1 {
                    write!(f, " {} ", op.symbol())?;
                }
                let wrap = match child.as_ref() {
                    FieldExpr::Binary { op: c, .. } => {
                        operand_needs_parens(Some(c.precedence()), p, op.right_associative(), i == 1, f.alternate())
                    }
                    FieldExpr::Unary { .. } => true,
                    FieldExpr::Static(v) => v.is_negative_number() && p >= 4,
                    FieldExpr::Field(_) => false,
                };
                paren(f, wrap, |f| fmt_field(child, f))?;
            }
            Ok(())
        }
    }
}

fn fmt_scalar_operand(e: &ScalarExpr, p: u8, f: &mut Formatter<'_>) -> fmt::Result {
    let wrap = match e {
        ScalarExpr::Binary { op, .. } => f.alternate() || op.precedence() <= p,
        ScalarExpr::Static(v) => v.is_negative_number() && p >= 4,
        _ => false,
    };
    paren(f, wrap, |f| fmt_scalar(e, f))
}

fn fmt_scalar(e: &ScalarExpr, f: &mut Formatter<'_>) -> fmt::Result {
    match e {
        ScalarExpr::Aggregate(a) => a.fmt(f),
        ScalarExpr::Static(v) => fmt_static(v, f),
        ScalarExpr::Pipeline { pipeline, aggregate } => {
            f.write_char('(')?;
            fmt_pipeline(pipeline, f)?;
            write!(f, " | {aggregate})")
        }
        ScalarExpr::Binary { op, lhs, rhs } => {
            let p = op.precedence();
            for (i, child) in [lhs, rhs].into_iter().enumerate() {
                if i == 1 {
                    write!(f, " {} ", op.symbol())?;
                }
                let wrap = match child.as_ref() {
                    ScalarExpr::Binary { op: c, .. } => {
                        operand_needs_parens(Some(c.precedence()), p, op.right_associative(), i == 1, f.alternate())
                    }
                    ScalarExpr::Static(v) => v.is_negative_number() && p >= 4,
                    _ => false,
                };
                paren(f, wrap, |f| fmt_scalar(child, f))?;
            }
            Ok(())
        }
    }
}

fn fmt_static(v: &Static, f: &mut Formatter<'_>) -> fmt::Result {
    match v {
        Static::Nil => f.write_str("nil"),
        Static::Bool(b) => write!(f, "{b}"),
        Static::Int(i) => write!(f, "{i}"),
        Static::Float(x) => write!(f, "{x:?}"),
        Static::String(s) => write_quoted(s, f),
        Static::Duration(ns) => f.write_str(&format_duration(*ns)),
        Static::Status(s) => f.write_str(s.name()),
        Static::Kind(k) => f.write_str(k.name()),
    }
}

fn write_quoted(s: &str, f: &mut Formatter<'_>) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// `1h30m`, `1s500ms`, `0s`, `-2ms`: the largest units first, each only when non-zero.
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ns < 0 {
        out.push('-');
    }
    let mut rest = ns.unsigned_abs();
    for (unit, size) in [
        ("h", 3_600_000_000_000u64),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_compactly() {
        assert_eq!(format_duration(5_400_000_000_000), "1h30m");
        assert_eq!(format_duration(1_500_000_000), "1s500ms");
        assert_eq!(format_duration(-2_000_000), "-2ms");
        assert_eq!(format_duration(1), "1ns");
        assert_eq!(format_duration(i64::MIN), "-2562047h47m16s854ms775us808ns");
    }
}
