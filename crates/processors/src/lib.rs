//! Processors sit between the receivers and the store. Each one is a [`SpanSink`](clew_model::SpanSink) that
//! wraps the next, so the binary can chain them without any stage knowing its neighbours.

pub mod alerts;
pub mod remote_sampling;
pub mod sampling;
pub mod span_metrics;
mod validate;

pub use validate::{Limits, Validator};
