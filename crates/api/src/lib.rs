//! Clew's HTTP query APIs on the query port. `/api/v1/` is Clew's native API; the ecosystem's paths (Jaeger's
//! `/api/traces`, …) are left free for their compatible implementations.

mod error;
mod native;
mod search;
mod tempo;

use axum::Router;
use clew_query::Query;

pub use error::ApiError;
pub use search::OPENAPI;
pub use tempo::router as tempo_router;

/// Routes of the query port.
pub fn router(query: Query) -> Router {
    Router::new().nest("/api/v1", native::router().merge(search::router())).with_state(query)
}
