//! Building the Arrow columns of one row group of each block file from borrowed span views.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, UInt32Builder,
};
use arrow_array::{
    ArrayRef, Float64Array, Int8Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    UInt32Array, UInt64Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, SchemaRef};
use clew_model::SamplingDecision;
use clew_model::otlp::span::{Event, Link};
use clew_model::otlp::{InstrumentationScope, KeyValue, Resource, any_value::Value};
use prost::Message;

use super::attrs::{AttrListBuilder, ValueType, scalar_type};
use super::meta::{AttrType, DedicatedColumn, DedicatedColumns};
use super::schema;
use super::span_view::{AttrValue, KeyValueView, SpanView};
use super::{BlockError, BlockOptions};

const SERVICE_NAME_KEY: &str = "service.name";
/// `STATUS_CODE_ERROR`.
pub(super) const STATUS_ERROR: i32 = 2;

pub(super) fn invalid(e: impl std::fmt::Display) -> BlockError {
    BlockError::InvalidSpan(e.to_string())
}

/// A resource and scope, decoded once per distinct origin.
pub(super) struct DecodedOrigin {
    pub resource: Option<Resource>,
    pub resource_schema_url: String,
    pub scope: Option<InstrumentationScope>,
    pub scope_schema_url: String,
}

impl DecodedOrigin {
    pub fn decode(origin: &super::input::OriginBytes<'_>) -> Result<Self, BlockError> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(invalid);
        Ok(Self {
            resource: origin.resource.map(Resource::decode).transpose().map_err(invalid)?,
            resource_schema_url: text(origin.resource_schema_url)?,
            scope: origin.scope.map(InstrumentationScope::decode).transpose().map_err(invalid)?,
            scope_schema_url: text(origin.scope_schema_url)?,
        })
    }
}

/// The per-span columns of one origin (resource and scope), computed once.
pub(super) struct EncodedOrigin<'a> {
    pub service_name: Option<&'a str>,
    resource_dedicated: Vec<Option<&'a KeyValue>>,
    resource_generic: Vec<&'a KeyValue>,
    resource_dropped: Option<u32>,
    resource_entity_refs: Option<Vec<u8>>,
    resource_schema_url: &'a str,
    pub resource_keys: Vec<&'a str>,
    scope_name: Option<&'a str>,
    scope_version: Option<&'a str>,
    scope_attrs: Vec<&'a KeyValue>,
    scope_dropped: Option<u32>,
    scope_schema_url: &'a str,
}

impl<'a> EncodedOrigin<'a> {
    pub fn new(origin: &'a DecodedOrigin, dedicated: &[DedicatedColumn]) -> Self {
        let resource = origin.resource.as_ref();
        let mut attrs: Vec<&KeyValue> = resource.map(|r| r.attributes.iter().collect()).unwrap_or_default();
        let service = attrs.iter().position(|kv| {
            kv.key == SERVICE_NAME_KEY
                && kv.key_strindex == 0
                && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(Value::StringValue(_)))
        });
        let service_name = service.map(|i| match attrs.remove(i).value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => s.as_str(),
            _ => unreachable!("checked above"),
        });
        let mut resource_dedicated = vec![None; dedicated.len()];
        let mut resource_generic = Vec::new();
        for kv in attrs {
            match dedicated.iter().position(|c| c.key == kv.key) {
                Some(i) if resource_dedicated[i].is_none() && scalar_type(kv) == Some(dedicated[i].ty) => {
                    resource_dedicated[i] = Some(kv)
                }
                _ => resource_generic.push(kv),
            }
        }
        resource_generic.sort_by(|a, b| a.key.cmp(&b.key));
        let resource_entity_refs = resource
            .filter(|r| !r.entity_refs.is_empty())
            .map(|r| Resource { entity_refs: r.entity_refs.clone(), ..Default::default() }.encode_to_vec());
        let scope = origin.scope.as_ref();
        let mut scope_attrs: Vec<&KeyValue> = scope.map(|s| s.attributes.iter().collect()).unwrap_or_default();
        scope_attrs.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            service_name,
            resource_dedicated,
            resource_generic,
            resource_dropped: resource.map(|r| r.dropped_attributes_count),
            resource_entity_refs,
            resource_schema_url: &origin.resource_schema_url,
            resource_keys: resource
                .map(|r| r.attributes.iter().map(|kv| kv.key.as_str()).collect())
                .unwrap_or_default(),
            scope_name: scope.map(|s| s.name.as_str()),
            scope_version: scope.map(|s| s.version.as_str()),
            scope_attrs,
            scope_dropped: scope.map(|s| s.dropped_attributes_count),
            scope_schema_url: &origin.scope_schema_url,
        }
    }
}

