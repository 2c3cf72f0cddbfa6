//! Parameters of Jaeger's `GET /api/traces` search, checked as Jaeger's query parser checks them.

use clew_model::TraceId;

use super::model::Trace;
use crate::compat::{parse_go_duration, parse_trace_id};
use crate::trace_search::{Alt, Pushdown, TraceSearch};

/// Jaeger's default and our largest number of traces per search.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1500;

/// The conditions of one search, kept to check candidates against Jaeger's view of their spans.
#[derive(Debug, Default)]
pub(crate) struct SpanConditions {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub tags: Vec<(String, String)>,
    pub min_duration_nanos: Option<u64>,
    pub max_duration_nanos: Option<u64>,
}

impl SpanConditions {
    /// Whether one span of the trace meets every condition (tags on the span or its process, compared as text).
    pub(crate) fn matches(&self, trace: &Trace) -> bool {
        trace.spans.iter().any(|span| {
            let process = trace.processes.get(&span.process_id);
            let service = process.map(|p| p.service_name.as_str()).unwrap_or_default();
            self.service.as_deref().is_none_or(|s| s == service)
                && self.operation.as_deref().is_none_or(|o| o == span.operation_name)
                && self.min_duration_nanos.is_none_or(|min| span.duration_nanos >= min)
                && self.max_duration_nanos.is_none_or(|max| span.duration_nanos <= max)
                && self.tags.iter().all(|(key, value)| {
                    let process_tags = process.map(|p| p.tags.as_slice()).unwrap_or_default();
                    span.tags.iter().chain(process_tags).any(|t| t.key == *key && t.text() == *value)
                })
        })
    }

    /// The store search for these conditions: everything it can answer exactly is pushed down.
    pub(crate) fn to_search(&self, limit: usize) -> TraceSearch {
        let mut search = TraceSearch::new(limit);
        search.filter.service = self.service.clone();
        search.filter.name = self.operation.clone();
        search.filter.min_duration_nanos = self.min_duration_nanos.map(|d| d.min(i64::MAX as u64) as i64);
        search.filter.max_duration_nanos = self.max_duration_nanos.map(|d| d.min(i64::MAX as u64) as i64);
        for (key, value) in &self.tags {
            search.push(pushdown(key, value));
        }
        search
    }
}

/// How a tag condition reads in the store's terms: the tags the translation makes from kind and status are those
/// fields (or an attribute of that name); any other tag is an attribute whose text is the value.
fn pushdown(key: &str, value: &str) -> Pushdown {
    let with_attr = |mut alts: Vec<Alt>| {
        alts.extend(Alt::text(key, value));
        Pushdown::Exact(alts)
    };
    match (key, value) {
        ("span.kind", _) => match clew_query::search::parse_kind(value) {
            Ok(kind) => Pushdown::Exact(vec![Alt::Kind(kind)]),
            Err(_) => with_attr(vec![]),
        },
        ("error", "true") => with_attr(vec![Alt::Status(2)]),
        ("otel.status_code", "OK") => with_attr(vec![Alt::Status(1)]),
        ("otel.status_code", "ERROR") => with_attr(vec![Alt::Status(2)]),
        ("otel.status_description" | "otel.scope.name" | "otel.scope.version" | "w3c.tracestate" | "", _) => {
            Pushdown::Verify
        }
        _ => with_attr(vec![]),
    }
}

/// A parsed `/api/traces` request: either trace ids to fetch, or a search.
#[derive(Debug)]
pub(crate) struct LegacySearch {
    pub trace_ids: Vec<TraceId>,
    pub conditions: SpanConditions,
    pub start_min: Option<u64>,
    pub start_max: Option<u64>,
    pub limit: usize,
}

