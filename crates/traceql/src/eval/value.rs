//! Run-time values and how they compare and combine.
//!
//! A missing attribute is [`Value::Nil`], and every comparison with it is false, except against the literal
//! `nil` (handled by the caller, which knows whether the operand was written `nil`). Numbers of different kinds
//! (integer, float, duration) compare by value. Arrays match `=`, `=~` and the orderings when any element
//! does, and `!=`, `!~` when no element matches the positive form.

use std::cmp::Ordering;
use std::fmt;

use clew_model::otlp::{AnyValue, any_value};

use crate::ast::{BinaryOp, Kind, Static, Status};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// Nanoseconds.
    Duration(i64),
    Status(Status),
    Kind(Kind),
    Array(Vec<Value>),
}

impl From<&Static> for Value {
    fn from(s: &Static) -> Self {
        match s {
            Static::Nil => Self::Nil,
            Static::Bool(b) => Self::Bool(*b),
            Static::Int(i) => Self::Int(*i),
            Static::Float(f) => Self::Float(*f),
            Static::String(s) => Self::String(s.clone()),
            Static::Duration(d) => Self::Duration(*d),
            Static::Status(s) => Self::Status(*s),
            Static::Kind(k) => Self::Kind(*k),
        }
    }
}

impl From<&AnyValue> for Value {
    fn from(v: &AnyValue) -> Self {
        match &v.value {
            Some(any_value::Value::StringValue(s)) => Self::String(s.clone()),
            Some(any_value::Value::BoolValue(b)) => Self::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Self::Int(*i),
            Some(any_value::Value::DoubleValue(f)) => Self::Float(*f),
            Some(any_value::Value::ArrayValue(a)) => Self::Array(a.values.iter().map(Self::from).collect()),
            // Maps and bytes are not queryable, as in Tempo.
            _ => Self::Nil,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nil => f.write_str("nil"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::String(s) => f.write_str(s),
            Self::Duration(d) => f.write_str(&crate::format_duration(*d)),
            Self::Status(s) => f.write_str(s.name()),
            Self::Kind(k) => f.write_str(k.name()),
            Self::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    v.fmt(f)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl Value {
    pub fn is_nil(&self) -> bool {
        matches!(self, Self::Nil)
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) | Self::Duration(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) | Self::Duration(i) => Some(*i),
            _ => None,
        }
    }

    /// Ordering between two scalars of comparable kinds; `None` when they do not compare.
    pub(crate) fn partial_cmp_value(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Self::String(a), Self::String(b)) => Some(a.cmp(b)),
            (Self::Bool(a), Self::Bool(b)) => Some(a.cmp(b)),
            (Self::Status(a), Self::Status(b)) => Some(a.cmp(b)),
            (Self::Kind(a), Self::Kind(b)) => Some(a.cmp(b)),
            _ => match (self.as_i64(), other.as_i64()) {
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => self.as_f64()?.partial_cmp(&other.as_f64()?),
            },
        }
    }
}

/// `lhs op rhs` for a comparison operator (`= != < <= > >= =~ !~`), with neither side the literal `nil`.
pub(crate) fn compare(op: BinaryOp, lhs: &Value, rhs: &Value, regex: &dyn Fn(&str) -> Option<regex::Regex>) -> bool {
    match (lhs, rhs) {
        (Value::Array(items), _) => match op {
            BinaryOp::Neq => items.iter().all(|v| !compare(BinaryOp::Eq, v, rhs, regex)),
            BinaryOp::NotRegex => items.iter().all(|v| !compare(BinaryOp::Regex, v, rhs, regex)),
            _ => items.iter().any(|v| compare(op, v, rhs, regex)),
        },
        (_, Value::Array(_)) => compare(mirror(op), rhs, lhs, regex),
        (Value::Nil, _) | (_, Value::Nil) => false,
        _ => match op {
            BinaryOp::Regex | BinaryOp::NotRegex => {
                let (Value::String(s), Value::String(pattern)) = (lhs, rhs) else { return false };
                let Some(re) = regex(pattern) else { return false };
                re.is_match(s) == (op == BinaryOp::Regex)
            }
            _ => {
                let Some(ord) = lhs.partial_cmp_value(rhs) else { return false };
                match op {
                    BinaryOp::Eq => ord.is_eq(),
                    BinaryOp::Neq => ord.is_ne(),
                    BinaryOp::Lt => ord.is_lt(),
                    BinaryOp::Lte => ord.is_le(),
                    BinaryOp::Gt => ord.is_gt(),
                    BinaryOp::Gte => ord.is_ge(),
                    _ => false,
                }
            }
        },
    }
}

