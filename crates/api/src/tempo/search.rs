//! `GET /api/search`: TraceQL (`q`) or tag search (`tags`, logfmt, turned into TraceQL), with `minDuration`,
//! `maxDuration` (whole trace), `limit` (default 20), `start`/`end` (Unix seconds) and `spss` (spans per spanset,
//! default 3), answered in Tempo's shape.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use clew_query::Query;
use clew_query::search::{parse_duration, parse_time};
use clew_query::traceql::{DEFAULT_SPSS, MAX_LIMIT, TraceQlError, TraceQlRequest};
use serde_json::json;

use super::{TempoError, tenant};
use crate::traceql_json::tempo_trace;

pub(super) async fn search(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, TempoError> {
    let tenant = tenant(&headers)?;
    let params = Params::parse(raw.as_deref().unwrap_or_default())?;
    let result = query.traceql(&tenant, &params.request).await.map_err(|err| match err {
        TraceQlError::Parse(e) => TempoError::bad_request(format!("invalid TraceQL query: {e}")),
        TraceQlError::Store(e) => TempoError::internal(e),
    })?;
    let traces: Vec<_> = result.traces.iter().map(|t| tempo_trace(t, params.spss)).collect();
    let body = json!({
        "traces": traces,
        "metrics": {
            "inspectedTraces": result.inspected_traces,
            "inspectedBytes": "0",
            "completedJobs": 1,
            "totalJobs": 1,
        },
    });
    Ok(axum::Json(body).into_response())
}

struct Params {
    request: TraceQlRequest,
    spss: usize,
}

impl Params {
    fn parse(raw: &str) -> Result<Self, TempoError> {
        let mut request = TraceQlRequest::new("{ }");
        let mut spss = DEFAULT_SPSS;
        let (mut q, mut tags) = (None, None);
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let bad = |what: String| TempoError::bad_request(format!("invalid {key}: {what}"));
            match key.as_ref() {
                "q" => q = Some(value.into_owned()),
                "tags" => tags = Some(value.into_owned()),
                "minDuration" => request.min_trace_duration_nanos = Some(parse_duration(&value).map_err(bad)?),
                "maxDuration" => request.max_trace_duration_nanos = Some(parse_duration(&value).map_err(bad)?),
                "limit" => {
                    let limit: usize = value.parse().map_err(|_| bad(format!("{value:?} is not a number")))?;
                    if limit == 0 || limit > MAX_LIMIT {
                        return Err(bad(format!("must be between 1 and {MAX_LIMIT}")));
                    }
                    request.limit = limit;
                }
                "spss" => spss = value.parse().map_err(|_| bad(format!("{value:?} is not a number")))?,
                "start" => request.start_min_unix_nano = Some(parse_time(&value).map_err(bad)?),
                "end" => request.start_max_unix_nano = Some(parse_time(&value).map_err(bad)?),
                _ => {}
            }
        }
        if let (Some(min), Some(max)) = (request.start_min_unix_nano, request.start_max_unix_nano)
            && min > max
        {
            return Err(TempoError::bad_request("invalid start: start must not be after end"));
        }
        request.query = match (q, tags) {
            (Some(q), _) if !q.trim().is_empty() => q,
            (_, Some(tags)) => tags_to_traceql(&tags)?,
            _ => "{ }".to_owned(),
        };
        Ok(Self { request, spss })
    }
}

/// Tempo's tag search (`service.name=frontend http.status_code=500 name="GET /"`) as one TraceQL spanset
/// filter: every tag must hold on one span. Numbers also match the same digits as a string.
fn tags_to_traceql(tags: &str) -> Result<String, TempoError> {
    let mut conditions = Vec::new();
    for (key, value) in logfmt(tags)? {
        let quoted = format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""));
        conditions.push(match key.as_str() {
            "name" => format!("name = {quoted}"),
            "status" => format!("status = {value}"),
            "service.name" => format!("resource.service.name = {quoted}"),
            _ => {
                let field = if key.chars().all(|c| c.is_alphanumeric() || "._-/".contains(c)) {
                    format!(".{key}")
                } else {
                    format!(".\"{}\"", key.replace('"', "\\\""))
                };
                if value.parse::<f64>().is_ok() || value == "true" || value == "false" {
                    format!("({field} = {value} || {field} = {quoted})")
                } else {
                    format!("{field} = {quoted}")
                }
            }
        });
    }
    Ok(format!("{{ {} }}", if conditions.is_empty() { "true".to_owned() } else { conditions.join(" && ") }))
}

/// `k=v k2="v 2"` pairs.
fn logfmt(text: &str) -> Result<Vec<(String, String)>, TempoError> {
    let mut out = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(TempoError::bad_request(format!("invalid tags: {text:?} is not logfmt (key=value ...)")));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(TempoError::bad_request(format!("invalid tags: unterminated quote in {text:?}")));
            }
        } else {
            value = chars.by_ref().take_while(|c| !c.is_whitespace()).collect();
        }
        out.push((key, value));
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_one_spanset_filter() {
        let q = tags_to_traceql(r#"service.name=frontend http.status_code=500 name="GET /a b" status=error"#).unwrap();
        assert_eq!(
            q,
            r#"{ resource.service.name = "frontend" && (.http.status_code = 500 || .http.status_code = "500") && name = "GET /a b" && status = error }"#
        );
        clew_traceql::parse(&q).expect("valid TraceQL");
        assert!(tags_to_traceql("=x").is_err());
        assert!(tags_to_traceql("a=\"open").is_err());
        assert_eq!(tags_to_traceql("").unwrap(), "{ true }");
    }
}
