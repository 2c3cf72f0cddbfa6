//! Clew's sampling API, served on the sampling port next to Jaeger's `/sampling`:
//! - `GET /api/v1/sampling`: the tail and remote sampling configuration in effect (the TOML sections as JSON)
//!   and the tail sampler's per-policy decision counts;
//! - `GET /api/v1/sampling/traces/{traceId}`: why a trace was kept or dropped (`X-Scope-OrgID` picks the tenant):
//!   from the sampler's decision caches, else from the decision stored with the trace (after a restart, or once
//!   the caches forgot it).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_model::{SamplingDecision, Tenant, TraceId};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{TailSampler, TailSamplingConfig};
use crate::remote_sampling::RemoteSampling;

/// Reads the decision stored with a kept trace (the store's `sampling_decision`).
pub type StoredDecisions =
    Arc<dyn Fn(Tenant, TraceId) -> BoxFuture<'static, Result<Option<SamplingDecision>, String>> + Send + Sync>;

#[derive(Clone)]
struct ApiState {
    /// The configuration in effect, also when tail sampling is off (then `tail` is `None`).
    tail_config: Arc<TailSamplingConfig>,
    tail: Option<Arc<TailSampler>>,
    remote: Arc<RemoteSampling>,
    stored: Option<StoredDecisions>,
}

pub fn router(
    tail_config: TailSamplingConfig,
    tail: Option<Arc<TailSampler>>,
    remote: Arc<RemoteSampling>,
    stored: Option<StoredDecisions>,
) -> axum::Router {
    let state = ApiState { tail_config: Arc::new(tail_config), tail, remote, stored };
    axum::Router::new()
        .route("/api/v1/sampling", get(overview))
        .route("/api/v1/sampling/traces/{trace_id}", get(trace_decision))
        .with_state(state)
}

async fn overview(State(state): State<ApiState>) -> Response {
    let mut tail = json!({
        "enabled": state.tail.is_some(),
        "config": &*state.tail_config,
    });
    if let Some(sampler) = &state.tail {
        let counts = sampler.counts();
        let policies: Vec<Value> = (counts.policies.iter().zip(&state.tail_config.policies))
            .map(|(counted, configured)| {
                let mut entry = json!(counted);
                entry["type"] = json!(configured.kind);
                entry
            })
            .collect();
        tail["policies"] = Value::Array(policies);
        tail["noPolicy"] = json!(counts.no_policy);
        tail["waitingTraces"] = json!(counts.waiting_traces);
        tail["evictions"] = json!(counts.evictions);
        tail["lateSpans"] = json!(counts.late_spans);
    }
    let remote = json!({
        "config": state.remote.config(),
        "adaptive": state.remote.adaptive().is_some(),
    });
    Json(json!({ "tailSampling": tail, "remoteSampling": remote })).into_response()
}

async fn trace_decision(State(state): State<ApiState>, Path(trace_id): Path<String>, headers: HeaderMap) -> Response {
    let header = headers.get("x-scope-orgid").map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let tenant = match Tenant::from_header(header) {
        Ok(tenant) => tenant,
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("invalid X-Scope-OrgID header: {err}")),
    };
    let id = match TraceId::parse_hex(&trace_id) {
        Ok(id) => id,
        Err(err) => return error(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let answer = |sampled: bool, policy: Option<&str>, weight: f64, threshold: Option<&str>, source: &str| {
        Json(json!({
            "traceId": id.to_string(),
            "sampled": sampled,
            "policy": policy,
            "weight": weight,
            "threshold": threshold,
            "source": source,
        }))
        .into_response()
    };
    if let Some(sampler) = &state.tail {
        if let Some(d) = sampler.decision(&tenant, &id) {
            return answer(d.sampled, d.policy.as_deref(), d.weight, d.threshold.as_deref(), "sampler");
        }
        if sampler.is_waiting(&tenant, &id) {
            return error(StatusCode::NOT_FOUND, format!("trace {id} is waiting for its sampling decision"));
        }
    }
    // Kept traces carry their decision in storage, also after tail sampling was turned off.
    if let Some(stored) = &state.stored {
        match stored(tenant, id).await {
            Ok(Some(d)) => return answer(true, d.policy.as_deref(), d.weight, d.threshold.as_deref(), "stored"),
            Ok(None) => {}
            Err(err) => return error(StatusCode::INTERNAL_SERVER_ERROR, err),
        }
    }
    match &state.tail {
        None => error(StatusCode::NOT_FOUND, format!("tail sampling is off and no decision is stored for trace {id}")),
        Some(_) => error(StatusCode::NOT_FOUND, format!("no sampling decision known for trace {id}")),
    }
}

/// The same error body as the query API: `{"error": {"code": .., "message": ..}}`.
fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": { "code": status.as_u16(), "message": message } }))).into_response()
}
