//! Clew's load generator and benchmark harness. It speaks only public protocols (OTLP over gRPC and HTTP), so it
//! can drive Clew or any other OTLP backend, and it builds requests from pre-encoded pieces so that one core of
//! generation is never the bottleneck.

pub mod bench;
pub mod profiles;
mod proto;
mod request;
mod run;
mod transport;

pub use profiles::{Profile, SentTrace};
pub use run::{LatencyMs, LoadConfig, LoadError, LoadReport, run};
pub use transport::Protocol;
