use std::fmt;

/// A 16-byte trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraceIdError {
    #[error("trace id must be 32 hex characters (or 16, left-padded), got {0} characters")]
    Length(usize),
    #[error("trace id is not hexadecimal")]
    NotHex,
}

impl TraceId {
    /// Parses 32 hex characters, or 16 (a 64-bit id, left-padded with zeros as Zipkin and B3 do).
    pub fn parse_hex(s: &str) -> Result<Self, TraceIdError> {
        let mut out = [0u8; 16];
        match s.len() {
            32 => hex::decode_to_slice(s, &mut out).map_err(|_| TraceIdError::NotHex)?,
            16 => hex::decode_to_slice(s, &mut out[8..]).map_err(|_| TraceIdError::NotHex)?,
            n => return Err(TraceIdError::Length(n)),
        }
        Ok(Self(out))
    }

    /// Takes raw bytes as they come in OTLP; `None` unless exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl SpanId {
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_short_ids() {
        let full = TraceId::parse_hex("5b8efff798038103d269b633813fc60c").unwrap();
        assert_eq!(full.to_string(), "5b8efff798038103d269b633813fc60c");
        let short = TraceId::parse_hex("D269B633813FC60C").unwrap();
        assert_eq!(short.to_string(), "0000000000000000d269b633813fc60c");
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(TraceId::parse_hex("abc"), Err(TraceIdError::Length(3)));
        assert_eq!(TraceId::parse_hex("zz8efff798038103d269b633813fc60c"), Err(TraceIdError::NotHex));
    }
}