/// Interned span attribute keys of a block (the keys of `attrs.parquet`).
#[derive(Default)]
pub(super) struct KeyTable<'a> {
    ids: HashMap<Cow<'a, str>, u32, foldhash::fast::RandomState>,
    pub keys: Vec<Cow<'a, str>>,
}

impl<'a> KeyTable<'a> {
    pub fn id(&mut self, key: Cow<'a, str>) -> u32 {
        if let Some(&id) = self.ids.get(key.as_ref()) {
            return id;
        }
        self.keys.push(key.clone());
        let id = self.keys.len() as u32 - 1;
        self.ids.insert(key, id);
        id
    }
}

/// The generic span attributes of one row group: per key, (row in `spans.parquet`, value) in row order.
#[derive(Default)]
pub(super) struct AttrEntries<'a> {
    by_key: Vec<Vec<(u32, AttrValue<'a>)>>,
    entries: usize,
}

impl<'a> AttrEntries<'a> {
    pub fn push(&mut self, key: u32, row: u32, value: AttrValue<'a>) {
        let key = key as usize;
        if self.by_key.len() <= key {
            self.by_key.resize_with(key + 1, Vec::new);
        }
        self.by_key[key].push((row, value));
        self.entries += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The row group of `attrs.parquet`: entries sorted by (key, row), and how many entries each key (by id) has.
    pub fn finish(self, schema: &SchemaRef, keys: &KeyTable<'_>) -> Result<(RecordBatch, Vec<(u32, u32)>), BlockError> {
        let n = self.entries;
        let mut order: Vec<u32> =
            (0..self.by_key.len() as u32).filter(|&k| !self.by_key[k as usize].is_empty()).collect();
        order.sort_unstable_by(|a, b| keys.keys[*a as usize].cmp(&keys.keys[*b as usize]));
        let mut key = StringBuilder::with_capacity(n, n * 16);
        let mut row_delta = Vec::with_capacity(n);
        let mut ty = Vec::with_capacity(n);
        let mut values = ValueColumns::with_capacity(n);
        let mut counts = Vec::with_capacity(order.len());
        for k in order {
            let name = keys.keys[k as usize].as_ref();
            let entries = &self.by_key[k as usize];
            counts.push((k, entries.len() as u32));
            // Each key's rows go up: stored as differences, the first from row 0 of the file.
            let mut previous = 0;
            for (row, value) in entries {
                key.append_value(name);
                row_delta.push(row - previous);
                previous = *row;
                ty.push(values.push(value) as i8);
            }
        }
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(key.finish()), Arc::new(UInt32Array::from(row_delta)), Arc::new(Int8Array::from(ty))];
        columns.extend(values.finish());
        Ok((RecordBatch::try_new(Arc::clone(schema), columns)?, counts))
    }
}

/// The value fields of the generic attribute layout: `str`, `int`, `double`, `bool`, `bytes`. A field is filled
/// only once a value of its kind comes (most row groups have no ints, no bytes...): all nulls before.
struct ValueColumns {
    rows: usize,
    strs: Option<StringBuilder>,
    ints: Option<Int64Builder>,
    doubles: Option<Float64Builder>,
    bools: Option<BooleanBuilder>,
    bytes: Option<BinaryBuilder>,
    capacity: usize,
}

/// A builder that starts with `rows` nulls.
fn started<B: Default + NullsFirst>(slot: &mut Option<B>, rows: usize) -> &mut B {
    slot.get_or_insert_with(|| {
        let mut b = B::default();
        b.nulls(rows);
        b
    })
}

trait NullsFirst {
    fn nulls(&mut self, n: usize);
}

macro_rules! nulls_first {
    ($($t:ty),*) => {$(
        impl NullsFirst for $t {
            fn nulls(&mut self, n: usize) {
                self.append_nulls(n);
            }
        }
    )*};
}
nulls_first!(StringBuilder, Int64Builder, Float64Builder, BooleanBuilder, BinaryBuilder);

