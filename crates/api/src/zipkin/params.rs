//! Parameters of Zipkin's `GET /api/v2/traces`, checked as Zipkin's `QueryRequest` checks them, and the span
//! conditions they make (matched against the Zipkin form of each span, so tags compare as text).

use clew_query::search::Literal;

use super::model::Span;
use crate::trace_search::{Alt, Pushdown, TraceSearch};

/// Zipkin's default number of traces.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 1000;

/// Tags the translation reads from a span's scope, trace state, links and address attributes: only the Zipkin
/// form of the span tells.
const VERIFIED_TAGS: &[&str] = &[
    "otel.status_description",
    "otel.scope.name",
    "otel.scope.version",
    "w3c.tracestate",
    "net.peer.ip",
    "net.peer.port",
    "network.peer.address",
    "network.peer.port",
    "net.host.ip",
    "net.host.port",
    "network.local.address",
    "network.local.port",
];

/// How a Zipkin tag condition reads in the store's terms.
fn pushdown(key: &str, value: &str) -> Pushdown {
    match key {
        // Made from the status (an attribute of that name is replaced or dropped).
        "error" => Pushdown::Exact(if value == "true" { vec![Alt::Status(2)] } else { vec![] }),
        "otel.status_code" => Pushdown::Exact(match value {
            "OK" => vec![Alt::Status(1)],
            "ERROR" => vec![Alt::Status(2)],
            _ => vec![],
        }),
        "span.kind" if value == "internal" => Pushdown::Exact(vec![Alt::Kind(1)]),
        // Becomes the remote endpoint, never a tag.
        "peer.service" => Pushdown::Exact(vec![]),
        _ if key.is_empty() || key.starts_with("otlp.link.") || VERIFIED_TAGS.contains(&key) => Pushdown::Verify,
        _ => Pushdown::Exact(Alt::text(key, value)),
    }
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct TracesRequest {
    pub service: Option<String>,
    pub remote_service: Option<String>,
    pub span_name: Option<String>,
    /// `key=value` terms of `annotationQuery`.
    pub tags: Vec<(String, String)>,
    /// Bare terms: an annotation value or a tag key.
    pub words: Vec<String>,
    /// Microseconds.
    pub min_duration: Option<u64>,
    pub max_duration: Option<u64>,
    /// Unix milliseconds.
    pub end_ts: u64,
    pub lookback: Option<u64>,
    pub limit: usize,
}

fn positive(name: &str, value: &str) -> Result<u64, String> {
    match value.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n as u64),
        Ok(_) => Err(format!("{name} <= 0")),
        Err(_) => Err(format!("{name} must be an integer, got {value:?}")),
    }
}

/// Parses the query string; `now_ms` is the default `endTs`.
pub(crate) fn parse(pairs: &[(String, String)], now_ms: u64) -> Result<TracesRequest, String> {
    let mut request = TracesRequest { end_ts: now_ms, limit: DEFAULT_LIMIT, ..TracesRequest::default() };
    let name = |value: &str| Some(value.to_owned()).filter(|v| !v.is_empty() && v != "all");
    for (key, value) in pairs {
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "serviceName" => request.service = name(value),
            "remoteServiceName" => request.remote_service = name(value),
            "spanName" => request.span_name = name(value),
            "annotationQuery" => parse_annotation_query(value, &mut request),
            "minDuration" => request.min_duration = Some(positive("minDuration", value)?),
            "maxDuration" => request.max_duration = Some(positive("maxDuration", value)?),
            "endTs" => request.end_ts = positive("endTs", value)?,
            "lookback" => request.lookback = Some(positive("lookback", value)?),
            "limit" => request.limit = (positive("limit", value)? as usize).min(MAX_LIMIT),
            _ => {}
        }
    }
    match (request.min_duration, request.max_duration) {
        (None, Some(_)) => return Err("maxDuration is only valid with minDuration".into()),
        (Some(min), Some(max)) if min > max => return Err("minDuration > maxDuration".into()),
        _ => {}
    }
    Ok(request)
}

/// `http.uri=/foo and retried`: terms joined by ` and `; a term with `=` constrains a tag, a bare one an
/// annotation value or a tag key.
fn parse_annotation_query(text: &str, request: &mut TracesRequest) {
    for term in text.split(" and ").map(str::trim).filter(|t| !t.is_empty()) {
        match term.split_once('=') {
            Some((key, value)) if !key.is_empty() => request.tags.push((key.to_owned(), value.to_owned())),
            _ => request.words.push(term.to_owned()),
        }
    }
}

