//! `infoplane sweep`: every model and checkpoint of a manifest analysed with one set of settings
//! (one W per width: the same seed draws the same reference points), then one table of their
//! model-level numbers.

use crate::analyze::{load_model, prepare_run_dir, read_inputs, run_unit, AnalysisArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use infoplane_analysis::model_columns;
use infoplane_compare::{Manifest, ModelEntry};
use infoplane_store::{Column, Table};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Args)]
pub struct SweepArgs {
    /// TOML list of [[model]] entries (model, name, family, step, tokens, params, id).
    #[arg(long, value_name = "FILE.toml")]
    pub manifest: PathBuf,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
}

/// A manifest entry's model as the runtime resolves it: a path relative to the manifest, or an
/// id with its revision.
pub fn entry_spec(manifest: &Path, entry: &ModelEntry) -> String {
    let base = manifest.parent().unwrap_or(Path::new("."));
    let local = base.join(&entry.model);
    if Path::new(&entry.model).is_relative() && local.exists() {
        return local.display().to_string();
    }
    match &entry.revision {
        Some(rev) => format!("{}@{rev}", entry.model),
        None => entry.model.clone(),
    }
}

/// What makes a unit's result reusable: its entry, the analysis flags and the data read.
fn unit_key(entry: &ModelEntry, spec: &str, args: &AnalysisArgs, inputs: &crate::analyze::Inputs) -> String {
    let text = json!({
        "model": spec,
        "entry": [&entry.name, &entry.family, entry.step, entry.tokens, entry.params],
        "args": crate::analyze::args_json(args),
        "corpus": inputs.corpus.selection.sha256,
        "documents": inputs.corpus.selection.selected_indices_sha256,
        "preferences": inputs.preferences.as_ref().map(|p| (&p.selection.sha256, &p.selection.selected_indices_sha256)),
    })
    .to_string();
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn run(args: SweepArgs, stop: Arc<AtomicBool>) -> Result<()> {
    let manifest = Manifest::read(&args.manifest)?;
    // Every model must exist before the first is analysed (hours may pass before the last).
    for entry in &manifest.models {
        infoplane_runtime::resolve(&entry_spec(&args.manifest, entry)).with_context(|| format!("{}: sweep unit {}", args.manifest.display(), entry.id()))?;
    }
    std::fs::create_dir_all(args.output.join("runs")).with_context(|| format!("{}: cannot create the sweep directory", args.output.display()))?;
    let inputs = read_inputs(&args.analysis)?;
    let mut summaries = Vec::new();
    for (i, entry) in manifest.models.iter().enumerate() {
        let id = entry.id();
        let spec = entry_spec(&args.manifest, entry);
        let key = unit_key(entry, &spec, &args.analysis, &inputs);
        let dir = args.output.join("runs").join(&id);
        let summary_path = dir.join("summary.json");
        let done: Option<Value> = std::fs::read(&summary_path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let summary = match done {
            Some(s) if s["unit"]["key"] == json!(key) => {
                eprintln!("[{}/{}] {id}: done earlier, skipped", i + 1, manifest.models.len());
                s
            }
            Some(_) => bail!("{}: holds a result made with other settings or data; use a new sweep directory", dir.display()),
            None => {
                eprintln!("[{}/{}] {id}: {spec}", i + 1, manifest.models.len());
                prepare_run_dir(&dir, true)?;
                let model = load_model(&spec, &args.analysis).with_context(|| format!("sweep unit {id}"))?;
                let unit = json!({"unit": {"id": id, "key": key, "name": entry.name, "family": entry.family, "step": entry.step, "tokens": entry.tokens, "params": entry.params}});
                run_unit(&model, &spec, &inputs, &args.analysis, &dir, &stop, Some(unit)).with_context(|| format!("sweep unit {id}"))?
            }
        };
        summaries.push((entry.clone(), spec, summary));
        write_models_table(&args.output, &summaries, args.analysis.orders)?;
    }
    eprintln!("{} models in {}", summaries.len(), args.output.join("models.csv").display());
    Ok(())
}

/// `models.csv` and `models.parquet`: one row per unit with its model-level numbers.
pub fn write_models_table(dir: &Path, units: &[(ModelEntry, String, Value)], orders: usize) -> Result<()> {
    let mut table = Table::new();
    let text = |f: &dyn Fn(&(ModelEntry, String, Value)) -> String| Column::Str(units.iter().map(|u| Some(f(u))).collect());
    table.push("id", text(&|u| u.0.id()))?;
    table.push("model", text(&|u| u.1.clone()))?;
    table.push("name", text(&|u| u.0.name.clone()))?;
    table.push("family", text(&|u| u.0.family.clone()))?;
    let number = |f: &dyn Fn(&ModelEntry) -> Option<u64>| Column::F64(units.iter().map(|u| f(&u.0).map(|v| v as f64)).collect());
    table.push("step", number(&|e| e.step))?;
    table.push("tokens", number(&|e| e.tokens))?;
    table.push("params", number(&|e| e.params))?;
    for column in model_columns(orders) {
        table.push(column.clone(), Column::F64(units.iter().map(|u| u.2["model_level"][&column].as_f64()).collect()))?;
    }
    table.push("positions", Column::F64(units.iter().map(|u| u.2["counts"]["positions"].as_f64()).collect()))?;
    table.write_csv(&dir.join("models.csv"))?;
    table.write_parquet(&dir.join("models.parquet"))?;
    Ok(())
}
