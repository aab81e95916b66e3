//! Arrow column builders that read their values straight from the JSON text.
//!
//! Each column kind implements [`Column`]: it asks the record's [`JsonReader`] for the next
//! value, and appends it (a string, a number, an object's fields…) straight into its Arrow
//! buffers. No intermediate `serde_json::Value` is built. A value whose JSON type does not fit
//! the column is handed to [`Rescue`] (so nothing is lost) and the column gets a null.
//!
//! The reader is ours (see [`crate::json_reader`]): it answers what a builder asks next, so
//! each value is read once, in place.
//!
//! Structs are declared with [`json_struct!`], which generates the builder, its Arrow fields and
//! the key dispatch from one table of `"jsonName" => field: Kind` lines.

use std::sync::Arc;

use arrow::array::{ArrayBuilder, NullBufferBuilder};
use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListArray, MapArray, StringBuilder,
    StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, TimeUnit};

use crate::json_reader::{JsonError, JsonReader, Next, Number};
use crate::rescue::Rescue;

/// A column that appends JSON values into an Arrow builder.
///
/// [`Column::append_json`] reads the next value and calls the `visit_*` method of its JSON
/// type. Their defaults rescue the value as a type mismatch and append a null; a kind
/// overrides the ones it accepts.
pub trait Column: Default {
    /// The Arrow type of the finished array.
    fn data_type() -> DataType;

    /// Appends a null (the field is `null`, or its value does not fit).
    fn append_null(&mut self);

    /// Appends `n` nulls at once.
    fn append_nulls(&mut self, n: usize);

    /// Rows appended since the last [`Column::finish`].
    fn rows(&self) -> usize;

    /// Appends nulls until the column holds `rows` rows. A struct does not append a null to
    /// each field that a record lacks (most fields are absent from most records); each field
    /// catches up when it is next given a value, and when it is finished.
    fn pad_to(&mut self, rows: usize) {
        let have = self.rows();
        if have < rows {
            self.append_nulls(rows - have);
        }
    }

    /// Finishes the rows appended so far into an array and starts anew.
    fn finish(&mut self) -> ArrayRef;

    /// Appends the next JSON value of `reader`.
    #[inline]
    fn append_json(
        &mut self,
        reader: &mut JsonReader,
        rescue: &mut Rescue,
    ) -> Result<(), JsonError> {
        match reader.peek()? {
            Next::String => {
                let value = reader.read_str()?;
                self.visit_str(&value, rescue)
            }
            Next::Null => {
                reader.read_null()?;
                self.append_null();
                Ok(())
            }
            Next::Bool => {
                let value = reader.read_bool()?;
                self.visit_bool(value, rescue)
            }
            Next::Number => match reader.read_number()? {
                Number::Unsigned(value) => self.visit_u64(value, rescue),
                Number::Negative(value) => self.visit_i64(value, rescue),
                Number::Float(value) => self.visit_f64(value, rescue),
            },
            Next::Object => self.visit_object(reader, rescue),
            Next::Array => self.visit_array(reader, rescue),
        }
    }

    fn visit_str(&mut self, v: &str, rescue: &mut Rescue) -> Result<(), JsonError> {
        self.mismatch(json_text(&v), rescue)
    }
    fn visit_bool(&mut self, v: bool, rescue: &mut Rescue) -> Result<(), JsonError> {
        self.mismatch(v.to_string(), rescue)
    }
    fn visit_i64(&mut self, v: i64, rescue: &mut Rescue) -> Result<(), JsonError> {
        self.mismatch(v.to_string(), rescue)
    }
    fn visit_u64(&mut self, v: u64, rescue: &mut Rescue) -> Result<(), JsonError> {
        self.mismatch(v.to_string(), rescue)
    }
    fn visit_f64(&mut self, v: f64, rescue: &mut Rescue) -> Result<(), JsonError> {
        self.mismatch(json_text(&v), rescue)
    }
    /// Called with the reader on the object's `{`.
    fn visit_object(
        &mut self,
        reader: &mut JsonReader,
        rescue: &mut Rescue,
    ) -> Result<(), JsonError> {
        let text = reader.read_raw()?;
        self.mismatch(text.to_owned(), rescue)
    }
    /// Called with the reader on the array's `[`.
    fn visit_array(
        &mut self,
        reader: &mut JsonReader,
        rescue: &mut Rescue,
    ) -> Result<(), JsonError> {
        let text = reader.read_raw()?;
        self.mismatch(text.to_owned(), rescue)
    }

    /// Keeps a value that does not fit this column and appends a null instead.
    fn mismatch(&mut self, json: String, rescue: &mut Rescue) -> Result<(), JsonError> {
        rescue.keep_here(json);
        self.append_null();
        Ok(())
    }
}

