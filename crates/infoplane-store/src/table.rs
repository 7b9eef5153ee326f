//! Small column tables (per-layer results, model tables, scores) written atomically as CSV and
//! Parquet, and read back from either.

use crate::{write_atomic, write_atomic_with, StoreError};
use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type as SchemaType;
use std::path::Path;
use std::sync::Arc;

/// One column's values; `None` is a missing value.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    F64(Vec<Option<f64>>),
    I64(Vec<i64>),
    Str(Vec<Option<String>>),
}

/// A float as CSV text: Rust's `{:?}` is the shortest string that parses back to the same bits,
/// and always carries a `.`, an exponent, `inf` or `NaN`, so a float column never reads back as
/// integers.
pub fn format_f64(x: f64) -> String {
    format!("{x:?}")
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `row` as a number (I64 widened; None when missing or a string).
    pub fn f64_at(&self, row: usize) -> Option<f64> {
        match self {
            Column::F64(v) => v[row],
            Column::I64(v) => Some(v[row] as f64),
            Column::Str(_) => None,
        }
    }
    /// Row `row` as text (numbers formatted as in CSV; None when missing).
    pub fn text_at(&self, row: usize) -> Option<String> {
        match self {
            Column::F64(v) => v[row].map(format_f64),
            Column::I64(v) => Some(v[row].to_string()),
            Column::Str(v) => v[row].clone(),
        }
    }
}

/// Named columns of equal length.
///
/// CSV keeps every F64 and I64 value exactly (bits included, NaN aside from its payload), but
/// not a column's type where the text is ambiguous: a string column whose cells all look like
/// numbers reads back as numbers, and a column with no value at all reads back as F64. Parquet
/// keeps types.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Table {
    names: Vec<String>,
    columns: Vec<Column>,
}

