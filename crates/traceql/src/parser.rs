//! A hand-written recursive-descent parser with precedence climbing, using Tempo's precedence table:
//! `|` < `&&` `||` < comparisons and structural operators < `+ -` < `!` < `* / %` < `^` (right-associative).
//!
//! Field expressions (inside `{ }`) are parsed and type-checked as they are read, so type errors point at the
//! operator. Pipeline stages are first read into an untyped [`Node`] tree, because `>` and `<` mean "child" and
//! "parent" between spansets but compare numbers between aggregates, and `(` may open a spanset, a pipeline or
//! an arithmetic group; [`crate::shape`] then gives the tree its types.

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{Spanned, Token, tokenize};
use crate::typecheck;

/// Parses and type-checks a query: a search, or a metrics query (`{ } | rate()`).
pub fn parse(source: &str) -> Result<Query, ParseError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser { src: source, toks: tokens, pos: 0, allow_metrics: true };
    parser.query()
}

/// Parses a search: as [`parse`], but a metrics function is an error (Tempo's search rejects them too).
pub fn parse_search(source: &str) -> Result<Query, ParseError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser { src: source, toks: tokens, pos: 0, allow_metrics: false };
    parser.query()
}

/// A pipeline stage before typing.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Filter(FieldExpr),
    /// `( stage | stage … )`
    Paren(Vec<Located>),
    Aggregate(Aggregate, Type),
    Literal(Static),
    GroupBy(FieldExpr),
    Select(Vec<Field>),
    Coalesce,
    Binary {
        op: Token,
        op_at: usize,
        lhs: Box<Located>,
        rhs: Box<Located>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub node: Node,
    pub at: usize,
}

/// Functions that turn matched spans into time series: the first metrics stage.
const METRICS_FUNCTIONS: &[&str] = &[
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
    "histogram_over_time",
];

/// Metrics functions Tempo has and Clew does not.
const UNSUPPORTED_METRICS_FUNCTIONS: &[&str] = &["compare"];

/// Functions that select series after a metrics function.
const SECOND_STAGE_FUNCTIONS: &[&str] = &["topk", "bottomk"];

pub(crate) struct Parser<'a> {
    pub src: &'a str,
    toks: Vec<Spanned>,
    pos: usize,
    allow_metrics: bool,
}

/// The binary operator a token stands for inside `{ }`, with its precedence.
fn field_op(token: &Token) -> Option<BinaryOp> {
    Some(match token {
        Token::And => BinaryOp::And,
        Token::Or => BinaryOp::Or,
        Token::Eq => BinaryOp::Eq,
        Token::Neq => BinaryOp::Neq,
        Token::Lt => BinaryOp::Lt,
        Token::Lte => BinaryOp::Lte,
        Token::Gt => BinaryOp::Gt,
        Token::Gte => BinaryOp::Gte,
        Token::Regex => BinaryOp::Regex,
        Token::NotRegex => BinaryOp::NotRegex,
        Token::Add => BinaryOp::Add,
        Token::Sub => BinaryOp::Sub,
        Token::Mul => BinaryOp::Mul,
        Token::Div => BinaryOp::Div,
        Token::Mod => BinaryOp::Mod,
        Token::Pow => BinaryOp::Pow,
        _ => return None,
    })
}

/// Precedence of a token between pipeline-level operands (spansets or scalars); `None` ends the expression.
fn stage_precedence(token: &Token) -> Option<(u8, bool)> {
    Some(match token {
        Token::And | Token::Or => (1, false),
        Token::Eq
        | Token::Neq
        | Token::Lt
        | Token::Lte
        | Token::Gt
        | Token::Gte
        | Token::Desc
        | Token::Ance
        | Token::Tilde
        | Token::NotRegex
        | Token::NotChild
        | Token::NotParent
        | Token::NotDesc
        | Token::NotAnce
        | Token::UnionChild
        | Token::UnionParent
        | Token::UnionDesc
        | Token::UnionAnce
        | Token::UnionSibling => (2, false),
        Token::Add | Token::Sub => (3, false),
        Token::Mul | Token::Div | Token::Mod => (5, false),
        Token::Pow => (6, true),
        _ => return None,
    })
}

