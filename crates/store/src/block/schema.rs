//! Column names, Arrow schemas and Parquet writer settings of the two block files.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use super::BlockOptions;
use super::meta::{AttrType, DedicatedColumns};

// spans.parquet
pub const TRACE_ID: &str = "trace_id";
pub const SPAN_ID: &str = "span_id";
pub const PARENT_SPAN_ID: &str = "parent_span_id";
pub const START: &str = "start_unix_nano";
pub const DURATION: &str = "duration_nano";
pub const NAME: &str = "name";
pub const KIND: &str = "kind";
pub const SERVICE_NAME: &str = "service_name";
pub const TRACE_STATE: &str = "trace_state";
pub const FLAGS: &str = "flags";
pub const STATUS_CODE: &str = "status_code";
pub const STATUS_MESSAGE: &str = "status_message";
pub const DROPPED_ATTRIBUTES: &str = "dropped_attributes_count";
pub const DROPPED_EVENTS: &str = "dropped_events_count";
pub const DROPPED_LINKS: &str = "dropped_links_count";
pub const EVENTS: &str = "events";
pub const LINKS: &str = "links";
pub const RESOURCE_ATTRS: &str = "resource.attrs";
pub const RESOURCE_DROPPED: &str = "resource.dropped_attributes_count";
pub const RESOURCE_ENTITY_REFS: &str = "resource.entity_refs";
pub const RESOURCE_SCHEMA_URL: &str = "resource.schema_url";
pub const SCOPE_NAME: &str = "scope.name";
pub const SCOPE_VERSION: &str = "scope.version";
pub const SCOPE_ATTRS: &str = "scope.attrs";
pub const SCOPE_DROPPED: &str = "scope.dropped_attributes_count";
pub const SCOPE_SCHEMA_URL: &str = "scope.schema_url";

pub const SPAN_ATTR_PREFIX: &str = "span.attr.";
pub const RESOURCE_ATTR_PREFIX: &str = "resource.attr.";

// Fields of events and links.
pub const TIME: &str = "time_unix_nano";
pub const ATTRS: &str = "attrs";

// attrs.parquet: a key, the difference of the span's row to the row of the key's previous entry, and the
// value fields of a generic attribute.
pub const ROW_DELTA: &str = "row_delta";

// Fields of a generic attribute.
pub const KEY: &str = "key";
pub const TYPE: &str = "type";
pub const STR: &str = "str";
pub const INT: &str = "int";
pub const DOUBLE: &str = "double";
pub const BOOL: &str = "bool";
pub const BYTES: &str = "bytes";

// traces.parquet
pub const ROOT_SERVICE: &str = "root_service";
pub const ROOT_NAME: &str = "root_name";
pub const SPAN_COUNT: &str = "span_count";
pub const ERROR_COUNT: &str = "error_count";
pub const SERVICES: &str = "services";
/// Why tail sampling kept the trace (null: no decision recorded): policy, adjusted count, OTEP 235 `th`.
pub const SAMPLING_POLICY: &str = "sampling_policy";
pub const SAMPLING_WEIGHT: &str = "sampling_weight";
pub const SAMPLING_THRESHOLD: &str = "sampling_threshold";

/// The element of a generic attribute list: `{key, type, str, int, double, bool, bytes}`; `type` says which
/// value field is set (see `attrs::ValueType`).
pub fn attr_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new(KEY, DataType::Utf8, false),
        Field::new(TYPE, DataType::Int8, false),
        Field::new(STR, DataType::Utf8, true),
        Field::new(INT, DataType::Int64, true),
        Field::new(DOUBLE, DataType::Float64, true),
        Field::new(BOOL, DataType::Boolean, true),
        Field::new(BYTES, DataType::Binary, true),
    ])
}

pub fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Struct(fields), false)))
}

pub fn attr_list_type() -> DataType {
    list_of(attr_struct_fields())
}