impl ValueColumns {
    fn with_capacity(capacity: usize) -> Self {
        Self { rows: 0, strs: None, ints: None, doubles: None, bools: None, bytes: None, capacity }
    }

    /// Appends a value (nulls in the other fields) and says where it went.
    fn push(&mut self, value: &AttrValue<'_>) -> ValueType {
        let rows = self.rows;
        let ty = match value {
            AttrValue::None => ValueType::None,
            AttrValue::Str(s) => {
                let capacity = self.capacity;
                self.strs
                    .get_or_insert_with(|| {
                        let mut b = StringBuilder::with_capacity(capacity, capacity * 12);
                        b.append_nulls(rows);
                        b
                    })
                    .append_value(s);
                ValueType::String
            }
            AttrValue::Bool(v) => {
                started(&mut self.bools, rows).append_value(*v);
                ValueType::Bool
            }
            AttrValue::Int(v) => {
                started(&mut self.ints, rows).append_value(*v);
                ValueType::Int
            }
            AttrValue::Double(v) => {
                started(&mut self.doubles, rows).append_value(*v);
                ValueType::Double
            }
            AttrValue::Bytes(v)
            | AttrValue::Array(v)
            | AttrValue::KvList(v)
            | AttrValue::Other(v)
            | AttrValue::KeyValueProto(v) => {
                started(&mut self.bytes, rows).append_value(v);
                match value {
                    AttrValue::Bytes(_) => ValueType::Bytes,
                    AttrValue::Array(_) => ValueType::Array,
                    AttrValue::KvList(_) => ValueType::KvList,
                    AttrValue::Other(_) => ValueType::OtherValue,
                    _ => ValueType::KeyValueProto,
                }
            }
        };
        self.rows += 1;
        // Every started field gets a null where this value did not go.
        let filled = |b: usize| b == self.rows;
        if let Some(b) = &mut self.strs
            && !filled(b.len())
        {
            b.append_null();
        }
        if let Some(b) = &mut self.ints
            && !filled(b.len())
        {
            b.append_null();
        }
        if let Some(b) = &mut self.doubles
            && !filled(b.len())
        {
            b.append_null();
        }
        if let Some(b) = &mut self.bools
            && !filled(b.len())
        {
            b.append_null();
        }
        if let Some(b) = &mut self.bytes
            && !filled(b.len())
        {
            b.append_null();
        }
        ty
    }

    fn finish(self) -> [ArrayRef; 5] {
        let n = self.rows;
        fn done<B: ArrayBuilder>(b: Option<B>, n: usize, ty: &DataType) -> ArrayRef {
            match b {
                Some(mut b) => b.finish(),
                None => arrow_array::new_null_array(ty, n),
            }
        }
        [
            done(self.strs, n, &DataType::Utf8),
            done(self.ints, n, &DataType::Int64),
            done(self.doubles, n, &DataType::Float64),
            done(self.bools, n, &DataType::Boolean),
            done(self.bytes, n, &DataType::Binary),
        ]
    }
}

/// Builds one dedicated attribute column from borrowed values.
enum DedicatedBuilder {
    String(StringBuilder),
    Int(Int64Builder),
    Double(Float64Builder),
    Bool(BooleanBuilder),
}

impl DedicatedBuilder {
    fn new(ty: AttrType) -> Self {
        match ty {
            AttrType::String => Self::String(StringBuilder::new()),
            AttrType::Int => Self::Int(Int64Builder::new()),
            AttrType::Double => Self::Double(Float64Builder::new()),
            AttrType::Bool => Self::Bool(BooleanBuilder::new()),
        }
    }

    fn append(&mut self, value: Option<&AttrValue<'_>>) {
        match (self, value) {
            (Self::String(b), Some(AttrValue::Str(s))) => b.append_value(s),
            (Self::Int(b), Some(AttrValue::Int(i))) => b.append_value(*i),
            (Self::Double(b), Some(AttrValue::Double(d))) => b.append_value(*d),
            (Self::Bool(b), Some(AttrValue::Bool(v))) => b.append_value(*v),
            (Self::String(b), _) => b.append_null(),
            (Self::Int(b), _) => b.append_null(),
            (Self::Double(b), _) => b.append_null(),
            (Self::Bool(b), _) => b.append_null(),
        }
    }

