//! What tail sampling decided about a kept trace, stored with the trace so it outlives the sampler's memory,
//! and the W3C `tracestate` edit that writes a consistent-probability threshold (`ot=th:…`) into its spans.

use crate::otlp::ResourceSpans;

/// Why a trace was kept and how many traces it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingDecision {
    /// The policy that kept it; `None` when none voted for it (an inverted policy's default keep).
    pub policy: Option<String>,
    /// Adjusted count: 1 / the probability of being kept (1 for errors, 10 under a 10% share).
    pub weight: f64,
    /// The OTEP 235 `th` value (1–14 hex digits) when a consistent probabilistic policy kept it.
    pub threshold: Option<String>,
}

/// The value of `key` in a W3C tracestate (`k1=v1,k2=v2`).
pub fn tracestate_value<'a>(tracestate: &'a str, key: &str) -> Option<&'a str> {
    tracestate.split(',').find_map(|member| {
        let (k, v) = member.trim().split_once('=')?;
        (k == key).then_some(v)
    })
}

/// Writes (or, with `None`, erases) `th` in a tracestate, keeping `rv`, other `ot` sub-keys and other vendors'
/// entries; the `ot` entry moves to the front as W3C asks of a modified entry.
pub fn with_ot_threshold(tracestate: &str, th: Option<&str>) -> String {
    let mut ot_members: Vec<&str> = tracestate_value(tracestate, "ot")
        .map(|ot| ot.split(';').filter(|m| !m.is_empty() && !m.starts_with("th:")).collect())
        .unwrap_or_default();
    let th = th.map(|th| format!("th:{th}"));
    if let Some(th) = &th {
        ot_members.insert(0, th);
    }
    let others = tracestate
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty() && m.split_once('=').is_none_or(|(k, _)| k != "ot"));
    let mut members: Vec<String> = Vec::new();
    if !ot_members.is_empty() {
        members.push(format!("ot={}", ot_members.join(";")));
    }
    members.extend(others.map(str::to_string));
    members.join(",")
}

/// Writes `th` into the tracestate of every span (all of one kept trace). Spans that already carry this exact
/// `th` are left as they are.
pub fn apply_ot_threshold<'a>(spans: impl IntoIterator<Item = &'a mut crate::otlp::Span>, th: &str) {
    for span in spans {
        let current =
            tracestate_value(&span.trace_state, "ot").and_then(|ot| ot.split(';').find_map(|m| m.strip_prefix("th:")));
        if current != Some(th) {
            span.trace_state = with_ot_threshold(&span.trace_state, Some(th));
        }
    }
}

/// [`apply_ot_threshold`] over OTLP's nesting.
pub fn apply_ot_threshold_to_trace(resource_spans: &mut [ResourceSpans], th: &str) {
    apply_ot_threshold(resource_spans.iter_mut().flat_map(|rs| &mut rs.scope_spans).flat_map(|ss| &mut ss.spans), th);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::Span;

    #[test]
    fn writes_threshold_keeping_everything_else() {
        assert_eq!(with_ot_threshold("", Some("8")), "ot=th:8");
        assert_eq!(with_ot_threshold("a=1,ot=th:c;rv:abcdef01234567", Some("8")), "ot=th:8;rv:abcdef01234567,a=1");
        assert_eq!(with_ot_threshold("a=1,ot=th:c;rv:abcdef01234567", None), "ot=rv:abcdef01234567,a=1");
        assert_eq!(with_ot_threshold("a=1,ot=th:c", None), "a=1");
    }

    #[test]
    fn applies_a_threshold_to_every_span_once() {
        let mut spans = vec![
            Span { trace_state: "ot=rv:abcdef01234567".into(), ..Default::default() },
            Span { trace_state: "x=y".into(), ..Default::default() },
            Span { trace_state: "ot=th:e666;rv:00000000000001,x=y".into(), ..Default::default() },
        ];
        apply_ot_threshold(&mut spans, "e666");
        let states: Vec<&str> = spans.iter().map(|s| s.trace_state.as_str()).collect();
        assert_eq!(states, ["ot=th:e666;rv:abcdef01234567", "ot=th:e666,x=y", "ot=th:e666;rv:00000000000001,x=y"]);
    }
}
