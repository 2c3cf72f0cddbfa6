//! Named crash points, for tests that kill the process at every step where durable state changes.
//!
//! With `CLEW_CRASH_AT=<point>` in its environment, the process aborts (`std::process::abort`: no destructor,
//! no flush, like a power cut after the last completed write) the first time it reaches that point. Without
//! it, reaching a point costs one load of a value read once. Every point is in [`CRASH_POINTS`].

use std::sync::OnceLock;

/// The environment variable naming the crash point.
pub const CRASH_AT_ENV: &str = "CLEW_CRASH_AT";

/// A cut: the head is sealed and the WAL rolled; no block is written yet.
pub const CUT_AFTER_WAL_ROLL: &str = "cut:after_wal_roll";
/// A cut: the block's data files are written, its `meta.json` is not.
pub const CUT_AFTER_BLOCK_DATA: &str = "cut:after_block_data";
/// A cut: the block is complete (`meta.json` written); the WAL segments it covers are not deleted yet.
pub const CUT_AFTER_BLOCK_META: &str = "cut:after_block_meta";
/// A cut: the WAL segments the block covers are deleted.
pub const CUT_AFTER_WAL_DELETED: &str = "cut:after_wal_deleted";
/// A compaction: the merged block's data files are written, its `meta.json` is not.
pub const COMPACT_AFTER_OUTPUT_DATA: &str = "compact:after_output_data";
/// A compaction: the merged block is complete; every input still exists.
pub const COMPACT_AFTER_OUTPUT_META: &str = "compact:after_output_meta";
/// A compaction: the first input's `meta.json` is deleted, its data files are not.
pub const COMPACT_AFTER_INPUT_META_DELETED: &str = "compact:after_input_meta_deleted";
/// A compaction: the first input is deleted entirely; the others still exist.
pub const COMPACT_AFTER_INPUT_DELETED: &str = "compact:after_input_deleted";
/// Retention: the first expired block's `meta.json` is deleted, its data files are not.
pub const RETENTION_AFTER_META_DELETED: &str = "retention:after_meta_deleted";
/// Retention: the first expired block is deleted entirely; the others still exist.
pub const RETENTION_AFTER_BLOCK_DELETED: &str = "retention:after_block_deleted";

/// Every crash point, in the order a block's life reaches them.
pub const CRASH_POINTS: &[&str] = &[
    CUT_AFTER_WAL_ROLL,
    CUT_AFTER_BLOCK_DATA,
    CUT_AFTER_BLOCK_META,
    CUT_AFTER_WAL_DELETED,
    COMPACT_AFTER_OUTPUT_DATA,
    COMPACT_AFTER_OUTPUT_META,
    COMPACT_AFTER_INPUT_META_DELETED,
    COMPACT_AFTER_INPUT_DELETED,
    RETENTION_AFTER_META_DELETED,
    RETENTION_AFTER_BLOCK_DELETED,
];

static ARMED: OnceLock<Option<String>> = OnceLock::new();

fn armed() -> Option<&'static str> {
    ARMED.get_or_init(|| std::env::var(CRASH_AT_ENV).ok().filter(|point| !point.is_empty())).as_deref()
}

/// The crash point named by `CLEW_CRASH_AT`, if any; an error names the valid ones when it is unknown (call
/// it at start, so a typo fails loudly instead of never crashing).
pub fn armed_crash_point() -> Result<Option<&'static str>, String> {
    match armed() {
        Some(point) if !CRASH_POINTS.contains(&point) => {
            Err(format!("{CRASH_AT_ENV}: unknown crash point `{point}`; known: {}", CRASH_POINTS.join(", ")))
        }
        armed => Ok(armed),
    }
}

/// Aborts the process if `point` is the armed crash point.
pub(crate) fn reached(point: &'static str) {
    if armed() == Some(point) {
        eprintln!("clew: reached crash point {point} ({CRASH_AT_ENV}): aborting");
        std::process::abort();
    }
}
