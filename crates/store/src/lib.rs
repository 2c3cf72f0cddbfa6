//! Durable span storage: the write-ahead log, the in-memory head and the columnar blocks, per tenant.
//!
//! [`Store`] is the last [`clew_model::SpanSink`] of the write path. `consume` resolves only once a batch is
//! in the write-ahead log and synced (many concurrent batches share one fsync), and the batch is readable from
//! the head by then. On open the log is replayed into the head; a torn or corrupt tail is cut, never fatal.
//! When the head is large or old enough it is cut into blocks (`blocks`), and the log segments it covered go.

pub mod block;
mod blocks;
mod compact;
mod config;
mod crash;
mod decisions;
mod head;
mod hold;
mod local_files;
mod metrics;
mod red;
mod search;
mod storage;
mod store;
mod wal;

use std::io;

pub use blocks::CutReport;
pub use compact::{CompactReport, CompactStep};
pub use config::StoreConfig;
pub use crash::{CRASH_AT_ENV, CRASH_POINTS, armed_crash_point};
pub use hold::{CutHold, Undecided};
pub use search::{
    AttrCondition, AttrOp, AttrScope, AttributeKey, AttributeValue, Literal, Operation, SearchCursor, SearchPage,
    SearchRequest, SpanFilter, TraceSummary,
};
pub use storage::{Storage, install_tls_crypto_provider};
pub use store::{Store, StoreStats};
pub use wal::{MAGIC as WAL_MAGIC, SegmentInfo, list_segments};

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `{0}` says what the store was doing.
    #[error("{0}: {1}")]
    Io(String, #[source] io::Error),
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// Writing, listing or reading blocks failed.
    #[error("blocks: {0}")]
    Block(String),
}
