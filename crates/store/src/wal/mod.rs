//! The write-ahead log: what makes an acknowledged span survive a crash.
//!
//! Layout: `data_dir/wal/{seq:020}.wal` segments, each opening with [`MAGIC`] and followed by records
//! `[u32 LE payload length][u32 LE crc32c(payload)][payload]`. A v1 payload is
//! `[u8 1][u16 LE tenant length][tenant utf-8][protobuf ExportTraceServiceRequest]`, one per `consume` call.
//! A v2 payload records traces that sampling dropped, so that replay drops them again:
//! `[u8 2][u16 LE tenant length][tenant utf-8][16-byte trace id]*`.
//! A v3 payload records why sampling kept traces, so that replay gives the head their decisions back:
//! `[u8 3][u16 LE tenant length][tenant utf-8]` then per trace `[16-byte trace id][f64 LE weight]
//! [u16 LE policy length, 0xffff: none][policy utf-8][u8 th length, 0: none][th ascii hex]`.
//! Each version only adds a payload kind: segments written before it replay unchanged.

mod replay;
mod segment;
mod writer;

use bytes::Bytes;
use clew_model::{SamplingDecision, SpanBatch, Tenant, TraceId};

pub(crate) use replay::replay;
pub use segment::{SegmentInfo, list_segments};
pub(crate) use segment::{remove_through, sync_dir};
pub(crate) use writer::{Ack, Wal, WalError};

/// First bytes of every segment.
pub const MAGIC: &[u8; 8] = b"CLEWWAL1";
/// Bytes before each record's payload: length and checksum.
pub(crate) const RECORD_HEADER: usize = 8;
/// A larger length can only be corruption: no request comes near it.
pub(crate) const MAX_PAYLOAD: usize = 256 * 1024 * 1024;
const PAYLOAD_VERSION: u8 = 1;
const PAYLOAD_DROP: u8 = 2;
const PAYLOAD_KEPT: u8 = 3;
/// Policy length meaning "no policy".
const NO_POLICY: u16 = u16::MAX;

/// A complete record, header included, ready to be appended to a segment.
pub(crate) struct Record(pub Vec<u8>);

impl Record {
    /// Encodes a batch as one record: the request bytes as received, behind the tenant. Runs on the caller's
    /// task, so copying and checksumming spread over all cores instead of piling up on the writer thread.
    pub fn encode(tenant: &Tenant, request: &[u8]) -> Result<Self, String> {
        Self::with_payload(PAYLOAD_VERSION, tenant, &[request])
    }

    /// Encodes the ids of traces dropped by sampling.
    pub fn encode_drop(tenant: &Tenant, trace_ids: &[TraceId]) -> Result<Self, String> {
        let ids: Vec<&[u8]> = trace_ids.iter().map(|id| &id.0[..]).collect();
        Self::with_payload(PAYLOAD_DROP, tenant, &ids)
    }

    /// Encodes why sampling kept traces. A policy name or threshold too long for its length field is an error.
    pub fn encode_kept(tenant: &Tenant, kept: &[(TraceId, SamplingDecision)]) -> Result<Self, String> {
        let mut body = Vec::with_capacity(kept.len() * 48);
        for (id, decision) in kept {
            body.extend_from_slice(&id.0);
            body.extend_from_slice(&decision.weight.to_le_bytes());
            match &decision.policy {
                Some(policy) => {
                    let len = u16::try_from(policy.len())
                        .ok()
                        .filter(|len| *len != NO_POLICY)
                        .ok_or_else(|| format!("policy name of {} bytes", policy.len()))?;
                    body.extend_from_slice(&len.to_le_bytes());
                    body.extend_from_slice(policy.as_bytes());
                }
                None => body.extend_from_slice(&NO_POLICY.to_le_bytes()),
            }
            let th = decision.threshold.as_deref().unwrap_or("");
            let th_len = u8::try_from(th.len()).map_err(|_| format!("threshold of {} bytes", th.len()))?;
            body.push(th_len);
            body.extend_from_slice(th.as_bytes());
        }
        Self::with_payload(PAYLOAD_KEPT, tenant, &[&body])
    }