fn is_tight_operator(token: &Token) -> bool {
    matches!(token, Token::Mul | Token::Div | Token::Mod | Token::Pow)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token {
        &self.toks[self.pos].token
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        let i = (self.pos + ahead).min(self.toks.len() - 1);
        &self.toks[i].token
    }

    fn offset(&self) -> usize {
        self.toks[self.pos].start
    }

    fn advance(&mut self) -> Spanned {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, at, message)
    }

    /// "expected X, found Y" at the current token.
    fn expected(&self, what: &str) -> ParseError {
        self.error(self.offset(), format!("expected {what}, found {}", self.peek().describe()))
    }

    /// The previous token's text, for "after '='" in messages.
    fn previous_text(&self) -> String {
        if self.pos == 0 {
            return "start of query".into();
        }
        let t = &self.toks[self.pos - 1];
        format!("'{}'", &self.src[t.start..t.end])
    }

    fn expect(&mut self, token: Token, what: &str) -> Result<Spanned, ParseError> {
        if *self.peek() == token { Ok(self.advance()) } else { Err(self.expected(what)) }
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Token::Ident(n) if n == name)
    }

    fn query(&mut self) -> Result<Query, ParseError> {
        let stages = self.pipeline(true)?;
        let pipeline = crate::shape::root(self.src, stages)?;
        let metrics = if *self.peek() == Token::Pipe {
            self.advance();
            if !self.allow_metrics {
                let name = self.peek().describe();
                return Err(self.error(
                    self.offset(),
                    format!("metrics function {name} is not supported in searches (ask /api/metrics/query_range)"),
                ));
            }
            Some(self.metrics()?)
        } else {
            None
        };
        let hints = if self.is_ident("with") { self.hints()? } else { Vec::new() };
        if *self.peek() != Token::Eof {
            return Err(self.expected("'|', 'with' or end of query"));
        }
        Ok(Query { pipeline, metrics, hints })
    }

    /// Whether the next tokens are `| name(` for one of `names`.
    fn pipe_then_function(&self, names: &[&str]) -> bool {
        *self.peek() == Token::Pipe
            && matches!(self.peek_at(1), Token::Ident(n) if names.contains(&n.as_str()))
            && *self.peek_at(2) == Token::LParen
    }

    /// `rate() by (a, b) | topk(3)`, after the spanset pipeline and its `|`.
    fn metrics(&mut self) -> Result<Metrics, ParseError> {
        let Token::Ident(name) = self.advance().token else { unreachable!("checked by pipe_then_function") };
        self.expect(Token::LParen, &format!("'(' after {name}"))?;
        let function = match name.as_str() {
            "rate" | "count_over_time" => {
                self.expect(Token::RParen, &format!("')': {name}() takes no arguments"))?;
                if name == "rate" { MetricsFunction::Rate } else { MetricsFunction::CountOverTime }
            }
            _ => {
                let field = self.metrics_field(&name)?;
                let function = match name.as_str() {
                    "min_over_time" => MetricsFunction::MinOverTime(field),
                    "max_over_time" => MetricsFunction::MaxOverTime(field),
                    "avg_over_time" => MetricsFunction::AvgOverTime(field),
                    "sum_over_time" => MetricsFunction::SumOverTime(field),
                    "histogram_over_time" => MetricsFunction::HistogramOverTime(field),
                    _ => {
                        let mut qs = Vec::new();
                        while *self.peek() == Token::Comma {
                            self.advance();
                            let q_at = self.offset();
                            let q = match *self.peek() {
                                Token::Integer(i) => i as f64,
                                Token::Float(f) => f,
                                _ => return Err(self.expected("a quantile between 0 and 1")),
                            };
                            if !(0.0..=1.0).contains(&q) {
                                return Err(self.error(q_at, format!("quantile {q} is not between 0 and 1")));
                            }
                            self.advance();
                            qs.push(q);
                        }
                        if qs.is_empty() {
                            return Err(self.expected("',' and the quantiles after the field of quantile_over_time"));
                        }
                        MetricsFunction::QuantileOverTime(field, qs)
                    }
                };
                self.expect(Token::RParen, &format!("')' after the arguments of {name}()"))?;
                function
            }
        };
        let mut by = Vec::new();
        if self.is_ident("by") && *self.peek_at(1) == Token::LParen {
            self.advance();
            self.advance();
            by.push(self.select_field("by()")?);
            while *self.peek() == Token::Comma {
                self.advance();
                by.push(self.select_field("by()")?);
            }
            self.expect(Token::RParen, "',' or ')' in by()")?;
        }
        let second_stage = if self.pipe_then_function(SECOND_STAGE_FUNCTIONS) {
            self.advance();
            let Token::Ident(name) = self.advance().token else { unreachable!("checked by pipe_then_function") };
            self.advance();
            let limit_at = self.offset();
            let limit = match *self.peek() {
                Token::Integer(n) => n,
                _ => return Err(self.expected(&format!("the number of series to keep in {name}()"))),
            };
            if limit == 0 {
                return Err(self.error(limit_at, format!("{name}() must keep at least one series")));
            }
            self.advance();
            self.expect(Token::RParen, &format!("')' after the limit of {name}()"))?;
            let op = if name == "topk" { SecondStageOp::TopK } else { SecondStageOp::BottomK };
            Some(SecondStage { op, limit })
        } else {
            None
        };
        if *self.peek() == Token::Pipe {
            return Err(self.error(self.offset(), "only topk() or bottomk() may follow a metrics function"));
        }
        Ok(Metrics { function, by, second_stage })
    }

    /// The field a metrics function reads: an attribute or a numeric intrinsic.
    fn metrics_field(&mut self, function: &str) -> Result<Field, ParseError> {
        let at = self.offset();
        let field = self.select_field(&format!("{function}()"))?;
        if let Field::Intrinsic(i) = &field
            && !i.value_type().is_numeric()
        {
            return Err(self.error(
                at,
                format!("{function}() needs a numeric field, {} is a {}", i.name(), i.value_type().name()),
            ));
        }
        Ok(field)
    }

    fn hints(&mut self) -> Result<Vec<Hint>, ParseError> {
        self.advance();
        self.expect(Token::LParen, "'(' after 'with'")?;
        let mut hints = Vec::new();
        loop {
            let key = match self.peek().clone() {
                Token::Ident(k) => k,
                _ => return Err(self.expected("a hint name")),
            };
            self.advance();
            self.expect(Token::Eq, "'=' after the hint name")?;
            let value = match self.negative_literal(true)? {
                Some(v) => v,
                None => match self.literal()? {
                    Some(v) => v,
                    None => return Err(self.expected("a literal hint value")),
                },
            };
            hints.push(Hint { key, value });
            if *self.peek() == Token::Comma {
                self.advance();
            } else {
                break;
            }
        }
        self.expect(Token::RParen, "',' or ')' in 'with(…)'")?;
        Ok(hints)
    }

    /// `stage | stage | …`; at the top level (`top`) the pipeline ends before a metrics function.
    fn pipeline(&mut self, top: bool) -> Result<Vec<Located>, ParseError> {
        let mut stages = vec![self.stage_expr(0)?];
        while *self.peek() == Token::Pipe && !(top && self.pipe_then_function(METRICS_FUNCTIONS)) {
            self.advance();
            stages.push(self.stage_expr(0)?);
        }
        Ok(stages)
    }

    fn stage_expr(&mut self, min_prec: u8) -> Result<Located, ParseError> {
        let mut lhs = self.stage_primary()?;
        while let Some((prec, right)) = stage_precedence(self.peek()) {
            if prec < min_prec {
                break;
            }
            let op = self.advance();
            let rhs = self.stage_expr(if right { prec } else { prec + 1 })?;
            let at = lhs.at;
            lhs = Located {
                node: Node::Binary { op: op.token, op_at: op.start, lhs: Box::new(lhs), rhs: Box::new(rhs) },
                at,
            };
        }
        Ok(lhs)
    }

    fn stage_primary(&mut self) -> Result<Located, ParseError> {
        let at = self.offset();
        let node = match self.peek().clone() {
            Token::LBrace => Node::Filter(self.filter()?),
            Token::LParen => {
                self.advance();
                let stages = self.pipeline(false)?;
                self.expect(Token::RParen, "')' or an operator")?;
                Node::Paren(stages)
            }
            Token::Ident(name) => {
                if *self.peek_at(1) != Token::LParen {
                    return Err(self.expected(&format!("a spanset expression after {}", self.previous_text())));
                }
                match name.as_str() {
                    "count" | "avg" | "min" | "max" | "sum" => {
                        let (agg, t) = self.aggregate()?;
                        Node::Aggregate(agg, t)
                    }
                    "by" => {
                        self.advance();
                        self.advance();
                        let field_at = self.offset();
                        let (expr, _) = self.field_expr(0)?;
                        if !expr.references_span() {
                            return Err(self.error(field_at, "grouping field expressions must reference the span"));
                        }
                        self.expect(Token::RParen, "')' after the by() expression")?;
                        Node::GroupBy(expr)
                    }
                    "select" => {
                        self.advance();
                        self.advance();
                        let mut fields = vec![self.select_field("select()")?];
                        while *self.peek() == Token::Comma {
                            self.advance();
                            fields.push(self.select_field("select()")?);
                        }
                        self.expect(Token::RParen, "',' or ')' in select()")?;
                        Node::Select(fields)
                    }
                    "coalesce" => {
                        self.advance();
                        self.advance();
                        self.expect(Token::RParen, "')': coalesce() takes no arguments")?;
                        Node::Coalesce
                    }
                    m if METRICS_FUNCTIONS.contains(&m) => {
                        return Err(self.error(
                            at,
                            format!(
                                "metrics function '{m}' must be the last stage after a spanset pipeline: {{ }} | {m}(…)"
                            ),
                        ));
                    }
                    m if UNSUPPORTED_METRICS_FUNCTIONS.contains(&m) => {
                        return Err(self.error(at, format!("metrics function '{m}' is not supported")));
                    }
                    m if SECOND_STAGE_FUNCTIONS.contains(&m) => {
                        return Err(
                            self.error(at, format!("'{m}' must follow a metrics function: {{ }} | rate() | {m}(5)"))
                        );
                    }
                    other => return Err(self.error(at, format!("unknown function '{other}'"))),
                }
            }
            Token::Sub => match self.negative_literal(true)? {
                Some(v) => Node::Literal(v),
                None => return Err(self.expected("a number after '-'")),
            },
            _ => match self.literal()? {
                Some(v) => Node::Literal(v),
                None => return Err(self.expected(&format!("a spanset expression after {}", self.previous_text()))),
            },
        };
        Ok(Located { node, at })
    }

    /// An attribute or intrinsic, as `select()`, a metrics function and a metrics `by()` take; `context` names
    /// the function for the error message.
    fn select_field(&mut self, context: &str) -> Result<Field, ParseError> {
        match self.peek().clone() {
            Token::Attribute(scope, name) => {
                self.advance();
                Ok(Field::Attribute(Attribute { scope, name }))
            }
            Token::Intrinsic(i) => {
                self.advance();
                Ok(Field::Intrinsic(i))
            }
            _ => Err(self.expected(&format!("an attribute or intrinsic in {context}"))),
        }
    }

    fn aggregate(&mut self) -> Result<(Aggregate, Type), ParseError> {
        let at = self.offset();
        let Token::Ident(name) = self.advance().token else { unreachable!("checked by the caller") };
        let op = match name.as_str() {
            "count" => AggregateOp::Count,
            "avg" => AggregateOp::Avg,
            "min" => AggregateOp::Min,
            "max" => AggregateOp::Max,
            _ => AggregateOp::Sum,
        };
        self.expect(Token::LParen, "'('")?;
        if op == AggregateOp::Count {
            self.expect(Token::RParen, "')': count() takes no arguments")?;
            return Ok((Aggregate { op, field: None }, Type::Int));
        }
        let (field, t) = self.field_expr(0)?;
        if t != Type::Attribute && !t.is_numeric() {
            return Err(self.error(at, format!("aggregate field expressions must resolve to a number type: {name}()")));
        }
        if !field.references_span() {
            return Err(self.error(at, format!("aggregate field expressions must reference the span: {name}()")));
        }
        self.expect(Token::RParen, &format!("')' after the {name}() argument"))?;
        Ok((Aggregate { op, field: Some(field) }, typecheck::aggregate(op, Some(t))))
    }

    /// `{ }` or `{ expr }`, which must be boolean.
    fn filter(&mut self) -> Result<FieldExpr, ParseError> {
        let open = self.advance();
        if *self.peek() == Token::RBrace {
            self.advance();
            return Ok(FieldExpr::Static(Static::Bool(true)));
        }
        let (expr, t) = self.field_expr(0)?;
        if *self.peek() != Token::RBrace {
            return Err(self.expected("an operator or '}'"));
        }
        self.advance();
        if t != Type::Bool && t != Type::Attribute {
            return Err(self.error(
                open.start,
                format!("span filter field expressions must resolve to a boolean, not {}", t.name()),
            ));
        }
        Ok(expr)
    }

    pub(crate) fn field_expr(&mut self, min_prec: u8) -> Result<(FieldExpr, Type), ParseError> {
        let (mut lhs, mut lhs_t) = self.field_primary()?;
        while let Some(op) = field_op(self.peek()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_tok = self.advance();
            let rhs_at = self.offset();
            let (rhs, rhs_t) = self.field_expr(if op.right_associative() { prec } else { prec + 1 })?;
            let t = typecheck::binary(op, lhs_t, rhs_t).map_err(|m| self.error(op_tok.start, m))?;
            if matches!(op, BinaryOp::Regex | BinaryOp::NotRegex)
                && let FieldExpr::Static(Static::String(pattern)) = &rhs
                && let Err(e) = crate::eval::compile_regex(pattern)
            {
                // The regex crate's message spans lines (pattern, caret, error); keep the error line.
                let text = e.to_string();
                let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
                let reason = reason.trim().trim_start_matches("error: ");
                return Err(self.error(rhs_at, format!("invalid regex {pattern:?}: {reason}")));
            }
            lhs = FieldExpr::binary(op, lhs, rhs);
            lhs_t = t;
        }
        Ok((lhs, lhs_t))
    }

    fn field_primary(&mut self) -> Result<(FieldExpr, Type), ParseError> {
        let at = self.offset();
        match self.peek().clone() {
            Token::LParen => {
                self.advance();
                let inner = self.field_expr(0)?;
                self.expect(Token::RParen, "an operator or ')'")?;
                Ok(inner)
            }
            Token::Sub => {
                if let Some(v) = self.negative_literal(false)? {
                    let t = v.static_type();
                    return Ok((FieldExpr::Static(v), t));
                }
                self.advance();
                let (operand, t) = self.field_expr(UnaryOp::Neg.operand_precedence())?;
                let t = typecheck::unary(UnaryOp::Neg, t).map_err(|m| self.error(at, m))?;
                Ok((negate(operand), t))
            }
            Token::Not => {
                self.advance();
                let (operand, t) = self.field_expr(UnaryOp::Not.operand_precedence())?;
                let t = typecheck::unary(UnaryOp::Not, t).map_err(|m| self.error(at, m))?;
                Ok((FieldExpr::Unary { op: UnaryOp::Not, expr: Box::new(operand) }, t))
            }
            Token::Attribute(scope, name) => {
                self.advance();
                Ok((FieldExpr::Field(Field::Attribute(Attribute { scope, name })), Type::Attribute))
            }
            Token::Intrinsic(i) => {
                self.advance();
                Ok((FieldExpr::Field(Field::Intrinsic(i)), i.value_type()))
            }
            _ => match self.literal()? {
                Some(v) => {
                    let t = v.static_type();
                    Ok((FieldExpr::Static(v), t))
                }
                None => Err(self.expected(&format!("a field expression after {}", self.previous_text()))),
            },
        }
    }

    /// `-` directly before a number literal, read as one negative literal unless a tighter operator follows
    /// (`-2 ^ 2` is `-(2 ^ 2)`, as in Tempo). Consumes nothing when it returns `None`.
    /// Between pipeline stages (`force`), the minus always belongs to the number, as in Tempo's grammar.
    fn negative_literal(&mut self, force: bool) -> Result<Option<Static>, ParseError> {
        if *self.peek() != Token::Sub || (!force && is_tight_operator(self.peek_at(2))) {
            return Ok(None);
        }
        let value = match *self.peek_at(1) {
            Token::Integer(i) => Static::Int((-(i as i128)) as i64),
            Token::Float(f) => Static::Float(-f),
            Token::Duration(d) => Static::Duration(-d),
            _ => return Ok(None),
        };
        self.advance();
        self.advance();
        Ok(Some(value))
    }

    /// A literal token, consumed; `None` (consuming nothing) for anything else.
    fn literal(&mut self) -> Result<Option<Static>, ParseError> {
        let at = self.offset();
        let value = match self.peek().clone() {
            Token::String(s) => Static::String(s),
            Token::Integer(i) => {
                Static::Int(i64::try_from(i).map_err(|_| self.error(at, format!("integer {i} is out of range")))?)
            }
            Token::MinInt => Static::Int(i64::MIN),
            Token::Float(f) => Static::Float(f),
            Token::Duration(d) => Static::Duration(d),
            Token::True => Static::Bool(true),
            Token::False => Static::Bool(false),
            Token::Nil => Static::Nil,
            Token::Status(s) => Static::Status(s),
            Token::Kind(k) => Static::Kind(k),
            _ => return Ok(None),
        };
        self.advance();
        Ok(Some(value))
    }
}

