//! `infoplane correlate`: a sweep's model table joined to benchmark scores, every metric correlated
//! with every score (Pearson, Spearman, partial Spearman given log parameter count), plus scatter
//! plots of the headline metrics.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use infoplane_compare::{correlate, correlations_csv, read_scores, Covariate, Joined, Method, Table};
use infoplane_report::{correlation_scatter, write_plot};
use infoplane_store::write_atomic;
use std::path::PathBuf;

/// Metrics that get a scatter plot against every score (when models.csv has them).
const HEADLINE: [&str; 4] = ["complexity_1", "expressivity_1", "optimality_1", "preference"];

#[derive(Clone, Copy, ValueEnum)]
enum CovariateArg {
    /// ln(parameter count): models.csv's `params`, else the scores' params (params_b × 1e9).
    #[value(name = "log_params")]
    LogParams,
    /// No partial correlation.
    None,
}

#[derive(Args)]
pub struct CorrelateArgs {
    /// The sweep's model table (models.csv).
    #[arg(long, value_name = "models.csv")]
    results: PathBuf,
    /// Benchmark scores: the Open LLM Leaderboard v2 table, or any CSV with a model-id column.
    #[arg(long, value_name = "SCORES.csv")]
    scores: PathBuf,
    /// Score columns to use (default: the six leaderboard benchmarks, or every numeric column);
    /// their mean is added as benchmark_mean.
    #[arg(long, value_name = "a,b,...", value_delimiter = ',')]
    score_cols: Option<Vec<String>>,
    #[arg(long, value_enum, default_value = "log_params")]
    covariate: CovariateArg,
    /// Column of the results that holds the model id to join on.
    #[arg(long, default_value = "model", value_name = "COL")]
    results_key: String,
    /// Column of the scores that holds the model id.
    #[arg(long, default_value = "model", value_name = "COL")]
    scores_key: String,
    /// Output directory: correlations.csv, joined.csv, unmatched.txt, plots/.
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
}

pub fn run(args: CorrelateArgs) -> Result<()> {
    let results = Table::read_csv(&args.results)?;
    // A column of numbers with one cell that is not a number would silently drop out of the
    // metrics: refuse it, naming the line and column.
    for column in &results.columns {
        if [args.results_key.as_str(), "id", "model", "name", "family"].contains(&column.as_str()) {
            continue;
        }
        if results.texts(column)?.iter().any(|c| matches!(infoplane_compare::parse_number(c), Ok(Some(_)))) {
            results.numbers(column)?;
        }
    }
    let scores = read_scores(&args.scores, Some(&args.scores_key))?;
    let covariate = match args.covariate {
        CovariateArg::LogParams => Covariate::LogParams,
        CovariateArg::None => Covariate::None,
    };
    let joined = Joined::build(&results, &args.results_key, &scores, args.score_cols.as_deref(), covariate)?;
    if joined.metrics.is_empty() {
        anyhow::bail!("{}: no numeric metric column (besides step, tokens, params)", args.results.display());
    }
    let rows = correlate(&joined);

    std::fs::create_dir_all(&args.output).with_context(|| format!("{}", args.output.display()))?;
    write_atomic(&args.output.join("correlations.csv"), &correlations_csv(&rows))?;
    write_atomic(&args.output.join("joined.csv"), &joined.csv())?;
    write_atomic(&args.output.join("unmatched.txt"), joined.unmatched_text().as_bytes())?;

    let plots_dir = args.output.join("plots");
    let mut plotted = 0;
    for metric in HEADLINE.iter().filter(|m| joined.metric(m).is_some()) {
        let m = joined.metric(metric).unwrap_or_default();
        for (score, s) in &joined.scores {
            let points: Vec<(String, f64, f64)> = (0..joined.len()).filter_map(|i| Some((joined.ids[i].clone(), m[i]?, s[i]?))).collect();
            if points.len() < 2 {
                continue;
            }
            let stat = |method: Method| rows.iter().find(|r| r.metric == *metric && r.score == *score && r.method == method).map(|r| r.correlation);
            let mut summary = Vec::new();
            for (method, name) in [(Method::Pearson, "Pearson r"), (Method::Spearman, "Spearman ρ"), (Method::PartialSpearman, "partial Spearman ρ | log params")] {
                if let Some(c) = stat(method) {
                    if let (Some(r), Some(p)) = (c.r, c.p) {
                        summary.push(format!("{name} = {r:.3} (p = {p:.2e}, n = {})", c.n));
                    }
                }
            }
            let headline = match stat(Method::Spearman) {
                Some(c) if c.r.is_some() => format!("Spearman ρ = {:.2}, n = {}", c.r.unwrap_or_default(), c.n),
                _ => String::new(),
            };
            write_plot(&plots_dir, &correlation_scatter(metric, score, &points, &headline, &summary.join("; ")))?;
            plotted += 1;
        }
    }

    for note in &joined.notes {
        println!("note: {note}");
    }
    println!(
        "joined {} of {} results rows to {} ({} results and {} score rows unmatched: see unmatched.txt)",
        joined.len(),
        results.len(),
        args.scores.display(),
        joined.join.unmatched_results.len(),
        joined.join.unmatched_scores.len()
    );
    println!("{} metrics × {} scores: {} correlations; {plotted} scatter plots (SVG + PNG)", joined.metrics.len(), joined.scores.len(), rows.len());
    for row in rows.iter().filter(|r| HEADLINE.contains(&r.metric.as_str()) && r.score == infoplane_compare::BENCHMARK_MEAN) {
        if let (Some(r), Some(p)) = (row.correlation.r, row.correlation.p) {
            println!("  {:<16} {:<17} r = {r:+.3}  p = {p:.2e}  n = {}", row.metric, row.method.as_str(), row.correlation.n);
        }
    }
    println!("wrote {}", args.output.join("correlations.csv").display());
    Ok(())
}