/// Serializes a value that is known to serialize.
fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Non-finite floats cannot come from JSON text, so this cannot fail on parsed input.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// `data_type`, `append_null` and `finish` of a column that wraps one Arrow builder (`self.0`);
/// `strings` for a `StringBuilder`, which [`finish_strings`] starts anew with room reserved.
macro_rules! builder_column {
    (strings) => {
        fn data_type() -> DataType {
            DataType::Utf8
        }
        fn append_null(&mut self) {
            self.0.append_null();
        }
        fn append_nulls(&mut self, n: usize) {
            self.0.append_nulls(n);
        }
        fn rows(&self) -> usize {
            ArrayBuilder::len(&self.0)
        }
        fn finish(&mut self) -> ArrayRef {
            finish_strings(&mut self.0)
        }
    };
    ($data_type:expr) => {
        fn data_type() -> DataType {
            $data_type
        }
        fn append_null(&mut self) {
            self.0.append_null();
        }
        fn append_nulls(&mut self, n: usize) {
            self.0.append_nulls(n);
        }
        fn rows(&self) -> usize {
            ArrayBuilder::len(&self.0)
        }
        fn finish(&mut self) -> ArrayRef {
            Arc::new(self.0.finish())
        }
    };
}

/// Finishes `builder` into an array and starts it anew with as much room as the finished one
/// took: batches are alike in size, so the next one fills it without growing (and copying)
/// it again and again.
fn finish_strings(builder: &mut StringBuilder) -> ArrayRef {
    let (items, bytes) = (builder.len(), builder.values_slice().len());
    let array = builder.finish();
    *builder = StringBuilder::with_capacity(items, bytes);
    Arc::new(array)
}

/// A JSON string, kept as UTF-8.
#[derive(Default)]
pub struct Str(StringBuilder);

impl Column for Str {
    builder_column!(strings);
    fn visit_str(&mut self, v: &str, _: &mut Rescue) -> Result<(), JsonError> {
        self.0.append_value(v);
        Ok(())
    }
}

/// A JSON boolean.
#[derive(Default)]
pub struct Bool(BooleanBuilder);

impl Column for Bool {
    builder_column!(DataType::Boolean);
    fn visit_bool(&mut self, v: bool, _: &mut Rescue) -> Result<(), JsonError> {
        self.0.append_value(v);
        Ok(())
    }
}

/// A JSON number that is a whole number within `i64`.
#[derive(Default)]
pub struct I64(Int64Builder);

impl Column for I64 {
    builder_column!(DataType::Int64);
    fn visit_i64(&mut self, v: i64, _: &mut Rescue) -> Result<(), JsonError> {
        self.0.append_value(v);
        Ok(())
    }
    fn visit_u64(&mut self, v: u64, rescue: &mut Rescue) -> Result<(), JsonError> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v, rescue),
            Err(_) => self.mismatch(v.to_string(), rescue),
        }
    }
}

/// A JSON number, as a 64-bit float.
#[derive(Default)]
pub struct F64(Float64Builder);

impl Column for F64 {
    builder_column!(DataType::Float64);
    fn visit_f64(&mut self, v: f64, _: &mut Rescue) -> Result<(), JsonError> {
        self.0.append_value(v);
        Ok(())
    }
    fn visit_i64(&mut self, v: i64, rescue: &mut Rescue) -> Result<(), JsonError> {
        // Whole numbers beyond 2^53 would lose digits as f64: keep their text too.
        if v.unsigned_abs() > (1 << 53) {
            return self.mismatch(v.to_string(), rescue);
        }
        self.visit_f64(v as f64, rescue)
    }
    fn visit_u64(&mut self, v: u64, rescue: &mut Rescue) -> Result<(), JsonError> {
        if v > (1 << 53) {
            return self.mismatch(v.to_string(), rescue);
        }
        self.visit_f64(v as f64, rescue)
    }
}

/// A free-form JSON value (`requestParameters`, …) kept as its exact source text.
#[derive(Default)]
pub struct Json(StringBuilder);

impl Column for Json {
    builder_column!(strings);
    fn append_json(&mut self, reader: &mut JsonReader, _: &mut Rescue) -> Result<(), JsonError> {
        match reader.read_raw()? {
            "null" => self.0.append_null(),
            text => self.0.append_value(text),
        }
        Ok(())
    }
}

