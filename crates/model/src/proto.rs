//! A borrowing reader of protobuf fields, for code that looks at a few fields of encoded OTLP (sampling
//! conditions, span metrics, block writing) without decoding the rest. It only splits fields: a caller that needs
//! well-formed input relies on [`crate::wire::scan`] having checked it.

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos)?;
            self.pos += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    /// The next field number and wire type: `Some(None)` at the end, `None` on a broken key.
    pub fn next_key(&mut self) -> Option<Option<(u32, u8)>> {
        if self.pos >= self.bytes.len() {
            return Some(None);
        }
        let key = self.varint()?;
        Some(Some(((key >> 3) as u32, (key & 7) as u8)))
    }

    /// The next field number and wire type; `None` at the end or on a broken key.
    pub fn key(&mut self) -> Option<(u32, u8)> {
        self.next_key().flatten()
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    pub fn fixed64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn fixed32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn len_delimited(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()? as usize;
        self.take(n)
    }

    pub fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.take(8).map(|_| ()),
            LEN => self.len_delimited().map(|_| ()),
            FIXED32 => self.take(4).map(|_| ()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_stops_on_broken_input() {
        // field 1 varint 150, field 2 bytes "hi", field 3 fixed32.
        let bytes = [0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 2, 3, 4];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.key(), Some((1, VARINT)));
        assert_eq!(r.varint(), Some(150));
        assert_eq!(r.key(), Some((2, LEN)));
        assert_eq!(r.len_delimited(), Some(&b"hi"[..]));
        assert_eq!(r.key(), Some((3, FIXED32)));
        assert_eq!(r.skip(FIXED32), Some(()));
        assert_eq!(r.next_key(), Some(None));
        let mut broken = Reader::new(&[0x12, 0x05, b'x']);
        assert_eq!(broken.key(), Some((2, LEN)));
        assert_eq!(broken.len_delimited(), None, "length past the end");
        assert_eq!(Reader::new(&[0x80]).next_key(), None, "truncated varint key");
    }
}
