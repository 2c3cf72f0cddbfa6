//! The local folder as object storage, with ranged reads served from open files.
//!
//! A search reads many small ranges (pages of a few row groups of each block). `LocalFileSystem` opens the
//! file and hands each read to a blocking thread; that costs more than reading a page already in the page cache.
//! Block files never change once written (their paths are never reused), so this keeps them open and reads
//! small ranges in place with `pread`; large reads still go to a blocking thread. Everything else is
//! `LocalFileSystem`'s.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};

/// Reads up to this many bytes at once are made in place; larger ones on a blocking thread.
const INLINE_READ_BYTES: u64 = 4 << 20;
/// Files kept open at most (then all are closed and reopened as needed).
const MAX_OPEN_FILES: usize = 512;

#[derive(Debug)]
pub(crate) struct LocalFiles {
    inner: LocalFileSystem,
    open: parking_lot::Mutex<HashMap<Path, Arc<File>>>,
}

impl LocalFiles {
    pub fn new(inner: LocalFileSystem) -> Self {
        Self { inner, open: Default::default() }
    }

    fn file(&self, location: &Path) -> object_store::Result<Arc<File>> {
        if let Some(file) = self.open.lock().get(location) {
            return Ok(Arc::clone(file));
        }
        let path = self.inner.path_to_filesystem(location)?;
        let file = Arc::new(File::open(&path).map_err(|e| io_error(location, e))?);
        let mut open = self.open.lock();
        if open.len() >= MAX_OPEN_FILES {
            open.clear();
        }
        open.insert(location.clone(), Arc::clone(&file));
        Ok(file)
    }

    fn forget(&self, location: &Path) {
        self.open.lock().remove(location);
    }
}

fn io_error(location: &Path, e: std::io::Error) -> object_store::Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => object_store::Error::NotFound { path: location.to_string(), source: e.into() },
        _ => object_store::Error::Generic { store: "LocalFiles", source: format!("{location}: {e}").into() },
    }
}

impl std::fmt::Display for LocalFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalFiles({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for LocalFiles {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.forget(location);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.forget(location);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        let total: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        if total > INLINE_READ_BYTES {
            return self.inner.get_ranges(location, ranges).await;
        }
        let file = self.file(location)?;
        ranges
            .iter()
            .map(|range| {
                let mut buf = vec![0u8; range.end.saturating_sub(range.start) as usize];
                file.read_exact_at(&mut buf, range.start).map_err(|e| io_error(location, e))?;
                Ok(Bytes::from(buf))
            })
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // A deleted file stays readable through a handle kept open, which is what a read racing a compaction
        // wants; the handles are dropped as the cache turns over.
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.forget(to);
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::*;

    #[tokio::test]
    async fn ranges_read_in_place_and_missing_files_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFiles::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let path = Path::from("a/b.bin");
        store.put(&path, PutPayload::from((0u8..=255).collect::<Vec<_>>())).await.unwrap();
        let got = store.get_ranges(&path, &[0..3, 250..256, 10..10]).await.unwrap();
        assert_eq!(got, vec![Bytes::from(vec![0, 1, 2]), Bytes::from((250u8..=255).collect::<Vec<_>>()), Bytes::new()]);
        // Rewritten in place: the cached handle is dropped, the new bytes read.
        store.put(&path, PutPayload::from(vec![9u8; 4])).await.unwrap();
        assert_eq!(
            store.get_ranges(&path, std::slice::from_ref(&(1..3))).await.unwrap(),
            vec![Bytes::from(vec![9, 9])]
        );
        assert!(store.get_ranges(&path, std::slice::from_ref(&(2..9))).await.is_err(), "past the end");
        let missing = store.get_ranges(&Path::from("none"), std::slice::from_ref(&(0..1))).await.unwrap_err();
        assert!(matches!(missing, object_store::Error::NotFound { .. }), "{missing}");
    }
}
