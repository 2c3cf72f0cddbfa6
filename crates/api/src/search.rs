//! Search and listings on the native API: `/api/v1/search`, `/api/v1/services`, `/api/v1/attributes`, and the
//! OpenAPI document of the whole native API.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_query::Query;
use clew_query::search::{AttrScope, SearchParams, kind_name};
use serde_json::{Value, json};

use crate::ApiError;
use crate::native::tenant;

/// The OpenAPI 3 document of `/api/v1`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Default and largest number of values `/attributes/{key}/values` returns.
const DEFAULT_VALUES: usize = 20;
const MAX_VALUES: usize = 1000;

pub(crate) fn router() -> Router<Query> {
    Router::new()
        .route("/search", get(search))
        .route("/services", get(services))
        .route("/services/{service}/operations", get(operations))
        .route("/attributes", get(attributes))
        .route("/attributes/{key}/values", get(attribute_values))
        .route("/openapi.json", get(openapi))
}

fn pairs(query: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()).into_owned().collect()
}

/// Reads the search parameters; `attr` may repeat, every other parameter may not.
fn search_params(query: &Option<String>) -> Result<SearchParams, ApiError> {
    let mut params = SearchParams::default();
    for (key, value) in pairs(query) {
        let slot = match key.as_str() {
            "attr" => {
                params.attrs.push(value);
                continue;
            }
            "service" => &mut params.service,
            "name" => &mut params.name,
            "kind" => &mut params.kind,
            "status" => &mut params.status,
            "minDuration" => &mut params.min_duration,
            "maxDuration" => &mut params.max_duration,
            "start" => &mut params.start,
            "end" => &mut params.end,
            "limit" => &mut params.limit,
            "cursor" => &mut params.cursor,
            _ => return Err(ApiError::bad_request(format!("unknown parameter {key:?}"))),
        };
        if slot.replace(value).is_some() {
            return Err(ApiError::bad_request(format!("parameter {key} given twice")));
        }
    }
    Ok(params)
}

/// `GET /api/v1/search`: traces with a span matching every condition, newest first.
async fn search(State(query): State<Query>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Result<Response, ApiError> {
    let tenant = tenant(&headers)?;
    let request = search_params(&raw)?.to_request().map_err(|e| ApiError::bad_request(e.to_string()))?;
    let page = query.search(&tenant, &request).await.map_err(ApiError::internal)?;
    let traces: Vec<Value> = page
        .traces
        .iter()
        .map(|t| {
            json!({
                "traceId": t.trace_id.to_string(),
                "rootServiceName": t.root_service,
                "rootSpanName": t.root_name,
                "startTimeUnixNano": t.start_unix_nano.to_string(),
                "durationNanos": t.duration_nanos.to_string(),
                "spanCount": t.span_count,
                "errorCount": t.error_count,
                "services": t.services,
                "matchedSpans": t.matched_spans,
            })
        })
        .collect();
    let next = page.next.map(|c| c.encode());
    Ok(axum::Json(json!({ "traces": traces, "nextCursor": next })).into_response())
}

/// `GET /api/v1/services`
async fn services(State(query): State<Query>, headers: HeaderMap) -> Result<Response, ApiError> {
    let tenant = tenant(&headers)?;
    let services = query.services(&tenant).await.map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "services": services })).into_response())
}

/// `GET /api/v1/services/{service}/operations`
async fn operations(
    State(query): State<Query>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers)?;
    let operations = query.operations(&tenant, &service).await.map_err(ApiError::internal)?;
    let operations: Vec<Value> =
        operations.iter().map(|o| json!({ "name": o.name, "kind": kind_name(o.kind) })).collect();
    Ok(axum::Json(json!({ "operations": operations })).into_response())
}

/// `GET /api/v1/attributes`
async fn attributes(State(query): State<Query>, headers: HeaderMap) -> Result<Response, ApiError> {
    let tenant = tenant(&headers)?;
    let keys = query.attribute_keys(&tenant).await.map_err(ApiError::internal)?;
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let scope = match k.scope {
                AttrScope::Span => "span",
                AttrScope::Resource => "resource",
            };
            json!({ "key": k.key, "scope": scope })
        })
        .collect();
    Ok(axum::Json(json!({ "attributes": keys })).into_response())
}

/// `GET /api/v1/attributes/{key}/values?limit=N`
async fn attribute_values(
    State(query): State<Query>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers)?;
    let mut limit = DEFAULT_VALUES;
    for (name, value) in pairs(&raw) {
        match name.as_str() {
            "limit" => {
                limit = value.parse().ok().filter(|n| (1..=MAX_VALUES).contains(n)).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid parameter limit: {value:?} is not a number from 1 to {MAX_VALUES}"
                    ))
                })?;
            }
            _ => return Err(ApiError::bad_request(format!("unknown parameter {name:?}"))),
        }
    }
    let values = query.attribute_values(&tenant, &key, limit).await.map_err(ApiError::internal)?;
    let values: Vec<Value> = values.iter().map(|v| json!({ "value": v.value, "count": v.count })).collect();
    Ok(axum::Json(json!({ "values": values })).into_response())
}

/// `GET /api/v1/openapi.json`
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_covers_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        for (path, method) in [
            ("/api/v1/traces/{traceId}", "get"),
            ("/api/v1/flush", "post"),
            ("/api/v1/blocks", "get"),
            ("/api/v1/search", "get"),
            ("/api/v1/services", "get"),
            ("/api/v1/services/{service}/operations", "get"),
            ("/api/v1/attributes", "get"),
            ("/api/v1/attributes/{key}/values", "get"),
            ("/api/v1/openapi.json", "get"),
            ("/api/v1/traces/{traceId}/critical-path", "get"),
            ("/api/v1/traces/{traceId}/stats", "get"),
            ("/api/v1/traceql", "get"),
            ("/api/v1/sampling", "get"),
            ("/api/v1/sampling/traces/{traceId}", "get"),
            ("/api/v1/alerts", "get"),
        ] {
            assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not documented");
        }
        assert_eq!(paths.len(), 15, "every documented path is a route");
        let search = &paths["/api/v1/search"]["get"]["parameters"];
        let names: Vec<&str> = search.as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
        for name in [
            "service",
            "name",
            "attr",
            "kind",
            "status",
            "minDuration",
            "maxDuration",
            "start",
            "end",
            "limit",
            "cursor",
        ] {
            assert!(names.contains(&name), "search parameter {name} is not documented");
        }
    }

    #[test]
    fn search_parameters_repeat_only_attr() {
        let raw = Some("attr=a%3D1&attr=b%3E2&service=x%20y".to_owned());
        let params = search_params(&raw).unwrap();
        assert_eq!(params.attrs, vec!["a=1", "b>2"]);
        assert_eq!(params.service.as_deref(), Some("x y"));
        assert!(search_params(&Some("service=a&service=b".into())).is_err());
        assert!(search_params(&Some("bogus=1".into())).is_err());
    }
}
