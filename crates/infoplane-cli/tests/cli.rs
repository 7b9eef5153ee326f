//! The real binary on temporary directories: bad input fails cleanly, W round-trips, partials
//! merge to the one-pass result, and real weights from ../shared/data go through.

mod common;
use common::*;
use std::path::Path;

/// A small informative workload: z rows near one of 5 directions, labels = the direction.
fn workload(dir: &Path, rows: usize, d: usize) {
    let mut z = Vec::with_capacity(rows * d);
    let mut labels = Vec::with_capacity(rows);
    for i in 0..rows {
        let class = (i * 7 % 5) as i64;
        labels.push(class);
        for c in 0..d {
            let noise = (((i * 31 + c * 17) % 97) as f32 / 97.0) - 0.5;
            z.push(if c % 5 == class as usize { 2.0 } else { 0.0 } + noise);
        }
    }
    write_npy(&dir.join("z.npy"), "<f4", &[rows, d], &f32_bytes(&z));
    write_npy(&dir.join("tok.npy"), "<i8", &[rows], &i64_bytes(&labels));
    let pairs: Vec<i64> = (0..rows).flat_map(|i| [labels[i], labels[(i + 1) % rows]]).collect();
    write_npy(&dir.join("pair.npy"), "<i8", &[rows, 2], &i64_bytes(&pairs));
}

fn refuses(dir: &Path, args: &[&str], needle: &str) {
    common::refuses(dir, args, &[needle]);
}

#[test]
fn bad_input_exits_2_with_one_line_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    workload(dir, 60, 8);
    let base = ["estimate", "--embeddings", "z.npy", "--output", "out.json"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> { base.iter().copied().chain(extra.iter().copied()).collect() };

    refuses(dir, &["estimate", "--embeddings", "missing.npy", "--output", "out.json"], "missing.npy");
    std::fs::write(dir.join("junk.npy"), b"not an array").unwrap();
    refuses(dir, &["estimate", "--embeddings", "junk.npy", "--output", "out.json"], "junk.npy");
    write_npy(&dir.join("ints.npy"), "<i8", &[4, 2], &i64_bytes(&[1; 8]));
    refuses(dir, &["estimate", "--embeddings", "ints.npy", "--output", "out.json"], "float32 or float16");
    write_npy(&dir.join("flat.npy"), "<f4", &[8], &f32_bytes(&[1.0; 8]));
    refuses(dir, &["estimate", "--embeddings", "flat.npy", "--output", "out.json"], "[N, d]");
    let mut truncated = std::fs::read(dir.join("z.npy")).unwrap();
    truncated.truncate(truncated.len() - 4);
    std::fs::write(dir.join("short.npy"), truncated).unwrap();
    refuses(dir, &["estimate", "--embeddings", "short.npy", "--output", "out.json"], "short.npy");

    write_npy(&dir.join("few.npy"), "<i8", &[59], &i64_bytes(&[0; 59]));
    refuses(dir, &with(&["--labels", "tok=few.npy"]), "59 labels for 60");
    write_npy(&dir.join("floatlab.npy"), "<f4", &[60], &f32_bytes(&[0.0; 60]));
    refuses(dir, &with(&["--labels", "tok=floatlab.npy"]), "integer");
    refuses(dir, &with(&["--labels", "tok"]), "NAME=PATH");
    refuses(dir, &with(&["--labels", "a=tok.npy", "--labels", "a=tok.npy"]), "used twice");

    write_npy(&dir.join("w5.npy"), "<f4", &[10, 5], &f32_bytes(&[0.3; 50]));
    refuses(dir, &with(&["--reference-points", "w5.npy"]), "[n, 8]");
    refuses(dir, &with(&["--calibration", "warm"]), "unknown calibration");
    refuses(dir, &with(&["--n-bins", "1"]), "n ≥ 2");
    refuses(dir, &["estimate", "--embeddings", "z.npy", "--output", "no/such/dir/out.json"], "does not exist");

    // A zero row and a NaN row are named by position.
    let mut z = vec![1.0f32; 6 * 4];
    z[8..12].fill(0.0);
    write_npy(&dir.join("zero.npy"), "<f4", &[6, 4], &f32_bytes(&z));
    refuses(dir, &["estimate", "--embeddings", "zero.npy", "--output", "out.json"], "row 2: zero vector");
    z[8..12].fill(1.0);
    z[21] = f32::NAN;
    write_npy(&dir.join("nan.npy"), "<f4", &[6, 4], &f32_bytes(&z));
    refuses(dir, &["estimate", "--embeddings", "nan.npy", "--output", "out.json"], "row 5: non-finite");
}

