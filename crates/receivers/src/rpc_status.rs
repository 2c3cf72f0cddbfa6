//! `google.rpc.Status` and `RetryInfo`, the error payloads of OTLP over gRPC and HTTP. Hand-declared prost
//! messages: five fields do not justify a protobuf build step.

use std::time::Duration;

use prost::Message;
use serde::Serialize;

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    #[serde(skip)]
    pub details: Vec<ProtoAny>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

impl RpcStatus {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Vec::new() }
    }

    /// Adds a `google.rpc.RetryInfo` detail: OTLP clients wait this long before retrying.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration { seconds: delay.as_secs() as i64, nanos: delay.subsec_nanos() as i32 }),
        };
        self.details.push(ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        });
        self
    }
}
