//! `infoplane demo` end to end at a small scale: it needs nothing but the binary (its data is
//! compiled in), trains, analyses every checkpoint and the real stories260K model, and reports.

mod common;

use common::{infoplane, json};

#[test]
fn the_demo_trains_analyses_and_reports_with_nothing_but_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = infoplane(&["demo", "--output", out.to_str().unwrap(), "--steps-scale", "0.05", "--heldout-docs", "40"], dir.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("report.html"), "{stdout}");
    let sweep = out.join("sweep");
    let models = std::fs::read_to_string(sweep.join("models.csv")).unwrap();
    // Three sizes × their checkpoints, and stories260K.
    assert!(models.lines().count() > 1 + 3 * 4, "{models}");
    assert!(models.contains("stories260k"));
    for plot in ["trajectories", "loss_optimality", "plane", "proportions_input"] {
        assert!(sweep.join("plots").join(format!("{plot}.png")).exists(), "{plot}");
    }
    let html = std::fs::read_to_string(sweep.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("http://") && !html.contains("https://"));
    // Every unit has its numbers, and loss comes out of each checkpoint's own forward pass.
    let run = std::fs::read_dir(sweep.join("runs")).unwrap().next().unwrap().unwrap().path();
    let s = json(&run.join("summary.json"));
    assert!(s["model_level"]["next_token_loss"].as_f64().unwrap() > 0.0);
}
