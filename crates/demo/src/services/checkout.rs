//! `checkout`: reserves the items in `inventory` (over Jaeger headers), charges through `payment`, then publishes
//! the order on the queue for `shipping` and `email`.

use axum::extract::{Extension, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::Shop;
use crate::propagation::Format;
use crate::scenario::Scenario;
use crate::web::{Call, RequestId, call};

const SERVICE: &str = "checkout";

pub fn router(shop: Shop) -> Router {
    Router::new().route("/checkout", post(checkout)).with_state(shop)
}

fn bad_gateway(message: String) -> Response {
    (StatusCode::BAD_GATEWAY, Json(json!({"error": message}))).into_response()
}

async fn checkout(
    State(shop): State<Shop>,
    request_id: Option<Extension<RequestId>>,
    Json(order): Json<Value>,
) -> Response {
    let request_id = request_id.map(|Extension(RequestId(id))| id);
    let rid = request_id.as_deref();
    let reserve = Call::new(SERVICE, "inventory", Format::Jaeger, Method::POST, &shop.addresses.inventory)
        .path("/reserve")
        .request_id(rid);
    let reservation = match call(&shop.client, reserve, Some(&json!({"items": order["items"]}))).await {
        Ok(reservation) => reservation,
        Err(err) => {
            tracing::error!("reservation failed: {err}");
            return bad_gateway(format!("reservation failed: {err}"));
        }
    };
    // The legacy payment client of the broken-context scenario forwards the correlation id but no trace context.
    let format = if shop.scenarios.is_on(Scenario::BrokenContext) { Format::Dropped } else { Format::W3c };
    let charge =
        Call::new(SERVICE, "payment", format, Method::POST, &shop.addresses.payment).path("/charge").request_id(rid);
    let amount = reservation["total_cents"].as_i64().unwrap_or(0);
    let payment = match call(&shop.client, charge, Some(&json!({"amount_cents": amount}))).await {
        Ok(payment) => payment,
        Err(err) => {
            tracing::error!("payment failed: {err}");
            return bad_gateway(format!("payment failed: {err}"));
        }
    };
    let order_id = format!("ord-{:010}", super::backends::jitter(10_000_000_000));
    let message = json!({"order_id": order_id, "user": order["user"], "items": order["items"], "amount_cents": amount});
    shop.queue.publish(SERVICE, &order_id, message, rid);
    tracing::info!(order_id, "order confirmed");
    Json(json!({"order_id": order_id, "amount_cents": amount, "charge": payment["charge"]})).into_response()
}