impl Table {
    pub fn new() -> Self {
        Table::default()
    }
    /// Appends a column; refused when the name is taken or empty, or the length differs from the
    /// others'.
    pub fn push(&mut self, name: impl Into<String>, column: Column) -> Result<&mut Self, StoreError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StoreError::TableShape("a column needs a name".into()));
        }
        if self.names.contains(&name) {
            return Err(StoreError::TableShape(format!("column {name:?} is there twice")));
        }
        if !self.columns.is_empty() && column.len() != self.rows() {
            return Err(StoreError::TableShape(format!("column {name:?} has {} rows, the table {}", column.len(), self.rows())));
        }
        self.names.push(name);
        self.columns.push(column);
        Ok(self)
    }
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn columns(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.names.iter().map(String::as_str).zip(&self.columns)
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names.iter().position(|n| n == name).map(|i| &self.columns[i])
    }

    /// CSV with a header row; floats in shortest round-trip form ([`format_f64`]), missing values
    /// as empty cells. Written atomically.
    pub fn write_csv(&self, path: &Path) -> Result<(), StoreError> {
        write_atomic_with(path, |w| {
            let mut out = csv::Writer::from_writer(w);
            out.write_record(&self.names)?;
            let mut record: Vec<String> = Vec::with_capacity(self.columns.len());
            for row in 0..self.rows() {
                record.clear();
                record.extend(self.columns.iter().map(|c| c.text_at(row).unwrap_or_default()));
                out.write_record(&record)?;
            }
            out.flush()
        })
    }

    /// Reads a CSV with a header row. A column whose cells all parse as i64 (none empty) is I64;
    /// else one whose non-empty cells all parse as f64 is F64; else Str. Empty (or whitespace)
    /// cells are missing; numbers are parsed after trimming spaces.
    pub fn read_csv(path: &Path) -> Result<Table, StoreError> {
        let err = |reason: String| StoreError::Table { path: path.to_path_buf(), reason };
        let file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(std::io::BufReader::new(file));
        let names: Vec<String> = reader.headers().map_err(|e| err(e.to_string()))?.iter().map(str::to_string).collect();
        if names.is_empty() {
            return Err(err("no header row".into()));
        }
        let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
        for record in reader.records() {
            let record = record.map_err(|e| err(e.to_string()))?;
            for (column, cell) in cells.iter_mut().zip(record.iter()) {
                column.push(cell.to_string());
            }
        }
        let mut table = Table::new();
        for (name, column) in names.into_iter().zip(cells) {
            let column = infer_column(column);
            table.push(name, column).map_err(|e| err(e.to_string()))?;
        }
        Ok(table)
    }

    /// Parquet: F64 as optional DOUBLE (null when missing), I64 as required INT64, Str as optional
    /// UTF8 BYTE_ARRAY; one row group, snappy. Written atomically.
    pub fn write_parquet(&self, path: &Path) -> Result<(), StoreError> {
        let bytes = self.parquet_bytes().map_err(|e| StoreError::Table { path: path.to_path_buf(), reason: format!("writing Parquet: {e}") })?;
        write_atomic(path, &bytes)
    }

    fn parquet_bytes(&self) -> Result<Vec<u8>, parquet::errors::ParquetError> {
        let mut fields = Vec::with_capacity(self.columns.len());
        for (name, column) in self.columns() {
            let field = match column {
                Column::F64(_) => SchemaType::primitive_type_builder(name, PhysicalType::DOUBLE).with_repetition(Repetition::OPTIONAL),
                Column::I64(_) => SchemaType::primitive_type_builder(name, PhysicalType::INT64).with_repetition(Repetition::REQUIRED),
                Column::Str(_) => SchemaType::primitive_type_builder(name, PhysicalType::BYTE_ARRAY).with_repetition(Repetition::OPTIONAL).with_logical_type(Some(LogicalType::String)),
            };
            fields.push(Arc::new(field.build()?));
        }
        let schema = Arc::new(SchemaType::group_type_builder("schema").with_fields(fields).build()?);
        let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).set_created_by(format!("infoplane {}", env!("CARGO_PKG_VERSION"))).build());
        let mut buf = Vec::new();
        let mut writer = SerializedFileWriter::new(&mut buf, schema, props)?;
        let mut group = writer.next_row_group()?;
        for column in &self.columns {
            let mut out = group.next_column()?.expect("one writer per schema column");
            match column {
                Column::F64(v) => {
                    let values: Vec<f64> = v.iter().flatten().copied().collect();
                    let defs: Vec<i16> = v.iter().map(|x| x.is_some() as i16).collect();
                    out.typed::<DoubleType>().write_batch(&values, Some(&defs), None)?;
                }
                Column::I64(v) => {
                    out.typed::<Int64Type>().write_batch(v, None, None)?;
                }
                Column::Str(v) => {
                    let values: Vec<ByteArray> = v.iter().flatten().map(|s| ByteArray::from(s.as_str())).collect();
                    let defs: Vec<i16> = v.iter().map(|x| x.is_some() as i16).collect();
                    out.typed::<ByteArrayType>().write_batch(&values, Some(&defs), None)?;
                }
            }
            out.close()?;
        }
        group.close()?;
        writer.close()?;
        Ok(buf)
    }

    /// Reads a flat Parquet file: floating columns become F64, integer columns I64 (F64 when they
    /// hold nulls), string columns Str. Other types are refused, naming the column.
    pub fn read_parquet(path: &Path) -> Result<Table, StoreError> {
        let err = |reason: String| StoreError::Table { path: path.to_path_buf(), reason };
        let file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| err(format!("not a readable Parquet file: {e}")))?;
        let schema = reader.metadata().file_metadata().schema_descr().root_schema().clone();
        let names: Vec<String> = schema.get_fields().iter().map(|f| f.name().to_string()).collect();
        let mut values: Vec<Vec<Field>> = vec![Vec::new(); names.len()];
        for (r, row) in reader.get_row_iter(None).map_err(|e| err(e.to_string()))?.enumerate() {
            let row = row.map_err(|e| err(format!("row {r}: {e}")))?;
            for (c, (_, field)) in row.into_columns().into_iter().enumerate() {
                values[c].push(field);
            }
        }
        let mut table = Table::new();
        for (name, fields) in names.into_iter().zip(values) {
            let column = column_from_fields(fields).map_err(|what| err(format!("column {name:?}: {what}")))?;
            table.push(name, column).map_err(|e| err(e.to_string()))?;
        }
        Ok(table)
    }
}

