//! `infoplane report` on synthetic run and sweep directories (the file schemas `analyze` and
//! `sweep` write): every plot exists as SVG and PNG, report.html is self-contained with one inline
//! <svg per plot, and bad input exits 2 with one line.
//! Set INFOPLANE_KEEP_REPORTS=DIR to keep the generated directories for a look.

mod common;
use common::*;
use std::fmt::Write as _;
use std::path::Path;

const K: usize = 4;

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:?}")).unwrap_or_default()
}

/// Column names of layers.csv (as analyze writes them) for K orders.
fn layer_columns() -> Vec<String> {
    let mut c = vec!["entropy".to_string()];
    for stem in ["complexity", "expressivity", "optimality", "complexity_backoff", "expressivity_backoff", "complexity_null", "expressivity_null", "proportion"] {
        c.extend((1..=K).map(|k| format!("{stem}_{k}")));
    }
    c.push("proportion_residual".into());
    c.extend((1..=K).map(|k| format!("proportion_output_{k}")));
    c.push("proportion_output_residual".into());
    c.extend(["preference".into(), "preference_null".into()]);
    c
}

/// Plausible per-layer numbers: H rises then falls a little, I grows with the order (rare labels),
/// input information fades with depth while output information grows (t = depth in [0, 1]);
/// `cs` and `es` shift complexity and expressivity (a model's place on the plane).
fn layer_values(t: f64, cs: f64, es: f64, with_preference: bool) -> Vec<(String, Option<f64>)> {
    let h = 0.72 + 0.2 * (std::f64::consts::PI * t).sin() + cs * 0.05;
    let cx: Vec<f64> = (1..=K).map(|k| (0.55 - 0.25 * t + cs) + 0.06 * (k as f64 - 1.0).powf(0.8)).collect();
    let ey: Vec<f64> = (1..=K).map(|k| (0.18 + 0.2 * t + es) + 0.05 * (k as f64 - 1.0).powf(0.8)).collect();
    let null: Vec<f64> = (1..=K).map(|k| 0.01 + 0.03 * (k as f64 - 1.0).powf(1.5)).collect();
    let mut v: Vec<(String, Option<f64>)> = vec![("entropy".into(), Some(h))];
    fn per(v: &mut Vec<(String, Option<f64>)>, stem: &str, f: &dyn Fn(usize) -> f64) {
        for k in 1..=K {
            v.push((format!("{stem}_{k}"), Some(f(k - 1))));
        }
    }
    per(&mut v, "complexity", &|i| cx[i]);
    per(&mut v, "expressivity", &|i| ey[i]);
    per(&mut v, "optimality", &|i| ey[i] / cx[i]);
    per(&mut v, "complexity_backoff", &|i| cx[i] * 0.9);
    per(&mut v, "expressivity_backoff", &|i| ey[i] * 0.9);
    per(&mut v, "complexity_null", &|i| null[i]);
    per(&mut v, "expressivity_null", &|i| null[i] * 0.8);
    per(&mut v, "proportion", &|i| if i == 0 { cx[0] / h } else { (cx[i] - cx[i - 1]) / h });
    v.push(("proportion_residual".into(), Some((h - cx[K - 1]) / h)));
    per(&mut v, "proportion_output", &|i| if i == 0 { ey[0] / h } else { (ey[i] - ey[i - 1]) / h });
    v.push(("proportion_output_residual".into(), Some((h - ey[K - 1]) / h)));
    v.push(("preference".into(), with_preference.then_some(0.01 + 0.03 * t + es * 0.05)));
    v.push(("preference_null".into(), with_preference.then_some(0.003)));
    v
}

fn write_run(dir: &Path, layers: usize, cs: f64, es: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let columns = layer_columns();
    let mut csv = format!("layer,{}\n", columns.join(","));
    let mut rows = Vec::new();
    for l in 0..=layers {
        rows.push((l.to_string(), layer_values(l as f64 / layers as f64, cs, es, true)));
    }
    rows.push(("final_norm".to_string(), layer_values(1.0, cs + 0.1, es - 0.05, true)));
    for (name, values) in &rows {
        assert_eq!(values.len(), columns.len());
        writeln!(csv, "{name},{}", values.iter().map(|(_, v)| num(*v)).collect::<Vec<_>>().join(",")).unwrap();
    }
    std::fs::write(dir.join("layers.csv"), csv).unwrap();
    let mean = |name: &str| -> f64 {
        let vals: Vec<f64> = rows[1..=layers].iter().map(|(_, v)| v.iter().find(|(c, _)| c == name).unwrap().1.unwrap()).collect();
        vals.iter().sum::<f64>() / vals.len() as f64
    };
    let mut model_level = serde_json::Map::new();
    for c in &columns {
        model_level.insert(c.clone(), serde_json::json!(mean(c)));
    }
    model_level.insert("next_token_loss".into(), serde_json::json!(3.2 - es));
    let summary = serde_json::json!({
        "tool": {"name": "infoplane", "version": "0.1.0"},
        "model": {"id": "test/tiny-llama", "family": "llama", "n_layers": layers, "dim": 64, "params": 1_000_000},
        "settings": {"n_bins": 100, "seed": 0, "orders": K, "weighting": "frequency", "backoff": "katz"},
        "provenance": {"w_sha256": "00", "corpus_sha256": "11"},
        "model_level": model_level,
        "counts": {"documents": 100, "positions": 51_200},
    });
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary).unwrap()).unwrap();
}

