//! A table's schema against the schema this version writes.
//!
//! CloudTrail adds fields over time, and each release of ours may type more of them, so a
//! table and the binary writing it need not agree. Three cases are fine: the same schema; a
//! table that lacks some of our columns (top-level or nested), which gains them in one
//! metadata commit ([`missing_fields`] lists them); and a table with columns we do not know
//! (written by a newer release), which our files simply do not hold, readers seeing nulls.
//! A column whose type differs is not: [`Incompatible`] names it.
//!
//! [`add_missing_columns`] makes that metadata commit, for the log tables and their ingest
//! indexes alike.
//!
//! Files of one table may then hold different column sets. Compaction reads each into one
//! schema, the table's ([`table_schema`]), filling the columns a file lacks with nulls
//! ([`conform`]), so that no column is dropped, whichever release compacts.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ListArray, MapArray, RecordBatch, StructArray, new_null_array,
};
use arrow::datatypes::{DataType as ArrowType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use deltalake::DeltaTable;
use deltalake::errors::DeltaTableError;
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
use deltalake::kernel::transaction::TransactionError;
use deltalake::kernel::{DataType, StructField, StructType};

use super::commit::without_log_cleanup;

/// Tries of the metadata commit that adds this version's columns to a table, each after
/// another writer's commit overtook the last.
const UPGRADE_ATTEMPTS: usize = 10;

/// Brings `table` to `ours`: a table that lacks some of our columns gains them in one
/// metadata commit, retried on a concurrent commit (another writer may be upgrading it too:
/// then there is nothing left to add); a table with more columns than ours is left as it is;
/// one with a column of another type fails with what `incompatible` makes of it. `uri` names
/// the table in logs and errors.
pub async fn add_missing_columns(
    mut table: DeltaTable,
    ours: &StructType,
    uri: &str,
    incompatible: impl Fn(Incompatible) -> DeltaTableError,
) -> Result<DeltaTable, DeltaTableError> {
    for _ in 0..UPGRADE_ATTEMPTS {
        let actual = table.snapshot()?.schema();
        let missing = missing_fields(&actual, ours).map_err(&incompatible)?;
        if missing.is_empty() {
            return Ok(table);
        }
        let added: Vec<StructField> = fields_to_add(ours, &missing).into_iter().cloned().collect();
        tracing::info!(table = %uri, columns = ?missing, "adding this version's columns to the table");
        match table
            .clone()
            .add_columns()
            .with_fields(added)
            .with_commit_properties(without_log_cleanup())
            .await
        {
            Ok(upgraded) => table = upgraded,
            // Another writer committed meanwhile (perhaps the same upgrade): look again.
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(_),
            })
            | Err(DeltaTableError::VersionAlreadyExists(_)) => {
                table.update_incremental(None).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(DeltaTableError::Generic(format!(
        "{uri}: could not add this version's columns after {UPGRADE_ATTEMPTS} tries, each \
         overtaken by another commit"
    )))
}

/// A column this version cannot write as the table has it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {path} is {table} in the table, but {ours} in this version")]
pub struct Incompatible {
    /// The column's path (`userIdentity.sessionContext`; `[]` for list elements).
    pub path: String,
    pub table: String,
    pub ours: String,
}

/// The paths of our columns that `table` lacks (a nested one once, under its nearest parent
/// the table has), or the first column this version cannot write.
pub fn missing_fields(table: &StructType, ours: &StructType) -> Result<Vec<String>, Incompatible> {
    let mut missing = Vec::new();
    compare_structs("", table, ours, &mut missing)?;
    Ok(missing)
}

/// The top-level fields of `ours` that hold a column the table lacks (`missing`, as
/// [`missing_fields`] gives them): what a metadata commit merges into the table's schema.
pub fn fields_to_add<'a>(
    ours: &'a StructType,
    missing: &[String],
) -> Vec<&'a deltalake::kernel::StructField> {
    let holds = |name: &str, path: &str| {
        path.strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[', '{']))
    };
    ours.fields()
        .filter(|field| missing.iter().any(|path| holds(field.name(), path)))
        .collect()
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn compare_structs(
    prefix: &str,
    table: &StructType,
    ours: &StructType,
    missing: &mut Vec<String>,
) -> Result<(), Incompatible> {
    for field in ours.fields() {
        let path = join(prefix, field.name());
        match table.field(field.name()) {
            None => missing.push(path),
            Some(theirs) => compare_types(&path, theirs.data_type(), field.data_type(), missing)?,
        }
    }
    for theirs in table.fields() {
        if ours.field(theirs.name()).is_none() && !theirs.is_nullable() {
            return Err(Incompatible {
                path: join(prefix, theirs.name()),
                table: "a required column".into(),
                ours: "not written".into(),
            });
        }
    }
    Ok(())
}

fn compare_types(
    path: &str,
    table: &DataType,
    ours: &DataType,
    missing: &mut Vec<String>,
) -> Result<(), Incompatible> {
    match (table, ours) {
        (DataType::Struct(table), DataType::Struct(ours)) => {
            compare_structs(path, table, ours, missing)
        }
        (DataType::Array(table), DataType::Array(ours)) => compare_types(
            &format!("{path}[]"),
            table.element_type(),
            ours.element_type(),
            missing,
        ),
        (DataType::Map(table), DataType::Map(ours)) => {
            compare_types(
                &format!("{path}{{key}}"),
                table.key_type(),
                ours.key_type(),
                missing,
            )?;
            compare_types(
                &format!("{path}{{value}}"),
                table.value_type(),
                ours.value_type(),
                missing,
            )
        }
        (table, ours) if table == ours => Ok(()),
        (table, ours) => Err(Incompatible {
            path: path.to_owned(),
            table: table.to_string(),
            ours: ours.to_string(),
        }),
    }
}

/// The columns of `table` in Arrow: ours in our order and Arrow types, then those only the
/// table has (nested ones in place); ours the table lacks are left out.
pub fn table_schema(ours: &Schema, table: &StructType) -> Result<SchemaRef, ArrowError> {
    let fields = widen_fields(ours.fields(), table)?;
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        ours.metadata().clone(),
    )))
}

