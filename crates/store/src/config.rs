use std::path::PathBuf;
use std::time::Duration;

use crate::Storage;

const MIB: u64 = 1024 * 1024;

/// Where the store keeps its data and how much it may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The write-ahead log lives in `data_dir/wal/`.
    pub data_dir: PathBuf,
    /// A new WAL segment is started once the current one is past this size.
    pub wal_segment_bytes: u64,
    /// Approximate memory cap of the head; past it `consume` waits up to `head_full_wait` for a cut to make room,
    /// then answers `SinkError::Exhausted`.
    pub head_max_bytes: u64,
    /// A cut frees the head within seconds: holding a request that long (before its log write) spares the client
    /// a retry with backoff, which idles it well past the moment room is back.
    pub head_full_wait: Duration,
    /// Bytes handed to the WAL writer but not yet synced; past it `consume` answers `SinkError::Overloaded`.
    pub max_inflight_bytes: u64,
    /// Where blocks are written: a local directory or an S3 prefix (`None`: `data_dir/blocks`).
    pub storage: Option<Storage>,
    /// The head is cut into blocks once it holds this many bytes...
    pub block_cut_bytes: u64,
    /// ...or once its oldest span arrived this long ago.
    pub block_max_age: Duration,
    /// A cut writes blocks of at most about this many spans (each a range of trace ids; a trace is never split),
    /// one at a time: this bounds the memory a cut of a large head takes.
    pub cut_block_spans: usize,
    /// A block's row groups are slices of its traces by start time of about this many spans (see
    /// `block::BlockOptions::row_group_spans`).
    pub row_group_spans: usize,
    /// Blocks whose data ends in the same window of this length are merged by compaction...
    pub compaction_window: Duration,
    /// ...into blocks of at most about this many spans (compaction holds them in memory while merging).
    pub compaction_max_spans: u64,
    /// Blocks whose data ended longer ago than this are deleted.
    pub retention: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            wal_segment_bytes: 64 * MIB,
            head_max_bytes: 512 * MIB,
            head_full_wait: Duration::from_secs(3),
            max_inflight_bytes: 64 * MIB,
            storage: None,
            block_cut_bytes: 256 * MIB,
            block_max_age: Duration::from_secs(300),
            cut_block_spans: 1_000_000,
            row_group_spans: crate::block::BlockOptions::default().row_group_spans,
            compaction_window: Duration::from_secs(3600),
            compaction_max_spans: 400_000,
            retention: Duration::from_secs(14 * 24 * 3600),
        }
    }
}
