//! Tables: exact CSV round trip of every float, Parquet read back by the parquet crate's own
//! reader, atomic writes, and refusals that name the file.

use infoplane_store::{Column, StoreError, Table};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use proptest::prelude::*;

use infoplane_store::testing::shared_data;

fn sample() -> Table {
    let mut t = Table::new();
    t.push("layer", Column::Str(vec![Some("0".into()), Some("1".into()), Some("final_norm".into())])).unwrap();
    t.push("entropy", Column::F64(vec![Some(0.123456789012345), None, Some(-1e-300)])).unwrap();
    t.push("positions", Column::I64(vec![5, i64::MAX, -3])).unwrap();
    t.push("note, with comma", Column::Str(vec![None, Some("a \"quoted\"\nline".into()), Some("ü".into())])).unwrap();
    t
}

#[test]
fn csv_round_trip_keeps_values_and_missing_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layers.csv");
    let t = sample();
    t.write_csv(&path).unwrap();
    let back = Table::read_csv(&path).unwrap();
    assert_eq!(back.names(), t.names());
    assert_eq!(back.column("entropy"), t.column("entropy"));
    assert_eq!(back.column("positions"), t.column("positions"));
    assert_eq!(back.column("layer"), t.column("layer"), "a column with a non-number stays text");
    assert_eq!(back.column("note, with comma"), t.column("note, with comma"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("layer,entropy,positions,\"note, with comma\"\n0,0.123456789012345,5,\n"), "{text}");
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn parquet_is_readable_by_the_parquet_reader_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layers.parquet");
    let t = sample();
    t.write_parquet(&path).unwrap();
    // The parquet crate's row reader, independently of Table::read_parquet.
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
    let rows: Vec<_> = reader.get_row_iter(None).unwrap().map(|r| r.unwrap().into_columns()).collect();
    assert_eq!(rows[0][0], ("layer".to_string(), Field::Str("0".into())));
    assert_eq!(rows[1][1], ("entropy".to_string(), Field::Null));
    assert_eq!(rows[2][1].1, Field::Double(-1e-300));
    assert_eq!(rows[1][2].1, Field::Long(i64::MAX));
    assert_eq!(rows[0][3].1, Field::Null);
    assert_eq!(Table::read_parquet(&path).unwrap(), t);
}

#[test]
fn bad_files_are_refused_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
    let e = Table::read_csv(&ragged).unwrap_err();
    assert!(matches!(e, StoreError::Table { .. }) && e.to_string().contains("ragged.csv"), "{e}");
    let not_parquet = dir.path().join("x.parquet");
    std::fs::write(&not_parquet, "a,b\n").unwrap();
    let e = Table::read_parquet(&not_parquet).unwrap_err();
    assert!(e.to_string().contains("x.parquet"), "{e}");
    assert!(matches!(Table::read_csv(&dir.path().join("missing.csv")), Err(StoreError::Io { .. })));
    // A failed write leaves the earlier file whole.
    let keep = dir.path().join("keep.csv");
    sample().write_csv(&keep).unwrap();
    let before = std::fs::read(&keep).unwrap();
    assert!(sample().write_csv(&dir.path().join("no/such/dir/keep.csv")).is_err());
    assert_eq!(std::fs::read(&keep).unwrap(), before);
}

/// The Open LLM Leaderboard scores CSV reads with the types pandas infers (4,576 rows; rank
/// int, model text, scores float, nothing missing), and its values survive a write and re-read.
#[test]
fn real_leaderboard_scores() {
    let Some(data) = shared_data("real_leaderboard_scores") else { return };
    let path = data.join("open_llm_leaderboard_v2/oll_v2_scores.csv");
    let t = Table::read_csv(&path).unwrap();
    assert_eq!(t.names(), ["rank", "model", "average", "params_b", "ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro"]);
    assert_eq!(t.rows(), 4576);
    assert!(matches!(t.column("rank"), Some(Column::I64(_))));
    assert_eq!(t.column("model").unwrap().text_at(0).as_deref(), Some("MaziyarPanahi/calme-3.2-instruct-78b"));
    for name in &t.names()[2..] {
        let Some(Column::F64(v)) = t.column(name) else { panic!("{name} is not numeric") };
        assert!(v.iter().all(Option::is_some), "{name}");
    }
    assert_eq!(t.column("musr").unwrap().f64_at(1), Some(36.5));
    let dir = tempfile::tempdir().unwrap();
    t.write_csv(&dir.path().join("s.csv")).unwrap();
    t.write_parquet(&dir.path().join("s.parquet")).unwrap();
    assert_eq!(Table::read_csv(&dir.path().join("s.csv")).unwrap(), t);
    assert_eq!(Table::read_parquet(&dir.path().join("s.parquet")).unwrap(), t);
}

fn float() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        1 => Just(None),
        4 => any::<u64>().prop_map(f64::from_bits).prop_filter("NaN has no equality", |x| !x.is_nan()).prop_map(Some),
        2 => (-1e6f64..1e6).prop_map(Some),
        1 => prop_oneof![Just(0.0), Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::MIN_POSITIVE), Just(5e-324), Just(1e16), Just(3.0)].prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_float_round_trips_bit_exactly(values in prop::collection::vec(float(), 1..40), ints in prop::collection::vec(any::<i64>(), 40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Table::new();
        // A value in the first row keeps the column a float column even if the rest are missing.
        let mut values = values;
        values[0] = Some(values[0].unwrap_or(0.5));
        let rows = values.len();
        t.push("x", Column::F64(values.clone())).unwrap();
        t.push("n", Column::I64(ints[..rows].to_vec())).unwrap();
        t.write_csv(&dir.path().join("t.csv")).unwrap();
        t.write_parquet(&dir.path().join("t.parquet")).unwrap();
        for back in [Table::read_csv(&dir.path().join("t.csv")).unwrap(), Table::read_parquet(&dir.path().join("t.parquet")).unwrap()] {
            let Some(Column::F64(got)) = back.column("x") else { panic!("x is not a float column") };
            prop_assert_eq!(got.len(), rows);
            for (a, b) in got.iter().zip(&values) {
                prop_assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
            }
            prop_assert_eq!(back.column("n"), t.column("n"));
        }
    }
}
