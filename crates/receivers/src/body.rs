//! Reading request bodies under a size limit, before and after decompression, so that neither a huge body nor
//! a small gzip bomb can make the server allocate past the limit.

use std::io::Read;

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;

use crate::IngestError;

/// Reads the whole body, refusing it once it passes `limit` bytes.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, IngestError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(IngestError::TooLarge { limit })
        }
        Err(err) => Err(IngestError::BadBody(format!("failed to read request body: {err}"))),
    }
}

/// A request refused as a whole, and whether its connection must close (part of its body left unread).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub error: IngestError,
    pub close_connection: bool,
}

impl From<IngestError> for Refusal {
    fn from(error: IngestError) -> Self {
        // A body over the limit was not read to its end.
        let close_connection = matches!(error, IngestError::TooLarge { .. });
        Self { error, close_connection }
    }
}

/// Refuses a request for what its headers say, after reading its body so the connection stays usable.
pub(crate) async fn refuse_after_draining(body: Body, error: IngestError) -> Refusal {
    let drained = drain(body, DRAIN_LIMIT).await;
    Refusal { error, close_connection: !drained }
}

/// Reads and drops a body (up to `limit` bytes) so the connection can serve the next request; returns false when
/// the body was longer, in which case the response must close the connection.
pub(crate) async fn drain(body: Body, limit: usize) -> bool {
    http_body_util::Limited::new(body, limit).collect().await.is_ok()
}

/// Marks a response as the last on its connection: used when part of the request body was left unread, which
/// would otherwise desynchronise a keep-alive connection.
pub(crate) fn close_connection(response: &mut axum::response::Response) {
    response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
}

/// Largest body drained before answering a request that is refused for its method or headers.
pub(crate) const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

/// The body's content coding from `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Identity,
    Gzip,
}

pub(crate) fn content_coding(headers: &HeaderMap) -> Result<Coding, IngestError> {
    let Some(value) = headers.get(http::header::CONTENT_ENCODING) else {
        return Ok(Coding::Identity);
    };
    let value = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match value.as_str() {
        "" | "identity" => Ok(Coding::Identity),
        "gzip" | "x-gzip" => Ok(Coding::Gzip),
        other => Err(IngestError::UnsupportedEncoding(other.to_string())),
    }
}

/// Decompresses `data` per `coding`, refusing output past `limit` bytes.
pub(crate) fn decode(data: Bytes, coding: Coding, limit: usize) -> Result<Bytes, IngestError> {
    match coding {
        Coding::Identity => Ok(data),
        Coding::Gzip => gunzip(&data, limit).map(Bytes::from),
    }
}

pub(crate) fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    // Read one byte past the limit: if it arrives, the body is too large.
    flate2::read::MultiGzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|err| IngestError::BadGzip(err.to_string()))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gunzip_round_trips_under_the_limit() {
        assert_eq!(gunzip(&gzip(b"hello"), 5).unwrap(), b"hello");
    }

    #[test]
    fn gzip_bomb_is_refused_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        assert!(matches!(gunzip(&bomb, 1024), Err(IngestError::TooLarge { limit: 1024 })));
    }

    #[test]
    fn invalid_gzip_is_an_error() {
        assert!(matches!(gunzip(b"not gzip at all", 1024), Err(IngestError::BadGzip(_))));
    }
}
