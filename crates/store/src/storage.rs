//! Where blocks live: a local directory, or a prefix in an S3-compatible bucket.
//!
//! Both are an [`ObjectStore`] to the rest of the store, so blocks are written, listed and read by the same
//! code. S3 takes its credentials, region and endpoint from the usual `AWS_*` environment variables
//! (`AmazonS3Builder::from_env`); the bucket and the prefix come from the `s3://bucket/prefix` URL, and every
//! object goes under the prefix. S3 has no directories, so nothing is left behind when a block is deleted.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::{Store, StoreError};

/// Where blocks are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A local directory.
    Local(PathBuf),
    /// `prefix` (no leading or trailing `/`; empty: the whole bucket) in an S3 bucket.
    S3 { bucket: String, prefix: String },
}

impl Storage {
    /// Parses `--storage`: `s3://bucket/prefix` (the prefix is optional), or else a local path.
    pub fn parse(text: &str) -> Result<Storage, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("storage is empty: give a local directory or s3://bucket/prefix".into());
        }
        let Some((scheme, rest)) = text.split_once("://").filter(|(scheme, _)| is_scheme(scheme)) else {
            return Ok(Storage::Local(PathBuf::from(text)));
        };
        if !scheme.eq_ignore_ascii_case("s3") {
            return Err(format!("unsupported storage `{text}`: give a local directory or s3://bucket/prefix"));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(|why| format!("invalid storage `{text}`: bucket `{bucket}` {why}"))?;
        let prefix = prefix.trim_matches('/');
        check_prefix(prefix).map_err(|why| format!("invalid storage `{text}`: prefix `{prefix}` {why}"))?;
        Ok(Storage::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }

    /// Opens the storage: creates a local directory, or builds the S3 client (no request is sent yet).
    pub(crate) fn open(&self) -> Result<Arc<dyn ObjectStore>, StoreError> {
        match self {
            Storage::Local(dir) => open_local(dir),
            Storage::S3 { bucket, prefix } => s3::open(bucket, prefix, false),
        }
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Storage::Local(dir) => write!(f, "{}", dir.display()),
            Storage::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Storage::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl Store {
    /// Where this store writes blocks.
    pub fn storage(&self) -> Storage {
        self.config.storage.clone().unwrap_or_else(|| Storage::Local(self.config.data_dir.join("blocks")))
    }

    /// Checks that the block storage answers, with a client that does not retry, so a wrong endpoint, bucket
    /// or credentials fail the start at once with the storage's own error instead of after minutes of
    /// retries at the first cut.
    pub async fn check_storage(&self) -> Result<(), StoreError> {
        let storage = self.storage();
        let probe = match &storage {
            Storage::Local(_) => return Ok(()),
            Storage::S3 { bucket, prefix } => s3::open(bucket, prefix, true)?,
        };
        probe.list_with_delimiter(None).await.map_err(|e| {
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .unwrap_or_else(|_| "AWS".into());
            StoreError::Block(format!("cannot list {storage} (endpoint {endpoint}): {e}"))
        })?;
        Ok(())
    }
}

fn open_local(dir: &Path) -> Result<Arc<dyn ObjectStore>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(format!("creating {}", dir.display()), e))?;
    // Automatic cleanup removes the directories that deleting a block's files leaves empty.
    let objects = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| StoreError::Block(format!("opening {}: {e}", dir.display())))?
        .with_automatic_cleanup(true);
    Ok(Arc::new(crate::local_files::LocalFiles::new(objects)))
}

/// Installs `ring` as the process-wide rustls crypto provider, once. With S3 support, reqwest is built with
/// rustls but without a provider of its own (the default one, aws-lc-rs, is a long C build), so every process
/// that builds a reqwest client (the S3 client, `clew trace`, the load generator, ...) must call this first.
pub fn install_tls_crypto_provider() {
    #[cfg(feature = "s3")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // Fails only if a provider is installed already, which is as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
    }
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// S3 bucket naming rules: 3 to 63 lowercase letters, digits, `.` and `-`, starting and ending with a letter
/// or digit.
fn check_bucket(bucket: &str) -> Result<(), &'static str> {
    if bucket.is_empty() {
        return Err("is missing");
    }
    if !(3..=63).contains(&bucket.len()) {
        return Err("must be 3 to 63 characters long");
    }
    if !bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-') {
        return Err("may only hold lowercase letters, digits, `.` and `-`");
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(bucket.chars().next()) || !edge(bucket.chars().last()) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains(['?', '#']) {
        return Err("may not hold `?` or `#`".into());
    }
    if prefix.is_empty() {
        return Ok(());
    }
    for part in prefix.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("has an empty, `.` or `..` segment (`{part}`)"));
        }
        if part.chars().any(|c| c.is_control() || c == '\\') {
            return Err("may not hold control characters or `\\`".into());
        }
    }
    object_store::path::Path::parse(prefix).map(drop).map_err(|e| e.to_string())
}