#[test]
fn a_failed_run_leaves_an_earlier_result_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    workload(dir, 40, 6);
    let ok = infoplane(&["estimate", "--embeddings", "z.npy", "--labels", "tok=tok.npy", "--output", "out.json"], dir);
    assert!(ok.status.success());
    let before = std::fs::read(dir.join("out.json")).unwrap();
    write_npy(&dir.join("few.npy"), "<i8", &[3], &i64_bytes(&[0; 3]));
    let bad = infoplane(&["estimate", "--embeddings", "z.npy", "--labels", "tok=few.npy", "--output", "out.json"], dir);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(std::fs::read(dir.join("out.json")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn output_has_the_promised_fields_and_saved_w_reloads_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    workload(dir, 300, 16);
    let run = |extra: &[&str], out: &str| {
        let mut args = vec!["estimate", "--embeddings", "z.npy", "--labels", "tok=tok.npy", "--labels", "pair=pair.npy", "--tuple-labels", "--output", out];
        args.extend_from_slice(extra);
        let r = infoplane(&args, dir);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        json(&dir.join(out))
    };
    let a = run(&["--seed", "7", "--n-bins", "40", "--save-reference-points", "w.npy"], "a.json");
    for field in ["entropy", "epsilon", "n_bins", "dim", "positions", "reference_points_sha256"] {
        assert!(!a[field].is_null(), "missing {field}");
    }
    for set in ["tok", "pair"] {
        for field in ["mutual_information", "null_mutual_information", "regularity", "distinct_labels", "corrected_mutual_information"] {
            assert!(!a["labels"][set][field].is_null(), "missing labels.{set}.{field}");
        }
    }
    assert_eq!(a["labels"]["pair"]["arity"], 2);
    assert_eq!(a["labels"]["tok"]["distinct_labels"], 5);
    assert!(a["labels"]["tok"]["corrected_mutual_information"].as_f64().unwrap() > 0.05, "informative labels: {}", a["labels"]["tok"]);
    let b = run(&["--reference-points", "w.npy"], "b.json");
    // Every input's hash in the provenance (computed beside the loading) is the file's.
    let sha = |name: &str| infoplane_store::file_sha256(&dir.join(name)).unwrap();
    assert_eq!(b["embeddings"]["sha256"].as_str().unwrap(), sha("z.npy"));
    assert_eq!(b["labels"]["tok"]["file"]["sha256"].as_str().unwrap(), sha("tok.npy"));
    assert_eq!(b["labels"]["pair"]["file"]["sha256"].as_str().unwrap(), sha("pair.npy"));
    assert_eq!(b["reference_points"]["file_sha256"].as_str().unwrap(), sha("w.npy"));
    assert_ne!(sha("tok.npy"), sha("pair.npy"));
    assert_eq!(a["reference_points_sha256"], b["reference_points_sha256"]);
    assert_eq!(a["entropy"], b["entropy"]);
    for set in ["tok", "pair"] {
        assert_eq!(a["labels"][set]["mutual_information"], b["labels"][set]["mutual_information"]);
    }
    let c = run(&["--seed", "8", "--n-bins", "40"], "c.json");
    assert_ne!(a["reference_points_sha256"], c["reference_points_sha256"]);
    // Uniform weighting drops labels under --min-count.
    let u = run(&["--weighting", "uniform", "--min-count", "70"], "u.json");
    assert!(u["labels"]["pair"]["kept_labels"].as_u64().unwrap() < a["labels"]["pair"]["kept_labels"].as_u64().unwrap());
    assert_eq!(u["labels"]["pair"]["weighting"], "uniform");
}

#[test]
fn partials_from_split_inputs_merge_to_the_one_pass_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (rows, d) = (200, 8);
    workload(dir, rows, d);
    // Split z and the labels into two shards of unequal size.
    let z = infoplane_store::read_npy(&dir.join("z.npy")).unwrap();
    let infoplane_store::NpyData::F32(z) = z.data else { panic!() };
    let tok = infoplane_store::read_npy(&dir.join("tok.npy")).unwrap().data.to_i64().unwrap().unwrap();
    for (name, range) in [("a", 0..73), ("b", 73..rows)] {
        write_npy(&dir.join(format!("z_{name}.npy")), "<f4", &[range.len(), d], &f32_bytes(&z[range.start * d..range.end * d]));
        write_npy(&dir.join(format!("tok_{name}.npy")), "<i8", &[range.len()], &i64_bytes(&tok[range.clone()]));
        let r = infoplane(&["estimate", "--embeddings", &format!("z_{name}.npy"), "--labels", &format!("tok=tok_{name}.npy"), "--partial-output", &format!("{name}.partial"), "--output", &format!("{name}.json")], dir);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let whole = infoplane(&["estimate", "--embeddings", "z.npy", "--labels", "tok=tok.npy", "--output", "whole.json"], dir);
    assert!(whole.status.success());
    for order in [["a.partial", "b.partial"], ["b.partial", "a.partial"]] {
        let merged = infoplane(&["merge-partials", order[0], order[1], "--output", "merged.json", "--partial-output", "merged.partial"], dir);
        assert!(merged.status.success(), "{}", String::from_utf8_lossy(&merged.stderr));
        let (w, m) = (json(&dir.join("whole.json")), json(&dir.join("merged.json")));
        assert_eq!(m["positions"], w["positions"]);
        for (x, y) in [(&w["entropy"], &m["entropy"]), (&w["labels"]["tok"]["mutual_information"], &m["labels"]["tok"]["mutual_information"])] {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs(), "merged {y} vs one pass {x}");
        }
        assert_eq!(m["labels"]["tok"]["distinct_labels"], w["labels"]["tok"]["distinct_labels"]);
    }
    // A partial from other settings is refused by name.
    let other = infoplane(&["estimate", "--embeddings", "z_a.npy", "--labels", "tok=tok_a.npy", "--seed", "3", "--partial-output", "other.partial", "--output", "other.json"], dir);
    assert!(other.status.success());
    let refused = infoplane(&["merge-partials", "a.partial", "other.partial", "--output", "bad.json"], dir);
    assert_eq!(refused.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("other.partial") && msg.contains("reference points"), "{msg}");
    assert!(!dir.join("bad.json").exists());
    // A corrupt partial is refused, not a panic.
    let mut bytes = std::fs::read(dir.join("a.partial")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(dir.join("cut.partial"), bytes).unwrap();
    let cut = infoplane(&["merge-partials", "cut.partial", "--output", "bad.json"], dir);
    assert_eq!(cut.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&cut.stderr).contains("cut.partial"));
}

