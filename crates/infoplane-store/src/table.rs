//! Small column tables (per-layer results, model tables, scores) written atomically as CSV and
//! Parquet, and read back from either.

use crate::StoreError;
use std::path::Path;

/// One column's values; `None` is a missing value.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    F64(Vec<Option<f64>>),
    I64(Vec<i64>),
    Str(Vec<Option<String>>),
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
        todo!("{row}")
    }
}

/// Named columns of equal length.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Table {
    names: Vec<String>,
    columns: Vec<Column>,
}

impl Table {
    pub fn new() -> Self {
        Table::default()
    }
    /// Appends a column; refused when the name is taken or the length differs from the others.
    pub fn push(&mut self, name: impl Into<String>, column: Column) -> Result<&mut Self, StoreError> {
        todo!("{:?}", (name.into(), column))
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

    /// CSV with a header row; floats in shortest round-trip form (always with a `.` or exponent,
    /// so they read back as floats), missing values as empty cells.
    pub fn write_csv(&self, path: &Path) -> Result<(), StoreError> {
        todo!("{path:?}")
    }
    /// Reads a CSV with a header row. A column whose cells all parse as i64 (none empty) is I64;
    /// else one whose non-empty cells all parse as f64 is F64; else Str. Empty cells are missing.
    pub fn read_csv(path: &Path) -> Result<Table, StoreError> {
        todo!("{path:?}")
    }
    /// Parquet: F64 as optional DOUBLE, I64 as required INT64, Str as optional UTF8 BYTE_ARRAY;
    /// snappy-compressed.
    pub fn write_parquet(&self, path: &Path) -> Result<(), StoreError> {
        todo!("{path:?}")
    }
    /// Reads a Parquet file of DOUBLE/FLOAT, INT32/INT64 and UTF8 columns.
    pub fn read_parquet(path: &Path) -> Result<Table, StoreError> {
        todo!("{path:?}")
    }
}
