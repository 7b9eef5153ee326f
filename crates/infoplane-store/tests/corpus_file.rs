//! Corpus and preference readers: every format, the skip/count rules, errors that name file and
//! line, seeded sampling, and the real C4 and HH-RLHF samples.

use flate2::{write::GzEncoder, Compression};
use infoplane_store::{read_corpus, read_preferences, Column, CorpusFormat, CorpusOptions, PreferenceFormat, PreferenceOptions, StoreError, Table, HH_ASSISTANT_MARKER};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::path::Path;

use infoplane_store::testing::{repo_root, shared_data};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut s).unwrap();
    s
}

const JSONL: &str = "{\"body\": \"first doc\", \"text\": 1}\n\n{\"body\": \"  \"}\n{\"body\": \"third\\nline\", \"x\": [1]}\r\n{\"body\": \"\"}\n{\"body\": \"last\"}";

#[test]
fn jsonl_reads_the_named_field_and_counts_skips() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("c.jsonl", JSONL.as_bytes().to_vec()), ("c.json.gz", gzip(JSONL.as_bytes())), ("c.jsonl.gz", gzip(JSONL.as_bytes()))] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let options = CorpusOptions { text_field: "body".into(), ..Default::default() };
        let corpus = read_corpus(&path, &options).unwrap();
        let got: Vec<(u64, &str)> = corpus.documents.iter().map(|d| (d.index, d.text.as_str())).collect();
        assert_eq!(got, [(0, "first doc"), (3, "third\nline"), (5, "last")], "{name}");
        let s = &corpus.selection;
        assert_eq!((s.records, s.documents, s.empty_skipped, s.bad_lines_skipped, s.selected), (6, 3, 2, 0, 3), "{name}");
        assert_eq!(s.format, CorpusFormat::Jsonl);
        assert_eq!(s.text_field.as_deref(), Some("body"));
        assert_eq!(s.sha256, infoplane_store::file_sha256(&path).unwrap());
        // The default field "text" holds a number on line 1.
        let e = read_corpus(&path, &CorpusOptions::default()).unwrap_err();
        assert!(matches!(e, StoreError::Line { line: 1, .. }), "{name}: {e}");
        assert!(e.to_string().contains(name) && e.to_string().contains("not a string"), "{e}");
    }
}

#[test]
fn bad_lines_are_errors_naming_the_line_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[u8], u64, &str); 5] = [
        (b"{\"text\": \"ok\"}\n{\"text\": \"ok\"\n", 2, "invalid JSON"),
        (b"{\"text\": \"ok\"}\n\n[1, 2]\n", 3, "not an object"),
        (b"{\"text\": \"ok\"}\n{\"other\": \"x\"}\n", 2, "no field \"text\""),
        (b"{\"text\": null}\n{\"text\": \"ok\"}\n", 1, "null, not a string"),
        (b"{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n", 2, "UTF-8"),
    ];
    for (i, (bytes, line, what)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.jsonl"));
        std::fs::write(&path, bytes).unwrap();
        let e = read_corpus(&path, &CorpusOptions::default()).unwrap_err();
        let StoreError::Line { line: got, ref reason, path: ref p } = e else { panic!("case {i}: {e}") };
        assert_eq!((got, p.as_path()), (*line, path.as_path()), "case {i}: {e}");
        assert!(reason.contains(what), "case {i}: {reason}");
        assert!(e.to_string().contains(&format!("bad{i}.jsonl, line {line}")), "{e}");
        let skipped = read_corpus(&path, &CorpusOptions { skip_bad_lines: true, ..Default::default() }).unwrap();
        assert_eq!(skipped.selection.bad_lines_skipped, 1, "case {i}");
        assert_eq!(skipped.documents.len(), 1, "case {i}");
    }
}