/// Parses the query string; `now` (Unix ns) anchors `lookback` when `start` is absent.
pub(crate) fn parse(pairs: &[(String, String)], now: u64) -> Result<LegacySearch, String> {
    let mut conditions = SpanConditions::default();
    let (mut start, mut end, mut lookback, mut limit) = (None, None, None, DEFAULT_LIMIT);
    let mut trace_ids = Vec::new();
    for (key, value) in pairs {
        let unparsable = |err: String| format!("unable to parse param '{key}': {err}");
        match key.as_str() {
            "service" => conditions.service = Some(value.clone()).filter(|v| !v.is_empty()),
            "operation" => conditions.operation = Some(value.clone()).filter(|v| !v.is_empty()),
            "tags" => conditions.tags.extend(parse_tags(value)?),
            "tag" => {
                let (k, v) = value
                    .split_once(':')
                    .ok_or_else(|| format!("malformed 'tag' parameter, expecting key:value, received: {value}"))?;
                conditions.tags.push((k.to_owned(), v.to_owned()));
            }
            "start" | "end" if value.is_empty() => {}
            "start" => start = Some(parse_micros(value).map_err(unparsable)?),
            "end" => end = Some(parse_micros(value).map_err(unparsable)?),
            "lookback" if value.is_empty() || value == "custom" => {}
            "lookback" => lookback = Some(parse_go_duration(value).map_err(unparsable)?),
            "minDuration" | "maxDuration" if value.is_empty() => {}
            "minDuration" => conditions.min_duration_nanos = Some(parse_go_duration(value).map_err(unparsable)?),
            "maxDuration" => conditions.max_duration_nanos = Some(parse_go_duration(value).map_err(unparsable)?),
            "limit" if value.is_empty() => {}
            "limit" => {
                let n: i64 = value.parse().map_err(|_| unparsable(format!("{value:?} is not an integer")))?;
                limit = if n <= 0 { DEFAULT_LIMIT } else { (n as usize).min(MAX_LIMIT) };
            }
            "traceID" => trace_ids.push(parse_trace_id(value).map_err(|e| format!("cannot parse traceID param: {e}"))?),
            // Jaeger UI sends more (`prettyPrint`, `spanKind`, ...); Jaeger ignores what it does not know.
            _ => {}
        }
    }
    if let (Some(min), Some(max)) = (conditions.min_duration_nanos, conditions.max_duration_nanos)
        && max < min
    {
        return Err("'maxDuration' should be greater than 'minDuration'".into());
    }
    if start.is_none()
        && let Some(lookback) = lookback
    {
        start = Some(end.unwrap_or(now).saturating_sub(lookback));
    }
    if let (Some(from), Some(to)) = (start, end)
        && from > to
    {
        return Err("'start' is after 'end'".into());
    }
    Ok(LegacySearch { trace_ids, conditions, start_min: start, start_max: end, limit })
}

/// Unix microseconds to nanoseconds.
fn parse_micros(value: &str) -> Result<u64, String> {
    let micros: u64 = value.parse().map_err(|_| format!("{value:?} is not unix microseconds"))?;
    micros.checked_mul(1000).ok_or_else(|| format!("{value} is out of range"))
}

/// `tags`: a JSON map of strings (what Jaeger UI sends), or logfmt (`k=v k2="a b"`, what users type).
pub(crate) fn parse_tags(value: &str) -> Result<Vec<(String, String)>, String> {
    let trimmed = value.trim();
    if trimmed.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(trimmed)
            .map_err(|e| format!("malformed 'tags' parameter, cannot unmarshal JSON: {e}"))?;
        return map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Ok((k, v.to_string())),
                _ => Err(format!("malformed 'tags' parameter: the value of {k:?} is not a string")),
            })
            .collect();
    }
    parse_logfmt(trimmed)
}

