//! Scale-out on the schedulers researchers already have: `plan` cuts the work into units
//! (model × corpus shard), `run` does one unit (index from Slurm, Kubernetes or HyperQueue),
//! `status` lists them, and `merge` reduces their partial statistics into the outputs of
//! `analyze` (one model) or `sweep` (many).
//!
//! A unit's directory is a run directory of one shard: `.work/` while it runs, `partials/` per
//! hidden state (each written atomically), and `unit.json` written last. Only a unit with
//! `unit.json` is done; a unit killed at any point leaves nothing that `merge` accepts, and
//! running it again resumes it.

use crate::analyze::{execute, load_model, prepare, read_inputs, AnalysisArgs};
use crate::sweep::{entry_spec, write_models_table};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use infoplane_analysis::{merge_units, read_unit, write_run, Shard, UNIT_RECORD};
use infoplane_compare::{Manifest, ModelEntry};
use infoplane_labels::NgramCounts;
use infoplane_store::{read_ngram_counts, write_atomic, write_ngram_counts};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const PLAN_FILE: &str = "plan.json";
const PLAN_FORMAT: &str = "infoplane-plan";
const PLAN_VERSION: u32 = 1;
/// Written by a unit that failed (with the error), removed when it succeeds.
const FAILED_FILE: &str = "FAILED";
/// Written in a unit's directory by `run` before any work: the sha256 of the plan.json the unit
/// belongs to. `run` and `merge` refuse a unit of another plan (unit directories copied or moved
/// between plans agree with each other, but not with the plan that would merge them).
const PLAN_STAMP: &str = "plan.sha256";
/// Environment variables that carry an array index, in the order they are looked up.
const INDEX_VARIABLES: [&str; 3] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "HQ_TASK_ID"];

#[derive(Args)]
pub struct PlanArgs {
    /// One model (path or `org/name[@revision]`).
    #[arg(long, value_name = "PATH_OR_ID", conflicts_with = "manifest", required_unless_present = "manifest")]
    pub model: Option<String>,
    /// Many models and checkpoints (the sweep manifest).
    #[arg(long, value_name = "FILE.toml")]
    pub manifest: Option<PathBuf>,
    /// Corpus shards per model.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: u64,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    #[arg(long, value_name = "PLAN_DIR")]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct RunArgs {
    pub plan: PathBuf,
    /// The unit to run, by id.
    #[arg(long, conflicts_with = "index")]
    pub unit: Option<String>,
    /// The unit to run, by 0-based index (default: $SLURM_ARRAY_TASK_ID, $JOB_COMPLETION_INDEX or $HQ_TASK_ID).
    #[arg(long)]
    pub index: Option<usize>,
}

#[derive(Args)]
pub struct StatusArgs {
    pub plan: PathBuf,
}

