//! Gives pipeline-level nodes their types: spanset expressions, scalar filters and pipeline functions.
//!
//! The parser cannot tell these apart as it reads (`>` is both "child of" and "greater than"), so it builds an
//! untyped [`Node`] tree and this module decides, from the operands, what each node is.

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::Token;
use crate::parser::{Located, Node};
use crate::typecheck;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Spanset,
    Scalar,
    /// A comparison of scalars: only valid as a whole pipeline stage.
    ScalarFilter,
    /// `by()`, `select()`, `coalesce()`.
    Function,
}

fn spanset_op(token: &Token) -> Option<SpansetOp> {
    Some(match token {
        Token::And => SpansetOp::And,
        Token::Or => SpansetOp::Union,
        Token::Gt => SpansetOp::Child,
        Token::Lt => SpansetOp::Parent,
        Token::Desc => SpansetOp::Descendant,
        Token::Ance => SpansetOp::Ancestor,
        Token::Tilde => SpansetOp::Sibling,
        Token::NotChild => SpansetOp::NotChild,
        Token::NotParent => SpansetOp::NotParent,
        Token::NotDesc => SpansetOp::NotDescendant,
        Token::NotAnce => SpansetOp::NotAncestor,
        Token::NotRegex => SpansetOp::NotSibling,
        Token::UnionChild => SpansetOp::UnionChild,
        Token::UnionParent => SpansetOp::UnionParent,
        Token::UnionDesc => SpansetOp::UnionDescendant,
        Token::UnionAnce => SpansetOp::UnionAncestor,
        Token::UnionSibling => SpansetOp::UnionSibling,
        _ => return None,
    })
}

fn scalar_op(token: &Token) -> Option<BinaryOp> {
    Some(match token {
        Token::Eq => BinaryOp::Eq,
        Token::Neq => BinaryOp::Neq,
        Token::Lt => BinaryOp::Lt,
        Token::Lte => BinaryOp::Lte,
        Token::Gt => BinaryOp::Gt,
        Token::Gte => BinaryOp::Gte,
        Token::Add => BinaryOp::Add,
        Token::Sub => BinaryOp::Sub,
        Token::Mul => BinaryOp::Mul,
        Token::Div => BinaryOp::Div,
        Token::Mod => BinaryOp::Mod,
        Token::Pow => BinaryOp::Pow,
        _ => return None,
    })
}

fn classify(n: &Located) -> Class {
    match &n.node {
        Node::Filter(_) => Class::Spanset,
        Node::Paren(stages) => {
            let last = classify(stages.last().expect("a pipeline has a stage"));
            match (stages.len(), last) {
                (1, Class::Spanset | Class::Scalar) => last,
                (_, Class::Scalar) => Class::Scalar,
                _ => Class::Spanset,
            }
        }
        Node::Aggregate(..) | Node::Literal(_) => Class::Scalar,
        Node::GroupBy(_) | Node::Select(_) | Node::Coalesce => Class::Function,
        Node::Binary { op, lhs, .. } => match op {
            Token::Gt | Token::Lt if classify(lhs) == Class::Spanset => Class::Spanset,
            Token::Eq | Token::Neq | Token::Lt | Token::Lte | Token::Gt | Token::Gte => Class::ScalarFilter,
            Token::Add | Token::Sub | Token::Mul | Token::Div | Token::Mod | Token::Pow => Class::Scalar,
            _ => Class::Spanset,
        },
    }
}

pub(crate) struct Shaper<'a> {
    src: &'a str,
}

/// Types the stages of the whole query.
pub(crate) fn root(src: &str, stages: Vec<Located>) -> Result<Pipeline, ParseError> {
    Shaper { src }.pipeline(stages)
}

