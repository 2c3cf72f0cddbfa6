//! The generic attribute layout (`{key, type, str, int, double, bool, bytes}`: the rows of `attrs.parquet`, and
//! the elements of the attribute lists of resources, scopes, events and links), and dedicated (one key, one
//! scalar type) attribute columns.
//!
//! `type` says where the value is (see [`ValueType`]). Strings, bools, ints, doubles and bytes are stored as
//! themselves; arrays, key-value lists and anything else are kept as protobuf-encoded `AnyValue` bytes, so
//! nothing is lost.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int8Array, Int32Array, Int64Array, ListArray,
    StringArray, StructArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::Field;
use clew_model::otlp::{AnyValue, KeyValue, any_value::Value};
use prost::Message;

use super::BlockError;
use super::meta::AttrType;
use super::schema;

/// What the `type` field of a generic attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ValueType {
    /// The `KeyValue` has no value at all.
    None = 0,
    String = 1,
    Bool = 2,
    Int = 3,
    Double = 4,
    /// `bytes` holds the raw bytes value.
    Bytes = 5,
    /// `bytes` holds the protobuf `AnyValue` (an array).
    Array = 6,
    /// `bytes` holds the protobuf `AnyValue` (a key-value list).
    KvList = 7,
    /// `bytes` holds the protobuf `AnyValue` (an empty `AnyValue`, or a kind unknown to the schema).
    OtherValue = 8,
    /// `bytes` holds the whole protobuf `KeyValue` (one using the profiles-only `key_strindex`).
    KeyValueProto = 9,
}

impl ValueType {
    fn from_i8(v: i8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::String,
            2 => Self::Bool,
            3 => Self::Int,
            4 => Self::Double,
            5 => Self::Bytes,
            6 => Self::Array,
            7 => Self::KvList,
            8 => Self::OtherValue,
            9 => Self::KeyValueProto,
            _ => return None,
        })
    }
}

/// The scalar type of an attribute, if it can live in a dedicated column.
pub fn scalar_type(kv: &KeyValue) -> Option<AttrType> {
    if kv.key_strindex != 0 {
        return None;
    }
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(_) => Some(AttrType::String),
        Value::BoolValue(_) => Some(AttrType::Bool),
        Value::IntValue(_) => Some(AttrType::Int),
        Value::DoubleValue(_) => Some(AttrType::Double),
        _ => None,
    }
}

/// A borrowed attribute value, as search compares it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// Bytes, arrays, key-value lists, no value.
    Other,
}

impl<'a> Scalar<'a> {
    pub fn of(value: Option<&'a AnyValue>) -> Self {
        match value.and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => Self::Str(s),
            Some(Value::IntValue(i)) => Self::Int(*i),
            Some(Value::DoubleValue(d)) => Self::Double(*d),
            Some(Value::BoolValue(b)) => Self::Bool(*b),
            _ => Self::Other,
        }
    }
}

/// Builds one generic attribute list column.
#[derive(Default)]
pub struct AttrListBuilder {
    offsets: Vec<i32>,
    keys: StringBuilder,
    types: Vec<i8>,
    strs: StringBuilder,
    ints: Int64Builder,
    doubles: Float64Builder,
    bools: BooleanBuilder,
    bytes: BinaryBuilder,
}

impl AttrListBuilder {
    pub fn new() -> Self {
        Self { offsets: vec![0], ..Default::default() }
    }

