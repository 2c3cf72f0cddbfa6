//! The small services: `auth`, `cart` (with an in-memory cache), `payment`, the external `payment-provider` and
//! `fraud-check`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tracing::Instrument;
use tracing::field::Empty;

use super::Shop;
use crate::propagation::Format;
use crate::scenario::Scenario;
use crate::web::{Call, REQUEST_ID_HEADER, RequestId, call};

/// A pseudo-random number in `0..n` (spread of latencies; no need for a real generator).
pub fn jitter(n: u64) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) % n.max(1)
}

async fn work(base_ms: u64, jitter_ms: u64) {
    tokio::time::sleep(Duration::from_millis(base_ms + jitter(jitter_ms))).await;
}

pub fn auth() -> Router {
    Router::new().route(
        "/verify",
        post(|Json(session): Json<Value>| async move {
            work(3, 8).await;
            tracing::info!(user = %session["user"], "session verified");
            Json(json!({"user": session["user"], "valid": true}))
        }),
    )
}

/// Carts by user, in a process-local cache that forgets entries now and then.
type CartCache = Arc<Mutex<HashMap<String, Vec<i64>>>>;

pub fn cart() -> Router {
    Router::new().route("/cart/{user}", get(load_cart)).with_state(CartCache::default())
}

async fn load_cart(State(cache): State<CartCache>, Path(user): Path<String>) -> Json<Value> {
    let span = tracing::info_span!(
        "cache",
        otel.name = "cache get",
        otel.kind = "internal",
        shop.service = "cart",
        cache.key = %format!("cart:{user}"),
        cache.hit = Empty,
    );
    let cached = span.in_scope(|| {
        let mut cache = cache.lock().expect("cart cache lock");
        if jitter(10) == 0 {
            cache.remove(&user); // entries expire
        }
        cache.get(&user).cloned()
    });
    span.record("cache.hit", cached.is_some());
    let items = match cached {
        Some(items) => items,
        None => {
            let load = tracing::info_span!("load", otel.name = "load cart", shop.service = "cart");
            work(5, 5).instrument(load).await;
            let items = vec![1 + jitter(40) as i64];
            cache.lock().expect("cart cache lock").insert(user.clone(), items.clone());
            items
        }
    };
    Json(json!({"user": user, "items": items}))
}

pub fn payment(shop: Shop) -> Router {
    Router::new().route("/charge", post(charge)).with_state(shop)
}

/// Orders above this amount (in cents) get a fraud check.
const FRAUD_CHECK_ABOVE_CENTS: i64 = 90_000;
const PROVIDER_ATTEMPTS: u32 = 4;

async fn charge(
    State(shop): State<Shop>,
    request_id: Option<Extension<RequestId>>,
    Json(body): Json<Value>,
) -> Response {
    let request_id = request_id.map(|Extension(RequestId(id))| id);
    let amount = body["amount_cents"].as_i64().unwrap_or(0);
    let rid = request_id.as_deref();
    if amount > FRAUD_CHECK_ABOVE_CENTS || shop.scenarios.is_on(Scenario::RareServiceEverywhere) {
        let check = Call::new("payment", "fraud-check", Format::W3c, Method::POST, &shop.addresses.fraud_check)
            .path("/score")
            .request_id(rid);
        if let Err(err) = call(&shop.client, check, Some(&body)).await {
            tracing::warn!("fraud check unavailable, charging anyway: {err}");
        }
    }
    let mut last_error = String::new();
    for attempt in 0..PROVIDER_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
        }
        let charge =
            Call::new("payment", "payment-provider", Format::W3c, Method::POST, &shop.addresses.payment_provider)
                .path("/v1/charges")
                .request_id(rid)
                .resend_count(attempt);
        match call(&shop.client, charge, Some(&body)).await {
            Ok(answer) => return Json(json!({"charge": answer["id"], "attempts": attempt + 1})).into_response(),
            Err(err) if err.status == Some(503) => last_error = err.to_string(),
            Err(err) => return (StatusCode::BAD_GATEWAY, Json(json!({"error": err.to_string()}))).into_response(),
        }
        tracing::warn!(attempt, "payment provider unavailable, retrying");
    }
    (StatusCode::BAD_GATEWAY, Json(json!({"error": format!("payment provider unavailable: {last_error}")})))
        .into_response()
}

/// Attempts per correlation id, for the failing-then-succeeding provider of the retry-loop scenario.
type Attempts = Arc<Mutex<HashMap<String, u32>>>;

pub fn payment_provider(shop: Shop) -> Router {
    Router::new().route("/v1/charges", post(provider_charge)).with_state((shop, Attempts::default()))
}

async fn provider_charge(State((shop, attempts)): State<(Shop, Attempts)>, headers: HeaderMap) -> Response {
    if shop.scenarios.is_on(Scenario::SlowPaymentProvider) {
        work(1200, 300).await;
    } else {
        work(15, 25).await;
    }
    if shop.scenarios.is_on(Scenario::RetryLoop) {
        let key = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let mut attempts = attempts.lock().expect("attempts lock");
        let seen = attempts.entry(key.clone()).or_default();
        *seen += 1;
        if *seen < PROVIDER_ATTEMPTS {
            tracing::warn!(attempt = *seen, "rate limited upstream");
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "temporarily unavailable"})))
                .into_response();
        }
        attempts.remove(&key);
    }
    Json(json!({"id": format!("ch_{:012x}", jitter(u64::MAX >> 16)), "status": "succeeded"})).into_response()
}

pub fn fraud_check() -> Router {
    Router::new().route(
        "/score",
        post(|| async {
            work(8, 10).await;
            Json(json!({"score": 0.02, "decision": "allow"}))
        }),
    )
}