/// An RFC 3339 UTC timestamp string (`2024-04-30T22:00:00Z`), as microseconds since the epoch.
///
/// A string that is not such a timestamp is an error, not a rescue: the only timestamp column
/// is `eventTime`, which every record must carry.
#[derive(Default)]
pub struct Timestamp {
    builder: TimestampMicrosecondBuilder,
    /// How many non-null values were appended (lets the record check that eventTime was set).
    valid: usize,
    /// The date of the last value in the exact CloudTrail form, and its midnight in
    /// microseconds: a log's records share a date, which is then checked once.
    day: Option<([u8; 10], i64)>,
}

impl Timestamp {
    pub fn valid_count(&self) -> usize {
        self.valid
    }
}

impl Column for Timestamp {
    fn data_type() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }
    fn append_null(&mut self) {
        self.builder.append_null();
    }
    fn append_nulls(&mut self, n: usize) {
        self.builder.append_nulls(n);
    }
    fn rows(&self) -> usize {
        ArrayBuilder::len(&self.builder)
    }
    fn finish(&mut self) -> ArrayRef {
        self.valid = 0;
        Arc::new(self.builder.finish().with_timezone("UTC"))
    }
    fn visit_str(&mut self, v: &str, _: &mut Rescue) -> Result<(), JsonError> {
        let b = v.as_bytes();
        let same_day = match &self.day {
            Some((day, midnight)) if b.get(..10) == Some(&day[..]) => {
                time_of_day(b).map(|time| midnight + time)
            }
            _ => None,
        };
        let micros = match same_day {
            Some(micros) => micros,
            None => {
                let micros = parse_timestamp_micros(v).ok_or_else(|| {
                    JsonError::custom(format_args!(
                        "{v:?} is not a timestamp like 2024-04-30T22:00:00Z (RFC 3339, UTC \
                             or with an offset)"
                    ))
                })?;
                if let (Some(time), Some(day)) = (time_of_day(b), b.get(..10)) {
                    let day = day.try_into().expect("ten bytes");
                    self.day = Some((day, micros - time));
                }
                micros
            }
        };
        self.builder.append_value(micros);
        self.valid += 1;
        Ok(())
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to microseconds since the Unix epoch.
pub fn parse_timestamp_micros(s: &str) -> Option<i64> {
    // The exact CloudTrail form first, without allocation; anything else via chrono.
    let b = s.as_bytes();
    if b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && let Some(time) = time_of_day(b)
    {
        let date = chrono::NaiveDate::from_ymd_opt(
            digits(&b[0..4])? as i32,
            digits(&b[5..7])?,
            digits(&b[8..10])?,
        )?;
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros() + time);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// The time of day, in microseconds, of a timestamp in the exact CloudTrail form
/// (`YYYY-MM-DDTHH:MM:SSZ`, its date not looked at), or None when it is not in that form.
fn time_of_day(b: &[u8]) -> Option<i64> {
    if b.len() != 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let (hours, minutes, seconds) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(i64::from(hours * 3600 + minutes * 60 + seconds) * 1_000_000)
}

/// The number written in decimal `digits`, all ASCII digits.
fn digits(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// The rows of a column whose rows hold several items (a list's elements, a map's entries):
/// where each row's items end in the items' arrays, and which rows are null.
#[derive(Default)]
struct Rows {
    /// The end offset of each row, after a leading 0 (empty until the first row).
    offsets: Vec<i32>,
    validity: Validity,
    /// Items appended (the end offset of the last row).
    items: i32,
}

impl Rows {
    fn push_offset(&mut self) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.offsets.push(self.items);
    }

    /// Ends a row that holds the items appended since the last one.
    fn end_row(&mut self) {
        self.push_offset();
        self.validity.append_non_null();
    }

    fn append_nulls(&mut self, n: usize) {
        for _ in 0..n {
            self.push_offset();
        }
        self.validity.append_nulls(n);
    }

    fn len(&self) -> usize {
        self.validity.len()
    }

    /// The offsets and validity of the rows so far, and starts anew.
    fn finish(&mut self) -> (OffsetBuffer<i32>, Option<NullBuffer>) {
        let offsets = std::mem::take(&mut self.offsets);
        let offsets = if offsets.is_empty() { vec![0] } else { offsets };
        self.items = 0;
        (OffsetBuffer::new(offsets.into()), self.validity.finish())
    }
}

/// A JSON array of values of one kind.
///
/// An array with an element that did not fit is rescued whole (its exact text), so the typed
/// column holds what fits and `_rescued_data` the full original.
#[derive(Default)]
pub struct List<C> {
    values: C,
    rows: Rows,
    inner_rescue: Rescue,
}

impl<C: Column> List<C> {
    fn item_field() -> Field {
        Field::new("element", C::data_type(), true)
    }
}

impl<C: Column> Column for List<C> {
    fn data_type() -> DataType {
        DataType::List(Arc::new(Self::item_field()))
    }
    fn append_null(&mut self) {
        self.rows.append_nulls(1);
    }
    fn append_nulls(&mut self, n: usize) {
        self.rows.append_nulls(n);
    }
    fn rows(&self) -> usize {
        self.rows.len()
    }
    fn finish(&mut self) -> ArrayRef {
        let (offsets, nulls) = self.rows.finish();
        Arc::new(ListArray::new(
            Arc::new(Self::item_field()),
            offsets,
            self.values.finish(),
            nulls,
        ))
    }
    fn visit_array(
        &mut self,
        reader: &mut JsonReader,
        rescue: &mut Rescue,
    ) -> Result<(), JsonError> {
        let start = reader.position();
        let mut inner = std::mem::take(&mut self.inner_rescue);
        reader.begin_array()?;
        while reader.next_element()? {
            self.values.append_json(reader, &mut inner)?;
            self.rows.items += 1;
        }
        self.rows.end_row();
        if !inner.is_empty() {
            inner.clear();
            rescue.keep_here(reader.text_since(start).to_owned());
        }
        self.inner_rescue = inner;
        Ok(())
    }
}

/// A JSON object whose keys are not known in advance (tags: user-defined names), with string
/// values, as `map<string, string>`. A `null` value is a null entry.
///
/// An object with a value of another type, or with a key twice, is rescued whole (its exact
/// text); the map holds the entries that fit, the first of a repeated key.
#[derive(Default)]
pub struct StrMap {
    keys: StringBuilder,
    values: StringBuilder,
    rows: Rows,
}

impl StrMap {
    /// The entries' field, named as Delta's kernel names it (`key_value`, `key`, `value`), so
    /// the table's schema and ours compare equal.
    fn entries_field() -> Field {
        Field::new(
            "key_value",
            DataType::Struct(
                vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ]
                .into(),
            ),
            false,
        )
    }

    /// Whether the map being appended (its entries from `first` on) has `key` already.
    fn has_key(&self, first: i32, key: &str) -> bool {
        let offsets = self.keys.offsets_slice();
        let bytes = self.keys.values_slice();
        (first as usize..self.rows.items as usize)
            .any(|i| &bytes[offsets[i] as usize..offsets[i + 1] as usize] == key.as_bytes())
    }
}

impl Column for StrMap {
    fn data_type() -> DataType {
        DataType::Map(Arc::new(Self::entries_field()), false)
    }
    fn append_null(&mut self) {
        self.rows.append_nulls(1);
    }
    fn append_nulls(&mut self, n: usize) {
        self.rows.append_nulls(n);
    }
    fn rows(&self) -> usize {
        self.rows.len()
    }
    fn finish(&mut self) -> ArrayRef {
        let (offsets, nulls) = self.rows.finish();
        let DataType::Struct(fields) = Self::entries_field().data_type().clone() else {
            unreachable!("the entries field is a struct")
        };
        let entries = StructArray::new(
            fields,
            vec![
                finish_strings(&mut self.keys),
                finish_strings(&mut self.values),
            ],
            None,
        );
        Arc::new(MapArray::new(
            Arc::new(Self::entries_field()),
            offsets,
            entries,
            nulls,
            false,
        ))
    }
    fn visit_object(
        &mut self,
        reader: &mut JsonReader,
        rescue: &mut Rescue,
    ) -> Result<(), JsonError> {
        let start = reader.position();
        let first = self.rows.items;
        let mut misfit = false;
        reader.begin_object()?;
        while let Some(key) = reader.next_key()? {
            let value = match reader.peek()? {
                Next::String => Some(reader.read_str()?),
                Next::Null => {
                    reader.read_null()?;
                    None
                }
                _ => {
                    reader.read_raw()?;
                    misfit = true;
                    continue;
                }
            };
            if self.has_key(first, &key) {
                misfit = true;
                continue;
            }
            self.keys.append_value(&key);
            self.values.append_option(value);
            self.rows.items += 1;
        }
        self.rows.end_row();
        if misfit {
            rescue.keep_here(reader.text_since(start).trim_start().to_owned());
        }
        Ok(())
    }
}

/// Declares a struct column: its builder, Arrow fields and key dispatch.
///
/// ```ignore
/// json_struct! {
///     /// `userIdentity.sessionContext.attributes`
///     pub struct SessionAttributes {
///         "creationDate" => creation_date: Str,
///         "mfaAuthenticated" => mfa_authenticated: Str,
///     }
/// }
/// ```
///
/// Unknown keys and duplicate keys are rescued; fields absent from an object become null.
#[macro_export]
#[doc(hidden)]
macro_rules! json_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($json:literal => $field:ident : $kind:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Default)]
        pub struct $name {
            $(pub $field: $kind,)+
            validity: $crate::columns::Validity,
            key_order: $crate::columns::KeyOrder,
        }

        impl $crate::columns::JsonStruct for $name {
            fn fields() -> arrow::datatypes::Fields {
                arrow::datatypes::Fields::from(vec![
                    $(arrow::datatypes::Field::new($json, <$kind as $crate::columns::Column>::data_type(), true),)+
                ])
            }

            fn append_entries(
                &mut self,
                reader: &mut $crate::json_reader::JsonReader,
                rescue: &mut $crate::rescue::Rescue,
                row: usize,
            ) -> Result<(), $crate::json_reader::JsonError> {
                #[allow(non_camel_case_types)]
                #[derive(Clone, Copy)]
                enum Key { $($field,)+ }
                const KEYS: &[Key] = &[$(Key::$field,)+];
                const NAMES: &[&str] = &[$($json,)+];
                const _: () = assert!(KEYS.len() <= 64, "a struct has at most 64 fields");
                let mut seen: u64 = 0;
                let mut previous = $crate::columns::KeyOrder::START;
                while reader.next_member()? {
                    let guess = KEYS[self.key_order.after(previous)];
                    let guessed = match guess {
                        $(Key::$field => reader.key_is(concat!("\"", $json, "\":").as_bytes()),)+
                    };
                    let id = if guessed {
                        guess
                    } else {
                        let key = reader.key()?;
                        let id = match &*key {
                            $($json => Key::$field,)+
                            _ => {
                                rescue.keep_unknown(key.into_owned(), reader.read_raw()?.to_owned());
                                continue;
                            }
                        };
                        self.key_order.learn(previous, id as usize);
                        id
                    };
                    previous = id as usize;
                    let bit = 1u64 << (id as u32);
                    if seen & bit != 0 {
                        rescue.keep_unknown(NAMES[id as usize].to_owned(), reader.read_raw()?.to_owned());
                        continue;
                    }
                    seen |= bit;
                    match id {
                        $(Key::$field => {
                            $crate::columns::Column::pad_to(&mut self.$field, row);
                            let mark = rescue.mark();
                            let result = $crate::columns::Column::append_json(&mut self.$field, reader, rescue);
                            rescue.name_since(mark, $json);
                            result.map_err(|e| e.in_field($json))?;
                        })+
                    }
                }
                Ok(())
            }

            fn finish_fields(&mut self, rows: usize) -> Vec<arrow::array::ArrayRef> {
                $($crate::columns::Column::pad_to(&mut self.$field, rows);)+
                vec![$($crate::columns::Column::finish(&mut self.$field),)+]
            }
        }

        impl $crate::columns::Column for $name {
            fn data_type() -> arrow::datatypes::DataType {
                arrow::datatypes::DataType::Struct(<Self as $crate::columns::JsonStruct>::fields())
            }
            // The fields catch up with the struct's rows later (`Column::pad_to`).
            fn append_null(&mut self) {
                self.validity.append_null();
            }
            fn append_nulls(&mut self, n: usize) {
                self.validity.append_nulls(n);
            }
            fn rows(&self) -> usize {
                self.validity.len()
            }
            fn finish(&mut self) -> arrow::array::ArrayRef {
                let rows = self.validity.len();
                let columns = $crate::columns::JsonStruct::finish_fields(self, rows);
                let fields = <Self as $crate::columns::JsonStruct>::fields();
                std::sync::Arc::new(arrow::array::StructArray::new(fields, columns, self.validity.finish()))
            }
            fn visit_object(
                &mut self,
                reader: &mut $crate::json_reader::JsonReader,
                rescue: &mut $crate::rescue::Rescue,
            ) -> Result<(), $crate::json_reader::JsonError> {
                let row = self.validity.len();
                reader.begin_object()?;
                $crate::columns::JsonStruct::append_entries(self, reader, rescue, row)?;
                self.validity.append_non_null();
                Ok(())
            }
        }
    };
}