pub fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new(TIME, DataType::UInt64, false),
        Field::new(NAME, DataType::Utf8, false),
        Field::new(ATTRS, attr_list_type(), false),
        Field::new(DROPPED_ATTRIBUTES, DataType::UInt32, false),
    ])
}

pub fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new(TRACE_ID, DataType::Binary, false),
        Field::new(SPAN_ID, DataType::Binary, false),
        Field::new(TRACE_STATE, DataType::Utf8, false),
        Field::new(FLAGS, DataType::UInt32, false),
        Field::new(ATTRS, attr_list_type(), false),
        Field::new(DROPPED_ATTRIBUTES, DataType::UInt32, false),
    ])
}

pub fn attr_type_data_type(ty: AttrType) -> DataType {
    match ty {
        AttrType::String => DataType::Utf8,
        AttrType::Int => DataType::Int64,
        AttrType::Double => DataType::Float64,
        AttrType::Bool => DataType::Boolean,
    }
}

pub fn spans_schema(dedicated: &DedicatedColumns) -> SchemaRef {
    let mut fields = vec![
        Field::new(TRACE_ID, DataType::FixedSizeBinary(16), false),
        Field::new(SPAN_ID, DataType::FixedSizeBinary(8), false),
        Field::new(PARENT_SPAN_ID, DataType::Binary, false),
        Field::new(START, DataType::UInt64, false),
        Field::new(DURATION, DataType::Int64, false),
        Field::new(NAME, DataType::Utf8, false),
        Field::new(KIND, DataType::Int32, false),
        Field::new(SERVICE_NAME, DataType::Utf8, true),
        Field::new(TRACE_STATE, DataType::Utf8, false),
        Field::new(FLAGS, DataType::UInt32, false),
        Field::new(STATUS_CODE, DataType::Int32, true),
        Field::new(STATUS_MESSAGE, DataType::Utf8, true),
        Field::new(DROPPED_ATTRIBUTES, DataType::UInt32, false),
        Field::new(DROPPED_EVENTS, DataType::UInt32, false),
        Field::new(DROPPED_LINKS, DataType::UInt32, false),
    ];
    for column in &dedicated.span {
        fields.push(Field::new(&column.column, attr_type_data_type(column.ty), true));
    }
    fields.push(Field::new(EVENTS, list_of(event_fields()), false));
    fields.push(Field::new(LINKS, list_of(link_fields()), false));
    for column in &dedicated.resource {
        fields.push(Field::new(&column.column, attr_type_data_type(column.ty), true));
    }
    fields.extend([
        Field::new(RESOURCE_ATTRS, attr_list_type(), false),
        Field::new(RESOURCE_DROPPED, DataType::UInt32, true),
        Field::new(RESOURCE_ENTITY_REFS, DataType::Binary, true),
        Field::new(RESOURCE_SCHEMA_URL, DataType::Utf8, false),
        Field::new(SCOPE_NAME, DataType::Utf8, true),
        Field::new(SCOPE_VERSION, DataType::Utf8, true),
        Field::new(SCOPE_ATTRS, attr_list_type(), false),
        Field::new(SCOPE_DROPPED, DataType::UInt32, true),
        Field::new(SCOPE_SCHEMA_URL, DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// `attrs.parquet`: one row per span attribute without a dedicated column, sorted by (key, row) in each row
/// group; `row_delta` is the span's row in `spans.parquet` minus the row of the key's previous entry in the
/// row group (the first is the row itself).
pub fn attrs_schema() -> SchemaRef {
    let mut fields: Vec<_> = attr_struct_fields().iter().cloned().collect();
    fields.insert(1, Arc::new(Field::new(ROW_DELTA, DataType::UInt32, false)));
    Arc::new(Schema::new(fields))
}

pub fn traces_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(TRACE_ID, DataType::FixedSizeBinary(16), false),
        Field::new(START, DataType::UInt64, false),
        Field::new(DURATION, DataType::Int64, false),
        Field::new(ROOT_SERVICE, DataType::Utf8, true),
        Field::new(ROOT_NAME, DataType::Utf8, true),
        Field::new(SPAN_COUNT, DataType::UInt32, false),
        Field::new(ERROR_COUNT, DataType::UInt32, false),
        Field::new(SERVICES, DataType::List(Arc::new(Field::new("element", DataType::Utf8, false))), false),
        Field::new(SAMPLING_POLICY, DataType::Utf8, true),
        Field::new(SAMPLING_WEIGHT, DataType::Float64, true),
        Field::new(SAMPLING_THRESHOLD, DataType::Utf8, true),
    ]))
}

