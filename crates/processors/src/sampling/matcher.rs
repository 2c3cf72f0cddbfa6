//! Span conditions (attribute values, status, tracestate, flags) are checked as spans arrive, so a waiting trace
//! keeps one bit per condition ("some span or resource matched") instead of its spans' attributes.

use std::collections::HashSet;

use clew_model::otlp::{KeyValue, Resource, any_value};
use regex::Regex;

use super::consistent::tracestate_value;
use super::span_scan::ScannedSpan;

/// At most this many conditions across all policies: a waiting trace keeps them in one `u64`.
pub const MAX_CONDITIONS: usize = 64;

#[derive(Debug)]
pub enum Condition {
    StringValue {
        key: String,
        values: StringValues,
    },
    Numeric {
        key: String,
        min: i64,
        max: i64,
    },
    Boolean {
        key: String,
        value: bool,
    },
    /// Bit per OTLP status code (0 unset, 1 ok, 2 error).
    Status {
        codes: u8,
    },
    TraceState {
        key: String,
        values: Vec<String>,
    },
    /// The W3C sampled flag in the span's `flags`.
    SampledFlag,
}

#[derive(Debug)]
pub enum StringValues {
    Exact(HashSet<String>),
    Regex(Vec<Regex>),
}

impl StringValues {
    fn matches(&self, value: &str) -> bool {
        match self {
            StringValues::Exact(set) => set.contains(value),
            StringValues::Regex(patterns) => patterns.iter().any(|re| re.is_match(value)),
        }
    }
}

impl Condition {
    /// Whether the condition can be true of a resource (attribute conditions look at resources too).
    fn applies_to_resources(&self) -> bool {
        matches!(self, Condition::StringValue { .. } | Condition::Numeric { .. } | Condition::Boolean { .. })
    }

    fn matches_attributes(&self, attributes: &[KeyValue]) -> bool {
        let key = match self {
            Condition::StringValue { key, .. } | Condition::Numeric { key, .. } | Condition::Boolean { key, .. } => key,
            _ => return false,
        };
        attributes
            .iter()
            .filter(|kv| &kv.key == key)
            .filter_map(|kv| kv.value.as_ref()?.value.as_ref())
            .any(|value| self.value_matches(value))
    }

    fn value_matches(&self, value: &any_value::Value) -> bool {
        use any_value::Value;
        match (self, value) {
            (Condition::StringValue { values, .. }, Value::StringValue(s)) => values.matches(s),
            (Condition::Numeric { min, max, .. }, Value::IntValue(i)) => min <= i && i <= max,
            (Condition::Numeric { min, max, .. }, Value::DoubleValue(d)) => *min as f64 <= *d && *d <= *max as f64,
            (Condition::Boolean { value: want, .. }, Value::BoolValue(b)) => b == want,
            _ => false,
        }
    }

    fn matches_span(&self, span: &ScannedSpan<'_>) -> bool {
        match self {
            Condition::Status { codes } => codes & (1 << span.status_code.clamp(0, 7)) != 0,
            Condition::TraceState { key, values } => {
                tracestate_value(span.trace_state, key).is_some_and(|v| values.iter().any(|want| want == v))
            }
            Condition::SampledFlag => span.flags & 1 != 0,
            _ => self.matches_attributes(&span.attributes),
        }
    }

    fn attribute_key(&self) -> Option<&str> {
        match self {
            Condition::StringValue { key, .. } | Condition::Numeric { key, .. } | Condition::Boolean { key, .. } => {
                Some(key)
            }
            _ => None,
        }
    }
}

/// All conditions of a policy tree, numbered by bit.
#[derive(Debug, Default)]
pub struct Conditions {
    pub list: Vec<Condition>,
}

impl Conditions {
    pub fn add(&mut self, condition: Condition) -> Result<u8, String> {
        if self.list.len() >= MAX_CONDITIONS {
            return Err(format!("at most {MAX_CONDITIONS} attribute, status and tracestate conditions are supported"));
        }
        self.list.push(condition);
        Ok((self.list.len() - 1) as u8)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Bits of the conditions a resource satisfies.
    pub fn resource_bits(&self, resource: Option<&Resource>) -> u64 {
        let Some(resource) = resource else { return 0 };
        self.bits(|c| c.applies_to_resources() && c.matches_attributes(&resource.attributes))
    }

    /// Whether some condition looks at attributes with this key (the span scan decodes only those).
    pub fn wants_key(&self, key: &[u8]) -> bool {
        self.list.iter().any(|c| c.attribute_key().is_some_and(|k| k.as_bytes() == key))
    }

    /// Bits of the conditions a span satisfies.
    pub fn span_bits(&self, span: &ScannedSpan<'_>) -> u64 {
        self.bits(|c| c.matches_span(span))
    }

    fn bits(&self, test: impl Fn(&Condition) -> bool) -> u64 {
        self.list.iter().enumerate().filter(|(_, c)| test(c)).fold(0, |bits, (i, _)| bits | (1 << i))
    }
}

/// Maps the collector's status names onto OTLP codes.
pub fn status_bits(names: &[String]) -> Result<u8, String> {
    if names.is_empty() {
        return Err("status_code needs at least one of OK, ERROR, UNSET".into());
    }
    names.iter().try_fold(0u8, |bits, name| match name.as_str() {
        "UNSET" => Ok(bits | 1),
        "OK" => Ok(bits | 2),
        "ERROR" => Ok(bits | 4),
        other => Err(format!("unknown status code {other:?}: use OK, ERROR or UNSET")),
    })
}
