//! `infoplane correlate` on the committed fixture (fixtures/correlate, made with scipy by
//! scripts/make_correlation_fixture.py), on the real Open LLM Leaderboard v2 table, and on bad
//! input.

mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    // The fixture and the outputs here have no quoted commas.
    (header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

#[test]
fn fixture_matches_scipy() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixtures().join("correlate");
    let out = infoplane(
        &["correlate", "--results", fx.join("models.csv").to_str().unwrap(), "--scores", fx.join("scores.csv").to_str().unwrap(), "--output", "out"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("joined 24 of 25 results rows"), "{stdout}");
    assert!(stdout.contains("EleutherAI/pythia-410m (ranks 25, 27)"), "duplicate leaderboard rows are noted: {stdout}");

    let (header, got) = read_csv(&tmp.path().join("out/correlations.csv"));
    assert_eq!(header, ["metric", "score", "method", "r", "p", "n"]);
    let (_, want) = read_csv(&fx.join("expected.csv"));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g[..3], w[..3]);
        assert_eq!(g[5], w[5], "n of {:?}", &w[..3]);
        let (gr, wr): (f64, f64) = (g[3].parse().unwrap(), w[3].parse().unwrap());
        let (gp, wp): (f64, f64) = (g[4].parse().unwrap(), w[4].parse().unwrap());
        assert!((gr - wr).abs() < 1e-9, "{:?}: r {gr} vs scipy {wr}", &w[..3]);
        assert!((gp - wp).abs() <= 1e-9 * wp, "{:?}: p {gp} vs scipy {wp}", &w[..3]);
    }

    let (header, joined) = read_csv(&tmp.path().join("out/joined.csv"));
    assert_eq!(joined.len(), 24);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("joined.csv lacks {name}: {header:?}"));
    let by_id: HashMap<&str, &Vec<String>> = joined.iter().map(|r| (r[0].as_str(), r)).collect();
    let llama = by_id["llama-3.2-1b"];
    assert_eq!((llama[col("score_model")].as_str(), llama[col("match")].as_str()), ("meta-llama/Llama-3.2-1B", "case-insensitive"));
    // pythia-1.4b has no params in models.csv: the leaderboard's 1.4 B is used.
    let p14 = by_id["pythia-1.4b"];
    assert_eq!(p14[col("params")].parse::<f64>().unwrap(), 1.4e9);
    assert!((p14[col("log_params")].parse::<f64>().unwrap() - 1.4e9f64.ln()).abs() < 1e-12);
    assert_eq!(by_id["gpt2-medium"][col("params")], "", "no parameter count anywhere");
    // The best-ranked of the duplicated rows is the one joined (the other has 99s).
    assert_ne!(by_id["pythia-410m"][col("ifeval")], "99");

    let unmatched = std::fs::read_to_string(tmp.path().join("out/unmatched.txt")).unwrap();
    assert!(unmatched.contains("# results without a score (1):\n/models/my-local-model\n"), "{unmatched}");
    assert!(unmatched.contains("# scores without a result (2):\nother/absent-7b\nsome-org/not-analysed\n"), "{unmatched}");

    // Scatter plots: 4 headline metrics × (6 benchmarks + mean), SVG and PNG.
    let plots: Vec<_> = std::fs::read_dir(tmp.path().join("out/plots")).unwrap().collect();
    assert_eq!(plots.len(), 4 * 7 * 2);
    let svg = std::fs::read_to_string(tmp.path().join("out/plots/optimality_1__benchmark_mean.svg")).unwrap();
    assert!(svg.contains("Spearman ρ = 0.72"), "the title carries the statistic");
}

#[test]
fn score_columns_and_covariate_options() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = fixtures().join("correlate");
    let (r, s) = (fx.join("models.csv"), fx.join("scores.csv"));
    let out = infoplane(
        &["correlate", "--results", r.to_str().unwrap(), "--scores", s.to_str().unwrap(), "--score-cols", "bbh,mmlu_pro", "--covariate", "none", "--output", "o"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, rows) = read_csv(&tmp.path().join("o/correlations.csv"));
    // 6 metrics × (2 scores + their mean) × (pearson, spearman).
    assert_eq!(rows.len(), 6 * 3 * 2);
    assert!(rows.iter().all(|r| r[2] != "partial_spearman"));
    let scores: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(scores.into_iter().collect::<Vec<_>>(), ["bbh", "benchmark_mean", "mmlu_pro"]);
    // The mean of exactly bbh and mmlu_pro.
    let (header, joined) = read_csv(&tmp.path().join("o/joined.csv"));
    let c = |n: &str| header.iter().position(|h| h == n).unwrap();
    for row in &joined {
        let (a, b, m): (f64, f64, f64) = (row[c("bbh")].parse().unwrap(), row[c("mmlu_pro")].parse().unwrap(), row[c("benchmark_mean")].parse().unwrap());
        assert!((m - (a + b) / 2.0).abs() < 1e-12);
    }
}

