//! The WAL writer: one OS thread owns the open segment and commits in groups.
//!
//! It blocks for the first pending record, takes everything queued behind it, writes the lot with one call
//! and syncs once, then answers every waiter. Under load a group grows while the previous fsync runs, so
//! the number of fsyncs stays bounded by the disk's latency, not by the request rate.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::segment::create_segment;
use super::{MAGIC, Record};
use crate::metrics::WalMetrics;

/// Shared by every waiter of a failed group, hence the `Arc`.
pub(crate) type WalError = Arc<io::Error>;

pub(crate) type Ack = oneshot::Receiver<Result<(), WalError>>;

/// Above this the reused write buffer is given back after a commit, so one burst does not pin its memory.
const KEEP_BUF_BYTES: usize = 8 * 1024 * 1024;

enum Msg {
    Write(Pending),
    /// Close the current segment; answers the highest sequence number used so far.
    Roll(oneshot::Sender<u64>),
    Shutdown,
}

struct Pending {
    record: Record,
    done: oneshot::Sender<Result<(), WalError>>,
}

/// Handle to the writer thread.
pub(crate) struct Wal {
    tx: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Starts the writer. Segments are created by the write that needs them, starting at `first_seq`, so an
    /// idle restart leaves no empty segment behind.
    pub fn start(dir: PathBuf, first_seq: u64, segment_bytes: u64, metrics: WalMetrics) -> io::Result<Self> {
        let (tx, rx) = channel();
        let writer =
            Writer { dir, next_seq: first_seq, file: None, offset: 0, segment_bytes, buf: Vec::new(), metrics };
        let thread = std::thread::Builder::new().name("clew-wal-writer".into()).spawn(move || writer.run(rx))?;
        Ok(Self { tx, thread: Mutex::new(Some(thread)) })
    }

    /// Queues a record; the returned receiver resolves once it is synced (or failed). `None` once the
    /// writer has stopped.
    pub fn submit(&self, record: Record) -> Option<Ack> {
        let (done, ack) = oneshot::channel();
        self.tx.send(Msg::Write(Pending { record, done })).ok()?;
        Some(ack)
    }

    /// Seals the current segment: records queued before this call end up in segments numbered at most the
    /// returned sequence, records queued after it in later ones. `None` once the writer has stopped.
    pub async fn roll(&self) -> Option<u64> {
        let (done, sealed) = oneshot::channel();
        self.tx.send(Msg::Roll(done)).ok()?;
        sealed.await.ok()
    }

    /// Commits what is queued, then stops the writer and waits for it (at most one group commit).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(thread) = self.thread.lock().take()
            && thread.join().is_err()
        {
            tracing::error!("the WAL writer thread panicked");
        }
    }
}

struct Writer {
    dir: PathBuf,
    next_seq: u64,
    /// `None` before the first write, after a full segment and after an error: the next write starts a new segment.
    file: Option<File>,
    /// Size of the current segment.
    offset: u64,
    segment_bytes: u64,
    buf: Vec<u8>,
    metrics: WalMetrics,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut group = Vec::new();
        loop {
            let Ok(first) = rx.recv() else { return };
            let mut stop = false;
            for msg in std::iter::once(first).chain(rx.try_iter()) {
                match msg {
                    Msg::Write(write) => group.push(write),
                    Msg::Roll(done) => {
                        // What came before the roll belongs to the sealed segment.
                        if !group.is_empty() {
                            self.commit(&mut group);
                        }
                        self.file = None;
                        let _ = done.send(self.next_seq - 1);
                    }
                    Msg::Shutdown => stop = true,
                }
            }
            if !group.is_empty() {
                self.commit(&mut group);
            }
            if stop {
                return;
            }
        }
    }

    fn commit(&mut self, group: &mut Vec<Pending>) {
        let result = self.append(group).map_err(|e| {
            tracing::error!(error = %e, records = group.len(), dir = %self.dir.display(), "WAL write failed");
            Arc::new(e)
        });
        for write in group.drain(..) {
            // A waiter that went away (its request was cancelled) is no reason to stop.
            let _ = write.done.send(result.clone());
        }
        // A full segment is closed now and the next one created with the next write: segments are never
        // left empty, so the newest one always ends with the latest records.
        if self.offset >= self.segment_bytes {
            self.file = None;
        }
    }

    fn append(&mut self, group: &[Pending]) -> io::Result<()> {
        if self.file.is_none() {
            self.open_next()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("no open WAL segment"));
        };
        self.buf.clear();
        for write in group {
            self.buf.extend_from_slice(&write.record.0);
        }

        let start = Instant::now();
        if let Err(e) = file.write_all(&self.buf).and_then(|()| file.sync_data()) {
            // After a failed write or fsync the tail of the segment is unknown (Linux may even have dropped
            // the dirty pages), so never append to it again: cut it back, best effort, and move on to a new
            // segment. Replay stops at any garbage that remains and still reads the later segments.
            let _ = file.set_len(self.offset);
            self.file = None;
            return Err(e);
        }
        self.metrics.sync_duration.observe(start.elapsed().as_secs_f64());
        self.metrics.syncs.inc();
        self.metrics.records.inc_by(group.len() as u64);
        self.metrics.bytes.inc_by(self.buf.len() as i64);
        self.offset += self.buf.len() as u64;
        if self.buf.capacity() > KEEP_BUF_BYTES {
            self.buf = Vec::new();
        }
        Ok(())
    }

    fn open_next(&mut self) -> io::Result<()> {
        // The number is used up even if creation fails, as a half-created file may be left behind.
        let seq = self.next_seq;
        self.next_seq += 1;
        let file = create_segment(&self.dir, seq)?;
        self.file = Some(file);
        self.offset = MAGIC.len() as u64;
        self.metrics.segments.inc();
        self.metrics.bytes.inc_by(MAGIC.len() as i64);
        Ok(())
    }
}
