//! A CSV table of text cells with typed access: the sweep's models.csv, a run's layers.csv,
//! benchmark score tables. Numbers are parsed on access so that an error can name line and column.

use crate::CompareError;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// The file line each row starts on (1 = header), for error messages.
    pub lines: Vec<u64>,
}

/// A cell that is neither a number nor a missing-value marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotANumber;

/// A cell's number: None for an empty cell or a missing-value marker (nan, NA, null, None) and for
/// ±inf (no statistic here can use it); an error for anything else that is not a number.
pub fn parse_number(cell: &str) -> Result<Option<f64>, NotANumber> {
    let cell = cell.trim();
    if cell.is_empty() || ["nan", "na", "n/a", "null", "none"].iter().any(|m| cell.eq_ignore_ascii_case(m)) {
        return Ok(None);
    }
    let v: f64 = cell.parse().map_err(|_| NotANumber)?;
    Ok(v.is_finite().then_some(v))
}

/// Shortest text that reads back to exactly `v` (Rust's `{}`), in exponent form for very small or
/// large magnitudes so that a p-value of 1e-30 does not print thirty zeros. None → empty cell.
pub fn format_number(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(v) if !v.is_finite() => String::new(),
        Some(v) if v != 0.0 && (v.abs() < 1e-4 || v.abs() >= 1e15) => format!("{v:e}"),
        Some(v) => format!("{v}"),
    }
}

impl Table {
    pub fn read_csv(path: &Path) -> Result<Table, CompareError> {
        let file = std::fs::File::open(path).map_err(|e| CompareError::io(path, e))?;
        Self::from_reader(path, file)
    }

    pub fn from_reader(path: &Path, reader: impl std::io::Read) -> Result<Table, CompareError> {
        let csv_err = |e: csv::Error| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            match e.into_kind() {
                csv::ErrorKind::Io(source) => CompareError::Io { path: path.to_path_buf(), source },
                csv::ErrorKind::Utf8 { err, .. } => CompareError::Csv { path: path.to_path_buf(), line, reason: format!("not UTF-8: {err}") },
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => CompareError::Csv {
                    path: path.to_path_buf(),
                    line,
                    reason: format!("{len} fields where the header has {expected_len}"),
                },
                other => CompareError::Csv { path: path.to_path_buf(), line, reason: format!("{other:?}") },
            }
        };
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(reader);
        let header = rdr.headers().map_err(csv_err)?.clone();
        let columns: Vec<String> = header.iter().map(|c| c.trim().trim_start_matches('\u{feff}').to_string()).collect();
        if columns.is_empty() || columns.iter().all(|c| c.is_empty()) {
            return Err(CompareError::table(path, "empty file (no header row)"));
        }
        for (i, c) in columns.iter().enumerate() {
            if c.is_empty() {
                return Err(CompareError::Csv { path: path.to_path_buf(), line: 1, reason: format!("column {} has no name", i + 1) });
            }
            if columns[..i].contains(c) {
                return Err(CompareError::Csv { path: path.to_path_buf(), line: 1, reason: format!("column `{c}` appears twice") });
            }
        }
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for record in rdr.records() {
            let record = record.map_err(csv_err)?;
            lines.push(record.position().map(|p| p.line()).unwrap_or(0));
            rows.push(record.iter().map(str::to_string).collect());
        }
        Ok(Table { path: path.to_path_buf(), columns, rows, lines })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.column(name).is_some()
    }

    /// The index of a column that must exist; the error lists the columns there are.
    pub fn require(&self, name: &str) -> Result<usize, CompareError> {
        self.column(name).ok_or_else(|| CompareError::MissingColumn {
            path: self.path.clone(),
            column: name.to_string(),
            available: self.columns.join(", "),
        })
    }

    pub fn text(&self, row: usize, col: usize) -> &str {
        self.rows[row][col].trim()
    }

    /// A column's text, trimmed.
    pub fn texts(&self, name: &str) -> Result<Vec<String>, CompareError> {
        let c = self.require(name)?;
        Ok((0..self.len()).map(|r| self.text(r, c).to_string()).collect())
    }

    /// A column's numbers (None = missing); a cell that is not a number is an error naming line and column.
    pub fn numbers(&self, name: &str) -> Result<Vec<Option<f64>>, CompareError> {
        let c = self.require(name)?;
        (0..self.len())
            .map(|r| {
                parse_number(&self.rows[r][c]).map_err(|NotANumber| CompareError::Csv {
                    path: self.path.clone(),
                    line: self.lines[r],
                    reason: format!("column `{name}`: {:?} is not a number", self.rows[r][c]),
                })
            })
            .collect()
    }

    /// Columns whose every cell is a number or missing, with at least one number.
    pub fn numeric_columns(&self) -> Vec<String> {
        (0..self.columns.len())
            .filter(|&c| {
                let mut any = false;
                for row in &self.rows {
                    match parse_number(&row[c]) {
                        Ok(Some(_)) => any = true,
                        Ok(None) => {}
                        Err(NotANumber) => return false,
                    }
                }
                any
            })
            .map(|c| self.columns[c].clone())
            .collect()
    }
}

/// CSV text of a header and rows (quoting where needed), for writing through the store.
pub(crate) fn csv_bytes(columns: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail, and every row has the header's length by construction.
    w.write_record(columns).expect("in-memory CSV");
    for row in rows {
        w.write_record(row).expect("in-memory CSV");
    }
    w.into_inner().expect("in-memory CSV")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<Table, CompareError> {
        Table::from_reader(Path::new("t.csv"), text.as_bytes())
    }

    #[test]
    fn numbers_missing_markers_and_errors_name_the_line() {
        let t = table("id,a,b\nx,1.5,\ny,nan,2\nz,NA,oops\n").unwrap();
        assert_eq!(t.numbers("a").unwrap(), vec![Some(1.5), None, None]);
        assert_eq!(t.numeric_columns(), vec!["a".to_string()]);
        let e = t.numbers("b").unwrap_err().to_string();
        assert!(e.contains("line 4") && e.contains("`b`") && e.contains("oops"), "{e}");
        let e = t.numbers("c").unwrap_err().to_string();
        assert!(e.contains("no column `c`") && e.contains("id, a, b"), "{e}");
    }

    #[test]
    fn ragged_rows_and_duplicate_columns_are_refused() {
        let e = table("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("1 fields"), "{e}");
        let e = table("a,a\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("`a` appears twice"), "{e}");
    }

    #[test]
    fn format_round_trips() {
        for v in [0.0, 1.0, -0.37, 1e-30, 3.25e-5, 123456.789, 2e20, f64::MIN_POSITIVE, 0.1 + 0.2] {
            let s = format_number(Some(v));
            assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
        }
        assert_eq!(format_number(Some(1e-30)), "1e-30");
        assert_eq!(format_number(None), "");
        assert_eq!(format_number(Some(f64::NAN)), "");
    }
}