fn refuses(dir: &Path, args: &[&str], needle: &str) {
    common::refuses(dir, args, &[needle]);
}

#[test]
fn bad_input_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let fx = fixtures().join("correlate");
    let (r, s) = (fx.join("models.csv"), fx.join("scores.csv"));
    let (r, s) = (r.to_str().unwrap(), s.to_str().unwrap());
    refuses(d, &["correlate", "--results", "nope.csv", "--scores", s, "--output", "out"], "nope.csv");
    refuses(d, &["correlate", "--results", r, "--scores", "nope.csv", "--output", "out"], "nope.csv");
    refuses(d, &["correlate", "--results", r, "--scores", s, "--score-cols", "ifeval,mmlu", "--output", "out"], "no column `mmlu`");
    refuses(d, &["correlate", "--results", r, "--scores", s, "--results-key", "hf", "--output", "out"], "no column `hf`");
    std::fs::write(d.join("other.csv"), "model,x\nsomeone/else,1\n").unwrap();
    refuses(d, &["correlate", "--results", r, "--scores", "other.csv", "--output", "out"], "matches a model of");
    std::fs::write(d.join("noparams.csv"), "model,x\nEleutherAI/pythia-160m,1\n").unwrap();
    std::fs::write(d.join("res.csv"), "model,complexity_1\nEleutherAI/pythia-160m,0.5\n").unwrap();
    refuses(d, &["correlate", "--results", "res.csv", "--scores", "noparams.csv", "--output", "out"], "--covariate none");
    std::fs::write(d.join("ragged.csv"), "model,complexity_1\na,0.5,7\n").unwrap();
    refuses(d, &["correlate", "--results", "ragged.csv", "--scores", s, "--output", "out"], "ragged.csv: line 2");
    std::fs::write(d.join("text.csv"), "model,name\nEleutherAI/pythia-160m,x\n").unwrap();
    refuses(d, &["correlate", "--results", "text.csv", "--scores", s, "--output", "out"], "no numeric metric column");
}

/// The real leaderboard table: duplicates resolved, ids joined, parameter counts from params_b.
#[test]
fn real_open_llm_leaderboard_table() {
    let Some(shared) = shared_data("real_open_llm_leaderboard_table") else { return };
    let oll = shared.join("open_llm_leaderboard_v2/oll_v2_scores.csv");
    let tmp = tempfile::tempdir().unwrap();
    // Metrics here are made up; the join and the statistics' bookkeeping are what is checked.
    let ids = ["gpt2", "EleutherAI/pythia-160m", "EleutherAI/pythia-410m", "EleutherAI/pythia-1b", "EleutherAI/pythia-1.4b", "eleutherai/pythia-2.8b", "HuggingFaceTB/SmolLM2-135M", "Qwen/Qwen2.5-0.5B", "not/a-model"];
    let mut csv = String::from("model,complexity_1,expressivity_1\n");
    for (i, id) in ids.iter().enumerate() {
        csv.push_str(&format!("{id},{},{}\n", 0.6 - 0.01 * i as f64, 0.2 + 0.013 * ((i * 7) % 5) as f64));
    }
    std::fs::write(tmp.path().join("models.csv"), csv).unwrap();
    let out = infoplane(&["correlate", "--results", "models.csv", "--scores", oll.to_str().unwrap(), "--output", "out"], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("joined 8 of 9 results rows"), "{stdout}");
    assert!(stdout.contains("appear more than once; kept the best-ranked"), "the table has duplicated ids: {stdout}");
    let (header, joined) = read_csv(&tmp.path().join("out/joined.csv"));
    let c = |n: &str| header.iter().position(|h| h == n).unwrap();
    let pythia = joined.iter().find(|r| r[0] == "eleutherai/pythia-2.8b").expect("case-insensitive match");
    assert_eq!(pythia[c("match")], "case-insensitive");
    assert!(joined.iter().all(|r| r[c("params")].parse::<f64>().unwrap() > 5e7), "params from params_b × 1e9");
    let (_, rows) = read_csv(&tmp.path().join("out/correlations.csv"));
    assert_eq!(rows.len(), 2 * 7 * 3);
    assert!(rows.iter().all(|r| r[5] == "8" || r[2] == "partial_spearman"));
}