/// The operator that gives the same answer with the operands swapped.
fn mirror(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Lte => BinaryOp::Gte,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Gte => BinaryOp::Lte,
        other => other,
    }
}

/// Arithmetic. Integers stay integers (nil on overflow or division by zero), any float makes a float, and a
/// duration with integers stays a duration.
pub(crate) fn arithmetic(op: BinaryOp, lhs: &Value, rhs: &Value) -> Value {
    let float = matches!(lhs, Value::Float(_)) || matches!(rhs, Value::Float(_));
    if !float && let (Some(a), Some(b)) = (lhs.as_i64(), rhs.as_i64()) {
        let result = match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Sub => a.checked_sub(b),
            BinaryOp::Mul => a.checked_mul(b),
            BinaryOp::Div => a.checked_div(b),
            BinaryOp::Mod => a.checked_rem(b),
            BinaryOp::Pow => u32::try_from(b).ok().and_then(|e| a.checked_pow(e)),
            _ => None,
        };
        let duration = matches!(lhs, Value::Duration(_)) || matches!(rhs, Value::Duration(_));
        return match result {
            Some(v) if duration => Value::Duration(v),
            Some(v) => Value::Int(v),
            None if op == BinaryOp::Pow && b < 0 => Value::Float((a as f64).powf(b as f64)),
            None => Value::Nil,
        };
    }
    let (Some(a), Some(b)) = (lhs.as_f64(), rhs.as_f64()) else { return Value::Nil };
    Value::Float(match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Mod => a % b,
        BinaryOp::Pow => a.powf(b),
        _ => return Value::Nil,
    })
}

pub(crate) fn negate(v: &Value) -> Value {
    match v {
        Value::Int(i) => i.checked_neg().map_or(Value::Nil, Value::Int),
        Value::Duration(d) => d.checked_neg().map_or(Value::Nil, Value::Duration),
        Value::Float(f) => Value::Float(-f),
        _ => Value::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Option<regex::Regex> {
        crate::eval::compile_regex(p).ok()
    }

    #[test]
    fn comparisons() {
        let s = |x: &str| Value::String(x.into());
        assert!(compare(BinaryOp::Eq, &Value::Int(3), &Value::Float(3.0), &re));
        assert!(compare(BinaryOp::Gt, &Value::Duration(2_000), &Value::Int(1_000), &re));
        assert!(!compare(BinaryOp::Neq, &Value::Nil, &Value::Int(1), &re));
        assert!(!compare(BinaryOp::Neq, &s("x"), &Value::Int(1), &re));
        assert!(compare(BinaryOp::Lt, &s("400"), &s("500"), &re));
        assert!(compare(BinaryOp::Regex, &s("GET /x"), &s("GET.*"), &re));
        assert!(!compare(BinaryOp::Regex, &s("xGET"), &s("GET"), &re), "regexes are anchored");
        assert!(compare(BinaryOp::NotRegex, &s("POST"), &s("GET"), &re));
        let arr = Value::Array(vec![s("a"), s("b")]);
        assert!(compare(BinaryOp::Eq, &arr, &s("b"), &re));
        assert!(!compare(BinaryOp::Neq, &arr, &s("b"), &re));
        assert!(compare(BinaryOp::Neq, &arr, &s("c"), &re));
        assert!(compare(BinaryOp::Gt, &Value::Int(5), &Value::Array(vec![Value::Int(1)]), &re));
    }

    #[test]
    fn arithmetic_types() {
        assert_eq!(arithmetic(BinaryOp::Add, &Value::Int(2), &Value::Int(3)), Value::Int(5));
        assert_eq!(arithmetic(BinaryOp::Div, &Value::Int(2), &Value::Int(0)), Value::Nil);
        assert_eq!(arithmetic(BinaryOp::Mul, &Value::Duration(2), &Value::Int(3)), Value::Duration(6));
        assert_eq!(arithmetic(BinaryOp::Div, &Value::Int(3), &Value::Float(2.0)), Value::Float(1.5));
        assert_eq!(arithmetic(BinaryOp::Pow, &Value::Int(2), &Value::Int(-1)), Value::Float(0.5));
        assert_eq!(arithmetic(BinaryOp::Add, &Value::String("a".into()), &Value::Int(1)), Value::Nil);
        assert_eq!(negate(&Value::Int(i64::MIN)), Value::Nil);
    }
}