/// Real weights: the token-embedding table of Karpathy's stories260K (llama2.c format) as Z.
#[test]
fn real_embedding_table_from_shared_data() {
    let Some(data) = shared_data("real_embedding_table_from_shared_data") else { return };
    let bytes = std::fs::read(data.join("llama2c_stories260K/stories260K.bin")).expect("stories260K.bin");
    let header: Vec<i32> = bytes[..28].chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    let (dim, vocab) = (header[0] as usize, header[5].unsigned_abs() as usize);
    assert_eq!((dim, vocab), (64, 512), "stories260K header {header:?}");
    let table = &bytes[28..28 + dim * vocab * 4];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_npy(&dir.join("emb.npy"), "<f4", &[vocab, dim], table);
    // Labels: the token id modulo 8 (carries no information the table could know of).
    let ids: Vec<i64> = (0..vocab as i64).map(|i| i % 8).collect();
    write_npy(&dir.join("mod8.npy"), "<i8", &[vocab], &i64_bytes(&ids));
    let out = infoplane(&["estimate", "--embeddings", "emb.npy", "--labels", "mod8=mod8.npy", "--output", "out.json"], dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&dir.join("out.json"));
    let h = r["entropy"].as_f64().unwrap();
    assert!(h > 0.5 && h <= 1.0, "H of a trained embedding table: {h}");
    let corrected = r["labels"]["mod8"]["corrected_mutual_information"].as_f64().unwrap();
    assert!(corrected.abs() < 0.05, "id mod 8 should carry ~no information: {corrected}");
}