/// Rows per page of `traces.parquet`, and of its trace id column (a lookup reads one such page per row group).
const TRACES_PAGE_ROWS: usize = 4096;
const TRACES_ID_PAGE_ROWS: usize = 256;

fn path(parts: &[&str]) -> ColumnPath {
    ColumnPath::new(parts.iter().map(|p| p.to_string()).collect())
}

fn base_properties(options: &BlockOptions) -> parquet::file::properties::WriterPropertiesBuilder {
    let zstd = ZstdLevel::try_new(options.zstd_level).unwrap_or_default();
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(zstd))
        .set_dictionary_enabled(true)
        // Statistics cost a comparison per value when writing; readers use meta.json's summaries instead. Only
        // trace ids (page index: a trace lookup reads one page per row group) and times (DuckDB and friends
        // prune by them) get them.
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_statistics_enabled(path(&[TRACE_ID]), EnabledStatistics::Page)
        // Row groups are cut by the writer at trace boundaries (see `write`), never by the Parquet writer.
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .set_created_by(format!("clew {}", env!("CARGO_PKG_VERSION")))
}

/// Column encodings, measured on the `jaeger-ch` shape (see the block tests): random ids and times do not
/// repeat, so they get no dictionary; everything else keeps the default (dictionary, falling back to plain
/// when a dictionary outgrows its page).
///
/// - `trace_id`: plain; zstd turns the 9 repeats of an id into short matches (dictionary: +0.2 B/span).
/// - `parent_span_id`: DELTA_BYTE_ARRAY: a repeated parent costs a prefix length (0.8 B/span; plain 0.96,
///   dictionary 1.8).
/// - `duration_nano`: BYTE_STREAM_SPLIT groups the bytes of each significance for zstd (3.23 B/span;
///   DELTA_BINARY_PACKED 3.47, plain 3.75).
/// - `start_unix_nano`: plain; zstd matches the high bytes shared within a trace (3.6 B/span; BYTE_STREAM_SPLIT
///   3.8, DELTA_BINARY_PACKED 6.1 since every trace boundary is a random jump).
///
/// Pages hold about `page_bytes` of encoded values (at most `page_rows` rows): small for the columns that hold
/// data, so that reading a trace, or a search that judges a few candidate rows, decodes little more than those
/// rows, while the run-length encoded and mostly null columns, whose page headers and index entries would cost
/// more than their values, get few pages.
///
/// Columns zstd cannot shrink are left uncompressed: reading a compressed column chunk costs a zstd context
/// (tens of microseconds), which adds up over the many small reads of a search. Random span ids, and the kinds,
/// flags, statuses and counts that run-length encoding already makes tiny, are stored as encoded.
pub fn spans_properties(options: &BlockOptions) -> WriterProperties {
    let mut b = base_properties(options)
        .set_data_page_row_count_limit(options.page_rows)
        .set_data_page_size_limit(options.page_bytes)
        .set_column_statistics_enabled(path(&[START]), EnabledStatistics::Chunk)
        .set_column_statistics_enabled(path(&[DURATION]), EnabledStatistics::Chunk);
    for p in [
        path(&[TRACE_ID]),
        path(&[SPAN_ID]),
        path(&[START]),
        path(&[EVENTS, "list", "element", TIME]),
        path(&[LINKS, "list", "element", SPAN_ID]),
        path(&[LINKS, "list", "element", TRACE_ID]),
    ] {
        b = b.set_column_dictionary_enabled(p, false);
    }
    for (p, encoding) in
        [(path(&[PARENT_SPAN_ID]), Encoding::DELTA_BYTE_ARRAY), (path(&[DURATION]), Encoding::BYTE_STREAM_SPLIT)]
    {
        b = b.set_column_dictionary_enabled(p.clone(), false).set_column_encoding(p, encoding);
    }
    for p in [
        path(&[SPAN_ID]),
        path(&[KIND]),
        path(&[FLAGS]),
        path(&[STATUS_CODE]),
        path(&[DROPPED_ATTRIBUTES]),
        path(&[DROPPED_EVENTS]),
        path(&[DROPPED_LINKS]),
        path(&[RESOURCE_DROPPED]),
        path(&[SCOPE_DROPPED]),
    ] {
        b = b.set_column_compression(p, Compression::UNCOMPRESSED);
    }
    // Attribute values of dedicated and generic columns keep dictionaries; large dictionaries (many distinct
    // values per row group) stay dictionary-encoded up to 4 MiB before falling back to plain.
    b = b.set_dictionary_page_size_limit(4 << 20);
    b.build()
}