impl Shaper<'_> {
    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, at, message)
    }

    fn pipeline(&self, stages: Vec<Located>) -> Result<Pipeline, ParseError> {
        if let Some(Located { node: Node::Coalesce, at }) = stages.first() {
            return Err(self.error(*at, "coalesce() must follow a pipe"));
        }
        let stages = stages.into_iter().map(|s| self.stage(s)).collect::<Result<_, _>>()?;
        Ok(Pipeline { stages })
    }

    fn stage(&self, n: Located) -> Result<Stage, ParseError> {
        match classify(&n) {
            Class::Spanset => Ok(Stage::Spanset(self.spanset(n)?)),
            Class::ScalarFilter => Ok(Stage::ScalarFilter(self.scalar_filter(n)?)),
            Class::Function => Ok(match n.node {
                Node::GroupBy(e) => Stage::GroupBy(e),
                Node::Select(fields) => Stage::Select(fields),
                _ => Stage::Coalesce,
            }),
            Class::Scalar => {
                Err(self.error(n.at, "a scalar expression must be compared to a value, as in 'count() > 1'"))
            }
        }
    }

    fn spanset(&self, n: Located) -> Result<SpansetExpr, ParseError> {
        let at = n.at;
        match n.node {
            Node::Filter(e) => Ok(SpansetExpr::Filter(e)),
            Node::Paren(mut stages) => {
                if stages.len() == 1 && classify(&stages[0]) == Class::Spanset {
                    return self.spanset(stages.remove(0));
                }
                if classify(stages.last().expect("a pipeline has a stage")) == Class::Scalar {
                    return Err(self.error(at, "expected a spanset, found a scalar pipeline"));
                }
                Ok(SpansetExpr::Pipeline(Box::new(self.pipeline(stages)?)))
            }
            Node::Binary { op, op_at, lhs, rhs } => {
                let Some(sop) = spanset_op(&op) else {
                    return Err(self.error(op_at, format!("'{}' cannot combine spansets", op.symbol())));
                };
                for (side, name) in [(&lhs, "left"), (&rhs, "right")] {
                    if classify(side) != Class::Spanset {
                        return Err(
                            self.error(side.at, format!("expected a spanset on the {name} of '{}'", sop.symbol()))
                        );
                    }
                }
                Ok(SpansetExpr::Op { op: sop, lhs: Box::new(self.spanset(*lhs)?), rhs: Box::new(self.spanset(*rhs)?) })
            }
            _ => Err(self.error(at, "expected a spanset expression")),
        }
    }

    fn scalar_filter(&self, n: Located) -> Result<ScalarFilter, ParseError> {
        let Node::Binary { op, op_at, lhs, rhs } = n.node else {
            return Err(self.error(n.at, "expected a comparison"));
        };
        let op =
            scalar_op(&op).filter(|o| o.is_comparison()).ok_or_else(|| self.error(op_at, "expected a comparison"))?;
        let (lhs, lt) = self.scalar(*lhs)?;
        let (rhs, rt) = self.scalar(*rhs)?;
        typecheck::binary(op, lt, rt).map_err(|m| self.error(op_at, m))?;
        for t in [lt, rt] {
            if t != Type::Attribute && !t.is_numeric() {
                return Err(self.error(op_at, format!("scalar filters compare numbers, not {}", t.name())));
            }
        }
        Ok(ScalarFilter { op, lhs, rhs })
    }

    fn scalar(&self, n: Located) -> Result<(ScalarExpr, Type), ParseError> {
        let at = n.at;
        match n.node {
            Node::Aggregate(a, t) => Ok((ScalarExpr::Aggregate(a), t)),
            Node::Literal(v) => {
                let t = v.static_type();
                Ok((ScalarExpr::Static(v), t))
            }
            Node::Paren(mut stages) => {
                if stages.len() == 1 {
                    return self.scalar(stages.remove(0));
                }
                let last = stages.pop().expect("more than one stage");
                let Node::Aggregate(aggregate, t) = last.node else {
                    return Err(self.error(last.at, "expected an aggregate at the end of a scalar pipeline"));
                };
                let pipeline = self.pipeline(stages)?;
                Ok((ScalarExpr::Pipeline { pipeline: Box::new(pipeline), aggregate }, t))
            }
            Node::Binary { op, op_at, lhs, rhs } => {
                let Some(sop) = scalar_op(&op).filter(|o| o.is_arithmetic()) else {
                    return Err(self.error(op_at, format!("expected an arithmetic operator, found '{}'", op.symbol())));
                };
                let (l, lt) = self.scalar(*lhs)?;
                let (r, rt) = self.scalar(*rhs)?;
                let t = typecheck::binary(sop, lt, rt).map_err(|m| self.error(op_at, m))?;
                Ok((ScalarExpr::Binary { op: sop, lhs: Box::new(l), rhs: Box::new(r) }, t))
            }
            _ => Err(self.error(at, "expected an aggregate or a number")),
        }
    }
}
