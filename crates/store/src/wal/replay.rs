//! Replay on open: feeds every intact record back into the head and cuts what a crash left half-written.
//!
//! A bad record can only be a torn or corrupted tail (everything before it was synced and acknowledged), so
//! the segment is truncated at the last good record and replay goes on with the next segment. Opening never
//! fails because of what is inside a segment, only when a segment cannot be read at all.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::segment::{SegmentInfo, list_segments};
use super::{Entry, MAGIC, MAX_PAYLOAD, RECORD_HEADER, decode_payload};
use crate::head::Head;

/// What replay found, after repairs.
pub(crate) struct Replayed {
    /// Highest segment number present (0 if none).
    pub last_seq: u64,
    pub records: u64,
    /// The segments with their sizes after any cut.
    pub segments: Vec<SegmentInfo>,
}

/// Why reading a segment stopped early.
enum Damage {
    /// Too short for the magic, or the wrong magic: the segment holds nothing usable.
    Header(&'static str),
    /// A bad or incomplete record at `offset`; everything before it is good.
    Record { offset: u64, reason: String },
}

pub(crate) fn replay(dir: &Path, head: &Head) -> io::Result<Replayed> {
    let mut segments = list_segments(dir)?;
    let last_seq = segments.last().map_or(0, |s| s.seq);
    let mut records = 0;
    let count = segments.len();
    for (i, segment) in segments.iter_mut().enumerate() {
        let Some(damage) = read_segment(segment, head, &mut records)? else {
            continue;
        };
        let path = segment.path.display();
        let later = count - i - 1;
        segment.bytes = match damage {
            Damage::Header(reason) => {
                tracing::warn!(file = %path, reason, later_segments = later, "WAL segment has no valid header; treating it as empty");
                repair(&segment.path, 0).unwrap_or(segment.bytes)
            }
            Damage::Record { offset, reason } => {
                tracing::warn!(
                    file = %path, offset, reason = %reason, dropped_bytes = segment.bytes - offset,
                    later_segments = later,
                    "cutting the WAL segment at its last good record (a torn or corrupt tail); later segments are still replayed"
                );
                repair(&segment.path, offset).unwrap_or(segment.bytes)
            }
        };
    }
    Ok(Replayed { last_seq, records, segments })
}

/// Replays one segment's intact records into the head; reports where and why it stopped early, if it did.
fn read_segment(segment: &SegmentInfo, head: &Head, records: &mut u64) -> io::Result<Option<Damage>> {
    let len = segment.bytes;
    if len < MAGIC.len() as u64 {
        return Ok(Some(Damage::Header("shorter than the magic")));
    }
    let mut reader = BufReader::with_capacity(1 << 20, File::open(&segment.path)?);
    let mut magic = [0; MAGIC.len()];
    reader.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Ok(Some(Damage::Header("wrong magic")));
    }

    let mut offset = MAGIC.len() as u64;
    let mut payload = Vec::new();
    let damage = |offset, reason: String| Ok(Some(Damage::Record { offset, reason }));
    while offset < len {
        let remaining = len - offset;
        if remaining < RECORD_HEADER as u64 {
            return damage(offset, format!("incomplete record header ({remaining} bytes)"));
        }
        let mut header = [0; RECORD_HEADER];
        reader.read_exact(&mut header)?;
        let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
        let payload_len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if payload_len > MAX_PAYLOAD {
            return damage(offset, format!("implausible record length {payload_len}"));
        }
        if (payload_len as u64) > remaining - RECORD_HEADER as u64 {
            let present = remaining - RECORD_HEADER as u64;
            return damage(offset, format!("incomplete record: {payload_len} bytes announced, {present} present"));
        }
        payload.resize(payload_len, 0);
        reader.read_exact(&mut payload)?;
        if crc32c::crc32c(&payload) != crc {
            return damage(offset, "checksum mismatch".into());
        }
        match decode_payload(&payload) {
            Ok(Entry::Batch(batch)) => head.insert(batch),
            Ok(Entry::Dropped(tenant, ids)) => head.remove(&tenant, &ids),
            Ok(Entry::Kept(tenant, kept)) => head.set_decisions(&tenant, kept),
            Err(reason) => return damage(offset, format!("undecodable payload: {reason}")),
        }
        *records += 1;
        offset += (RECORD_HEADER + payload_len) as u64;
    }
    Ok(None)
}

/// Truncates a segment to `offset` (its last good record), or rewrites it as an empty segment when even its
/// header is bad, and syncs it. Returns the new size. A failure is only logged: writes go to a new segment
/// anyway, so an unrepaired tail costs a warning on the next start, not data.
fn repair(path: &Path, offset: u64) -> Option<u64> {
    let result = (|| {
        let mut file = OpenOptions::new().write(true).open(path)?;
        file.set_len(offset)?;
        if offset == 0 {
            file.write_all(MAGIC)?;
        }
        file.sync_all()?;
        io::Result::Ok(offset.max(MAGIC.len() as u64))
    })();
    result.inspect_err(|e| tracing::warn!(file = %path.display(), error = %e, "could not repair the WAL segment")).ok()
}
