//! OTLP trace request decoding (protobuf and JSON) and response encoding.

use bytes::Bytes;
use clew_model::otlp::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse};
use clew_model::{Accepted, SpanBatch, Tenant, otlp};

use crate::IngestError;

/// Takes a protobuf request as it is: the wire scan checks and indexes it without decoding spans.
pub(crate) fn decode_protobuf(tenant: Tenant, body: Bytes) -> Result<SpanBatch, IngestError> {
    SpanBatch::from_protobuf(tenant, body).map_err(|err| IngestError::decode("protobuf", err))
}

/// Decodes OTLP/JSON into a batch (see [`decode_json_spans`]).
pub(crate) fn decode_json(tenant: Tenant, body: &[u8]) -> Result<SpanBatch, IngestError> {
    let resource_spans = decode_json_spans(body)?;
    SpanBatch::from_resource_spans(tenant, resource_spans).map_err(|err| IngestError::decode("JSON", err))
}

/// Decodes OTLP/JSON. Besides the spec's integer enums, accepts enum names (`"SPAN_KIND_SERVER"`,
/// `"STATUS_CODE_ERROR"`) and empty `arrayValue`/`kvlistValue` objects (`{}`), both valid in protobuf's JSON
/// mapping; requests that use either take a slower path through a JSON tree that is normalised first.
pub(crate) fn decode_json_spans(body: &[u8]) -> Result<Vec<otlp::ResourceSpans>, IngestError> {
    let request: ExportTraceServiceRequest = if needs_normalising(body) {
        let mut tree: serde_json::Value =
            serde_json::from_slice(body).map_err(|err| IngestError::decode("JSON", err))?;
        normalise(&mut tree)?;
        serde_json::from_value(tree).map_err(|err| IngestError::decode("JSON", err))?
    } else {
        serde_json::from_slice(body).map_err(|err| IngestError::decode("JSON", err))?
    };
    Ok(request.resource_spans)
}

fn needs_normalising(body: &[u8]) -> bool {
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    contains(b"\"SPAN_KIND_") || contains(b"\"STATUS_CODE_") || contains(b"Value\"")
}

/// Rewrites enum names as numbers and gives empty array and kvlist values their `values` list.
fn normalise(tree: &mut serde_json::Value) -> Result<(), IngestError> {
    let spans = tree
        .get_mut("resourceSpans")
        .and_then(|v| v.as_array_mut())
        .into_iter()
        .flatten()
        .filter_map(|rs| rs.get_mut("scopeSpans")?.as_array_mut())
        .flatten()
        .filter_map(|ss| ss.get_mut("spans")?.as_array_mut())
        .flatten();
    for span in spans {
        if let Some(kind) = span.get_mut("kind") {
            replace_name(kind, span_kind_number)?;
        }
        if let Some(code) = span.get_mut("status").and_then(|s| s.get_mut("code")) {
            replace_name(code, status_code_number)?;
        }
    }
    fill_empty_lists(tree);
    Ok(())
}

fn fill_empty_lists(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if (key == "arrayValue" || key == "kvlistValue")
                    && let Some(inner) = value.as_object_mut()
                {
                    inner.entry("values").or_insert_with(|| serde_json::Value::Array(Vec::new()));
                }
                fill_empty_lists(value);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(fill_empty_lists),
        _ => {}
    }
}

fn replace_name(value: &mut serde_json::Value, lookup: fn(&str) -> Option<i32>) -> Result<(), IngestError> {
    if let Some(name) = value.as_str() {
        let number = lookup(name).ok_or_else(|| IngestError::decode("JSON", format!("unknown enum value {name:?}")))?;
        *value = serde_json::Value::from(number);
    }
    Ok(())
}

fn span_kind_number(name: &str) -> Option<i32> {
    otlp::span::SpanKind::from_str_name(name).map(|k| k as i32)
}

fn status_code_number(name: &str) -> Option<i32> {
    otlp::status::StatusCode::from_str_name(name).map(|c| c as i32)
}

pub(crate) fn response(accepted: &Accepted) -> ExportTraceServiceResponse {
    let partial = accepted.rejected_spans > 0 || !accepted.message.is_empty();
    ExportTraceServiceResponse {
        partial_success: partial.then(|| ExportTracePartialSuccess {
            rejected_spans: accepted.rejected_spans as i64,
            error_message: accepted.message.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
 "scopeSpans":[{"scope":{"name":"lib"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",
 "spanId":"EEE19B7EC3C1B174","name":"GET /x","kind":KIND,"startTimeUnixNano":"1544712660000000000",
 "endTimeUnixNano":1544712661000000000,"attributes":[{"key":"n","value":{"intValue":"42"}}],
 "status":{"code":CODE}}]}]}]}"#;

    fn decode(kind: &str, code: &str) -> Result<otlp::Span, IngestError> {
        let body = JSON.replace("KIND", kind).replace("CODE", code);
        Ok(decode_json_spans(body.as_bytes())?[0].scope_spans[0].spans[0].clone())
    }

    #[test]
    fn json_accepts_integer_enums() {
        let span = decode("2", "2").unwrap();
        assert_eq!(span.kind, 2);
        assert_eq!(span.status.unwrap().code, 2);
        assert_eq!(span.trace_id, hex::decode("5b8efff798038103d269b633813fc60c").unwrap());
        assert_eq!(span.end_time_unix_nano, 1544712661000000000);
    }

    #[test]
    fn json_accepts_enum_names() {
        let span = decode("\"SPAN_KIND_CONSUMER\"", "\"STATUS_CODE_OK\"").unwrap();
        assert_eq!(span.kind, 5);
        assert_eq!(span.status.unwrap().code, 1);
    }

    #[test]
    fn json_rejects_unknown_enum_names() {
        let err = decode("\"SPAN_KIND_NOPE\"", "1").unwrap_err();
        assert!(err.to_string().contains("SPAN_KIND_NOPE"), "{err}");
    }

    #[test]
    fn json_accepts_empty_arrays_and_kvlists() {
        let body = JSON
            .replace("KIND", "1")
            .replace("CODE", "0")
            .replace(r#"{"intValue":"42"}"#, r#"{"arrayValue":{"values":[{"kvlistValue":{}}, {"arrayValue":{}}]}}"#);
        let span = decode_json_spans(body.as_bytes()).unwrap()[0].scope_spans[0].spans[0].clone();
        let value = span.attributes[0].value.clone().unwrap().value.unwrap();
        let otlp::any_value::Value::ArrayValue(array) = value else { panic!("not an array: {value:?}") };
        assert_eq!(array.values.len(), 2);
    }

    #[test]
    fn json_doubles_parse_exactly() {
        let body = JSON
            .replace("KIND", "1")
            .replace("CODE", "0")
            .replace(r#"{"intValue":"42"}"#, r#"{"doubleValue":-1.5e-300}"#);
        let span = decode_json_spans(body.as_bytes()).unwrap()[0].scope_spans[0].spans[0].clone();
        assert_eq!(
            span.attributes[0].value.clone().unwrap().value,
            Some(otlp::any_value::Value::DoubleValue(-1.5e-300))
        );
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let tenant = Tenant::default_tenant();
        let garbage = Bytes::from_static(b"\xff\xff\xff\xff");
        assert!(matches!(decode_protobuf(tenant.clone(), garbage), Err(IngestError::Decode { .. })));
        assert!(matches!(decode_json(tenant, b"{not json"), Err(IngestError::Decode { .. })));
    }
}
