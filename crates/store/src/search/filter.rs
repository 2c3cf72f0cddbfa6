//! Span predicates: the conditions one span must meet.

use std::cmp::Ordering;

use super::AttrScope;
use crate::block::attrs::Scalar;

/// Conditions that must all hold on one span. Empty: every span.
#[derive(Debug, Clone, Default)]
pub struct SpanFilter {
    /// The resource's `service.name`.
    pub service: Option<String>,
    pub name: Option<String>,
    /// Looked up on the span, then on its resource (TraceQL's unscoped `.key`).
    pub attrs: Vec<AttrCondition>,
    /// Looked up on the span only (TraceQL's `span.key`).
    pub span_attrs: Vec<AttrCondition>,
    /// Looked up on the resource only (TraceQL's `resource.key`; `service.name` included).
    pub resource_attrs: Vec<AttrCondition>,
    /// OTLP `SpanKind` number (1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    pub kind: Option<i32>,
    /// OTLP status code (0 unset, 1 ok, 2 error).
    pub status: Option<i32>,
    pub min_duration_nanos: Option<i64>,
    pub max_duration_nanos: Option<i64>,
    /// Count a value that is no scalar (an array, a map, bytes) as meeting any attribute condition: for callers
    /// that use the filter only to narrow candidates and judge such values themselves (TraceQL compares arrays
    /// element by element).
    pub non_scalars_match: bool,
}

/// `key <op> value` on an attribute, looked up on the span first, then on its resource. A span without the
/// attribute never matches (for `!=` and `!~` too).
#[derive(Debug, Clone)]
pub struct AttrCondition {
    pub key: String,
    pub op: AttrOp,
    pub value: Literal,
}

#[derive(Debug, Clone)]
pub enum AttrOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// Fully anchored regular expression on string attributes.
    Match(regex::Regex),
    NotMatch(regex::Regex),
}

/// A typed literal: numbers compare with int and double attributes, strings with string attributes, bools
/// with bool attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Literal {
    /// Int, then float, then `true`/`false`, else a string (surrounding double quotes removed: a quoted value
    /// is always a string).
    pub fn parse(s: &str) -> Self {
        if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
            return Self::Str(s[1..s.len() - 1].to_owned());
        }
        if let Ok(i) = s.parse::<i64>() {
            return Self::Int(i);
        }
        if let Ok(f) = s.parse::<f64>()
            && f.is_finite()
        {
            return Self::Float(f);
        }
        match s {
            "true" => Self::Bool(true),
            "false" => Self::Bool(false),
            _ => Self::Str(s.to_owned()),
        }
    }
}

const OPERATORS: [&str; 8] = ["=~", "!~", "!=", ">=", "<=", "=", ">", "<"];

impl AttrCondition {
    /// Parses `KEY<op>VALUE` with `op` one of `= != > >= < <= =~ !~`: the key runs up to the first of
    /// `=!<>`. Errors say what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let at = s.find(['=', '!', '<', '>']).ok_or_else(|| format!("{s:?} has no operator (= != > >= < <= =~ !~)"))?;
        let key = s[..at].trim();
        if key.is_empty() {
            return Err(format!("{s:?} has no attribute key before its operator"));
        }
        let rest = &s[at..];
        let op = OPERATORS
            .iter()
            .find(|op| rest.starts_with(**op))
            .ok_or_else(|| format!("{s:?} has an unknown operator (use = != > >= < <= =~ !~)"))?;
        let raw = &rest[op.len()..];
        let regex = |raw: &str| {
            let pattern = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw);
            regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("{s:?} has an invalid regex: {e}"))
        };
        let (op, value) = match *op {
            "=~" => (AttrOp::Match(regex(raw)?), Literal::Str(raw.to_owned())),
            "!~" => (AttrOp::NotMatch(regex(raw)?), Literal::Str(raw.to_owned())),
            "=" => (AttrOp::Eq, Literal::parse(raw)),
            "!=" => (AttrOp::Ne, Literal::parse(raw)),
            ">" => (AttrOp::Gt, Literal::parse(raw)),
            ">=" => (AttrOp::Ge, Literal::parse(raw)),
            "<" => (AttrOp::Lt, Literal::parse(raw)),
            _ => (AttrOp::Le, Literal::parse(raw)),
        };
        Ok(Self { key: key.to_owned(), op, value })
    }

    /// Whether an attribute value satisfies the condition.
    pub(crate) fn accepts(&self, value: Scalar<'_>) -> bool {
        let ordering = match (&self.op, value) {
            (AttrOp::Match(re), Scalar::Str(s)) => return re.is_match(s),
            (AttrOp::NotMatch(re), Scalar::Str(s)) => return !re.is_match(s),
            (AttrOp::Match(_) | AttrOp::NotMatch(_), _) => return false,
            (_, value) => compare(value, &self.value),
        };
        let Some(ordering) = ordering else { return false };
        match self.op {
            AttrOp::Eq => ordering == Ordering::Equal,
            AttrOp::Ne => ordering != Ordering::Equal,
            AttrOp::Gt => ordering == Ordering::Greater,
            AttrOp::Ge => ordering != Ordering::Less,
            AttrOp::Lt => ordering == Ordering::Less,
            AttrOp::Le => ordering != Ordering::Greater,
            AttrOp::Match(_) | AttrOp::NotMatch(_) => false,
        }
    }
}