    fn append_kv(&mut self, kv: Option<&KeyValue>) {
        let view = kv.map(KeyValueView::from_key_value);
        self.append(view.as_ref().map(|v| &v.value));
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::String(b) => Arc::new(b.finish()),
            Self::Int(b) => Arc::new(b.finish()),
            Self::Double(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// The columns of `spans.parquet` for one row group, appended span by span.
pub(super) struct SpanColumns<'d> {
    dedicated: &'d DedicatedColumns,
    lookup: HashMap<&'d str, (usize, AttrType)>,
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    parent: BinaryBuilder,
    start: Vec<u64>,
    duration: Vec<i64>,
    name: StringBuilder,
    kind: Vec<i32>,
    service: StringBuilder,
    trace_state: StringBuilder,
    flags: Vec<u32>,
    status_code: Int32Builder,
    status_message: StringBuilder,
    dropped_attrs: Vec<u32>,
    dropped_events: Vec<u32>,
    dropped_links: Vec<u32>,
    span_dedicated: Vec<DedicatedBuilder>,
    events: EventsBuilder,
    links: LinksBuilder,
    resource_dedicated: Vec<DedicatedBuilder>,
    resource_attrs: AttrListBuilder,
    resource_dropped: UInt32Builder,
    entity_refs: BinaryBuilder,
    resource_schema: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attrs: AttrListBuilder,
    scope_dropped: UInt32Builder,
    scope_schema: StringBuilder,
    /// Which dedicated columns the span being appended has filled.
    taken: Vec<bool>,
    rows: usize,
}

impl<'d> SpanColumns<'d> {
    pub fn new(dedicated: &'d DedicatedColumns, n: usize) -> Self {
        Self {
            dedicated,
            lookup: dedicated.span.iter().enumerate().map(|(i, c)| (c.key.as_str(), (i, c.ty))).collect(),
            trace_id: FixedSizeBinaryBuilder::with_capacity(n, 16),
            span_id: FixedSizeBinaryBuilder::with_capacity(n, 8),
            parent: BinaryBuilder::with_capacity(n, n * 8),
            start: Vec::with_capacity(n),
            duration: Vec::with_capacity(n),
            name: StringBuilder::with_capacity(n, n * 16),
            kind: Vec::with_capacity(n),
            service: StringBuilder::with_capacity(n, n * 8),
            trace_state: StringBuilder::with_capacity(n, 0),
            flags: Vec::with_capacity(n),
            status_code: Int32Builder::with_capacity(n),
            status_message: StringBuilder::with_capacity(n, 0),
            dropped_attrs: Vec::with_capacity(n),
            dropped_events: Vec::with_capacity(n),
            dropped_links: Vec::with_capacity(n),
            span_dedicated: dedicated.span.iter().map(|c| DedicatedBuilder::new(c.ty)).collect(),
            events: EventsBuilder::default(),
            links: LinksBuilder::default(),
            resource_dedicated: dedicated.resource.iter().map(|c| DedicatedBuilder::new(c.ty)).collect(),
            resource_attrs: AttrListBuilder::new(),
            resource_dropped: UInt32Builder::with_capacity(n),
            entity_refs: BinaryBuilder::new(),
            resource_schema: StringBuilder::with_capacity(n, 0),
            scope_name: StringBuilder::with_capacity(n, n * 8),
            scope_version: StringBuilder::with_capacity(n, n * 4),
            scope_attrs: AttrListBuilder::new(),
            scope_dropped: UInt32Builder::with_capacity(n),
            scope_schema: StringBuilder::with_capacity(n, 0),
            taken: vec![false; dedicated.span.len()],
            rows: 0,
        }
    }

    /// Appends one span; its attributes that have no dedicated column go to `attrs` (keyed through `keys`) with
    /// row number `row`. `decision` is why sampling kept the trace: a `th` goes into the trace state.
    #[allow(clippy::too_many_arguments)]
    pub fn append<'a>(
        &mut self,
        view: &SpanView<'a>,
        origin: &EncodedOrigin<'_>,
        decision: Option<&SamplingDecision>,
        row: u32,
        keys: &mut KeyTable<'a>,
        attrs: &mut AttrEntries<'a>,
    ) -> Result<(), BlockError> {
        self.trace_id.append_value(view.trace_id)?;
        self.span_id.append_value(view.span_id)?;
        self.parent.append_value(view.parent_span_id);
        self.start.push(view.start);
        self.duration.push(view.end.wrapping_sub(view.start) as i64);
        self.name.append_value(view.name);
        self.kind.push(view.kind);
        self.service.append_option(origin.service_name);
        match decision.and_then(|d| d.threshold.as_deref()) {
            Some(th) => {
                self.trace_state.append_value(clew_model::sampling::with_ot_threshold(view.trace_state, Some(th)))
            }
            None => self.trace_state.append_value(view.trace_state),
        }
        self.flags.push(view.flags);
        self.status_code.append_option(view.status.map(|s| s.code));
        self.status_message.append_option(view.status.map(|s| s.message));
        self.dropped_attrs.push(view.dropped_attributes_count);
        self.dropped_events.push(view.dropped_events_count);
        self.dropped_links.push(view.dropped_links_count);

        self.taken.iter_mut().for_each(|t| *t = false);
        for kv in view.attributes() {
            let kv = kv.map_err(invalid)?;
            if let Some(&(i, ty)) = self.lookup.get(kv.key.as_ref())
                && !self.taken[i]
                && kv.value.scalar_type() == Some(ty)
            {
                self.span_dedicated[i].append(Some(&kv.value));
                self.taken[i] = true;
                continue;
            }
            let key = keys.id(kv.key);
            attrs.push(key, row, kv.value);
        }
        for (builder, taken) in self.span_dedicated.iter_mut().zip(&self.taken) {
            if !taken {
                builder.append(None);
            }
        }
        if view.has_events {
            let events: Vec<Event> = view
                .messages(11)
                .map(|b| Event::decode(b.map_err(invalid)?).map_err(invalid))
                .collect::<Result<_, _>>()?;
            self.events.append(&events);
        } else {
            self.events.append(&[]);
        }
        if view.has_links {
            let links: Vec<Link> = view
                .messages(13)
                .map(|b| Link::decode(b.map_err(invalid)?).map_err(invalid))
                .collect::<Result<_, _>>()?;
            self.links.append(&links);
        } else {
            self.links.append(&[]);
        }

        for (b, slot) in self.resource_dedicated.iter_mut().zip(&origin.resource_dedicated) {
            b.append_kv(*slot);
        }
        self.resource_attrs.append(origin.resource_generic.iter().copied());
        self.resource_dropped.append_option(origin.resource_dropped);
        self.entity_refs.append_option(origin.resource_entity_refs.as_deref());
        self.resource_schema.append_value(origin.resource_schema_url);
        self.scope_name.append_option(origin.scope_name);
        self.scope_version.append_option(origin.scope_version);
        self.scope_attrs.append(origin.scope_attrs.iter().copied());
        self.scope_dropped.append_option(origin.scope_dropped);
        self.scope_schema.append_value(origin.scope_schema_url);
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self, schema: &SchemaRef) -> Result<RecordBatch, BlockError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(UInt64Array::from(self.start)),
            Arc::new(Int64Array::from(self.duration)),
            Arc::new(self.name.finish()),
            Arc::new(Int32Array::from(self.kind)),
            Arc::new(self.service.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(UInt32Array::from(self.flags)),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(UInt32Array::from(self.dropped_attrs)),
            Arc::new(UInt32Array::from(self.dropped_events)),
            Arc::new(UInt32Array::from(self.dropped_links)),
        ];
        debug_assert_eq!(self.span_dedicated.len(), self.dedicated.span.len());
        columns.extend(self.span_dedicated.iter_mut().map(|b| b.finish()));
        columns.push(self.events.finish());
        columns.push(self.links.finish());
        columns.extend(self.resource_dedicated.iter_mut().map(|b| b.finish()));
        columns.extend([
            self.resource_attrs.finish(),
            Arc::new(self.resource_dropped.finish()) as ArrayRef,
            Arc::new(self.entity_refs.finish()),
            Arc::new(self.resource_schema.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            self.scope_attrs.finish(),
            Arc::new(self.scope_dropped.finish()),
            Arc::new(self.scope_schema.finish()),
        ]);
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

fn list_array(fields: arrow_schema::Fields, columns: Vec<ArrayRef>, offsets: Vec<i32>) -> ArrayRef {
    let values = StructArray::new(fields.clone(), columns, None);
    let item = Arc::new(Field::new("element", DataType::Struct(fields), false));
    Arc::new(ListArray::new(item, OffsetBuffer::new(offsets.into()), Arc::new(values), None))
}

#[derive(Default)]
struct EventsBuilder {
    offsets: Vec<i32>,
    times: Vec<u64>,
    names: StringBuilder,
    attrs: Option<AttrListBuilder>,
    dropped: Vec<u32>,
}

impl EventsBuilder {
    fn append(&mut self, events: &[Event]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let attrs = self.attrs.get_or_insert_with(AttrListBuilder::new);
        for e in events {
            self.times.push(e.time_unix_nano);
            self.names.append_value(&e.name);
            attrs.append(&e.attributes);
            self.dropped.push(e.dropped_attributes_count);
        }
        self.offsets.push(self.times.len() as i32);
    }

    fn finish(&mut self) -> ArrayRef {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(std::mem::take(&mut self.times))),
            Arc::new(self.names.finish()),
            self.attrs.get_or_insert_with(AttrListBuilder::new).finish(),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.dropped))),
        ];
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0);
        }
        list_array(schema::event_fields(), columns, offsets)
    }
}