fn parse_logfmt(text: &str) -> Result<Vec<(String, String)>, String> {
    let bad = || format!("malformed 'tags' parameter: {text:?} is neither a JSON map nor logfmt (key=value ...)");
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(bad)?;
        let key = &rest[..eq];
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad());
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut text_value = String::new();
            let mut chars = quoted.char_indices();
            let mut close = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => text_value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        close = Some(i);
                        break;
                    }
                    c => text_value.push(c),
                }
            }
            let close = close.ok_or_else(bad)?;
            value = text_value;
            rest = &quoted[close + 1..];
        } else {
            let stop = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..stop].to_owned();
            rest = &rest[stop..];
        }
        out.push((key.to_owned(), value));
        rest = rest.trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes()).into_owned().collect()
    }

    #[test]
    fn parses_a_ui_search() {
        let q = pairs(
            "service=api&operation=GET&tags=%7B%22http.status_code%22%3A%22500%22%7D&start=1700000000000000\
             &end=1700000001000000&minDuration=1.5ms&maxDuration=2s&limit=20&lookback=1h&prettyPrint=true",
        );
        let s = parse(&q, 0).unwrap();
        assert_eq!(s.conditions.service.as_deref(), Some("api"));
        assert_eq!(s.conditions.tags, vec![("http.status_code".to_owned(), "500".to_owned())]);
        assert_eq!(s.start_min, Some(1_700_000_000_000_000_000));
        assert_eq!(s.start_max, Some(1_700_000_001_000_000_000));
        assert_eq!(s.conditions.min_duration_nanos, Some(1_500_000));
        assert_eq!(s.limit, 20);
        let search = s.conditions.to_search(s.limit);
        assert!(search.exact, "a numeric tag value is an int attribute or a string one");
    }

    #[test]
    fn lookback_and_defaults() {
        let s = parse(&pairs("lookback=2h"), 10_000_000_000_000).unwrap();
        assert_eq!(s.start_min, Some(10_000_000_000_000 - 7_200_000_000_000));
        assert_eq!(s.start_max, None);
        assert_eq!(s.limit, DEFAULT_LIMIT);
        assert_eq!(parse(&pairs("limit=0"), 0).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(parse(&pairs("limit=999999"), 0).unwrap().limit, MAX_LIMIT);
        assert_eq!(parse(&pairs("lookback=custom"), 0).unwrap().start_min, None);
    }

    #[test]
    fn tags_in_every_form() {
        assert_eq!(
            parse_tags(r#"{"a":"1","b":true}"#).unwrap(),
            vec![("a".to_owned(), "1".to_owned()), ("b".to_owned(), "true".to_owned())]
        );
        assert_eq!(
            parse_tags(r#"error=true http.url="/a b" x=\"#).unwrap(),
            vec![
                ("error".to_owned(), "true".to_owned()),
                ("http.url".to_owned(), "/a b".to_owned()),
                ("x".to_owned(), "\\".to_owned()),
            ]
        );
        let s = parse(&pairs("tag=k:v:w"), 0).unwrap();
        assert_eq!(s.conditions.tags, vec![("k".to_owned(), "v:w".to_owned())]);
        let kind = SpanConditions { tags: vec![("span.kind".into(), "server".into())], ..Default::default() };
        let search = kind.to_search(5);
        assert!(search.exact && search.filter.kind == Some(2));
        let scope = SpanConditions { tags: vec![("otel.scope.name".into(), "lib".into())], ..Default::default() };
        assert!(!scope.to_search(5).exact, "scope tags are checked on the trace");
    }

    #[test]
    fn malformed_parameters_are_named() {
        for (query, needle) in [
            ("start=yesterday", "'start'"),
            ("end=1.5", "'end'"),
            ("minDuration=fast", "'minDuration'"),
            ("maxDuration=5", "'maxDuration'"),
            ("limit=ten", "'limit'"),
            ("lookback=forever", "'lookback'"),
            ("tags=%7Bbroken", "tags"),
            ("tags=%7B%22a%22%3A%5B1%5D%7D", "tags"),
            ("tags=no-equals-sign", "tags"),
            ("tag=novalue", "'tag'"),
            ("traceID=xyz", "traceID"),
            ("minDuration=2s&maxDuration=1s", "maxDuration"),
            ("start=2000&end=1000", "start"),
        ] {
            let err = parse(&pairs(query), 0).expect_err(query);
            assert!(err.contains(needle), "{query}: {err}");
        }
    }
}