/// Two training runs with checkpoints (a trajectory each) and four single models.
fn write_sweep(dir: &Path) {
    std::fs::create_dir_all(dir.join("runs")).unwrap();
    let mut columns: Vec<String> = ["id", "model", "name", "family", "step", "tokens", "params"].iter().map(|s| s.to_string()).collect();
    let metric_names: Vec<String> = layer_columns().into_iter().chain(["next_token_loss".to_string()]).collect();
    columns.extend(metric_names.iter().cloned());
    let mut csv = columns.join(",") + "\n";
    struct Unit {
        id: String,
        model: String,
        name: String,
        family: String,
        step: Option<u64>,
        params: u64,
        cs: f64,
        es: f64,
        loss: f64,
    }
    let mut units = Vec::new();
    for (family, model, params, base) in [("pythia-160m", "EleutherAI/pythia-160m", 162_322_944u64, 0.0), ("olmo2-1b", "allenai/OLMo-2-0425-1B", 1_484_916_736, 0.04)] {
        for (i, step) in [0u64, 1000, 4000, 16000, 64000, 143000].iter().enumerate() {
            let p = i as f64 / 5.0;
            // Learning, then forgetting: complexity rises early and falls later while
            // expressivity keeps growing; the loss falls.
            units.push(Unit {
                id: format!("{family}-step{step}"),
                model: model.into(),
                name: format!("{family} step {step}"),
                family: family.into(),
                step: Some(*step),
                params,
                cs: -0.12 + 0.5 * p * (1.0 - p) * 0.6 + base - 0.05 * p,
                es: -0.1 + 0.12 * p.sqrt() + base,
                loss: 7.0 - 3.5 * p.sqrt() - base * 5.0,
            });
        }
    }
    for (i, (model, params)) in [("Qwen/Qwen2.5-0.5B", 494_032_768u64), ("HuggingFaceTB/SmolLM2-135M", 134_515_008), ("meta-llama/Llama-3.2-1B", 1_235_814_400), ("gpt2", 124_439_808)].iter().enumerate() {
        let name = model.rsplit('/').next().unwrap().to_string();
        let f = i as f64;
        units.push(Unit { id: name.to_lowercase(), model: model.to_string(), name: name.clone(), family: name, step: None, params: *params, cs: -0.08 + 0.03 * f, es: 0.02 - 0.03 * f, loss: 3.0 + 0.25 * f });
    }
    for u in &units {
        write_run(&dir.join("runs").join(&u.id), 6, u.cs, u.es);
        let values = layer_values(0.5, u.cs, u.es, !u.family.starts_with("olmo"));
        let mut row = vec![u.id.clone(), u.model.clone(), u.name.clone(), u.family.clone(), num(u.step.map(|s| s as f64)), num(u.step.map(|s| s as f64 * 2_097_152.0)), u.params.to_string()];
        row.extend(values.iter().map(|(_, v)| num(*v)));
        row.push(num(Some(u.loss)));
        csv.push_str(&(row.join(",") + "\n"));
    }
    std::fs::write(dir.join("models.csv"), csv).unwrap();
}

