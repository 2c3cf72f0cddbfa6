//! `frontend`: the entry point. `POST /api/orders` verifies the session and loads the cart, then checks out;
//! any failure behind it becomes a vague 500, as user-facing services do. `/scenarios` switches the failures
//! (not traced: it is the demo's control panel, not part of the shop).

use axum::extract::{Extension, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::Shop;
use crate::propagation::Format;
use crate::scenario::Scenario;
use crate::web::{Call, CallError, RequestId, call};

const SERVICE: &str = "frontend";

pub fn router(shop: Shop, port: u16) -> Router {
    let orders = super::traced(
        Router::new().route("/api/orders", post(place_order)).with_state(shop.clone()),
        SERVICE,
        Format::W3c,
        port,
    );
    let control = Router::new()
        .route("/scenarios", get(list_scenarios))
        .route("/scenarios/{name}", post(switch_scenario).delete(switch_off))
        .with_state(shop);
    orders.merge(control)
}

#[derive(Deserialize)]
struct Order {
    user: String,
    items: Vec<i64>,
}

fn vague_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "Something went wrong. Please try again later."})))
        .into_response()
}

async fn place_order(
    State(shop): State<Shop>,
    request_id: Option<Extension<RequestId>>,
    Json(order): Json<Order>,
) -> Response {
    let request_id = request_id.map(|Extension(RequestId(id))| id);
    let span = tracing::Span::current();
    span.set_attribute(
        "app.fanout",
        if shop.scenarios.is_on(Scenario::SequentialCalls) { "sequential" } else { "parallel" },
    );
    tracing::info!(user = %order.user, items = order.items.len(), "placing an order");
    let addresses = shop.addresses.clone();
    let rid = request_id.as_deref();
    let auth_call =
        Call::new(SERVICE, "auth", Format::W3c, Method::POST, &addresses.auth).path("/verify").request_id(rid);
    let cart_call = Call::new(SERVICE, "cart", Format::B3, Method::GET, &addresses.cart)
        .path(format!("/cart/{}", order.user))
        .request_id(rid);
    let session = json!({"user": order.user});
    let (auth, cart) = if shop.scenarios.is_on(Scenario::SequentialCalls) {
        let auth = call(&shop.client, auth_call, Some(&session)).await;
        let cart = call(&shop.client, cart_call, None).await;
        (auth, cart)
    } else {
        tokio::join!(call(&shop.client, auth_call, Some(&session)), call(&shop.client, cart_call, None))
    };
    if let Err(err) = auth.and(cart) {
        tracing::error!("could not prepare the order: {err}");
        return vague_error();
    }
    let checkout_call = Call::new(SERVICE, "checkout", Format::W3c, Method::POST, &addresses.checkout)
        .path("/checkout")
        .request_id(rid);
    let body = json!({"user": order.user, "items": order.items});
    match call(&shop.client, checkout_call, Some(&body)).await {
        Ok(receipt) => {
            tracing::info!(order = %receipt["order_id"], "order placed");
            Json(receipt).into_response()
        }
        Err(CallError { status, message }) => {
            tracing::error!(status, "checkout failed: {message}");
            vague_error()
        }
    }
}

async fn list_scenarios(State(shop): State<Shop>) -> Json<Value> {
    let list: Vec<Value> = Scenario::ALL
        .into_iter()
        .map(|s| json!({"name": s.name(), "enabled": shop.scenarios.is_on(s), "description": s.description(), "traceql": s.traceql()}))
        .collect();
    Json(json!({"scenarios": list}))
}

#[derive(Deserialize)]
struct Switch {
    enabled: Option<String>,
}

async fn switch_scenario(State(shop): State<Shop>, Path(name): Path<String>, Query(switch): Query<Switch>) -> Response {
    let on = match switch.enabled.as_deref() {
        None | Some("true") | Some("on") | Some("1") => true,
        Some("false") | Some("off") | Some("0") => false,
        Some(other) => {
            let message = format!("enabled must be true or false, not {other:?}");
            return (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response();
        }
    };
    set(shop, &name, on)
}

async fn switch_off(State(shop): State<Shop>, Path(name): Path<String>) -> Response {
    set(shop, &name, false)
}

fn set(shop: Shop, name: &str, on: bool) -> Response {
    let Some(scenario) = Scenario::parse(name) else {
        let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        let message = format!("unknown scenario {name:?}; known: {}", known.join(", "));
        return (StatusCode::NOT_FOUND, Json(json!({"error": message}))).into_response();
    };
    let was_on = shop.scenarios.is_on(scenario);
    shop.scenarios.set(scenario, on);
    if on && !was_on {
        (shop.announce)(scenario);
    }
    Json(json!({"name": scenario.name(), "enabled": on})).into_response()
}