#[derive(Default)]
struct LinksBuilder {
    offsets: Vec<i32>,
    trace_ids: BinaryBuilder,
    span_ids: BinaryBuilder,
    trace_states: StringBuilder,
    flags: Vec<u32>,
    attrs: Option<AttrListBuilder>,
    dropped: Vec<u32>,
}

impl LinksBuilder {
    fn append(&mut self, links: &[Link]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let attrs = self.attrs.get_or_insert_with(AttrListBuilder::new);
        for l in links {
            self.trace_ids.append_value(&l.trace_id);
            self.span_ids.append_value(&l.span_id);
            self.trace_states.append_value(&l.trace_state);
            self.flags.push(l.flags);
            attrs.append(&l.attributes);
            self.dropped.push(l.dropped_attributes_count);
        }
        self.offsets.push(self.flags.len() as i32);
    }

    fn finish(&mut self) -> ArrayRef {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_ids.finish()),
            Arc::new(self.span_ids.finish()),
            Arc::new(self.trace_states.finish()),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.flags))),
            self.attrs.get_or_insert_with(AttrListBuilder::new).finish(),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.dropped))),
        ];
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0);
        }
        list_array(schema::link_fields(), columns, offsets)
    }
}

/// One trace's row of `traces.parquet`, gathered while its spans are appended (in start order).
pub(super) struct TraceRow<'a> {
    pub trace_id: [u8; 16],
    pub start: u64,
    pub end: u64,
    pub root: Option<(Option<&'a str>, &'a str)>,
    pub spans: u32,
    pub errors: u32,
    pub services: Vec<&'a str>,
    pub decision: Option<&'a SamplingDecision>,
}