#[test]
fn plain_text_lines_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("docs.txt");
    std::fs::write(&txt, "one\r\n\n  \ntwo words\nthree").unwrap();
    let corpus = read_corpus(&txt, &CorpusOptions::default()).unwrap();
    let got: Vec<(u64, &str)> = corpus.documents.iter().map(|d| (d.index, d.text.as_str())).collect();
    assert_eq!(got, [(0, "one"), (3, "two words"), (4, "three")]);
    assert_eq!((corpus.selection.empty_skipped, corpus.selection.text_field.clone()), (2, None));
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"fine\n\xff\xfe\n").unwrap();
    assert!(matches!(read_corpus(&bad, &CorpusOptions::default()), Err(StoreError::Line { line: 2, .. })));

    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    std::fs::write(docs.join("b.txt"), "bee\nsecond line").unwrap();
    std::fs::write(docs.join("a.md"), "ay").unwrap();
    std::fs::write(docs.join("sub/c.txt"), "sea").unwrap();
    std::fs::write(docs.join("empty.txt"), "\n").unwrap();
    std::fs::write(docs.join(".hidden"), "never").unwrap();
    std::fs::write(docs.join("z.txt.gz"), gzip(b"zed")).unwrap();
    let corpus = read_corpus(&docs, &CorpusOptions::default()).unwrap();
    let got: Vec<(u64, &str)> = corpus.documents.iter().map(|d| (d.index, d.text.as_str())).collect();
    // Sorted: a.md, b.txt, empty.txt, sub/c.txt, z.txt.gz.
    assert_eq!(got, [(0, "ay"), (1, "bee\nsecond line"), (3, "sea"), (4, "zed")]);
    assert_eq!((corpus.selection.format, corpus.selection.records, corpus.selection.empty_skipped), (CorpusFormat::Directory, 5, 1));
    let before = corpus.selection.sha256.clone();
    std::fs::write(docs.join("sub/c.txt"), "sea!").unwrap();
    assert_ne!(read_corpus(&docs, &CorpusOptions::default()).unwrap().selection.sha256, before, "content is hashed");
    std::fs::write(docs.join("bin.txt"), b"\xc3\x28").unwrap();
    let e = read_corpus(&docs, &CorpusOptions::default()).unwrap_err();
    assert!(e.to_string().contains("bin.txt") && e.to_string().contains("UTF-8"), "{e}");
    assert_eq!(read_corpus(&docs, &CorpusOptions { skip_bad_lines: true, ..Default::default() }).unwrap().selection.bad_lines_skipped, 1);
}

#[test]
fn parquet_string_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.parquet");
    let mut t = Table::new();
    t.push("id", Column::I64(vec![10, 11, 12, 13])).unwrap();
    t.push("content", Column::Str(vec![Some("alpha".into()), None, Some(" ".into()), Some("delta".into())])).unwrap();
    t.write_parquet(&path).unwrap();
    let options = CorpusOptions { text_field: "content".into(), ..Default::default() };
    let corpus = read_corpus(&path, &options).unwrap();
    let got: Vec<(u64, &str)> = corpus.documents.iter().map(|d| (d.index, d.text.as_str())).collect();
    assert_eq!(got, [(0, "alpha"), (3, "delta")]);
    assert_eq!((corpus.selection.records, corpus.selection.empty_skipped, corpus.selection.format), (4, 2, CorpusFormat::Parquet));
    let e = read_corpus(&path, &CorpusOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no column \"text\"") && e.to_string().contains("id, content"), "{e}");
    let e = read_corpus(&path, &CorpusOptions { text_field: "id".into(), ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("not a string column"), "{e}");
}

/// Parquet written by pandas/pyarrow (snappy; scripts/make_corpus_fixtures.py), not by us.
#[test]
fn parquet_written_by_pandas() {
    let path = repo_root().join("fixtures/corpus/pandas_corpus.parquet");
    let corpus = read_corpus(&path, &CorpusOptions::default()).unwrap();
    let got: Vec<(u64, &str)> = corpus.documents.iter().map(|d| (d.index, d.text.as_str())).collect();
    assert_eq!(got, [(0, "The first document."), (3, "Zürich, 4 ½ — last")]);
    assert_eq!((corpus.selection.records, corpus.selection.empty_skipped), (4, 2));
    let table = Table::read_parquet(&path).unwrap();
    assert_eq!(table.column("id"), Some(&Column::I64(vec![1, 2, 3, 4])));
    assert_eq!(table.column("score"), Some(&Column::F64(vec![Some(0.5), Some(1.5), None, Some(2.0)])));
}