/// The order an object's keys came in last time, to guess each next key from the one
/// before it. CloudTrail writes the keys of its records in one order, so the guess is
/// nearly always right, and checking it is one comparison with a constant key
/// ([`JsonReader::key_is`]); a wrong guess costs that comparison on top of reading the key.
#[derive(Debug, Clone)]
pub struct KeyOrder {
    /// The index of the field that followed each field (the last entry: that came first).
    next: [u8; KeyOrder::START + 1],
}

impl Default for KeyOrder {
    fn default() -> Self {
        Self {
            next: [0; KeyOrder::START + 1],
        }
    }
}

impl KeyOrder {
    /// What precedes an object's first key.
    pub const START: usize = 64;

    /// The field guessed to follow `previous` (a field index, or [`KeyOrder::START`]).
    #[inline]
    pub fn after(&self, previous: usize) -> usize {
        usize::from(self.next[previous])
    }

    /// Remembers that `field` followed `previous`.
    #[inline]
    pub fn learn(&mut self, previous: usize, field: usize) {
        self.next[previous] = field as u8;
    }
}

/// Which rows of a nested column are non-null.
pub struct Validity(NullBufferBuilder);

impl Default for Validity {
    fn default() -> Self {
        Self(NullBufferBuilder::new(0))
    }
}