fn keep(dir: &Path, name: &str) {
    if let Some(to) = std::env::var_os("INFOPLANE_KEEP_REPORTS") {
        let to = Path::new(&to).join(name);
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(dir, &to);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The report of `dir` exists with these plots, and report.html inlines exactly one <svg per
/// plot and names no external resource.
fn check_report(dir: &Path, expected: &[&str]) -> String {
    let plots = dir.join("plots");
    let mut names: Vec<String> = std::fs::read_dir(&plots).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for stem in expected {
        for ext in ["svg", "png"] {
            let f = plots.join(format!("{stem}.{ext}"));
            let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            match ext {
                "png" => {
                    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
                    assert!(bytes.len() > 5_000, "{}: {} bytes: an empty picture?", f.display(), bytes.len());
                }
                _ => assert!(String::from_utf8(bytes).unwrap().contains("<svg"), "{}", f.display()),
            }
        }
    }
    assert_eq!(names.len(), 2 * expected.len(), "plots: {names:?}, expected {expected:?}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<svg").count(), expected.len(), "one inline <svg per plot");
    assert_eq!(html.matches("</svg>").count(), expected.len());
    let lower = html.to_lowercase();
    for bad in ["http://", "https://", "<script", "<link", "@import", "url(", "src="] {
        assert!(!lower.contains(bad), "report.html contains {bad:?}");
    }
    html
}

#[test]
fn run_report() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    write_run(&run, 12, 0.0, 0.0);
    let out = infoplane(&["report", run.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("run report: 7 plots"), "{stdout}");
    let html = check_report(
        &run,
        &["entropy_layers", "complexity_layers", "expressivity_layers", "plane_layers", "proportions_input_layers", "proportions_output_layers", "preference_layers"],
    );
    assert!(html.contains("test/tiny-llama") && html.contains("Per-layer numbers") && html.contains("final_norm"));
    assert!(html.contains("layers: 12 ·") && html.contains("positions: 51.2k"), "counts print as integers");
    keep(&run, "run");
}

#[test]
fn sweep_report_and_colour_by_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep");
    write_sweep(&sweep);
    let all = ["plane", "trajectories", "loss_optimality", "proportions_input", "proportions_output", "preference"];
    let out = infoplane(&["report", sweep.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = check_report(&sweep, &all);
    assert!(html.contains("pythia-160m step 143000") && html.contains("Models"), "the models table");
    keep(&sweep, "sweep");

    // Colour by a benchmark score joined from a leaderboard-style table.
    let scores = tmp.path().join("scores.csv");
    std::fs::write(&scores, "rank,model,average,params_b,ifeval,bbh,math_lvl5,gpqa,musr,mmlu_pro\n1,Qwen/Qwen2.5-0.5B,10,0.5,20,8,3,1,6,12\n2,gpt2,4,0.1,17,2,0,1,2,1.8\n3,eleutherai/PYTHIA-160M,5,0.2,18,3,0,1,3,1.6\n").unwrap();
    let out = infoplane(&["report", sweep.to_str().unwrap(), "--color-by", "benchmark_mean", "--scores", scores.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = check_report(&sweep, &all);
    assert!(html.contains("Coloured by benchmark_mean"), "caption names the colour");
    assert!(html.contains("<th>benchmark_mean</th>"), "the table shows the joined score");
    keep(&sweep, "sweep-benchmark");
    // And by a column of models.csv itself.
    let out = infoplane(&["report", sweep.to_str().unwrap(), "--color-by", "next_token_loss"], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(check_report(&sweep, &all).contains("Coloured by next_token_loss"));
}

fn refuses(dir: &Path, args: &[&str], needle: &str) {
    common::refuses(dir, args, &[needle]);
}

#[test]
fn bad_input_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("empty")).unwrap();
    refuses(d, &["report", "empty"], "neither a run directory (summary.json) nor a sweep directory (models.csv)");
    refuses(d, &["report", "missing"], "not a directory");
    assert!(!d.join("empty/report.html").exists() && !d.join("empty/plots").exists());

    std::fs::create_dir_all(d.join("badrun")).unwrap();
    std::fs::write(d.join("badrun/summary.json"), "{ not json").unwrap();
    refuses(d, &["report", "badrun"], "summary.json: not valid JSON");
    std::fs::write(d.join("badrun/summary.json"), "{}").unwrap();
    refuses(d, &["report", "badrun"], "layers.csv");
    std::fs::write(d.join("badrun/layers.csv"), "layer,entropy\n0,0.5\nfinal,0.6\n").unwrap();
    refuses(d, &["report", "badrun"], "line 3: layer \"final\"");
    std::fs::write(d.join("badrun/layers.csv"), "layer,entropy\n0,0.5\n1,high\n").unwrap();
    refuses(d, &["report", "badrun"], "line 3: column `entropy`: \"high\" is not a number");

    let sweep = d.join("sweep");
    write_sweep(&sweep);
    refuses(d, &["report", "sweep", "--color-by", "nope"], "--color-by nope: no such numeric column");
    std::fs::write(d.join("s.csv"), "model,x\nnobody,1\n").unwrap();
    refuses(d, &["report", "sweep", "--color-by", "x", "--scores", "s.csv"], "--color-by x: no model of");
    refuses(d, &["report", "sweep", "--color-by", "y", "--scores", "s.csv"], "no column `y`");
    write_run(&d.join("run"), 3, 0.0, 0.0);
    refuses(d, &["report", "run", "--color-by", "x"], "--color-by applies to a sweep");
}
