//! A minimal protobuf writer for the load generator's hot path. Attribute pairs are encoded once at start-up and
//! copied into each span; ids and times are written straight into the buffer. This keeps generation far faster
//! than building prost structs per span, without reusing whole spans (which would flatter storage figures).

/// Wire types used by OTLP.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

pub fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(buf, ((field as u64) << 3) | wire as u64);
}

pub fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(buf, field, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

pub fn put_str(buf: &mut Vec<u8>, field: u32, s: &str) {
    put_bytes(buf, field, s.as_bytes());
}

pub fn put_uint(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_key(buf, field, VARINT);
        put_varint(buf, value);
    }
}

pub fn put_fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    put_key(buf, field, FIXED64);
    buf.extend_from_slice(&value.to_le_bytes());
}

pub fn put_double(buf: &mut Vec<u8>, field: u32, value: f64) {
    put_fixed64(buf, field, value.to_bits());
}

/// Writes a length-delimited field whose content `body` writes in place; the length prefix is fixed up after,
/// moving the content only when it needs more than one length byte.
pub fn put_message(buf: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    put_key(buf, field, LEN);
    let len_at = buf.len();
    buf.push(0);
    body(buf);
    let len = buf.len() - len_at - 1;
    if len < 0x80 {
        buf[len_at] = len as u8;
        return;
    }
    let mut prefix = Vec::with_capacity(10);
    put_varint(&mut prefix, len as u64);
    let extra = prefix.len() - 1;
    buf.resize(buf.len() + extra, 0);
    buf.copy_within(len_at + 1..len_at + 1 + len, len_at + 1 + extra);
    buf[len_at..len_at + prefix.len()].copy_from_slice(&prefix);
}

/// `KeyValue{key, value: AnyValue{string_value}}` as span attribute field 9 (also resource/scope field 1).
pub fn put_string_attribute(buf: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    put_message(buf, field, |kv| {
        put_str(kv, 1, key);
        put_message(kv, 2, |any| put_str(any, 1, value));
    });
}

pub fn put_int_attribute(buf: &mut Vec<u8>, field: u32, key: &str, value: i64) {
    put_message(buf, field, |kv| {
        put_str(kv, 1, key);
        put_message(kv, 2, |any| {
            put_key(any, 3, VARINT);
            put_varint(any, value as u64);
        });
    });
}

pub fn put_bool_attribute(buf: &mut Vec<u8>, field: u32, key: &str, value: bool) {
    put_message(buf, field, |kv| {
        put_str(kv, 1, key);
        put_message(kv, 2, |any| {
            put_key(any, 2, VARINT);
            put_varint(any, value as u64);
        });
    });
}

pub fn put_double_attribute(buf: &mut Vec<u8>, field: u32, key: &str, value: f64) {
    put_message(buf, field, |kv| {
        put_str(kv, 1, key);
        put_message(kv, 2, |any| put_double(any, 4, value));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_model::otlp::{AnyValue, KeyValue, any_value};
    use prost::Message;

    #[test]
    fn attributes_decode_with_prost() {
        let mut buf = Vec::new();
        put_string_attribute(&mut buf, 1, "k", &"v".repeat(300));
        let kv = KeyValue::decode(&buf[2 + 1..]).unwrap(); // field key byte + 2 length bytes
        assert_eq!(kv.key, "k");
        assert_eq!(kv.value, Some(AnyValue { value: Some(any_value::Value::StringValue("v".repeat(300))) }));
    }

    #[test]
    fn long_messages_get_multibyte_lengths() {
        for len in [0usize, 1, 127, 128, 300, 20_000, 3_000_000] {
            let mut buf = vec![0xAA];
            put_message(&mut buf, 5, |b| b.extend(std::iter::repeat_n(7u8, len)));
            let mut expected = vec![0xAA, (5 << 3) | 2];
            put_varint(&mut expected, len as u64);
            expected.extend(std::iter::repeat_n(7u8, len));
            assert_eq!(buf, expected, "length {len}");
        }
    }
}