#[cfg(feature = "s3")]
mod s3 {
    use std::sync::Arc;
    use std::time::Duration;

    use object_store::ObjectStore;
    use object_store::RetryConfig;
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::prefix::PrefixStore;

    use crate::StoreError;

    /// The S3 client for `bucket`, configured from `AWS_*`; objects go under `prefix`. `probe`: no retries.
    pub(super) fn open(bucket: &str, prefix: &str, probe: bool) -> Result<Arc<dyn ObjectStore>, StoreError> {
        super::install_tls_crypto_provider();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        // A custom endpoint (MinIO, moto, ...) over plain http must be allowed explicitly.
        if builder.get_config_value(&AmazonS3ConfigKey::Endpoint).is_some_and(|e| e.starts_with("http://")) {
            builder = builder.with_allow_http(true);
        }
        if probe {
            let retry =
                RetryConfig { max_retries: 0, retry_timeout: Duration::from_secs(10), ..RetryConfig::default() };
            builder = builder.with_retry(retry);
        }
        let s3 = builder.build().map_err(|e| StoreError::Config(format!("S3 bucket {bucket}: {e}")))?;
        Ok(if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) })
    }
}

#[cfg(not(feature = "s3"))]
mod s3 {
    use std::sync::Arc;

    use object_store::ObjectStore;

    use crate::StoreError;

    pub(super) fn open(_bucket: &str, _prefix: &str, _probe: bool) -> Result<Arc<dyn ObjectStore>, StoreError> {
        Err(StoreError::Config("this build of Clew has no S3 support (cargo feature `s3` of clew-store)".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> Storage {
        Storage::S3 { bucket: bucket.into(), prefix: prefix.into() }
    }

    #[test]
    fn local_paths_stay_local() {
        assert_eq!(Storage::parse("/var/lib/clew/blocks").unwrap(), Storage::Local("/var/lib/clew/blocks".into()));
        assert_eq!(Storage::parse("blocks").unwrap(), Storage::Local("blocks".into()));
        assert_eq!(Storage::parse("./a:b/c").unwrap(), Storage::Local("./a:b/c".into()));
    }

    #[test]
    fn s3_urls_give_bucket_and_prefix() {
        assert_eq!(Storage::parse("s3://traces").unwrap(), s3("traces", ""));
        assert_eq!(Storage::parse("s3://traces/").unwrap(), s3("traces", ""));
        assert_eq!(Storage::parse("s3://my-traces.eu/clew/prod/").unwrap(), s3("my-traces.eu", "clew/prod"));
        assert_eq!(Storage::parse("S3://traces/p").unwrap(), s3("traces", "p"));
        assert_eq!(s3("traces", "clew/prod").to_string(), "s3://traces/clew/prod");
        assert_eq!(s3("traces", "").to_string(), "s3://traces");
    }

    #[test]
    fn bad_urls_are_clear_errors() {
        for (text, expected) in [
            ("", "storage is empty"),
            ("s3://", "bucket `` is missing"),
            ("s3:///prefix", "bucket `` is missing"),
            ("s3://ab", "3 to 63 characters"),
            ("s3://My_Bucket/x", "lowercase letters"),
            ("s3://-bucket/x", "start and end"),
            ("s3://bucket/a//b", "empty, `.` or `..` segment"),
            ("s3://bucket/a/../b", "empty, `.` or `..` segment"),
            ("s3://bucket/a?versionId=1", "`?` or `#`"),
            ("gs://bucket/x", "unsupported storage `gs://bucket/x`"),
            ("https://example.com/bucket", "unsupported storage"),
        ] {
            let err = Storage::parse(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
