use std::time::Duration;

use clew_model::{SinkError, TenantError};
use http::StatusCode;

/// Everything that can make a whole request fail, with its HTTP status and gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("request body exceeds the limit of {limit} bytes (after decompression)")]
    TooLarge { limit: usize },
    #[error("invalid gzip body: {0}")]
    BadGzip(String),
    #[error("unsupported content encoding {0:?}; use gzip or identity")]
    UnsupportedEncoding(String),
    #[error("unsupported content type {0:?}; use application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    BadBody(String),
    #[error("failed to decode {format} request: {message}")]
    Decode { format: &'static str, message: String },
    #[error("invalid X-Scope-OrgID header (tenant): {0}")]
    BadTenant(#[from] TenantError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// gRPC status codes used by the receivers.
pub(crate) mod grpc_code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

impl IngestError {
    pub(crate) fn decode(format: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Decode { format, message: err.to_string() }
    }

    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedEncoding(_) | Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadGzip(_) | Self::BadBody(_) | Self::Decode { .. } | Self::BadTenant(_) => StatusCode::BAD_REQUEST,
            Self::Sink(SinkError::Overloaded { .. } | SinkError::Exhausted(_)) => StatusCode::TOO_MANY_REQUESTS,
            Self::Sink(SinkError::Invalid(_)) => StatusCode::BAD_REQUEST,
            Self::Sink(SinkError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(&self) -> i32 {
        match self {
            Self::TooLarge { .. } | Self::Sink(SinkError::Exhausted(_)) => grpc_code::RESOURCE_EXHAUSTED,
            Self::UnsupportedEncoding(_) | Self::UnsupportedMediaType(_) => grpc_code::UNIMPLEMENTED,
            Self::BadGzip(_)
            | Self::BadBody(_)
            | Self::Decode { .. }
            | Self::BadTenant(_)
            | Self::Sink(SinkError::Invalid(_)) => grpc_code::INVALID_ARGUMENT,
            Self::Sink(SinkError::Overloaded { .. }) => grpc_code::UNAVAILABLE,
            Self::Sink(SinkError::Internal(_)) => grpc_code::INTERNAL,
        }
    }

    /// When the client should try again, for throttling errors.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Sink(SinkError::Overloaded { retry_after, .. }) => Some(*retry_after),
            Self::Sink(SinkError::Exhausted(_)) => Some(Duration::from_secs(5)),
            _ => None,
        }
    }

    /// Label for `clew_requests_failed_total`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::BadGzip(_) => "bad_gzip",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::BadBody(_) => "bad_body",
            Self::Decode { .. } => "undecodable",
            Self::BadTenant(_) => "bad_tenant",
            Self::Sink(SinkError::Overloaded { .. }) => "overloaded",
            Self::Sink(SinkError::Exhausted(_)) => "exhausted",
            Self::Sink(SinkError::Invalid(_)) => "invalid",
            Self::Sink(SinkError::Internal(_)) => "internal",
        }
    }
}
