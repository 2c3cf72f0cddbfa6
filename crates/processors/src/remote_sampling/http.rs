//! Jaeger's remote sampling HTTP endpoint: `GET /sampling?service=NAME` and `GET /api/sampling?service=NAME`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::RemoteSampling;

/// The routes of the sampling port (Jaeger's 5778).
pub fn router(sampling: Arc<RemoteSampling>) -> axum::Router {
    axum::Router::new().route("/sampling", get(strategy)).route("/api/sampling", get(strategy)).with_state(sampling)
}

async fn strategy(
    State(sampling): State<Arc<RemoteSampling>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let mut services = params.iter().filter(|(k, _)| k == "service").map(|(_, v)| v);
    let (Some(service), None) = (services.next(), services.next()) else {
        // Jaeger's exact answer.
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "'service' parameter must be provided once\n",
        )
            .into_response();
    };
    match serde_json::to_vec(&sampling.strategy(service)) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the strategy: {err}\n")).into_response(),
    }
}