#[test]
fn empty_corpora_and_unknown_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.jsonl");
    std::fs::write(&path, "{\"text\": \"\"}\n\n").unwrap();
    let e = read_corpus(&path, &CorpusOptions::default()).unwrap_err();
    assert!(matches!(e, StoreError::Corpus { .. }) && e.to_string().contains("no documents"), "{e}");
    let odd = dir.path().join("corpus.csv");
    std::fs::write(&odd, "text\nx\n").unwrap();
    assert!(read_corpus(&odd, &CorpusOptions::default()).unwrap_err().to_string().contains("cannot tell the corpus format"));
    // An explicit format overrides the name.
    assert_eq!(read_corpus(&odd, &CorpusOptions { format: Some(CorpusFormat::Lines), ..Default::default() }).unwrap().documents.len(), 2);
    assert!(read_corpus(&path, &CorpusOptions { max_docs: Some(0), ..Default::default() }).is_err());
    assert!(matches!(read_corpus(&dir.path().join("none.jsonl"), &CorpusOptions::default()), Err(StoreError::Io { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Sampling keeps min(n, max) documents, in file order, exactly those the seeded permutation
    /// puts first; the same seed gives the same selection.
    #[test]
    fn sampling_is_the_seeded_permutation_in_file_order(n in 1usize..60, max in 1usize..80, seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.txt");
        let text: String = (0..n).map(|i| format!("doc {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let options = CorpusOptions { max_docs: Some(max), seed, ..Default::default() };
        let a = read_corpus(&path, &options).unwrap();
        let b = read_corpus(&path, &options).unwrap();
        let idx: Vec<u64> = a.documents.iter().map(|d| d.index).collect();
        prop_assert_eq!(&idx, &b.documents.iter().map(|d| d.index).collect::<Vec<_>>());
        prop_assert_eq!(&a.selection, &b.selection);
        prop_assert_eq!(idx.len(), n.min(max));
        prop_assert!(idx.windows(2).all(|w| w[0] < w[1]));
        let mut expect: Vec<u64> = if n > max {
            infoplane_estimator::rng::permutation(n, seed)[..max].iter().map(|&i| i as u64).collect()
        } else {
            (0..n as u64).collect()
        };
        expect.sort_unstable();
        prop_assert_eq!(&idx, &expect);
        for d in &a.documents {
            prop_assert_eq!(&d.text, &format!("doc {}", d.index));
        }
    }
}

#[test]
fn preference_pairs_both_layouts_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let explicit = dir.path().join("p.jsonl");
    std::fs::write(&explicit, "{\"prompt\": \"Q?\", \"chosen\": \" yes\", \"rejected\": \" no\"}\n\n{\"prompt\": \"R?\", \"chosen\": \"\", \"rejected\": \"x\"}\n").unwrap();
    let p = read_preferences(&explicit, &PreferenceOptions::default()).unwrap();
    assert_eq!(p.pairs.len(), 2);
    assert_eq!((p.pairs[1].index, p.pairs[1].prompt.as_str(), p.pairs[1].chosen.as_str()), (2, "R?", ""));
    assert_eq!(p.selection.format, PreferenceFormat::PromptChosenRejected);

    let hh = dir.path().join("hh.jsonl.gz");
    let lines = [
        r#"{"chosen": "\n\nHuman: hi\n\nAssistant: good", "rejected": "\n\nHuman: hi\n\nAssistant: bad"}"#,
        r#"{"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"}"#,
        r#"{"prompt": "P", "chosen": "c", "rejected": "r"}"#,
    ];
    std::fs::write(&hh, gzip(lines.join("\n").as_bytes())).unwrap();
    let p = read_preferences(&hh, &PreferenceOptions::default()).unwrap();
    assert_eq!(p.pairs.len(), 2);
    assert_eq!((p.pairs[0].prompt.as_str(), p.pairs[0].chosen.as_str(), p.pairs[0].rejected.as_str()), ("\n\nHuman: hi\n\nAssistant:", " good", " bad"));
    assert_eq!((p.selection.unshared_prompt_skipped, p.selection.format), (1, PreferenceFormat::Mixed));

    let bad = dir.path().join("bad.jsonl");
    for (body, line, what) in [
        ("{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: y\"}\n{\"chosen\": \"a\"}\n", 2, "no field \"rejected\""),
        ("{\"chosen\": \"\\n\\nHuman: a\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: y\"}\n", 1, "Assistant"),
        ("{\"prompt\": 3, \"chosen\": \"a\", \"rejected\": \"b\"}\n", 1, "\"prompt\" is a number"),
    ] {
        std::fs::write(&bad, body).unwrap();
        let e = read_preferences(&bad, &PreferenceOptions::default()).unwrap_err();
        assert!(matches!(e, StoreError::Line { line: l, .. } if l == line) && e.to_string().contains(what), "{e}");
        match read_preferences(&bad, &PreferenceOptions { skip_bad_lines: true, ..Default::default() }) {
            Ok(p) => assert_eq!(p.selection.bad_lines_skipped, 1),
            Err(e) => assert!(e.to_string().contains("no preference pairs"), "{e}"),
        }
    }
}

#[test]
fn real_c4_sample() {
    let Some(data) = shared_data("real_c4_sample") else { return };
    let path = data.join("c4_en_sample_1k/c4_en_train00000_first1000.jsonl");
    let corpus = read_corpus(&path, &CorpusOptions::default()).unwrap();
    let s = &corpus.selection;
    assert_eq!(s.sha256, "cdd5b754119131d2934e3e799a059a9d64f53a6aac9e7e2ef79b43120bb01a32", "the README's hash");
    assert_eq!((s.records, s.documents + s.empty_skipped, s.bad_lines_skipped), (1000, 1000, 0));
    assert!(corpus.documents[0].text.starts_with("Beginners BBQ Class Taking Place in Missoula!"));
    // The README's character count of all document texts.
    assert_eq!(corpus.documents.iter().map(|d| d.text.chars().count()).sum::<usize>(), 2_189_457);
    let sampled = read_corpus(&path, &CorpusOptions { max_docs: Some(100), seed: 7, ..Default::default() }).unwrap();
    assert_eq!(sampled.documents.len(), 100);
    assert_ne!(sampled.selection.selected_indices_sha256, s.selected_indices_sha256);
    for d in &sampled.documents {
        assert_eq!(d.text, corpus.documents[d.index as usize].text);
    }
}

#[test]
fn real_hh_rlhf_pairs() {
    let Some(data) = shared_data("real_hh_rlhf_pairs") else { return };
    // Pairs per file, and those whose two dialogues differ before the last "\n\nAssistant:"
    // (counted independently with Python's str.rfind on the same files).
    for (name, lines, unshared) in [("helpful-base_test.jsonl.gz", 2354, 9), ("harmless-base_test.jsonl.gz", 2312, 5)] {
        let path = data.join("hh_rlhf_test").join(name);
        let p = read_preferences(&path, &PreferenceOptions::default()).unwrap();
        let s = &p.selection;
        assert_eq!((s.records, s.unshared_prompt_skipped, s.pairs, s.bad_lines_skipped), (lines, unshared, lines - unshared, 0), "{name}");
        assert_eq!(s.format, PreferenceFormat::HhRlhf);
        let originals: Vec<serde_json::Value> = gunzip(&path).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for pair in &p.pairs {
            let o = &originals[pair.index as usize];
            assert_eq!(format!("{}{}", pair.prompt, pair.chosen), o["chosen"].as_str().unwrap());
            assert_eq!(format!("{}{}", pair.prompt, pair.rejected), o["rejected"].as_str().unwrap());
            assert!(pair.prompt.ends_with(HH_ASSISTANT_MARKER) && !pair.chosen.contains(HH_ASSISTANT_MARKER));
        }
        let sampled = read_preferences(&path, &PreferenceOptions { max_pairs: Some(500), seed: 1, ..Default::default() }).unwrap();
        assert_eq!(sampled.pairs.len(), 500);
    }
}