impl<'a> TraceRow<'a> {
    pub fn new(trace_id: [u8; 16], decision: Option<&'a SamplingDecision>) -> Self {
        Self { trace_id, start: u64::MAX, end: 0, root: None, spans: 0, errors: 0, services: Vec::new(), decision }
    }

    pub fn add(&mut self, view: &SpanView<'a>, service: Option<&'a str>) {
        self.start = self.start.min(view.start);
        self.end = self.end.max(view.end);
        if self.root.is_none() && view.parent_span_id.is_empty() {
            self.root = Some((service, view.name));
        }
        self.spans += 1;
        self.errors += u32::from(view.status.is_some_and(|s| s.code == STATUS_ERROR));
        if let Some(service) = service
            && !self.services.contains(&service)
        {
            self.services.push(service);
        }
    }
}

pub(super) fn traces_batch(schema: &SchemaRef, traces: &mut [TraceRow<'_>]) -> Result<RecordBatch, BlockError> {
    let n = traces.len();
    let mut trace_id = FixedSizeBinaryBuilder::with_capacity(n, 16);
    let mut root_service = StringBuilder::new();
    let mut root_name = StringBuilder::new();
    let mut services = StringBuilder::new();
    let mut offsets = vec![0i32];
    for t in traces.iter_mut() {
        trace_id.append_value(t.trace_id)?;
        root_service.append_option(t.root.and_then(|(service, _)| service));
        root_name.append_option(t.root.map(|(_, name)| name));
        t.services.sort_unstable();
        for s in &t.services {
            services.append_value(s);
        }
        offsets.push(offsets.last().copied().unwrap_or(0) + t.services.len() as i32);
    }
    let item = Arc::new(Field::new("element", DataType::Utf8, false));
    let services: StringArray = services.finish();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(trace_id.finish()),
        Arc::new(UInt64Array::from_iter_values(traces.iter().map(|t| t.start))),
        Arc::new(Int64Array::from_iter_values(traces.iter().map(|t| t.end.wrapping_sub(t.start) as i64))),
        Arc::new(root_service.finish()),
        Arc::new(root_name.finish()),
        Arc::new(UInt32Array::from_iter_values(traces.iter().map(|t| t.spans))),
        Arc::new(UInt32Array::from_iter_values(traces.iter().map(|t| t.errors))),
        Arc::new(ListArray::new(item, OffsetBuffer::new(offsets.into()), Arc::new(services), None)),
        Arc::new(StringArray::from_iter(traces.iter().map(|t| t.decision.and_then(|d| d.policy.as_deref())))),
        Arc::new(Float64Array::from_iter(traces.iter().map(|t| t.decision.map(|d| d.weight)))),
        Arc::new(StringArray::from_iter(traces.iter().map(|t| t.decision.and_then(|d| d.threshold.as_deref())))),
    ];
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// How often each span attribute key occurs, by value type (string, int, double, bool, anything else).
pub(super) type KeyCounts<'a> = HashMap<&'a [u8], [u64; 5], foldhash::fast::RandomState>;

const SCALAR_TYPES: [AttrType; 4] = [AttrType::String, AttrType::Int, AttrType::Double, AttrType::Bool];

pub(super) fn type_slot(ty: Option<AttrType>) -> usize {
    match ty {
        Some(AttrType::String) => 0,
        Some(AttrType::Int) => 1,
        Some(AttrType::Double) => 2,
        Some(AttrType::Bool) => 3,
        None => 4,
    }
}

/// The dedicated columns of a block: the scalar (key, type) pairs on at least `dedicated_min_fraction` of its
/// spans, most frequent first up to the maximum, one type per key.
pub(super) fn choose_dedicated(
    span_count: usize,
    span_keys: &KeyCounts<'_>,
    origins: &[DecodedOrigin],
    spans_per_origin: &[u64],
    options: &BlockOptions,
) -> DedicatedColumns {
    let threshold = ((span_count as f64 * options.dedicated_min_fraction).ceil() as u64).max(1);
    let mut span_counts: HashMap<(&str, AttrType), u64> = HashMap::new();
    for (key, counts) in span_keys {
        let Ok(key) = std::str::from_utf8(key) else { continue };
        for (ty, &n) in SCALAR_TYPES.iter().zip(counts) {
            if n > 0 {
                *span_counts.entry((key, *ty)).or_default() += n;
            }
        }
    }
    let mut resource_counts: HashMap<(&str, AttrType), u64> = HashMap::new();
    for (origin, &n) in origins.iter().zip(spans_per_origin) {
        let attrs = origin.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
        for kv in attrs {
            if let Some(ty) = scalar_type(kv)
                && kv.key != SERVICE_NAME_KEY
            {
                *resource_counts.entry((kv.key.as_str(), ty)).or_default() += n;
            }
        }
    }
    let pick = |counts: HashMap<(&str, AttrType), u64>, max: usize, prefix: &str| {
        // An empty key would make a column named like the prefix: it stays generic.
        let mut frequent: Vec<_> =
            counts.into_iter().filter(|&((key, _), n)| n >= threshold && !key.is_empty()).collect();
        frequent.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut keys = std::collections::BTreeSet::new();
        let mut chosen: Vec<DedicatedColumn> = Vec::new();
        for ((key, ty), _) in frequent {
            // One type per key: the most frequent.
            if chosen.len() < max && keys.insert(key) {
                chosen.push(DedicatedColumn { key: key.to_owned(), ty, column: format!("{prefix}{key}") });
            }
        }
        chosen.sort_by(|a, b| a.key.cmp(&b.key));
        chosen
    };
    DedicatedColumns {
        span: pick(span_counts, options.max_dedicated_span_columns, schema::SPAN_ATTR_PREFIX),
        resource: pick(resource_counts, options.max_dedicated_resource_columns, schema::RESOURCE_ATTR_PREFIX),
    }
}