impl Validity {
    pub fn append_null(&mut self) {
        self.0.append_null();
    }
    pub fn append_nulls(&mut self, n: usize) {
        self.0.append_n_nulls(n);
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn append_non_null(&mut self) {
        self.0.append_non_null();
    }
    pub fn finish(&mut self) -> Option<NullBuffer> {
        self.0.finish()
    }
}

/// A JSON object with known keys, as [`json_struct!`] declares it.
pub trait JsonStruct {
    /// The Arrow fields, named as the JSON keys.
    fn fields() -> arrow::datatypes::Fields;

    /// Appends the entries of one JSON object, row `row` of the struct, to the fields (not to
    /// the struct's own validity): unknown and duplicate keys go to `rescue`. Absent fields
    /// are left short; they get their nulls when next appended to, or finished.
    fn append_entries(
        &mut self,
        reader: &mut JsonReader,
        rescue: &mut Rescue,
        row: usize,
    ) -> Result<(), JsonError>;

    /// Finishes the fields' arrays of `rows` rows (without the struct's own validity).
    fn finish_fields(&mut self, rows: usize) -> Vec<ArrayRef>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn parses_cloudtrail_and_rfc3339_timestamps() {
        assert_eq!(
            parse_timestamp_micros("1970-01-01T00:00:01Z"),
            Some(1_000_000)
        );
        assert_eq!(
            parse_timestamp_micros("2024-04-30T22:00:00Z"),
            Some(1_714_514_400_000_000)
        );
        assert_eq!(
            parse_timestamp_micros("2024-04-30T22:00:00.5Z"),
            Some(1_714_514_400_500_000)
        );
        assert_eq!(
            parse_timestamp_micros("2024-04-30T23:00:00+01:00"),
            Some(1_714_514_400_000_000)
        );
        assert_eq!(parse_timestamp_micros("2024-02-30T22:00:00Z"), None);
        assert_eq!(parse_timestamp_micros("2024-04-30 22:00:00"), None);
        assert_eq!(parse_timestamp_micros(""), None);
        for bad in ["2024-04-30T24:00:00Z", "2024-04-30T22:60:00Z"] {
            assert_eq!(parse_timestamp_micros(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_timestamp_column_reuses_the_date_it_has_seen_only_for_valid_times() {
        // The column checks each new date once: the values after it on the same date must
        // come out as the full parse has them, and bad times on that date still fail.
        let values = [
            "2024-04-30T22:00:00Z",
            "2024-04-30T23:59:59Z",
            "2024-04-30T00:00:00Z",
            "2024-04-30T22:00:00.5Z",
            "2024-05-01T00:00:01Z",
            "2024-04-30T22:00:01Z",
            "2024-04-30T23:00:00+01:00",
        ];
        let mut column = Timestamp::default();
        for value in values {
            append(&mut column, &format!("{value:?}"), &mut Rescue::default());
        }
        for bad in [
            "2024-04-30T24:00:00Z",
            "2024-04-30T2a:00:00Z",
            "2024-04-30X22:00:00Z",
        ] {
            let json = format!("{bad:?}");
            let mut reader = JsonReader::new(&json);
            assert!(
                column
                    .append_json(&mut reader, &mut Rescue::default())
                    .is_err(),
                "{bad}"
            );
        }
        let array = column.finish();
        let micros: Vec<_> = array
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
            .iter()
            .flatten()
            .collect();
        let expected: Vec<_> = values
            .iter()
            .filter_map(|v| parse_timestamp_micros(v))
            .collect();
        assert_eq!(micros, expected);
        assert_eq!(expected.len(), values.len());
    }

    fn append<C: Column>(column: &mut C, json: &str, rescue: &mut Rescue) {
        let mut reader = JsonReader::new(json);
        column.append_json(&mut reader, rescue).unwrap();
        reader.end().unwrap();
    }

    #[test]
    fn mismatched_types_are_rescued_and_null() {
        let mut rescue = Rescue::default();
        let mut col = Str::default();
        let mark = rescue.mark();
        append(&mut col, r#""text""#, &mut rescue);
        append(&mut col, "12", &mut rescue);
        append(&mut col, r#"{"a":[1,2]}"#, &mut rescue);
        append(&mut col, "null", &mut rescue);
        rescue.name_since(mark, "f");
        let array = col.finish();
        let strings = array.as_string::<i32>();
        assert_eq!(strings.value(0), "text");
        assert!(strings.is_null(1) && strings.is_null(2) && strings.is_null(3));
        assert_eq!(rescue.take_json().unwrap(), r#"{"f":12,"f":{"a":[1,2]}}"#);
    }

    #[test]
    fn json_column_keeps_exact_text() {
        let mut rescue = Rescue::default();
        let mut col = Json::default();
        append(&mut col, r#"{"b":1.0,"a":"\u00e9"}"#, &mut rescue);
        append(&mut col, "null", &mut rescue);
        let array = col.finish();
        assert_eq!(
            array.as_string::<i32>().value(0),
            r#"{"b":1.0,"a":"\u00e9"}"#
        );
        assert!(array.is_null(1));
        assert!(rescue.is_empty());
    }

    crate::json_struct! {
        pub struct Inner {
            "x" => x: Str,
        }
    }

    crate::json_struct! {
        pub struct Outer {
            "a" => a: Str,
            "inner" => inner: Inner,
            "list" => list: List<Str>,
            "n" => n: I64,
        }
    }

    #[test]
    fn absent_fields_are_null_at_every_level() {
        let mut rescue = Rescue::default();
        let mut outer = Outer::default();
        for row in [
            r#"{"a":"1"}"#,
            r#"{"inner":{"x":"y"},"n":5}"#,
            r#"{"inner":null,"list":["p"]}"#,
            r#"{"inner":{}}"#,
            "{}",
        ] {
            append(&mut outer, row, &mut rescue);
        }
        append(&mut outer, "null", &mut rescue);
        let array = outer.finish();
        let outer = array.as_struct();
        assert_eq!(outer.len(), 6);
        assert!(outer.is_null(5) && (0..5).all(|i| outer.is_valid(i)));
        fn strings(a: &ArrayRef) -> Vec<Option<&str>> {
            a.as_string::<i32>().iter().collect()
        }
        assert_eq!(
            strings(outer.column(0)),
            [Some("1"), None, None, None, None, None]
        );
        let inner = outer.column(1).as_struct();
        let valid: Vec<bool> = (0..6).map(|i| inner.is_valid(i)).collect();
        assert_eq!(valid, [false, true, false, true, false, false]);
        assert_eq!(
            strings(inner.column(0)),
            [None, Some("y"), None, None, None, None]
        );
        let list = outer.column(2).as_list::<i32>();
        let valid: Vec<bool> = (0..6).map(|i| list.is_valid(i)).collect();
        assert_eq!(valid, [false, false, true, false, false, false]);
        assert_eq!(strings(&list.value(2)), [Some("p")]);
        let n = outer
            .column(3)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(
            n.iter().collect::<Vec<_>>(),
            [None, Some(5), None, None, None, None]
        );
        assert!(rescue.is_empty());
    }

    #[test]
    fn keys_land_in_their_fields_whatever_their_order_or_spelling() {
        // Each object's keys are first guessed from the order of the one before, so these
        // alternate orders, and spell keys in ways a byte comparison with the guess misses.
        let rows = [
            (r#"{"a":"1","n":1,"inner":{"x":"p"}}"#, None),
            (r#"{"a":"2","n":2,"inner":{"x":"q"}}"#, None),
            (r#"{"inner":{"x":"r"},"n":3,"a":"3"}"#, None),
            (r#"{"a":"4","n":4,"inner":{"x":"s"}}"#, None),
            (r#"{"\u0061":"5","n" :5, "inner":{ "x":"t"}}"#, None),
            (r#"{"a":"6","a":"7","n":6}"#, Some(r#"{"a":"7"}"#)),
            (r#"{"a":"8","an":"?","n":8}"#, Some(r#"{"an":"?"}"#)),
            (
                r#"{"a":"9","n":9,"inner":{"x":"u","x":"v"}}"#,
                Some(r#"{"inner":{"x":"v"}}"#),
            ),
        ];
        let mut outer = Outer::default();
        for (row, rescued) in rows {
            let mut rescue = Rescue::default();
            append(&mut outer, row, &mut rescue);
            assert_eq!(rescue.take_json().as_deref(), rescued, "{row}");
        }
        let array = outer.finish();
        let outer = array.as_struct();
        let a: Vec<_> = outer
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(a, ["1", "2", "3", "4", "5", "6", "8", "9"]);
        let inner = outer.column(1).as_struct();
        let x: Vec<_> = inner.column(0).as_string::<i32>().iter().collect();
        let (p, q, r, s, t, u) = ("p", "q", "r", "s", "t", "u");
        assert_eq!(
            x,
            [
                Some(p),
                Some(q),
                Some(r),
                Some(s),
                Some(t),
                None,
                None,
                Some(u)
            ]
        );
        let n = outer
            .column(3)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(
            n.iter().flatten().collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 8, 9]
        );
    }

    #[test]
    fn json_column_rejects_invalid_text() {
        // The text is skipped, not parsed into values, but it is still checked: a record
        // with broken JSON inside `requestParameters` must fail, not land as text.
        for bad in [
            r#"{"a": }"#,
            "{\"a\": \"x\u{1}y\"}",
            "[1,]",
            r#"{"a" 1}"#,
            "tru",
        ] {
            let mut reader = JsonReader::new(bad);
            let result = Json::default().append_json(&mut reader, &mut Rescue::default());
            assert!(result.is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn list_with_a_misfit_element_is_rescued_whole() {
        let mut rescue = Rescue::default();
        let mut col = List::<Str>::default();
        let mark = rescue.mark();
        append(&mut col, r#"["a","b"]"#, &mut rescue);
        append(&mut col, "null", &mut rescue);
        append(&mut col, r#"["c", 7]"#, &mut rescue);
        rescue.name_since(mark, "l");
        let array = col.finish();
        let list = array.as_list::<i32>();
        assert_eq!(list.len(), 3);
        assert_eq!(
            list.value(0).as_string::<i32>().iter().collect::<Vec<_>>(),
            [Some("a"), Some("b")]
        );
        assert!(list.is_null(1));
        assert_eq!(
            list.value(2).as_string::<i32>().iter().collect::<Vec<_>>(),
            [Some("c"), None]
        );
        assert_eq!(rescue.take_json().unwrap(), r#"{"l":["c", 7]}"#);
    }

    fn map_entries(map: &MapArray, row: usize) -> Vec<(String, Option<String>)> {
        let entries = map.value(row);
        let (keys, values) = (
            entries.column(0).as_string::<i32>(),
            entries.column(1).as_string::<i32>(),
        );
        (0..entries.len())
            .map(|i| {
                (
                    keys.value(i).to_owned(),
                    values.is_valid(i).then(|| values.value(i).to_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn a_string_map_keeps_user_defined_keys_in_order() {
        let mut rescue = Rescue::default();
        let mut col = StrMap::default();
        append(
            &mut col,
            r#"{"team":"platform","cost-centre":"ü-42","empty":"","gone":null}"#,
            &mut rescue,
        );
        append(&mut col, "null", &mut rescue);
        append(&mut col, "{}", &mut rescue);
        assert!(rescue.is_empty());
        let array = col.finish();
        array.to_data().validate_full().unwrap();
        assert_eq!(array.data_type(), &StrMap::data_type());
        let map = array.as_map();
        assert_eq!(map.len(), 3);
        let some = |k: &str, v: &str| (k.to_owned(), Some(v.to_owned()));
        assert_eq!(
            map_entries(map, 0),
            [
                some("team", "platform"),
                some("cost-centre", "ü-42"),
                some("empty", ""),
                ("gone".to_owned(), None)
            ]
        );
        assert!(map.is_null(1));
        assert!(map.is_valid(2) && map_entries(map, 2).is_empty());
    }

    #[test]
    fn a_string_map_with_a_misfit_value_or_a_repeated_key_is_rescued_whole() {
        let mut col = StrMap::default();
        let mut rescued = Vec::new();
        for json in [
            r#" {"a":"1","calledVia":["x","y"],"b":"2"}"#,
            r#"{"k":"first","k":"second"}"#,
            r#"["not", "an object"]"#,
        ] {
            let mut rescue = Rescue::default();
            let mark = rescue.mark();
            append(&mut col, json, &mut rescue);
            rescue.name_since(mark, "m");
            rescued.push(rescue.take_json().unwrap());
        }
        let array = col.finish();
        array.to_data().validate_full().unwrap();
        let map = array.as_map();
        let some = |k: &str, v: &str| (k.to_owned(), Some(v.to_owned()));
        assert_eq!(map_entries(map, 0), [some("a", "1"), some("b", "2")]);
        assert_eq!(map_entries(map, 1), [some("k", "first")]);
        assert!(map.is_null(2));
        assert_eq!(
            rescued,
            [
                r#"{"m":{"a":"1","calledVia":["x","y"],"b":"2"}}"#,
                r#"{"m":{"k":"first","k":"second"}}"#,
                r#"{"m":["not", "an object"]}"#,
            ]
        );
    }
}