impl TracesRequest {
    /// The store search: services, names and durations go down exactly, tags when they can be.
    pub(crate) fn to_search(&self) -> TraceSearch {
        let mut search = TraceSearch::new(self.limit);
        search.filter.service = self.service.clone();
        search.filter.name = self.span_name.clone();
        // A span's Zipkin duration is its nanoseconds truncated to microseconds, and at least 1.
        search.filter.min_duration_nanos =
            self.min_duration.map(|us| if us <= 1 { 1 } else { us.saturating_mul(1000).min(i64::MAX as u64) as i64 });
        search.filter.max_duration_nanos =
            self.max_duration.map(|us| us.saturating_mul(1000).saturating_add(999).min(i64::MAX as u64) as i64);
        if let Some(remote) = &self.remote_service {
            search.push(Pushdown::Exact(vec![Alt::attr("peer.service", Literal::Str(remote.clone()))]));
        }
        for (key, value) in &self.tags {
            search.push(pushdown(key, value));
        }
        if !self.words.is_empty() {
            search.push(Pushdown::Verify);
        }
        let end_nanos = self.end_ts.saturating_mul(1_000_000);
        search.start_max = Some(end_nanos);
        search.start_min = self.lookback.map(|lb| end_nanos.saturating_sub(lb.saturating_mul(1_000_000)));
        search
    }

    /// Whether one span meets every condition.
    pub(crate) fn matches(&self, spans: &[Span]) -> bool {
        spans.iter().any(|span| {
            let service = span.local_endpoint.as_ref().and_then(|e| e.service_name.as_deref());
            let remote = span.remote_endpoint.as_ref().and_then(|e| e.service_name.as_deref());
            self.service.as_deref().is_none_or(|s| Some(s) == service)
                && self.remote_service.as_deref().is_none_or(|s| Some(s) == remote)
                && self.span_name.as_deref().is_none_or(|n| Some(n) == span.name.as_deref())
                && self.min_duration.is_none_or(|min| span.duration.is_some_and(|d| d >= min))
                && self.max_duration.is_none_or(|max| span.duration.is_some_and(|d| d <= max))
                && self.tags.iter().all(|(k, v)| span.tags.get(k) == Some(v))
                && self
                    .words
                    .iter()
                    .all(|w| span.tags.contains_key(w) || span.annotations.iter().any(|a| a.value == *w))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::zipkin::model::{Annotation, Endpoint};

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes()).into_owned().collect()
    }

    #[test]
    fn parses_a_ui_query() {
        let r = parse(
            &pairs(
                "serviceName=frontend&spanName=all&annotationQuery=http.uri%3D%2Ffoo%20and%20retried\
                 &minDuration=100&maxDuration=2000&endTs=1700000000000&lookback=3600000&limit=5",
            ),
            0,
        )
        .unwrap();
        assert_eq!(r.service.as_deref(), Some("frontend"));
        assert_eq!(r.span_name, None, "`all` means any name");
        assert_eq!(r.tags, vec![("http.uri".to_owned(), "/foo".to_owned())]);
        assert_eq!(r.words, vec!["retried".to_owned()]);
        assert_eq!(r.limit, 5);
        let search = r.to_search();
        assert_eq!(search.start_max, Some(1_700_000_000_000_000_000));
        assert_eq!(search.start_min, Some(1_700_000_000_000_000_000 - 3_600_000_000_000));
        assert_eq!(search.filter.min_duration_nanos, Some(100_000));
        assert!(!search.exact);
        let defaults = parse(&[], 42).unwrap();
        assert_eq!((defaults.end_ts, defaults.limit, defaults.lookback), (42, DEFAULT_LIMIT, None));
    }

    #[test]
    fn malformed_parameters() {
        for (query, needle) in [
            ("limit=0", "limit"),
            ("limit=ten", "limit"),
            ("endTs=-5", "endTs"),
            ("lookback=soon", "lookback"),
            ("minDuration=1.5", "minDuration"),
            ("maxDuration=10", "maxDuration is only valid"),
            ("minDuration=10&maxDuration=5", "minDuration > maxDuration"),
        ] {
            let err = parse(&pairs(query), 1).expect_err(query);
            assert!(err.contains(needle), "{query}: {err}");
        }
    }

    #[test]
    fn matches_the_zipkin_view() {
        let span = Span {
            trace_id: "a".repeat(16),
            parent_id: None,
            id: "b".repeat(16),
            kind: Some("SERVER"),
            name: Some("get".into()),
            timestamp: Some(1),
            duration: Some(150),
            local_endpoint: Some(Endpoint { service_name: Some("api".into()), ..Endpoint::default() }),
            remote_endpoint: Some(Endpoint { service_name: Some("db".into()), ..Endpoint::default() }),
            annotations: vec![Annotation { timestamp: 1, value: "retried".into() }],
            tags: BTreeMap::from([("http.status_code".into(), "500".into()), ("error".into(), "true".into())]),
        };
        let check = |query: &str| parse(&pairs(query), 1).unwrap().matches(std::slice::from_ref(&span));
        assert!(check("serviceName=api&remoteServiceName=db&spanName=get"));
        assert!(check("annotationQuery=http.status_code%3D500%20and%20error%20and%20retried"));
        assert!(check("minDuration=150&maxDuration=150"));
        assert!(!check("minDuration=151"));
        assert!(!check("annotationQuery=http.status_code%3D200"));
        assert!(!check("annotationQuery=missing"));
        assert!(!check("remoteServiceName=cache"));
    }
}
