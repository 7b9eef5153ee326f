//! Correlations on fixtures/correlate against scipy (scripts/make_correlation_fixture.py):
//! r to 1e-9 absolute, p to 1e-9 relative, n exact, same rows in the same order.

use infoplane_compare::{correlate, read_scores, Covariate, Joined, MatchKind, Table};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/correlate").join(name)
}

#[test]
fn correlations_match_scipy() {
    let results = Table::read_csv(&fixture("models.csv")).unwrap();
    let scores = read_scores(&fixture("scores.csv"), None).unwrap();
    assert_eq!(scores.notes.len(), 1, "the duplicated leaderboard row is noted");
    let joined = Joined::build(&results, "model", &scores, None, Covariate::LogParams).unwrap();
    assert_eq!(joined.len(), 24);
    assert_eq!(joined.kinds.iter().filter(|k| **k == MatchKind::CaseInsensitive).count(), 1);
    assert_eq!(joined.join.unmatched_results, vec!["/models/my-local-model".to_string()]);
    assert_eq!(joined.join.unmatched_scores.len(), 2);

    let got = correlate(&joined);
    let expected = Table::read_csv(&fixture("expected.csv")).unwrap();
    assert_eq!(got.len(), expected.len());
    let (r, p, n) = (expected.numbers("r").unwrap(), expected.numbers("p").unwrap(), expected.numbers("n").unwrap());
    let (metric, score, method) = (expected.texts("metric").unwrap(), expected.texts("score").unwrap(), expected.texts("method").unwrap());
    let mut worst = (0.0f64, 0.0f64);
    for (i, row) in got.iter().enumerate() {
        assert_eq!((row.metric.as_str(), row.score.as_str(), row.method.as_str()), (metric[i].as_str(), score[i].as_str(), method[i].as_str()), "row {i}");
        let c = row.correlation;
        assert_eq!(c.n as f64, n[i].unwrap(), "{} {} {}", metric[i], score[i], method[i]);
        let (gr, gp) = (c.r.expect("defined"), c.p.expect("defined"));
        let (er, ep) = (r[i].unwrap(), p[i].unwrap());
        let rel = (gp - ep).abs() / ep;
        worst = (worst.0.max((gr - er).abs()), worst.1.max(rel));
        assert!((gr - er).abs() < 1e-9, "{} {} {}: r {gr} vs scipy {er}", metric[i], score[i], method[i]);
        assert!(rel < 1e-9, "{} {} {}: p {gp} vs scipy {ep}", metric[i], score[i], method[i]);
    }
    eprintln!("worst |Δr| = {:.1e}, worst relative Δp = {:.1e}", worst.0, worst.1);
}
