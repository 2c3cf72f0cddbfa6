//! Clew's HTTP query APIs. On the query port: `/api/v1/` (Clew's native API) and Jaeger's `/api/...` and
//! `/api/v3/...`; Zipkin's `/api/v2/...` query API is served on the Zipkin port next to its receiver.

mod analysis;
mod compat;
mod dependencies;
mod error;
mod jaeger;
mod native;
mod red_metrics;
mod red_source;
mod search;
mod tempo;
mod trace_scan;
mod trace_search;
mod traceql;
mod traceql_json;
mod traceql_metrics;
mod zipkin;

use axum::Router;
use clew_query::Query;

pub use error::ApiError;
pub use search::OPENAPI;

/// Routes of the query port.
pub fn router(query: Query) -> Router {
    Router::new()
        .nest(
            "/api/v1",
            native::router()
                .merge(search::router())
                .merge(traceql::router())
                .merge(analysis::router())
                .merge(dependencies::native_router())
                .merge(red_metrics::native_router()),
        )
        .merge(jaeger::router())
        .merge(dependencies::jaeger_router())
        .merge(red_metrics::jaeger_router())
        .with_state(query)
}

/// Routes of the Tempo port: Tempo's API, with TraceQL metrics (`/api/metrics/query_range`).
pub fn tempo_router(query: Query) -> Router {
    tempo::router(query.clone()).merge(traceql_metrics::router().with_state(query))
}

/// Zipkin's v2 query API, to be merged into the Zipkin receiver's router (which serves `POST /api/v2/spans`).
pub fn zipkin_query_router(query: Query) -> Router {
    zipkin::router().merge(dependencies::zipkin_router()).with_state(query)
}
