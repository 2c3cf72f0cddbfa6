//! Segment files: naming, listing, creating.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::MAGIC;

/// One segment file of the write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// The segments in `dir`, oldest first. Files not named like a segment are ignored.
pub fn list_segments(dir: &Path) -> io::Result<Vec<SegmentInfo>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(seq) = name.to_str().and_then(parse_segment_name) else {
            continue;
        };
        let meta = entry.metadata()?;
        if meta.is_file() {
            segments.push(SegmentInfo { seq, path: entry.path(), bytes: meta.len() });
        }
    }
    segments.sort_unstable_by_key(|s| s.seq);
    Ok(segments)
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Creates segment `seq` holding just the magic, durably: the file is synced and so is the directory,
/// or a crash could lose the file's name along with everything later written into it.
pub(crate) fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    let path = segment_path(dir, seq);
    let mut file = OpenOptions::new().write(true).create_new(true).open(&path)?;
    file.write_all(MAGIC)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

/// Makes the directory's entries (created, removed or renamed files) durable.
/// Deletes every segment numbered at most `seq` (their spans are in durable blocks), then syncs the directory.
/// Returns how many segments and bytes were removed.
pub(crate) fn remove_through(dir: &Path, seq: u64) -> io::Result<(u64, u64)> {
    let (mut segments, mut bytes) = (0, 0);
    for segment in list_segments(dir)?.into_iter().filter(|s| s.seq <= seq) {
        std::fs::remove_file(&segment.path)?;
        segments += 1;
        bytes += segment.bytes;
    }
    if segments > 0 {
        sync_dir(dir)?;
    }
    Ok((segments, bytes))
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_segments_in_order() {
        let dir = tempfile::tempdir().unwrap();
        create_segment(dir.path(), 10).unwrap();
        create_segment(dir.path(), 2).unwrap();
        fs::write(dir.path().join("notes.txt"), "x").unwrap();
        fs::write(dir.path().join("3.wal"), "x").unwrap();
        let segments = list_segments(dir.path()).unwrap();
        assert_eq!(segments.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![2, 10]);
        assert_eq!(segments[0].path, dir.path().join("00000000000000000002.wal"));
        assert!(segments.iter().all(|s| s.bytes == 8));
        assert!(create_segment(dir.path(), 2).is_err(), "never overwrites a segment");
    }
}