/// `meta.json` says where each key's entries are, so pages need no statistics; `row_delta` is small (a few
/// rows apart for a common key): BYTE_STREAM_SPLIT puts its low bytes together for zstd (6.3 B/span on the
/// `jaeger-ch` shape; the absolute row with DELTA_BINARY_PACKED 7.8).
/// Only `row_delta` gains much from zstd. The rest is left uncompressed (see `spans_properties`): the key and type
/// codes are run-length encoded, the other value fields mostly null, and `str` is bitpacked dictionary indexes
/// (zstd saves about 0.2 B/span there, but every attribute search would pay a zstd context and decompression
/// per row group).
pub fn attrs_properties(options: &BlockOptions) -> WriterProperties {
    let mut b = base_properties(options)
        .set_data_page_row_count_limit(options.page_rows)
        .set_data_page_size_limit(options.page_bytes)
        .set_compression(Compression::UNCOMPRESSED);
    let zstd = Compression::ZSTD(ZstdLevel::try_new(options.zstd_level).unwrap_or_default());
    b = b
        .set_column_dictionary_enabled(path(&[ROW_DELTA]), false)
        .set_column_encoding(path(&[ROW_DELTA]), Encoding::BYTE_STREAM_SPLIT)
        .set_column_compression(path(&[ROW_DELTA]), zstd);
    b.set_dictionary_page_size_limit(4 << 20).build()
}

/// Every search reads the trace id, start and span count of the row groups it scans, and the summary columns
/// of the rows it returns, which are spread over many row groups: the file is not compressed, as a zstd
/// context for each column chunk read would cost more than the bytes it saves (ids are plain 16 bytes, which
/// zstd would not shrink; starts DELTA_BINARY_PACKED into ~51 bits; the rest dictionary or run-length
/// encoded: +0.4 B/span in all on the `jaeger-ch` shape). Trace id pages are small: looking a trace up reads
/// one page per row group.
pub fn traces_properties(options: &BlockOptions) -> WriterProperties {
    let mut b = base_properties(options)
        .set_compression(Compression::UNCOMPRESSED)
        .set_data_page_row_count_limit(TRACES_PAGE_ROWS)
        .set_column_data_page_row_count_limit(path(&[TRACE_ID]), TRACES_ID_PAGE_ROWS);
    for (p, encoding) in [
        (path(&[TRACE_ID]), Encoding::PLAIN),
        (path(&[START]), Encoding::DELTA_BINARY_PACKED),
        (path(&[DURATION]), Encoding::DELTA_BINARY_PACKED),
    ] {
        b = b.set_column_dictionary_enabled(p.clone(), false).set_column_encoding(p, encoding);
    }
    b.build()
}