/// `-operand`, folding the minus into a number literal.
fn negate(operand: FieldExpr) -> FieldExpr {
    match operand {
        FieldExpr::Static(Static::Int(i)) if i >= 0 => FieldExpr::Static(Static::Int(-i)),
        FieldExpr::Static(Static::Float(f)) if !f.is_sign_negative() => FieldExpr::Static(Static::Float(-f)),
        FieldExpr::Static(Static::Duration(d)) if d >= 0 => FieldExpr::Static(Static::Duration(-d)),
        other => FieldExpr::Unary { op: UnaryOp::Neg, expr: Box::new(other) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_span_lines() {
        let e = parse("{\n  .a = 1 &&\n  .b = \n}").unwrap_err();
        assert_eq!((e.line, e.column), (4, 1));
        assert_eq!(e.message, "expected a field expression after '=', found '}'");
        assert_eq!(e.to_string(), "parse error at line 4, col 1: expected a field expression after '=', found '}'");
        let e = parse("{ .a = 1 }\n| count() > \"x\"").unwrap_err();
        assert_eq!((e.line, e.column, e.offset), (2, 11, 21));
    }

    #[test]
    fn trees() {
        let q = parse("{ .a } >> { .b } | count() > 2 with(most_recent=true)").unwrap();
        let attr = |n: &str| FieldExpr::Field(Field::Attribute(Attribute { scope: Scope::Unscoped, name: n.into() }));
        assert_eq!(
            q,
            Query {
                metrics: None,
                pipeline: Pipeline {
                    stages: vec![
                        Stage::Spanset(SpansetExpr::Op {
                            op: SpansetOp::Descendant,
                            lhs: Box::new(SpansetExpr::Filter(attr("a"))),
                            rhs: Box::new(SpansetExpr::Filter(attr("b"))),
                        }),
                        Stage::ScalarFilter(ScalarFilter {
                            op: BinaryOp::Gt,
                            lhs: ScalarExpr::Aggregate(Aggregate { op: AggregateOp::Count, field: None }),
                            rhs: ScalarExpr::Static(Static::Int(2)),
                        }),
                    ],
                },
                hints: vec![Hint { key: "most_recent".into(), value: Static::Bool(true) }],
            }
        );
        let q: Query = "{ -2 ^ 2 = .x }".parse().unwrap();
        let Stage::Spanset(SpansetExpr::Filter(FieldExpr::Binary { lhs, .. })) = &q.pipeline.stages[0] else {
            panic!("{q:?}")
        };
        assert!(matches!(lhs.as_ref(), FieldExpr::Unary { op: UnaryOp::Neg, .. }), "-2 ^ 2 is -(2 ^ 2)");
    }

    #[test]
    fn metrics_trees_and_searches() {
        let q = parse("{ } | quantile_over_time(duration, .5, 1) by (name, span.a) | bottomk(2) with(exemplars=5)")
            .unwrap();
        let duration = Field::Intrinsic(Intrinsic::Duration);
        let a = Field::Attribute(Attribute { scope: Scope::Span, name: "a".into() });
        assert_eq!(
            q.metrics,
            Some(Metrics {
                function: MetricsFunction::QuantileOverTime(duration, vec![0.5, 1.0]),
                by: vec![Field::Intrinsic(Intrinsic::Name), a],
                second_stage: Some(SecondStage { op: SecondStageOp::BottomK, limit: 2 }),
            })
        );
        assert_eq!(q.hints, vec![Hint { key: "exemplars".into(), value: Static::Int(5) }]);
        assert_eq!(parse_search("{ .a = 1 } | count() > 1").unwrap(), parse("{ .a = 1 } | count() > 1").unwrap());
        let e = parse_search("{ } | rate()").unwrap_err();
        assert_eq!(
            (e.column, e.message.as_str()),
            (7, "metrics function 'rate' is not supported in searches (ask /api/metrics/query_range)")
        );
    }
}
