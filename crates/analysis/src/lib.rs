//! Analyses of whole traces, given as decoded OTLP (`&[ResourceSpans]`, as the query crate returns them).
//!
//! - [`critical_path`]: the chain of work that determined when the trace finished, span by span.
//! - [`stats`]: per service and per (service, span name) count, total time and self time.

pub mod critical_path;
pub mod red;
pub mod service_graph;
pub mod sketch;
mod spans;
pub mod stats;

pub use critical_path::{CriticalPath, PathSpan, Segment, critical_path};
pub use stats::{OperationStats, ServiceStats, Totals, TraceStats, stats};

#[cfg(test)]
mod test_support;