    /// Appends one list (one row), keeping the given order.
    pub fn append<'a>(&mut self, attrs: impl IntoIterator<Item = &'a KeyValue>) {
        for kv in attrs {
            self.push(kv);
        }
        self.offsets.push(self.types.len() as i32);
    }

    fn push(&mut self, kv: &KeyValue) {
        self.keys.append_value(&kv.key);
        let (ty, str, int, double, bool, bytes): (ValueType, _, _, _, _, Option<Vec<u8>>) = if kv.key_strindex != 0 {
            (ValueType::KeyValueProto, None, None, None, None, Some(kv.encode_to_vec()))
        } else {
            match &kv.value {
                None => (ValueType::None, None, None, None, None, None),
                Some(any) => match &any.value {
                    Some(Value::StringValue(s)) => (ValueType::String, Some(s.as_str()), None, None, None, None),
                    Some(Value::BoolValue(b)) => (ValueType::Bool, None, None, None, Some(*b), None),
                    Some(Value::IntValue(i)) => (ValueType::Int, None, Some(*i), None, None, None),
                    Some(Value::DoubleValue(d)) => (ValueType::Double, None, None, Some(*d), None, None),
                    Some(Value::BytesValue(b)) => (ValueType::Bytes, None, None, None, None, Some(b.clone())),
                    Some(Value::ArrayValue(_)) => (ValueType::Array, None, None, None, None, Some(any.encode_to_vec())),
                    Some(Value::KvlistValue(_)) => {
                        (ValueType::KvList, None, None, None, None, Some(any.encode_to_vec()))
                    }
                    _ => (ValueType::OtherValue, None, None, None, None, Some(any.encode_to_vec())),
                },
            }
        };
        self.types.push(ty as i8);
        self.strs.append_option(str);
        self.ints.append_option(int);
        self.doubles.append_option(double);
        self.bools.append_option(bool);
        self.bytes.append_option(bytes);
    }

    pub fn finish(&mut self) -> ArrayRef {
        let fields = schema::attr_struct_fields();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.keys.finish()),
            Arc::new(Int8Array::from(std::mem::take(&mut self.types))),
            Arc::new(self.strs.finish()),
            Arc::new(self.ints.finish()),
            Arc::new(self.doubles.finish()),
            Arc::new(self.bools.finish()),
            Arc::new(self.bytes.finish()),
        ];
        let values = StructArray::new(fields.clone(), columns, None);
        let offsets = OffsetBuffer::new(std::mem::replace(&mut self.offsets, vec![0]).into());
        let item = Arc::new(Field::new("element", arrow_schema::DataType::Struct(fields), false));
        Arc::new(ListArray::new(item, offsets, Arc::new(values), None))
    }
}

/// Reads a generic attribute list column.
pub struct AttrListView<'a> {
    offsets: &'a [i32],
    keys: StrValues<'a>,
    values: ValueFields<'a>,
}

/// A string field read as it is or as a dictionary (searches read keys and values as dictionaries: decoding
/// them costs an index per value instead of a copy of the string).
#[derive(Clone, Copy)]
pub(crate) enum StrValues<'a> {
    Plain(&'a StringArray),
    Dictionary { keys: &'a Int32Array, values: &'a StringArray },
}

impl<'a> StrValues<'a> {
    pub(crate) fn of(array: &'a dyn Array, what: &str) -> Result<Self, BlockError> {
        Ok(match array.as_dictionary_opt::<Int32Type>() {
            Some(d) => Self::Dictionary { keys: d.keys(), values: downcast(d.values().as_ref(), what)? },
            None => Self::Plain(downcast(array, what)?),
        })
    }

    pub(crate) fn is_valid(&self, i: usize) -> bool {
        match self {
            Self::Plain(a) => a.is_valid(i),
            Self::Dictionary { keys, .. } => keys.is_valid(i),
        }
    }

    pub(crate) fn value(&self, i: usize) -> &'a str {
        match self {
            Self::Plain(a) => a.value(i),
            Self::Dictionary { keys, values } => values.value(keys.value(i) as usize),
        }
    }
}

pub fn downcast<'a, T: 'static>(array: &'a dyn Array, what: &str) -> Result<&'a T, BlockError> {
    array.as_any().downcast_ref::<T>().ok_or_else(|| corrupt(format!("column {what} has type {}", array.data_type())))
}

pub fn corrupt(reason: String) -> BlockError {
    BlockError::Corrupt { block: String::new(), reason }
}

/// The `type` and value fields of generic attributes (in a list's struct or in `attrs.parquet`). The value
/// fields are absent when a reader left them out: searches read only the kinds of value their conditions
/// compare with.
pub(crate) struct ValueFields<'a> {
    /// Absent when a search left it out: it compares scalars only, whose kind the field holding them tells.
    types: Option<&'a Int8Array>,
    strs: Option<StrValues<'a>>,
    ints: Option<&'a Int64Array>,
    doubles: Option<&'a Float64Array>,
    bools: Option<&'a BooleanArray>,
    bytes: Option<&'a BinaryArray>,
}

