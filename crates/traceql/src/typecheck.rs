//! The static type rules Tempo applies before running a query: operand types must match, operators must suit
//! their operands, filters must be boolean, aggregates numeric. Attributes have no static type and pass.

use crate::ast::{AggregateOp, BinaryOp, Type, UnaryOp};

/// Whether two operand types may meet in one binary operation.
fn operands_match(lhs: Type, rhs: Type) -> bool {
    lhs == Type::Attribute
        || rhs == Type::Attribute
        || lhs == rhs
        || (lhs.is_numeric() && rhs.is_numeric())
        || lhs == Type::Nil
        || rhs == Type::Nil
}

/// Whether `op` accepts an operand of type `t`.
fn operand_valid(op: BinaryOp, t: Type) -> bool {
    use BinaryOp::*;
    match t {
        Type::Attribute => true,
        Type::Bool => matches!(op, And | Or | Eq | Neq),
        Type::Int | Type::Float | Type::Duration => op.is_arithmetic() || matches!(op, Eq | Neq | Lt | Lte | Gt | Gte),
        Type::String => matches!(op, Eq | Neq | Regex | NotRegex | Lt | Lte | Gt | Gte),
        Type::Nil | Type::Status | Type::Kind => matches!(op, Eq | Neq),
    }
}

/// The type of `lhs op rhs`, or why it is invalid.
pub fn binary(op: BinaryOp, lhs: Type, rhs: Type) -> Result<Type, String> {
    if !operands_match(lhs, rhs) {
        return Err(format!(
            "binary operations must operate on the same type: {} {} {}",
            lhs.name(),
            op.symbol(),
            rhs.name()
        ));
    }
    if !operand_valid(op, lhs) || !operand_valid(op, rhs) {
        return Err(format!("illegal operation for the given types: {} {} {}", lhs.name(), op.symbol(), rhs.name()));
    }
    Ok(if !op.is_arithmetic() {
        Type::Bool
    } else if lhs == Type::Attribute || rhs == Type::Attribute {
        Type::Attribute
    } else if lhs == Type::Float || rhs == Type::Float {
        Type::Float
    } else if lhs == Type::Duration || rhs == Type::Duration {
        Type::Duration
    } else {
        Type::Int
    })
}

pub fn unary(op: UnaryOp, t: Type) -> Result<Type, String> {
    match (op, t) {
        (_, Type::Attribute) => Ok(if op == UnaryOp::Not { Type::Bool } else { Type::Attribute }),
        (UnaryOp::Neg, t) if t.is_numeric() => Ok(t),
        (UnaryOp::Not, Type::Bool) => Ok(Type::Bool),
        (UnaryOp::Neg, t) => Err(format!("illegal operation for the given type: -{}", t.name())),
        (UnaryOp::Not, t) => Err(format!("illegal operation for the given type: !{}", t.name())),
    }
}

/// The type an aggregate produces from a field of type `field`.
pub fn aggregate(op: AggregateOp, field: Option<Type>) -> Type {
    match (op, field) {
        (AggregateOp::Count, _) => Type::Int,
        (AggregateOp::Avg, Some(Type::Attribute)) => Type::Attribute,
        (AggregateOp::Avg, _) => Type::Float,
        (_, Some(t)) => t,
        (_, None) => Type::Attribute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(binary(BinaryOp::Eq, Type::Attribute, Type::Int), Ok(Type::Bool));
        assert_eq!(binary(BinaryOp::Add, Type::Int, Type::Float), Ok(Type::Float));
        assert_eq!(binary(BinaryOp::Add, Type::Duration, Type::Int), Ok(Type::Duration));
        assert!(binary(BinaryOp::Eq, Type::String, Type::Int).is_err());
        assert!(binary(BinaryOp::Regex, Type::Attribute, Type::Int).is_err());
        assert!(binary(BinaryOp::Lt, Type::Status, Type::Status).is_err());
        assert!(binary(BinaryOp::And, Type::Int, Type::Int).is_err());
        assert_eq!(binary(BinaryOp::Neq, Type::Attribute, Type::Nil), Ok(Type::Bool));
        assert!(unary(UnaryOp::Not, Type::Int).is_err());
        assert_eq!(unary(UnaryOp::Neg, Type::Duration), Ok(Type::Duration));
        assert_eq!(aggregate(AggregateOp::Avg, Some(Type::Duration)), Type::Float);
        assert_eq!(aggregate(AggregateOp::Max, Some(Type::Duration)), Type::Duration);
    }
}
