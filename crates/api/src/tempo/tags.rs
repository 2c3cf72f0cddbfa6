//! Tag names and values: `/api/search/tags`, `/api/v2/search/tags`, `/api/search/tag/{tag}/values` and
//! `/api/v2/search/tag/{tag}/values`.
//!
//! v1 names are bare attribute keys; v2 names are grouped by scope (`resource`, `span`, `intrinsic`) and v2 values
//! are typed. A v2 tag is a TraceQL attribute (`resource.service.name`, `span.http.method`, `.key`) or an intrinsic
//! (`name`, `status`, `kind`).

use std::collections::BTreeSet;

use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use clew_query::Query;
use clew_query::search::AttrScope;
use serde_json::{Value, json};

use super::{TempoError, tenant};

/// Intrinsics listed under the `intrinsic` scope, as Tempo does.
const INTRINSICS: [&str; 8] =
    ["duration", "event:name", "kind", "name", "rootName", "rootServiceName", "status", "statusMessage"];
const DEFAULT_VALUES: usize = 1000;

#[derive(serde::Deserialize)]
pub(super) struct TagsParams {
    scope: Option<String>,
}

pub(super) async fn names_v1(State(query): State<Query>, headers: HeaderMap) -> Result<Response, TempoError> {
    let keys = query.attribute_keys(&tenant(&headers)?).await.map_err(TempoError::internal)?;
    let names: BTreeSet<String> = keys.into_iter().map(|k| k.key).collect();
    Ok(axum::Json(json!({ "tagNames": names })).into_response())
}

pub(super) async fn names_v2(
    State(query): State<Query>,
    UrlQuery(params): UrlQuery<TagsParams>,
    headers: HeaderMap,
) -> Result<Response, TempoError> {
    let scope = params.scope.as_deref().unwrap_or("all");
    if !["all", "", "resource", "span", "intrinsic", "event", "link", "instrumentation"].contains(&scope) {
        return Err(TempoError::bad_request(format!("invalid scope: {scope}")));
    }
    let keys = query.attribute_keys(&tenant(&headers)?).await.map_err(TempoError::internal)?;
    let of = |wanted: AttrScope| -> BTreeSet<&str> {
        keys.iter().filter(|k| k.scope == wanted).map(|k| k.key.as_str()).collect()
    };
    let mut scopes: Vec<Value> = Vec::new();
    let all = scope == "all" || scope.is_empty();
    if all || scope == "resource" {
        scopes.push(json!({ "name": "resource", "tags": of(AttrScope::Resource) }));
    }
    if all || scope == "span" {
        scopes.push(json!({ "name": "span", "tags": of(AttrScope::Span) }));
    }
    if all || scope == "intrinsic" {
        scopes.push(json!({ "name": "intrinsic", "tags": INTRINSICS }));
    }
    for other in ["event", "link", "instrumentation"] {
        if scope == other {
            scopes.push(json!({ "name": other, "tags": [] }));
        }
    }
    Ok(axum::Json(json!({ "scopes": scopes, "metrics": {} })).into_response())
}

/// What a v2 tag name refers to.
enum Tag<'a> {
    Attribute(&'a str),
    Intrinsic(&'a str),
}

fn parse_v2_tag(tag: &str) -> Result<Tag<'_>, TempoError> {
    for prefix in ["resource.", "span.", "."] {
        if let Some(key) = tag.strip_prefix(prefix) {
            return Ok(Tag::Attribute(key));
        }
    }
    let intrinsic = tag.strip_prefix("span:").or_else(|| tag.strip_prefix("trace:")).unwrap_or(tag);
    match intrinsic {
        "name" | "status" | "kind" | "statusMessage" | "rootName" | "rootServiceName" | "duration" => {
            Ok(Tag::Intrinsic(intrinsic))
        }
        _ => Err(TempoError::bad_request(format!(
            "invalid tag: {tag} (use a scoped attribute like span.http.method, resource.service.name, .key, or an intrinsic)"
        ))),
    }
}

pub(super) async fn values_v1(
    State(query): State<Query>,
    Path(tag): Path<String>,
    headers: HeaderMap,
) -> Result<Response, TempoError> {
    let values =
        query.attribute_values(&tenant(&headers)?, &tag, DEFAULT_VALUES).await.map_err(TempoError::internal)?;
    let mut values: Vec<String> = values.into_iter().map(|v| v.value).collect();
    values.sort();
    Ok(axum::Json(json!({ "tagValues": values, "metrics": {} })).into_response())
}

pub(super) async fn values_v2(
    State(query): State<Query>,
    Path(tag): Path<String>,
    headers: HeaderMap,
) -> Result<Response, TempoError> {
    let tenant = tenant(&headers)?;
    let typed: Vec<Value> = match parse_v2_tag(&tag)? {
        Tag::Attribute(key) => {
            let values = query.attribute_values(&tenant, key, DEFAULT_VALUES).await.map_err(TempoError::internal)?;
            values.into_iter().map(|v| json!({ "type": value_type(&v.value), "value": v.value })).collect()
        }
        Tag::Intrinsic("status") => {
            ["error", "ok", "unset"].iter().map(|s| json!({ "type": "keyword", "value": s })).collect()
        }
        Tag::Intrinsic("kind") => ["client", "consumer", "internal", "producer", "server", "unspecified"]
            .iter()
            .map(|s| json!({ "type": "keyword", "value": s }))
            .collect(),
        Tag::Intrinsic("name" | "rootName") => {
            let mut names = BTreeSet::new();
            for service in query.services(&tenant).await.map_err(TempoError::internal)? {
                for op in query.operations(&tenant, &service).await.map_err(TempoError::internal)? {
                    names.insert(op.name);
                }
            }
            names.into_iter().map(|n| json!({ "type": "string", "value": n })).collect()
        }
        Tag::Intrinsic("rootServiceName") => {
            let services = query.services(&tenant).await.map_err(TempoError::internal)?;
            services.into_iter().map(|s| json!({ "type": "string", "value": s })).collect()
        }
        Tag::Intrinsic(_) => Vec::new(),
    };
    Ok(axum::Json(json!({ "tagValues": typed, "metrics": {} })).into_response())
}

/// Values come back as text; the type is what TraceQL would compare them as.
fn value_type(value: &str) -> &'static str {
    if value.parse::<i64>().is_ok() {
        "int"
    } else if value.parse::<f64>().is_ok() {
        "float"
    } else if value == "true" || value == "false" {
        "bool"
    } else {
        "string"
    }
}