fn infer_column(cells: Vec<String>) -> Column {
    if cells.iter().all(|c| c.trim().parse::<i64>().is_ok()) {
        return Column::I64(cells.iter().map(|c| c.trim().parse().expect("checked")).collect());
    }
    let floats: Option<Vec<Option<f64>>> = cells
        .iter()
        .map(|c| match c.trim() {
            "" => Some(None),
            t => t.parse::<f64>().ok().map(Some),
        })
        .collect();
    match floats {
        Some(v) => Column::F64(v),
        None => Column::Str(cells.into_iter().map(|c| (!c.trim().is_empty()).then_some(c)).collect()),
    }
}

fn column_from_fields(fields: Vec<Field>) -> Result<Column, String> {
    let int = |f: &Field| match f {
        Field::Byte(x) => Some(*x as i64),
        Field::Short(x) => Some(*x as i64),
        Field::Int(x) => Some(*x as i64),
        Field::Long(x) => Some(*x),
        Field::UByte(x) => Some(*x as i64),
        Field::UShort(x) => Some(*x as i64),
        Field::UInt(x) => Some(*x as i64),
        _ => None,
    };
    if !fields.is_empty() && fields.iter().all(|f| int(f).is_some()) {
        return Ok(Column::I64(fields.iter().map(|f| int(f).expect("checked")).collect()));
    }
    if fields.iter().all(|f| matches!(f, Field::Null | Field::Str(_))) && fields.iter().any(|f| matches!(f, Field::Str(_))) {
        return Ok(Column::Str(fields.into_iter().map(|f| if let Field::Str(s) = f { Some(s) } else { None }).collect()));
    }
    fields
        .iter()
        .map(|f| match f {
            Field::Null => Ok(None),
            Field::Float(x) => Ok(Some(*x as f64)),
            Field::Double(x) => Ok(Some(*x)),
            Field::Float16(x) => Ok(Some(x.to_f64())),
            f => int(f).map(|x| Some(x as f64)).ok_or_else(|| format!("unsupported value {f}")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Column::F64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_keeps_types_apart() {
        assert_eq!(infer_column(vec!["1".into(), " 2".into()]), Column::I64(vec![1, 2]));
        assert_eq!(infer_column(vec!["1".into(), "".into()]), Column::F64(vec![Some(1.0), None]));
        assert_eq!(infer_column(vec!["1.0".into(), "NaN".into()]).f64_at(0), Some(1.0));
        assert_eq!(infer_column(vec!["x".into(), "".into(), "3".into()]), Column::Str(vec![Some("x".into()), None, Some("3".into())]));
        assert_eq!(format_f64(3.0), "3.0");
        assert_eq!(format_f64(1e-7).parse::<f64>().unwrap(), 1e-7);
    }

    #[test]
    fn shape_is_checked() {
        let mut t = Table::new();
        t.push("a", Column::I64(vec![1, 2])).unwrap();
        assert!(matches!(t.push("a", Column::I64(vec![1, 2])), Err(StoreError::TableShape(_))));
        assert!(matches!(t.push("b", Column::I64(vec![1])), Err(StoreError::TableShape(_))));
        assert!(matches!(t.push("", Column::I64(vec![1, 2])), Err(StoreError::TableShape(_))));
        assert_eq!(t.rows(), 2);
    }
}