/// The value compared to the literal, or `None` when their types do not compare.
fn compare(value: Scalar<'_>, literal: &Literal) -> Option<Ordering> {
    match (value, literal) {
        (Scalar::Int(v), Literal::Int(l)) => Some(v.cmp(l)),
        (Scalar::Int(v), Literal::Float(l)) => (v as f64).partial_cmp(l),
        (Scalar::Double(v), Literal::Int(l)) => v.partial_cmp(&(*l as f64)),
        (Scalar::Double(v), Literal::Float(l)) => v.partial_cmp(l),
        (Scalar::Bool(v), Literal::Bool(l)) => Some(v.cmp(l)),
        (Scalar::Str(v), Literal::Str(l)) => Some(v.cmp(l.as_str())),
        _ => None,
    }
}

impl SpanFilter {
    pub fn is_empty(&self) -> bool {
        self.service.is_none()
            && self.name.is_none()
            && self.attrs.is_empty()
            && self.span_attrs.is_empty()
            && self.resource_attrs.is_empty()
            && self.kind.is_none()
            && self.status.is_none()
            && self.min_duration_nanos.is_none()
            && self.max_duration_nanos.is_none()
    }

    /// The conditions on a span's own columns (everything but attributes).
    pub(crate) fn matches_fixed(
        &self,
        service: Option<&str>,
        name: &str,
        kind: i32,
        status: i32,
        duration: i64,
    ) -> bool {
        self.service.as_deref().is_none_or(|s| service == Some(s))
            && self.name.as_deref().is_none_or(|n| n == name)
            && self.kind.is_none_or(|k| k == kind)
            && self.status.is_none_or(|s| s == status)
            && self.min_duration_nanos.is_none_or(|min| duration >= min)
            && self.max_duration_nanos.is_none_or(|max| duration <= max)
    }

    /// The attribute conditions, given a lookup of a key in a scope (`None`: span first, then resource).
    pub(crate) fn matches_attrs<'a>(
        &self,
        mut lookup: impl FnMut(&str, Option<AttrScope>) -> Option<Scalar<'a>>,
    ) -> bool {
        let scoped = [
            (None, &self.attrs),
            (Some(AttrScope::Span), &self.span_attrs),
            (Some(AttrScope::Resource), &self.resource_attrs),
        ];
        let accepts =
            |c: &AttrCondition, v: Scalar<'a>| c.accepts(v) || (self.non_scalars_match && matches!(v, Scalar::Other));
        scoped
            .into_iter()
            .all(|(scope, conditions)| conditions.iter().all(|c| lookup(&c.key, scope).is_some_and(|v| accepts(c, v))))
    }

    /// Every attribute condition with the scope it is looked up in.
    pub(crate) fn all_attrs(&self) -> impl Iterator<Item = (&AttrCondition, Option<AttrScope>)> {
        let with = |scope| move |c| (c, scope);
        self.attrs
            .iter()
            .map(with(None))
            .chain(self.span_attrs.iter().map(with(Some(AttrScope::Span))))
            .chain(self.resource_attrs.iter().map(with(Some(AttrScope::Resource))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conditions_and_compares_typed() {
        let c = AttrCondition::parse("http.status_code>=500").unwrap();
        assert_eq!(c.key, "http.status_code");
        assert_eq!(c.value, Literal::Int(500));
        assert!(c.accepts(Scalar::Int(503)));
        assert!(c.accepts(Scalar::Double(500.0)));
        assert!(!c.accepts(Scalar::Int(404)));
        assert!(!c.accepts(Scalar::Str("503")));
        let c = AttrCondition::parse("region=\"eu west\"").unwrap();
        assert!(c.accepts(Scalar::Str("eu west")));
        let c = AttrCondition::parse("id=\"42\"").unwrap();
        assert_eq!(c.value, Literal::Str("42".into()));
        let c = AttrCondition::parse("route=~/api/.*").unwrap();
        assert!(c.accepts(Scalar::Str("/api/x")));
        assert!(!c.accepts(Scalar::Str("x/api/x")), "anchored");
        let c = AttrCondition::parse("ok!=true").unwrap();
        assert!(c.accepts(Scalar::Bool(false)));
        assert!(!c.accepts(Scalar::Bool(true)));
        assert!(AttrCondition::parse("novalue").is_err());
        assert!(AttrCondition::parse("=x").is_err());
        assert!(AttrCondition::parse("k=~(").is_err());
        assert!(AttrCondition::parse("k!x").is_err());
    }
}