#[derive(Args)]
pub struct MergeArgs {
    pub plan: PathBuf,
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlanModel {
    id: String,
    /// What the runtime loads (absolute path, or an id with its revision).
    spec: String,
    name: String,
    family: String,
    step: Option<u64>,
    tokens: Option<u64>,
    params: Option<u64>,
    /// The plan's n-gram counts for this model's tokenizer (relative to the plan directory).
    counts: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlanUnit {
    id: String,
    model: usize,
    shard: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Plan {
    format: String,
    version: u32,
    tool_version: String,
    shards: usize,
    analysis: AnalysisArgs,
    models: Vec<PlanModel>,
    units: Vec<PlanUnit>,
    corpus: Value,
}

fn read_plan(dir: &Path) -> Result<Plan> {
    let path = dir.join(PLAN_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("{}: not a plan directory (no {PLAN_FILE})", dir.display()))?;
    let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| anyhow!("{}: not a valid plan: {e}", path.display()))?;
    if plan.format != PLAN_FORMAT || plan.version != PLAN_VERSION {
        bail!("{}: format {} version {} (this build reads {PLAN_FORMAT} version {PLAN_VERSION})", path.display(), plan.format, plan.version);
    }
    Ok(plan)
}

fn plan_sha256(plan_dir: &Path) -> Result<String> {
    Ok(infoplane_store::file_sha256(&plan_dir.join(PLAN_FILE))?)
}

/// Refuses a unit directory whose stamp names another plan (or, for a finished unit, none).
fn check_stamp(unit_dir: &Path, plan_dir: &Path, sha256: &str) -> Result<()> {
    match std::fs::read_to_string(unit_dir.join(PLAN_STAMP)) {
        Ok(s) if s.trim() == sha256 => Ok(()),
        Ok(s) => bail!(
            "{}: belongs to another plan (its {PLAN_STAMP} is {}, {}'s plan.json has {sha256}); unit directories cannot move between plans",
            unit_dir.display(),
            s.trim(),
            plan_dir.display()
        ),
        Err(_) if unit_dir.join(UNIT_RECORD).exists() => bail!("{}: has no {PLAN_STAMP}, so it may belong to another plan; run the unit again in a new directory", unit_dir.display()),
        Err(_) => Ok(()),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| path.display().to_string())
}

pub fn plan(args: PlanArgs) -> Result<()> {
    if args.analysis.no_partials {
        bail!("--no-partials: a plan's units merge through their partial statistics");
    }
    let mut analysis = args.analysis.clone();
    // Units run from other working directories (a scheduler's): every input path made absolute.
    analysis.corpus = absolute(&analysis.corpus)?;
    analysis.preferences = analysis.preferences.as_deref().map(absolute).transpose()?;
    analysis.reference_points = analysis.reference_points.as_deref().map(absolute).transpose()?;
    analysis.tokenizer = analysis.tokenizer.as_deref().map(absolute).transpose()?;
    let entries: Vec<(ModelEntry, String)> = match (&args.model, &args.manifest) {
        (Some(model), None) => {
            let spec = if Path::new(model).exists() { absolute(Path::new(model))?.display().to_string() } else { model.clone() };
            let name = model.trim_end_matches('/').rsplit('/').next().unwrap_or(model).to_string();
            let entry = ModelEntry { model: model.clone(), revision: None, family: name.clone(), name, step: None, tokens: None, params: None, given_id: None };
            vec![(entry, spec)]
        }
        (None, Some(manifest)) => {
            let m = Manifest::read(manifest)?;
            m.models.iter().map(|e| {
                let spec = entry_spec(manifest, e);
                let spec = if Path::new(&spec).exists() { absolute(Path::new(&spec))?.display().to_string() } else { spec };
                Ok((e.clone(), spec))
            }).collect::<Result<_>>()?
        }
        _ => bail!("give --model or --manifest"),
    };
    if args.output.join(PLAN_FILE).exists() {
        bail!("{}: already holds a plan; choose another --output", args.output.display());
    }
    std::fs::create_dir_all(args.output.join("counts")).with_context(|| format!("{}: cannot create the plan directory", args.output.display()))?;
    let inputs = read_inputs(&analysis)?;
    let shards = args.shards as usize;
    let mut models = Vec::new();
    let mut counted: Vec<(String, String)> = Vec::new(); // tokenizer sha → counts file
    // Planning needs only tokenizers: models load on the CPU whatever device the units will use.
    let mut on_cpu = analysis.clone();
    on_cpu.device = "cpu".into();
    for (entry, spec) in &entries {
        let model = load_model(spec, &on_cpu).with_context(|| format!("model {}", entry.model))?;
        let tokenizer = model.provenance().tokenizer_file.sha256.clone();
        let counts = match counted.iter().find(|(t, _)| *t == tokenizer) {
            Some((_, file)) => file.clone(),
            None => {
                // The tokens-only pass, once per tokenizer: the back-off counts of the whole corpus.
                let prepared = prepare(&model, spec, &inputs, &on_cpu)?;
                // Refused now, not by every unit later (the same rule and words as analyze).
                if prepared.documents.iter().all(|d| infoplane_labels::valid_positions(d.len(), analysis.orders).is_empty()) {
                    bail!(
                        "model {}: no document has a valid position: all {} are shorter than {} tokens (2 × --orders)",
                        entry.model,
                        prepared.documents.len(),
                        2 * analysis.orders
                    );
                }
                let ngrams = NgramCounts::from_documents(analysis.orders, &prepared.documents)?;
                let file = format!("counts/{}.safetensors", &tokenizer[..16.min(tokenizer.len())]);
                write_ngram_counts(&args.output.join(&file), &ngrams)?;
                eprintln!("n-gram counts for {}: {} documents, {} tokens", entry.model, ngrams.documents(), ngrams.tokens());
                counted.push((tokenizer, file.clone()));
                file
            }
        };
        models.push(PlanModel {
            id: entry.id(),
            spec: spec.clone(),
            name: entry.name.clone(),
            family: entry.family.clone(),
            step: entry.step,
            tokens: entry.tokens,
            params: entry.params,
            counts,
        });
    }
    let units = models
        .iter()
        .enumerate()
        .flat_map(|(m, model)| (0..shards).map(move |s| PlanUnit { id: format!("{}.shard{s:04}-of-{shards:04}", model.id), model: m, shard: s }))
        .collect::<Vec<_>>();
    let plan = Plan {
        format: PLAN_FORMAT.into(),
        version: PLAN_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        shards,
        analysis,
        models,
        units,
        corpus: json!(inputs.corpus.selection),
    };
    write_atomic(&args.output.join(PLAN_FILE), serde_json::to_string_pretty(&plan)?.as_bytes())?;
    eprintln!("{} units ({} models × {shards} shards) in {}", plan.units.len(), plan.models.len(), args.output.display());
    println!("{}", plan.units.len());
    Ok(())
}

fn unit_dir(plan_dir: &Path, unit: &PlanUnit) -> PathBuf {
    plan_dir.join("units").join(&unit.id)
}

fn index_from_environment() -> Result<usize> {
    for var in INDEX_VARIABLES {
        if let Ok(value) = std::env::var(var) {
            return value.trim().parse().map_err(|_| anyhow!("${var} = {value:?} is not a unit index"));
        }
    }
    bail!("no unit given: pass --unit ID or --index I, or run under a scheduler that sets one of {}", INDEX_VARIABLES.map(|v| format!("${v}")).join(", "))
}

pub fn run(args: RunArgs, stop: Arc<AtomicBool>) -> Result<()> {
    let plan = read_plan(&args.plan)?;
    let unit = match (&args.unit, args.index) {
        (Some(id), _) => plan.units.iter().find(|u| &u.id == id).ok_or_else(|| anyhow!("{}: the plan has no unit {id:?}", args.plan.display()))?,
        (None, index) => {
            let i = match index {
                Some(i) => i,
                None => index_from_environment()?,
            };
            plan.units.get(i).ok_or_else(|| anyhow!("unit index {i} is out of range: the plan has {} units (0..{})", plan.units.len(), plan.units.len()))?
        }
    };
    let dir = unit_dir(&args.plan, unit);
    let sha256 = plan_sha256(&args.plan)?;
    check_stamp(&dir, &args.plan, &sha256)?;
    if dir.join(UNIT_RECORD).exists() {
        eprintln!("unit {}: done earlier, nothing to do", unit.id);
        return Ok(());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create the unit directory", dir.display()))?;
    write_atomic(&dir.join(PLAN_STAMP), format!("{sha256}\n").as_bytes())?;
    let result = run_unit(&plan, &args.plan, unit, &dir, &stop);
    let failed = dir.join(FAILED_FILE);
    match &result {
        Ok(()) => {
            std::fs::remove_file(&failed).ok();
        }
        Err(e) => {
            write_atomic(&failed, format!("{e:#}\n").as_bytes()).ok();
        }
    }
    result
}

fn run_unit(plan: &Plan, plan_dir: &Path, unit: &PlanUnit, dir: &Path, stop: &AtomicBool) -> Result<()> {
    let pm = &plan.models[unit.model];
    let inputs = read_inputs(&plan.analysis)?;
    let model = load_model(&pm.spec, &plan.analysis)?;
    let counts = read_ngram_counts(&plan_dir.join(&pm.counts))?;
    let prepared = prepare(&model, &pm.spec, &inputs, &plan.analysis)?;
    // The summary skeleton travels with the unit so merge needs no model.
    write_atomic(&dir.join("context.json"), serde_json::to_string_pretty(&prepared.summary)?.as_bytes())?;
    let shard = Shard { index: unit.shard, count: plan.shards };
    execute(&model, prepared, dir, stop, Some(shard), Some(&counts), plan.analysis.quiet)?;
    eprintln!("unit {}: done", unit.id);
    Ok(())
}

pub fn status(args: StatusArgs) -> Result<()> {
    let plan = read_plan(&args.plan)?;
    let (mut done, mut failed, mut started, mut missing) = (0, 0, 0, 0);
    for (i, unit) in plan.units.iter().enumerate() {
        let dir = unit_dir(&args.plan, unit);
        let state = if dir.join(UNIT_RECORD).exists() {
            done += 1;
            "done".to_string()
        } else if let Ok(reason) = std::fs::read_to_string(dir.join(FAILED_FILE)) {
            failed += 1;
            format!("failed: {}", reason.lines().next().unwrap_or(""))
        } else if dir.exists() {
            started += 1;
            "started (running, or interrupted: run it again to resume)".to_string()
        } else {
            missing += 1;
            "missing".to_string()
        };
        println!("{i}\t{}\t{state}", unit.id);
    }
    println!("{done} done, {failed} failed, {started} started, {missing} missing, of {}", plan.units.len());
    Ok(())
}

pub fn merge(args: MergeArgs) -> Result<()> {
    let plan = read_plan(&args.plan)?;
    let not_done: Vec<&str> = plan.units.iter().filter(|u| !unit_dir(&args.plan, u).join(UNIT_RECORD).exists()).map(|u| u.id.as_str()).collect();
    if !not_done.is_empty() {
        bail!("{} of {} units are not done (first: {}); see `infoplane status {}`", not_done.len(), plan.units.len(), not_done[0], args.plan.display());
    }
    let sha256 = plan_sha256(&args.plan)?;
    for unit in &plan.units {
        check_stamp(&unit_dir(&args.plan, unit), &args.plan, &sha256)?;
    }
    let mut summaries = Vec::new();
    for (m, pm) in plan.models.iter().enumerate() {
        let dirs: Vec<PathBuf> = plan.units.iter().filter(|u| u.model == m).map(|u| unit_dir(&args.plan, u)).collect();
        let output = merge_units(&dirs).with_context(|| format!("model {}", pm.id))?;
        let orders = read_unit(&dirs[0])?.orders;
        let context = dirs[0].join("context.json");
        let mut summary: Value = serde_json::from_slice(&std::fs::read(&context).with_context(|| context.display().to_string())?)?;
        summary["merged_from"] = json!({"plan": absolute(&args.plan)?, "units": dirs.len()});
        let out_dir = if plan.models.len() == 1 { args.output.clone() } else { args.output.join("runs").join(&pm.id) };
        std::fs::create_dir_all(&out_dir).with_context(|| format!("{}: cannot create the output directory", out_dir.display()))?;
        if plan.models.len() > 1 {
            summary["unit"] = json!({"id": pm.id, "name": pm.name, "family": pm.family, "step": pm.step, "tokens": pm.tokens, "params": pm.params});
        }
        write_run(&out_dir, &output, orders, summary)?;
        let written: Value = serde_json::from_slice(&std::fs::read(out_dir.join("summary.json"))?)?;
        let entry = ModelEntry { model: pm.spec.clone(), revision: None, name: pm.name.clone(), family: pm.family.clone(), step: pm.step, tokens: pm.tokens, params: pm.params, given_id: Some(pm.id.clone()) };
        summaries.push((entry, pm.spec.clone(), written));
    }
    if plan.models.len() > 1 {
        write_models_table(&args.output, &summaries, plan.analysis.orders)?;
    }
    eprintln!("merged {} units into {}", plan.units.len(), args.output.display());
    Ok(())
}