impl<'a> ValueFields<'a> {
    fn of(field: impl Fn(&str) -> Option<&'a ArrayRef>, what: &str) -> Result<Self, BlockError> {
        fn optional<'a, T: 'static>(array: Option<&'a ArrayRef>, what: &str) -> Result<Option<&'a T>, BlockError> {
            array.map(|a| downcast(a.as_ref(), what)).transpose()
        }
        Ok(Self {
            types: optional(field(schema::TYPE), what)?,
            strs: field(schema::STR).map(|a| StrValues::of(a.as_ref(), what)).transpose()?,
            ints: optional(field(schema::INT), what)?,
            doubles: optional(field(schema::DOUBLE), what)?,
            bools: optional(field(schema::BOOL), what)?,
            bytes: optional(field(schema::BYTES), what)?,
        })
    }

    /// The value fields of a batch of `attrs.parquet`.
    pub(crate) fn of_batch(batch: &'a arrow_array::RecordBatch) -> Result<Self, BlockError> {
        Self::of(|name| batch.column_by_name(name), "attrs.parquet")
    }

    /// The value of attribute `i` as a scalar, `None` when it is a scalar whose field was not read.
    pub(crate) fn scalar(&self, i: usize) -> Option<Scalar<'a>> {
        fn valid<A: Array>(a: Option<&A>, i: usize) -> Option<&A> {
            a.filter(|a| a.is_valid(i))
        }
        let Some(types) = self.types else {
            // Without the type codes: the scalar is in whichever value field holds something.
            return self
                .strs
                .filter(|s| s.is_valid(i))
                .map(|s| Scalar::Str(s.value(i)))
                .or_else(|| valid(self.ints, i).map(|a| Scalar::Int(a.value(i))))
                .or_else(|| valid(self.doubles, i).map(|a| Scalar::Double(a.value(i))))
                .or_else(|| valid(self.bools, i).map(|a| Scalar::Bool(a.value(i))));
        };
        let ty = ValueType::from_i8(types.value(i));
        let read = match ty {
            Some(ValueType::String) => self.strs.filter(|s| s.is_valid(i)).map(|s| Scalar::Str(s.value(i))),
            Some(ValueType::Int) => valid(self.ints, i).map(|a| Scalar::Int(a.value(i))),
            Some(ValueType::Double) => valid(self.doubles, i).map(|a| Scalar::Double(a.value(i))),
            Some(ValueType::Bool) => valid(self.bools, i).map(|a| Scalar::Bool(a.value(i))),
            _ => return Some(Scalar::Other),
        };
        let field_read = match ty {
            Some(ValueType::String) => self.strs.is_some(),
            Some(ValueType::Int) => self.ints.is_some(),
            Some(ValueType::Double) => self.doubles.is_some(),
            _ => self.bools.is_some(),
        };
        match (read, field_read) {
            (Some(scalar), _) => Some(scalar),
            (None, true) => Some(Scalar::Other),
            (None, false) => None,
        }
    }

    /// Attribute `i` with key `key`, as sent.
    pub(crate) fn read(&self, key: &str, i: usize) -> Result<KeyValue, BlockError> {
        let types = self.types.ok_or_else(|| corrupt(format!("attribute {key:?} read without its type")))?;
        let ty = ValueType::from_i8(types.value(i))
            .ok_or_else(|| corrupt(format!("unknown attribute type {}", types.value(i))))?;
        let value = |v: Value| Some(AnyValue { value: Some(v) });
        let missing = || corrupt(format!("attribute {key:?} of type {ty:?} has no value"));
        let bytes = || match self.bytes {
            Some(b) if b.is_valid(i) => Ok(b.value(i)),
            _ => Err(missing()),
        };
        let decode_any = |b: &[u8]| AnyValue::decode(b).map_err(|e| corrupt(format!("attribute {key:?}: {e}")));
        let value = match ty {
            ValueType::None => None,
            ValueType::String => {
                let Some(s) = self.strs.filter(|a| a.is_valid(i)) else { return Err(missing()) };
                value(Value::StringValue(s.value(i).to_owned()))
            }
            ValueType::Bool => {
                let Some(b) = self.bools.filter(|a| a.is_valid(i)) else { return Err(missing()) };
                value(Value::BoolValue(b.value(i)))
            }
            ValueType::Int => {
                let Some(n) = self.ints.filter(|a| a.is_valid(i)) else { return Err(missing()) };
                value(Value::IntValue(n.value(i)))
            }
            ValueType::Double => {
                let Some(d) = self.doubles.filter(|a| a.is_valid(i)) else { return Err(missing()) };
                value(Value::DoubleValue(d.value(i)))
            }
            ValueType::Bytes => value(Value::BytesValue(bytes()?.to_vec())),
            ValueType::Array | ValueType::KvList | ValueType::OtherValue => Some(decode_any(bytes()?)?),
            ValueType::KeyValueProto => {
                return KeyValue::decode(bytes()?).map_err(|e| corrupt(format!("attribute {key:?}: {e}")));
            }
        };
        Ok(KeyValue { key: key.to_owned(), value, key_strindex: 0 })
    }
}

