//! What a block is written from: spans as encoded OTLP `Span` messages, each with the resource and scope it
//! arrived in (also encoded). The head hands over the request bytes it holds; decoded spans (compaction, tests)
//! are encoded once into an arena.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use prost::Message;

use super::{BlockSpan, ScopeOrigin};

/// The encoded resource and scope of a group of spans: the `Resource` and `InstrumentationScope` messages (absent
/// when the request had none) and the schema URLs of the `ResourceSpans` and `ScopeSpans` around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OriginBytes<'a> {
    pub resource: Option<&'a [u8]>,
    pub resource_schema_url: &'a [u8],
    pub scope: Option<&'a [u8]>,
    pub scope_schema_url: &'a [u8],
}

/// One encoded span and the index of its origin in [`SpanSource::origins`].
#[derive(Debug, Clone, Copy)]
pub struct SpanBytes<'a> {
    pub bytes: &'a [u8],
    pub origin: u32,
}

/// The spans of one block to be, borrowed from wherever their bytes live. Equal origins are stored once.
#[derive(Debug, Default)]
pub struct SpanSource<'a> {
    pub(crate) origins: Vec<OriginBytes<'a>>,
    pub(crate) spans: Vec<SpanBytes<'a>>,
    index: HashMap<OriginBytes<'a>, u32, foldhash::fast::RandomState>,
}

impl<'a> SpanSource<'a> {
    pub fn with_capacity(spans: usize) -> Self {
        Self { spans: Vec::with_capacity(spans), ..Default::default() }
    }

    /// The index of an origin, adding it the first time it is seen.
    pub fn origin(&mut self, origin: OriginBytes<'a>) -> u32 {
        *self.index.entry(origin).or_insert_with(|| {
            self.origins.push(origin);
            self.origins.len() as u32 - 1
        })
    }

    pub fn push(&mut self, bytes: &'a [u8], origin: u32) {
        self.spans.push(SpanBytes { bytes, origin });
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Decoded spans encoded once into one buffer, to be written as a block.
pub struct EncodedSpans {
    arena: Vec<u8>,
    origins: Vec<[Option<Range<usize>>; 4]>,
    spans: Vec<(Range<usize>, u32)>,
}

impl EncodedSpans {
    pub fn new(spans: &[BlockSpan]) -> Self {
        let mut arena = Vec::with_capacity(spans.len() * 256);
        let mut origins = Vec::new();
        let mut origin_of: HashMap<*const ScopeOrigin, u32> = HashMap::new();
        let put = |arena: &mut Vec<u8>, bytes: &[u8]| {
            let start = arena.len();
            arena.extend_from_slice(bytes);
            start..arena.len()
        };
        let mut encoded = Vec::new();
        let mut out = Vec::with_capacity(spans.len());
        for s in spans {
            // The `Arc`s live in `spans` meanwhile, so their addresses are not reused.
            let origin = *origin_of.entry(Arc::as_ptr(&s.origin)).or_insert_with(|| {
                let o = &s.origin;
                let mut message = |m: Option<&dyn EncodeTo>| {
                    m.map(|m| {
                        encoded.clear();
                        m.encode_into(&mut encoded);
                        put(&mut arena, &encoded)
                    })
                };
                let resource = message(o.resource.resource.as_ref().map(|r| r as &dyn EncodeTo));
                let scope = message(o.scope.as_ref().map(|s| s as &dyn EncodeTo));
                let resource_url = Some(put(&mut arena, o.resource.schema_url.as_bytes()));
                let scope_url = Some(put(&mut arena, o.schema_url.as_bytes()));
                origins.push([resource, resource_url, scope, scope_url]);
                origins.len() as u32 - 1
            });
            encoded.clear();
            s.span.encode(&mut encoded).expect("a Vec grows");
            out.push((put(&mut arena, &encoded), origin));
        }
        Self { arena, origins, spans: out }
    }

    pub fn source(&self) -> SpanSource<'_> {
        let slice = |r: &Option<Range<usize>>| r.as_ref().map(|r| &self.arena[r.clone()]);
        let mut source = SpanSource::with_capacity(self.spans.len());
        let ids: Vec<u32> = self
            .origins
            .iter()
            .map(|[resource, resource_url, scope, scope_url]| {
                source.origin(OriginBytes {
                    resource: slice(resource),
                    resource_schema_url: slice(resource_url).unwrap_or_default(),
                    scope: slice(scope),
                    scope_schema_url: slice(scope_url).unwrap_or_default(),
                })
            })
            .collect();
        for (range, origin) in &self.spans {
            source.push(&self.arena[range.clone()], ids[*origin as usize]);
        }
        source
    }
}

/// prost messages of different types behind one reference.
trait EncodeTo {
    fn encode_into(&self, out: &mut Vec<u8>);
}

impl<M: Message> EncodeTo for M {
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode(out).expect("a Vec grows");
    }
}