fn widen_fields(ours: &Fields, table: &StructType) -> Result<Fields, ArrowError> {
    let mut fields: Vec<Field> = Vec::with_capacity(ours.len());
    for field in ours.iter() {
        if let Some(theirs) = table.field(field.name()) {
            let widened = widen_type(field.data_type(), theirs.data_type())?;
            fields.push(field.as_ref().clone().with_data_type(widened));
        }
    }
    for theirs in table.fields() {
        if ours.find(theirs.name()).is_none() {
            let data_type: ArrowType = theirs.data_type().try_into_arrow()?;
            fields.push(Field::new(theirs.name(), data_type, theirs.is_nullable()));
        }
    }
    Ok(fields.into())
}

fn widen_type(ours: &ArrowType, table: &DataType) -> Result<ArrowType, ArrowError> {
    Ok(match (ours, table) {
        (ArrowType::Struct(fields), DataType::Struct(table)) => {
            ArrowType::Struct(widen_fields(fields, table)?)
        }
        (ArrowType::List(element), DataType::Array(table)) => ArrowType::List(Arc::new(
            element
                .as_ref()
                .clone()
                .with_data_type(widen_type(element.data_type(), table.element_type())?),
        )),
        _ => ours.clone(),
    })
}

/// `batch` (read from a file of the table) in `schema`: its columns found by name, nested
/// ones too, and those it lacks null.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let rows = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => conform_array(field.name(), column, field.data_type()),
            None => Ok(new_null_array(field.data_type(), rows)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

fn conform_array(path: &str, array: &ArrayRef, target: &ArrowType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == target {
        return Ok(array.clone());
    }
    match (array.data_type(), target) {
        (ArrowType::Struct(_), ArrowType::Struct(fields)) => {
            let array = array
                .as_any()
                .downcast_ref::<StructArray>()
                .expect("a struct type is a StructArray");
            let children = fields
                .iter()
                .map(|field| match array.column_by_name(field.name()) {
                    Some(child) => {
                        conform_array(&join(path, field.name()), child, field.data_type())
                    }
                    None => Ok(new_null_array(field.data_type(), array.len())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(
                fields.clone(),
                children,
                array.nulls().cloned(),
            )?))
        }
        (ArrowType::List(_), ArrowType::List(element)) => {
            let array = array
                .as_any()
                .downcast_ref::<ListArray>()
                .expect("a list type is a ListArray");
            let values = conform_array(&format!("{path}[]"), array.values(), element.data_type())?;
            Ok(Arc::new(ListArray::try_new(
                element.clone(),
                array.offsets().clone(),
                values,
                array.nulls().cloned(),
            )?))
        }
        // Writers name a map's entries differently (`key_value`, `entries`): same data.
        (ArrowType::Map(_, _), ArrowType::Map(entries, sorted)) => {
            let array = array
                .as_any()
                .downcast_ref::<MapArray>()
                .expect("a map type is a MapArray");
            let pairs: ArrayRef = Arc::new(array.entries().clone());
            let pairs = conform_array(&format!("{path}{{}}"), &pairs, entries.data_type())?;
            let pairs = pairs
                .as_any()
                .downcast_ref::<StructArray>()
                .expect("map entries are a struct")
                .clone();
            Ok(Arc::new(MapArray::try_new(
                entries.clone(),
                array.offsets().clone(),
                pairs,
                array.nulls().cloned(),
                *sorted,
            )?))
        }
        (found, _) => Err(ArrowError::SchemaError(format!(
            "column {path} is {found} in a file, but {target} in the table"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
    use deltalake::kernel::{ArrayType, PrimitiveType, StructField};

    fn string(name: &str) -> StructField {
        StructField::new(name, DataType::Primitive(PrimitiveType::String), true)
    }

    fn record(name: &str, fields: Vec<StructField>) -> StructField {
        StructField::new(
            name,
            DataType::Struct(Box::new(StructType::try_new(fields).unwrap())),
            true,
        )
    }

    fn list_of(name: &str, fields: Vec<StructField>) -> StructField {
        let element = DataType::Struct(Box::new(StructType::try_new(fields).unwrap()));
        StructField::new(
            name,
            DataType::Array(Box::new(ArrayType::new(element, true))),
            true,
        )
    }

    /// Ours: a, who {type, arn}, items [{ARN, type}], added.
    fn ours() -> StructType {
        StructType::try_new([
            string("a"),
            record("who", vec![string("type"), string("arn")]),
            list_of("items", vec![string("ARN"), string("type")]),
            string("added"),
        ])
        .unwrap()
    }

    #[test]
    fn lists_what_an_older_table_lacks_nested_ones_too() {
        let older = StructType::try_new([
            string("a"),
            record("who", vec![string("type")]),
            list_of("items", vec![string("ARN")]),
        ])
        .unwrap();
        assert_eq!(
            missing_fields(&older, &ours()),
            Ok(vec![
                "who.arn".into(),
                "items[].type".into(),
                "added".into()
            ])
        );
        let schema = ours();
        let missing = missing_fields(&older, &schema).unwrap();
        let names: Vec<&str> = fields_to_add(&schema, &missing)
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["who", "items", "added"]);
        assert_eq!(missing_fields(&ours(), &ours()), Ok(vec![]));
    }

    #[test]
    fn a_newer_table_is_fine_unless_it_requires_what_we_do_not_write() {
        let newer = StructType::try_new([
            string("a"),
            record("who", vec![string("type"), string("arn"), string("tags")]),
            list_of("items", vec![string("ARN"), string("type")]),
            string("added"),
            string("future"),
        ])
        .unwrap();
        assert_eq!(missing_fields(&newer, &ours()), Ok(vec![]));
        let required = StructType::try_new([
            string("a"),
            record(
                "who",
                vec![
                    string("type"),
                    string("arn"),
                    StructField::new("id", DataType::Primitive(PrimitiveType::Long), false),
                ],
            ),
        ])
        .unwrap();
        let err = missing_fields(&required, &ours()).unwrap_err();
        assert_eq!(err.path, "who.id");
    }

    #[test]
    fn names_a_column_whose_type_changed() {
        let changed = StructType::try_new([
            string("a"),
            record(
                "who",
                vec![
                    string("type"),
                    StructField::new("arn", DataType::Primitive(PrimitiveType::Long), true),
                ],
            ),
        ])
        .unwrap();
        let err = missing_fields(&changed, &ours()).unwrap_err();
        assert_eq!(err.path, "who.arn");
        assert!(
            err.to_string()
                .starts_with("column who.arn is long in the table, but string"),
            "{err}"
        );
    }

    #[test]
    fn files_of_any_release_conform_to_the_widened_schema() {
        let ours_arrow: arrow::datatypes::Schema = (&ours()).try_into_arrow().unwrap();
        // The table: ours plus a nested and a top-level column of a newer release.
        let table = StructType::try_new([
            string("a"),
            record("who", vec![string("type"), string("arn"), string("tags")]),
            list_of("items", vec![string("ARN"), string("type")]),
            string("added"),
            StructField::new("future", DataType::Primitive(PrimitiveType::Long), true),
        ])
        .unwrap();
        let schema = table_schema(&ours_arrow, &table).unwrap();
        let back: StructType = schema.as_ref().try_into_kernel().unwrap();
        assert_eq!(missing_fields(&back, &table), Ok(vec![]));
        assert_eq!(missing_fields(&table, &back), Ok(vec![]));

        // An old file: only `a` and `who.type`.
        let who_type = Arc::new(Field::new("type", ArrowType::Utf8, true));
        let who = StructArray::from(vec![(
            who_type,
            Arc::new(StringArray::from(vec![Some("Root"), None])) as ArrayRef,
        )]);
        let old = RecordBatch::try_from_iter([
            ("a", Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef),
            ("who", Arc::new(who) as ArrayRef),
        ])
        .unwrap();
        let conformed = conform(&old, &schema).unwrap();
        assert_eq!(conformed.schema(), schema);
        assert_eq!(conformed.num_rows(), 2);
        let who = conformed.column_by_name("who").unwrap();
        let who = who.as_any().downcast_ref::<StructArray>().unwrap();
        let kinds = who.column_by_name("type").unwrap();
        assert_eq!(
            kinds
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(0),
            "Root"
        );
        assert_eq!(who.column_by_name("tags").unwrap().null_count(), 2);
        assert_eq!(conformed.column_by_name("future").unwrap().null_count(), 2);

        // A newer file's extra column is kept.
        let newer = RecordBatch::try_from_iter([
            ("a", Arc::new(StringArray::from(vec!["z"])) as ArrayRef),
            ("future", Arc::new(Int64Array::from(vec![7])) as ArrayRef),
        ])
        .unwrap();
        let conformed = conform(&newer, &schema).unwrap();
        let future = conformed.column_by_name("future").unwrap();
        assert_eq!(
            future
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            7
        );

        // A file whose column has another type is refused, by name.
        let clash = RecordBatch::try_from_iter([(
            "future",
            Arc::new(StringArray::from(vec!["seven"])) as ArrayRef,
        )])
        .unwrap();
        let err = conform(&clash, &schema).unwrap_err();
        assert!(
            err.to_string().contains("column future is Utf8 in a file"),
            "{err}"
        );

        // A table without one of our columns: compaction writes the table's columns only.
        let older =
            StructType::try_new([string("a"), record("who", vec![string("type")])]).unwrap();
        let schema = table_schema(&ours_arrow, &older).unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["a", "who"]);
        let back: StructType = schema.as_ref().try_into_kernel().unwrap();
        assert_eq!(back, older);
    }

    #[test]
    fn a_map_conforms_whatever_its_writer_named_the_entries() {
        use arrow::array::{MapBuilder, MapFieldNames, StringBuilder};
        let names = |entry: &str| MapFieldNames {
            entry: entry.into(),
            key: "key".into(),
            value: "value".into(),
        };
        let map = |entry: &str| {
            let mut b = MapBuilder::new(
                Some(names(entry)),
                StringBuilder::new(),
                StringBuilder::new(),
            );
            b.keys().append_value("team");
            b.values().append_value("audit");
            b.append(true).unwrap();
            b.append(false).unwrap();
            b.finish()
        };
        // Ours, as Delta's kernel names map entries; a file as pyarrow writes them.
        let ours =
            RecordBatch::try_from_iter([("tags", Arc::new(map("key_value")) as ArrayRef)]).unwrap();
        let pyarrow =
            RecordBatch::try_from_iter([("tags", Arc::new(map("entries")) as ArrayRef)]).unwrap();
        assert_ne!(ours.schema(), pyarrow.schema());
        let conformed = conform(&pyarrow, &ours.schema()).unwrap();
        assert_eq!(conformed.schema(), ours.schema());
        assert_eq!(conformed.column(0).to_data(), ours.column(0).to_data());
    }
}