impl<'a> AttrListView<'a> {
    pub fn new(array: &'a dyn Array, what: &str) -> Result<Self, BlockError> {
        let list: &ListArray = downcast(array, what)?;
        let values: &StructArray = downcast(list.values().as_ref(), what)?;
        let keys =
            values.column_by_name(schema::KEY).ok_or_else(|| corrupt(format!("column {what} lacks the field key")))?;
        Ok(Self {
            offsets: list.value_offsets(),
            keys: StrValues::of(keys.as_ref(), what)?,
            values: ValueFields::of(|name| values.column_by_name(name), what)?,
        })
    }

    /// Appends the attributes of list `row` to `out`.
    pub fn read_into(&self, row: usize, out: &mut Vec<KeyValue>) -> Result<(), BlockError> {
        let (start, end) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
        out.reserve(end - start);
        for i in start..end {
            out.push(self.values.read(self.keys.value(i), i)?);
        }
        Ok(())
    }

    pub fn read(&self, row: usize) -> Result<Vec<KeyValue>, BlockError> {
        let mut out = Vec::new();
        self.read_into(row, &mut out)?;
        Ok(out)
    }

    /// Indexes (for [`Self::key`]) of the attributes of list `row`.
    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        self.offsets[row] as usize..self.offsets[row + 1] as usize
    }

    pub fn key(&self, i: usize) -> &'a str {
        self.keys.value(i)
    }

    /// The value of the first attribute named `key` in list `row`; `None` when there is none, or when its value
    /// is of a kind the reader left out (no condition of the search compares with it).
    pub fn find(&self, row: usize, key: &str) -> Option<Scalar<'a>> {
        self.range(row).find(|&i| self.keys.value(i) == key).and_then(|i| self.values.scalar(i))
    }
}

/// Reads a dedicated attribute column.
pub enum DedicatedView<'a> {
    String(&'a StringArray),
    Int(&'a Int64Array),
    Double(&'a Float64Array),
    Bool(&'a BooleanArray),
}

impl<'a> DedicatedView<'a> {
    pub fn new(array: &'a dyn Array, ty: AttrType, what: &str) -> Result<Self, BlockError> {
        Ok(match ty {
            AttrType::String => Self::String(downcast(array, what)?),
            AttrType::Int => Self::Int(downcast(array, what)?),
            AttrType::Double => Self::Double(downcast(array, what)?),
            AttrType::Bool => Self::Bool(downcast(array, what)?),
        })
    }

    pub fn scalar(&self, row: usize) -> Option<Scalar<'a>> {
        match self {
            Self::String(a) => a.is_valid(row).then(|| Scalar::Str(a.value(row))),
            Self::Int(a) => a.is_valid(row).then(|| Scalar::Int(a.value(row))),
            Self::Double(a) => a.is_valid(row).then(|| Scalar::Double(a.value(row))),
            Self::Bool(a) => a.is_valid(row).then(|| Scalar::Bool(a.value(row))),
        }
    }

    pub fn get(&self, row: usize) -> Option<Value> {
        match self {
            Self::String(a) => a.is_valid(row).then(|| Value::StringValue(a.value(row).to_owned())),
            Self::Int(a) => a.is_valid(row).then(|| Value::IntValue(a.value(row))),
            Self::Double(a) => a.is_valid(row).then(|| Value::DoubleValue(a.value(row))),
            Self::Bool(a) => a.is_valid(row).then(|| Value::BoolValue(a.value(row))),
        }
    }
}