    fn with_payload(kind: u8, tenant: &Tenant, body: &[&[u8]]) -> Result<Self, String> {
        let tenant = tenant.as_str().as_bytes();
        let tenant_len = u16::try_from(tenant.len()).map_err(|_| format!("tenant id of {} bytes", tenant.len()))?;
        let body_len: usize = body.iter().map(|part| part.len()).sum();
        let mut buf = Vec::with_capacity(RECORD_HEADER + 3 + tenant.len() + body_len);
        buf.extend_from_slice(&[0; RECORD_HEADER]);
        buf.push(kind);
        buf.extend_from_slice(&tenant_len.to_le_bytes());
        buf.extend_from_slice(tenant);
        for part in body {
            buf.extend_from_slice(part);
        }
        let payload_len = buf.len() - RECORD_HEADER;
        if payload_len > MAX_PAYLOAD {
            return Err(format!("batch of {payload_len} bytes exceeds the WAL record limit of {MAX_PAYLOAD}"));
        }
        let crc = crc32c::crc32c(&buf[RECORD_HEADER..]);
        buf[..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok(Self(buf))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// What a record holds.
pub(crate) enum Entry {
    Batch(SpanBatch),
    /// Traces that sampling dropped after their spans were logged.
    Dropped(Tenant, Vec<TraceId>),
    /// Why sampling kept traces.
    Kept(Tenant, Vec<(TraceId, SamplingDecision)>),
}

/// Decodes a record payload (after its header).
pub(crate) fn decode_payload(payload: &[u8]) -> Result<Entry, String> {
    let (&kind, rest) = payload.split_first().ok_or("empty payload")?;
    if ![PAYLOAD_VERSION, PAYLOAD_DROP, PAYLOAD_KEPT].contains(&kind) {
        return Err(format!("unknown payload version {kind}"));
    }
    let (len, rest) = rest.split_first_chunk::<2>().ok_or("payload too short for a tenant length")?;
    let len = u16::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err("payload too short for its tenant id".into());
    }
    let (tenant, body) = rest.split_at(len);
    let tenant = std::str::from_utf8(tenant).map_err(|_| "tenant id is not utf-8".to_string())?;
    let tenant = Tenant::parse(tenant).map_err(|e| format!("bad tenant id: {e}"))?;
    if kind == PAYLOAD_DROP {
        if !body.len().is_multiple_of(16) {
            return Err(format!("dropped-traces record of {} bytes is not a list of trace ids", body.len()));
        }
        let ids = body.chunks_exact(16).filter_map(TraceId::from_slice).collect();
        return Ok(Entry::Dropped(tenant, ids));
    }
    if kind == PAYLOAD_KEPT {
        return Ok(Entry::Kept(tenant, decode_kept(body)?));
    }
    let batch = SpanBatch::from_protobuf(tenant, Bytes::copy_from_slice(body)).map_err(|e| format!("protobuf: {e}"))?;
    Ok(Entry::Batch(batch))
}

fn decode_kept(mut body: &[u8]) -> Result<Vec<(TraceId, SamplingDecision)>, String> {
    fn take<'a>(body: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if body.len() < n {
            return Err("kept-traces record ends inside an entry".into());
        }
        let (head, rest) = body.split_at(n);
        *body = rest;
        Ok(head)
    }
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| "kept-traces record holds non-utf-8 text");
    let mut out = Vec::new();
    while !body.is_empty() {
        let id = TraceId::from_slice(take(&mut body, 16)?).ok_or("bad trace id")?;
        let weight = f64::from_le_bytes(take(&mut body, 8)?.try_into().map_err(|_| "bad weight")?);
        let policy_len = u16::from_le_bytes(take(&mut body, 2)?.try_into().map_err(|_| "bad policy length")?);
        let policy = match policy_len {
            NO_POLICY => None,
            len => Some(text(take(&mut body, len as usize)?)?),
        };
        let th_len = take(&mut body, 1)?[0] as usize;
        let threshold = (th_len > 0).then(|| take(&mut body, th_len).and_then(|t| Ok(text(t)?))).transpose()?;
        out.push((id, SamplingDecision { policy, weight, threshold }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::{ExportTraceServiceRequest, ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    use super::*;

    #[test]
    fn record_matches_the_documented_layout_and_round_trips() {
        let tenant = Tenant::parse("team-a").unwrap();
        let rs = vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: "x".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            schema_url: "s".into(),
            ..Default::default()
        }];
        let request = ExportTraceServiceRequest { resource_spans: rs.clone() }.encode_to_vec();
        let record = Record::encode(&tenant, &request).unwrap();
        let bytes = &record.0;
        let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(len, bytes.len() - 8);
        assert_eq!(crc, crc32c::crc32c(&bytes[8..]));
        assert_eq!(bytes[8], 1);
        assert_eq!(&bytes[9..11], &6u16.to_le_bytes());
        assert_eq!(&bytes[11..17], b"team-a");
        assert_eq!(&bytes[17..], &request[..], "payload is the request as received");

        let Entry::Batch(batch) = decode_payload(&bytes[8..]).unwrap() else { panic!("not a batch") };
        assert_eq!(batch.tenant, tenant);
        assert_eq!(batch.decode().unwrap(), rs);
    }

    #[test]
    fn dropped_traces_round_trip() {
        let tenant = Tenant::parse("team-a").unwrap();
        let ids = [TraceId([1; 16]), TraceId([2; 16])];
        let record = Record::encode_drop(&tenant, &ids).unwrap();
        assert_eq!(record.0[8], 2);
        let Entry::Dropped(t, got) = decode_payload(&record.0[8..]).unwrap() else { panic!("not a drop") };
        assert_eq!((t, got), (tenant, ids.to_vec()));
    }

    #[test]
    fn kept_traces_round_trip() {
        let tenant = Tenant::parse("team-a").unwrap();
        let kept = vec![
            (TraceId([1; 16]), SamplingDecision { policy: Some("errors".into()), weight: 1.0, threshold: None }),
            (
                TraceId([2; 16]),
                SamplingDecision { policy: Some("ten-percent".into()), weight: 10.0, threshold: Some("e666".into()) },
            ),
            (TraceId([3; 16]), SamplingDecision { policy: None, weight: 2.5, threshold: None }),
        ];
        let record = Record::encode_kept(&tenant, &kept).unwrap();
        assert_eq!(record.0[8], 3);
        // First entry: id, weight, policy length and name, no threshold.
        let body = &record.0[8 + 3 + 6..];
        assert_eq!(&body[..16], &[1; 16]);
        assert_eq!(&body[16..24], &1.0f64.to_le_bytes());
        assert_eq!(&body[24..26], &6u16.to_le_bytes());
        assert_eq!(&body[26..32], b"errors");
        assert_eq!(body[32], 0);
        let Entry::Kept(t, got) = decode_payload(&record.0[8..]).unwrap() else { panic!("not a keep") };
        assert_eq!((t, got), (tenant.clone(), kept.clone()));

        // A record cut inside an entry is an error, not a panic.
        let payload = &record.0[8..];
        for cut in [payload.len() - 1, payload.len() - 5, 3 + 6 + 10] {
            assert!(decode_payload(&payload[..cut]).is_err(), "cut at {cut}");
        }
        let long = vec![(
            TraceId([1; 16]),
            SamplingDecision { policy: Some("x".repeat(70_000)), weight: 1.0, threshold: None },
        )];
        assert!(Record::encode_kept(&tenant, &long).is_err());
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        for payload in [
            &[][..],
            &[4, 0, 0],
            &[2, 1, 0, b'a', 1, 2],
            &[1, 5, 0, b'a'],
            &[1, 1, 0, b'/'],
            &[1, 1, 0, b'a', 0xff, 0xff],
        ] {
            assert!(decode_payload(payload).is_err(), "{payload:?}");
        }
    }
}
