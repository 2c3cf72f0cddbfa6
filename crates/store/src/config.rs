use std::path::PathBuf;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// Where the store keeps its data and how much it may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The write-ahead log lives in `data_dir/wal/`.
    pub data_dir: PathBuf,
    /// A new WAL segment is started once the current one is past this size.
    pub wal_segment_bytes: u64,
    /// Approximate memory cap of the head; past it `consume` answers `SinkError::Exhausted`.
    pub head_max_bytes: u64,
    /// Bytes handed to the WAL writer but not yet synced; past it `consume` answers `SinkError::Overloaded`.
    pub max_inflight_bytes: u64,
    /// Where blocks are written: a local directory (`None`: `data_dir/blocks`).
    pub storage_dir: Option<PathBuf>,
    /// The head is cut into blocks once it holds this many bytes...
    pub block_cut_bytes: u64,
    /// ...or once its oldest span arrived this long ago.
    pub block_max_age: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            wal_segment_bytes: 64 * MIB,
            head_max_bytes: 1024 * MIB,
            max_inflight_bytes: 64 * MIB,
            storage_dir: None,
            block_cut_bytes: 128 * MIB,
            block_max_age: Duration::from_secs(300),
        }
    }
}
