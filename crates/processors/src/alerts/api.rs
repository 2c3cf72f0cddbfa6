//! `GET /api/v1/alerts` on the query port: every rule, its state (inactive, pending, firing), since when, its
//! latest value and example traces; and the webhooks' delivery counts.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::routing::get;

use super::Alerts;

pub fn router(alerts: Arc<Alerts>) -> axum::Router {
    axum::Router::new().route("/api/v1/alerts", get(overview)).with_state(alerts)
}

async fn overview(State(alerts): State<Arc<Alerts>>) -> Json<serde_json::Value> {
    Json(alerts.overview())
}
