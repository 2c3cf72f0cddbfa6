//! OTLP JSON (hex ids, numeric enums) rewritten the way Tempo's protobuf JSON marshaller writes a trace:
//! ids in base64, span kind and status code by enum name.

use base64::Engine;
use serde_json::Value;

const KINDS: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
const STATUS_CODES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/// Rewrites every resource span of an OTLP JSON `resourceSpans` array in place.
pub(crate) fn to_tempo(resource_spans: &mut Value) {
    let Some(groups) = resource_spans.as_array_mut() else { return };
    for group in groups {
        let Some(scopes) = group.get_mut("scopeSpans").and_then(Value::as_array_mut) else { continue };
        for scope in scopes {
            let Some(spans) = scope.get_mut("spans").and_then(Value::as_array_mut) else { continue };
            for span in spans {
                rewrite_span(span);
            }
        }
    }
}

fn rewrite_span(span: &mut Value) {
    let Some(fields) = span.as_object_mut() else { return };
    for id in ["traceId", "spanId", "parentSpanId"] {
        hex_to_base64(fields.get_mut(id));
    }
    if let Some(kind) = fields.get_mut("kind") {
        enum_name(kind, &KINDS);
    }
    if let Some(code) = fields.get_mut("status").and_then(|s| s.get_mut("code")) {
        enum_name(code, &STATUS_CODES);
    }
    if let Some(links) = fields.get_mut("links").and_then(Value::as_array_mut) {
        for link in links {
            hex_to_base64(link.get_mut("traceId"));
            hex_to_base64(link.get_mut("spanId"));
        }
    }
}

fn hex_to_base64(value: Option<&mut Value>) {
    let Some(value) = value else { return };
    if let Some(bytes) = value.as_str().and_then(|s| hex::decode(s).ok()) {
        *value = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
}

fn enum_name(value: &mut Value, names: &[&str]) {
    if let Some(name) = value.as_u64().and_then(|n| names.get(n as usize)) {
        *value = Value::String((*name).to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_become_base64_and_enums_names() {
        let mut rs = json!([{ "scopeSpans": [{ "spans": [{
            "traceId": "0102030405060708090a0b0c0d0e0f10",
            "spanId": "0102030405060708",
            "parentSpanId": "",
            "kind": 2,
            "status": { "code": 2, "message": "boom" },
            "links": [{ "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0807060504030201" }]
        }] }] }]);
        to_tempo(&mut rs);
        let span = &rs[0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "AQIDBAUGBwgJCgsMDQ4PEA==");
        assert_eq!(span["spanId"], "AQIDBAUGBwg=");
        assert_eq!(span["parentSpanId"], "");
        assert_eq!(span["kind"], "SPAN_KIND_SERVER");
        assert_eq!(span["status"]["code"], "STATUS_CODE_ERROR");
        assert_eq!(span["links"][0]["spanId"], "CAcGBQQDAgE=");
    }
}
