//! `infoplane analyze`: one model on one corpus, everything the paper reports for it.
//!
//! The flags that define an analysis ([`AnalysisArgs`]) are shared with `sweep` and `plan`, so
//! every unit of a sweep or a plan is analysed exactly as `analyze` would.

use crate::progress::Bars;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use infoplane_analysis::{
    analyze, write_run, Aggregate, AnalysisError, AnalysisInput, AnalysisOutput, AnalysisSettings, Shard, Checkpointing, LayerSelection, PreferenceInput, ReferenceSpec,
    SequenceStates, StateSource,
};
use infoplane_estimator::{Calibration, ReferencePoints, Weighting};
use infoplane_labels::{Backoff, LabelConfig, NgramCounts, PrefTokens, SequenceLengths};
use infoplane_runtime::{ComputeDType, DeviceSpec, LoadOptions, Model, Want};
use infoplane_store::{file_sha256, read_corpus, read_npy, read_preferences, CorpusOptions, NpyData, PreferenceOptions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackoffArg {
    Katz,
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightingArg {
    Frequency,
    Uniform,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AggregateArg {
    RatioOfMeans,
    MeanOfRatios,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrefTokensArg {
    Response,
    All,
    Last,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DTypeArg {
    F32,
    Bf16,
}

/// Everything that defines an analysis besides the model (serialised into plans).
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct AnalysisArgs {
    /// Corpus: JSONL(.gz), plain text (a document a line), a directory of text files, or Parquet.
    #[arg(long, value_name = "FILE")]
    pub corpus: PathBuf,
    /// The JSON field or Parquet column that holds the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Documents to analyse, sampled with --doc-seed when the corpus has more.
    #[arg(long, default_value_t = 10_000)]
    pub max_docs: usize,
    #[arg(long, default_value_t = 0)]
    pub doc_seed: u64,
    /// Skip (and count) invalid corpus lines instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Tokens kept per document (and per preference sequence).
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Largest n-gram order K (contexts 1..K on both sides).
    #[arg(long, default_value_t = 4)]
    pub orders: usize,
    #[arg(long, value_enum, default_value_t = BackoffArg::Katz)]
    pub backoff: BackoffArg,
    /// τ: count an n-gram needs in the analysed corpus to be backed off to.
    #[arg(long, default_value_t = 5)]
    pub backoff_min_count: u64,
    #[arg(long, value_enum, default_value_t = WeightingArg::Frequency)]
    pub weighting: WeightingArg,
    /// Drop labels seen fewer times (default: 1 for frequency, 5 for uniform weighting).
    #[arg(long)]
    pub min_count: Option<u64>,
    /// Number of reference points n.
    #[arg(long, default_value_t = 100)]
    pub n_bins: usize,
    /// Seed of the portable RNG that draws W.
    #[arg(long, default_value_t = 0, conflicts_with = "reference_points")]
    pub seed: u64,
    /// Reference points W, [n, d] .npy (instead of --seed/--n-bins).
    #[arg(long, value_name = "W.npy")]
    pub reference_points: Option<PathBuf>,
    /// find-eps | exact | leading-order | fixed:EPS
    #[arg(long, default_value = "find-eps")]
    pub calibration: String,
    /// Seed of the permutation behind the shuffled-label nulls.
    #[arg(long, default_value_t = 0)]
    pub null_seed: u64,
    #[arg(long, value_enum, default_value_t = AggregateArg::RatioOfMeans)]
    pub aggregate: AggregateArg,
    /// `all`, or a list such as `0,1-4,final_norm`.
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// Preference pairs: JSONL(.gz) of {prompt, chosen, rejected} or HH-RLHF {chosen, rejected}.
    #[arg(long, value_name = "FILE")]
    pub preferences: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = PrefTokensArg::Response)]
    pub pref_tokens: PrefTokensArg,
    /// Preference pairs to use, sampled with --doc-seed when the file has more.
    #[arg(long, default_value_t = 10_000)]
    pub max_pref_pairs: usize,
    #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
    pub dtype: DTypeArg,
    /// cpu or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// llama2.c tokenizer .bin (default: tok*.bin beside the checkpoint).
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Keep only the estimates, not the mergeable partial statistics (at the paper's scale those
    /// take gigabytes per layer; plans need them, so `plan` refuses this).
    #[arg(long)]
    pub no_partials: bool,
    /// Run the model this many times, each time for a group of the layers: the spilled soft
    /// assignments (positions × layers × 408 bytes at n = 100) shrink by this factor.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub layer_groups: usize,
    /// Stop at once (after the tokens-only pre-pass) if the estimated peak memory exceeds this,
    /// e.g. 16G, 512M, or a number of bytes.
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// A model directory, .gguf file, llama2.c .bin, or an `org/name[@revision]` in the HF cache.
    #[arg(long, value_name = "PATH_OR_ID")]
    pub model: String,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// Continue an interrupted run in the same output directory.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_name = "RUN_DIR")]
    pub output: PathBuf,
}

pub fn run(args: AnalyzeArgs, stop: Arc<AtomicBool>) -> Result<()> {
    prepare_run_dir(&args.output, args.resume)?;
    let model = load_model(&args.model, &args.analysis)?;
    let data = read_inputs(&args.analysis)?;
    run_unit(&model, &args.model, &data, &args.analysis, &args.output, &stop, None)?;
    let t: Value = serde_json::from_slice(&std::fs::read(args.output.join("timing.json"))?)?;
    let secs = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "model forward {:.1} s; analysis adds {:.1} s = {:.1}% (pre-pass {:.1} s, soft assignment {:.1} s, labels {:.1} s)",
        secs("model_seconds"),
        secs("prepass_seconds") + secs("assign_seconds") + secs("labels_seconds"),
        100.0 * secs("analysis_overhead"),
        secs("prepass_seconds"),
        secs("assign_seconds"),
        secs("labels_seconds")
    );
    eprintln!("results in {}", args.output.display());
    Ok(())
}

/// Refuses to mix a new run into a directory that holds another, unless resuming.
pub fn prepare_run_dir(dir: &Path, resume: bool) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("{}: exists and is not a directory", dir.display());
        }
        let empty = std::fs::read_dir(dir).with_context(|| dir.display().to_string())?.next().is_none();
        if !empty && !resume {
            bail!("{}: already holds a run; pass --resume to continue it, or choose another --output", dir.display());
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the output directory", dir.display()))?;
    // Fail now, not after hours of work, when results could not be written.
    let probe = dir.join(".infoplane-write-test");
    std::fs::write(&probe, b"").with_context(|| format!("{}: the output directory is not writable", dir.display()))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

pub fn load_model(spec: &str, a: &AnalysisArgs) -> Result<Model> {
    let source = infoplane_runtime::resolve(spec)?;
    let device: DeviceSpec = a.device.parse().map_err(|e: String| anyhow::anyhow!("--device: {e}"))?;
    let dtype = match a.dtype {
        DTypeArg::F32 => ComputeDType::F32,
        DTypeArg::Bf16 => ComputeDType::Bf16,
    };
    Ok(Model::load(&source, &LoadOptions { dtype, device, tokenizer: a.tokenizer.clone() })?)
}

/// The text inputs of a run, read once (a sweep shares them across models).
pub struct Inputs {
    pub corpus: infoplane_store::Corpus,
    pub preferences: Option<infoplane_store::Preferences>,
}

pub fn read_inputs(a: &AnalysisArgs) -> Result<Inputs> {
    let options = CorpusOptions { format: None, text_field: a.text_field.clone(), max_docs: Some(a.max_docs), seed: a.doc_seed, skip_bad_lines: a.skip_bad_lines };
    let corpus = read_corpus(&a.corpus, &options)?;
    let preferences = match &a.preferences {
        Some(path) => Some(read_preferences(path, &PreferenceOptions { max_pairs: Some(a.max_pref_pairs), seed: a.doc_seed, skip_bad_lines: a.skip_bad_lines })?),
        None => None,
    };
    Ok(Inputs { corpus, preferences })
}

/// The runtime's model as the analysis sees it.
struct ModelStates<'a>(&'a Model);

impl StateSource for ModelStates<'_> {
    fn state_names(&self) -> Vec<String> {
        let layers = self.0.info().n_layers;
        let mut names: Vec<String> = (0..=layers).map(|l| l.to_string()).collect();
        names.push("final_norm".into());
        names
    }
    fn dim(&self) -> usize {
        self.0.info().hidden_size
    }
    fn forward(&self, tokens: &[u32], next_token_nll: bool) -> Result<SequenceStates, AnalysisError> {
        let want = Want { hidden: true, logits: false, next_token_nll };
        let mut out = self.0.forward(&[tokens], want).map_err(|e| {
            // One sequence per call: the runtime's "document 0" would mislead (the analysis
            // names the sequence, and the CLI its input record).
            let m = e.to_string();
            AnalysisError::Source(m.strip_prefix("document 0: ").map(str::to_string).unwrap_or(m))
        })?;
        let doc = out.pop().ok_or_else(|| AnalysisError::Source("the model returned no output".into()))?;
        let mut states = doc.hidden;
        states.push(doc.final_norm);
        Ok(SequenceStates { states, next_token_nll: doc.next_token_nll })
    }
}

/// Checkpoints every 10 s; `INFOPLANE_CHECKPOINT_EVERY_SEQUENCES` (for fault-injection tests)
/// also after that many sequences. Checkpoints never change results.
fn checkpointing() -> Checkpointing {
    let every_sequences = std::env::var("INFOPLANE_CHECKPOINT_EVERY_SEQUENCES").ok().and_then(|v| v.parse().ok());
    Checkpointing { every_sequences, ..Checkpointing::default() }
}

fn settings(a: &AnalysisArgs) -> Result<AnalysisSettings> {
    let weighting = match a.weighting {
        WeightingArg::Frequency => Weighting::Frequency,
        WeightingArg::Uniform => Weighting::Uniform,
    };
    Ok(AnalysisSettings {
        labels: LabelConfig {
            orders: a.orders,
            backoff: match a.backoff {
                BackoffArg::Katz => Backoff::Katz,
                BackoffArg::None => Backoff::None,
            },
            backoff_min_count: a.backoff_min_count,
        },
        weighting,
        min_count: a.min_count.unwrap_or_else(|| weighting.default_min_count()),
        n_bins: a.n_bins,
        reference: ReferenceSpec::Seed(a.seed),
        calibration: Calibration::parse(&a.calibration)?,
        null_seed: a.null_seed,
        aggregate: match a.aggregate {
            AggregateArg::RatioOfMeans => Aggregate::RatioOfMeans,
            AggregateArg::MeanOfRatios => Aggregate::MeanOfRatios,
        },
        layers: LayerSelection::parse(&a.layers)?,
        checkpointing: checkpointing(),
        keep_partials: !a.no_partials,
        layer_groups: a.layer_groups,
        max_memory: a.max_memory.as_deref().map(parse_bytes).transpose()?,
        estimate_time: true,
    })
}

/// `16G`, `512M`, `64K` (binary units) or plain bytes.
pub fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].to_ascii_uppercase()),
        None => (t, String::new()),
    };
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => bail!("--max-memory {text:?}: expected a size such as 16G, 512M or a number of bytes"),
    };
    let value: f64 = digits.trim().parse().map_err(|_| anyhow::anyhow!("--max-memory {text:?}: expected a size such as 16G, 512M or a number of bytes"))?;
    Ok((value * (1u64 << shift) as f64) as u64)
}

/// The flags that define an analysis, as recorded in summaries and hashed by sweeps and plans.
pub fn args_json(a: &AnalysisArgs) -> Value {
    let name = |v: &dyn ValueEnumName| v.name();
    json!({
        "corpus": a.corpus,
        "text_field": a.text_field,
        "max_docs": a.max_docs,
        "doc_seed": a.doc_seed,
        "skip_bad_lines": a.skip_bad_lines,
        "max_tokens": a.max_tokens,
        "orders": a.orders,
        "backoff": name(&a.backoff),
        "backoff_min_count": a.backoff_min_count,
        "weighting": name(&a.weighting),
        "min_count": a.min_count,
        "n_bins": a.n_bins,
        "seed": a.reference_points.is_none().then_some(a.seed),
        "reference_points": a.reference_points,
        "calibration": a.calibration,
        "null_seed": a.null_seed,
        "aggregate": name(&a.aggregate),
        "layers": a.layers,
        "preferences": a.preferences,
        "pref_tokens": name(&a.pref_tokens),
        "max_pref_pairs": a.max_pref_pairs,
        "dtype": name(&a.dtype),
        "device": a.device,
        "partials": !a.no_partials,
        "layer_groups": a.layer_groups,
    })
}

/// The flag spelling of a value-enum argument.
trait ValueEnumName {
    fn name(&self) -> String;
}

impl<T: ValueEnum> ValueEnumName for T {
    fn name(&self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
    }
}

/// Reads W from a .npy file for rows of width `dim` (`what` names them in errors).
pub fn load_reference_points(path: &Path, dim: usize, what: &str) -> Result<ReferencePoints> {
    let arr = read_npy(path)?;
    let data = match arr.data {
        NpyData::F32(v) => v,
        NpyData::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        other => bail!("{}: reference points must be float32 or float64, got {}", path.display(), other.dtype()),
    };
    match arr.shape.as_slice() {
        &[n, d] if d == dim => Ok(ReferencePoints::from_rows(data, n, d).with_context(|| path.display().to_string())?),
        s => bail!("{}: reference points must be [n, {dim}] to match {what}, got shape {s:?}", path.display()),
    }
}

/// Tokenises documents alone with the model's usual special tokens, truncated to `max_tokens`.
fn tokenize_documents(model: &Model, corpus: &infoplane_store::Corpus, max_tokens: usize) -> Result<Vec<Vec<u32>>> {
    let path = &corpus.selection.path;
    corpus
        .documents
        .par_iter()
        .map(|doc| {
            let mut ids = model.tokenizer().encode(&doc.text, true).with_context(|| format!("{path}: document at record {}", doc.index + 1))?;
            ids.truncate(max_tokens);
            Ok(ids)
        })
        .collect()
}

/// Each pair as two sequences: prompt (with special tokens) followed by the response (without),
/// so the prompt/response boundary is exact.
fn tokenize_preferences(model: &Model, prefs: &infoplane_store::Preferences, max_tokens: usize, mode: PrefTokens) -> Result<PreferenceInput> {
    let path = &prefs.selection.path;
    let encoded: Vec<[(Vec<u32>, SequenceLengths); 2]> = prefs
        .pairs
        .par_iter()
        .map(|pair| {
            let at = || format!("{path}: pair at line {}", pair.index + 1);
            let tok = model.tokenizer();
            let prompt = tok.encode(&pair.prompt, true).with_context(at)?;
            let seq = |response: &str, chosen: bool| -> Result<(Vec<u32>, SequenceLengths)> {
                let mut ids = prompt.clone();
                ids.extend(tok.encode(response, false).with_context(at)?);
                ids.truncate(max_tokens);
                let len = ids.len();
                Ok((ids, SequenceLengths { chosen, prompt_tokens: prompt.len(), len }))
            };
            Ok([seq(&pair.chosen, true)?, seq(&pair.rejected, false)?])
        })
        .collect::<Result<_>>()?;
    let (sequences, lengths) = encoded.into_iter().flatten().unzip();
    Ok(PreferenceInput { sequences, lengths, mode })
}

/// A unit ready to run: its tokenised inputs, settings, and the summary it will be reported in.
pub struct Prepared {
    pub documents: Vec<Vec<u32>>,
    pub preference: Option<PreferenceInput>,
    pub settings: AnalysisSettings,
    /// summary.json without the numbers (tool, model, settings, provenance).
    pub summary: Value,
    /// Where each sequence came from, to name it in errors.
    pub origins: Origins,
}

/// The record of each corpus document and preference pair, so an error in sequence k of a pass
/// names the line (row, file) of the input it came from.
pub struct Origins {
    corpus: (String, &'static str, Vec<u64>),
    preference: Option<(String, Vec<u64>)>,
}

impl Origins {
    fn new(data: &Inputs) -> Self {
        let c = &data.corpus;
        let unit = match c.selection.format {
            infoplane_store::CorpusFormat::Jsonl | infoplane_store::CorpusFormat::Lines => "line",
            infoplane_store::CorpusFormat::Parquet => "row",
            infoplane_store::CorpusFormat::Directory => "file",
        };
        Origins {
            corpus: (c.selection.path.clone(), unit, c.documents.iter().map(|d| d.index).collect()),
            preference: data.preferences.as_ref().map(|p| (p.selection.path.clone(), p.pairs.iter().map(|p| p.index).collect())),
        }
    }

    /// "FILE, line N" of a pass's sequence (preference sequences come two per pair).
    fn name(&self, pass: &str, sequence: usize) -> Option<String> {
        match pass {
            "corpus" => self.corpus.2.get(sequence).map(|i| format!("{}, {} {}", self.corpus.0, self.corpus.1, i + 1)),
            "preference" => self.preference.as_ref().and_then(|(path, lines)| lines.get(sequence / 2).map(|i| format!("{path}, line {} ({})", i + 1, if sequence.is_multiple_of(2) { "chosen" } else { "rejected" }))),
            _ => None,
        }
    }

    /// The error with the input record of its sequence in front, when it names one.
    fn locate(&self, e: AnalysisError) -> anyhow::Error {
        let at = match &e {
            AnalysisError::SourceAt { pass, sequence, .. } | AnalysisError::BadHiddenState { pass, sequence, .. } => self.name(pass, *sequence),
            _ => None,
        };
        match at {
            Some(at) => anyhow::Error::new(e).context(at),
            None => e.into(),
        }
    }
}

pub fn prepare(model: &Model, model_spec: &str, data: &Inputs, a: &AnalysisArgs) -> Result<Prepared> {
    let mut settings = settings(a)?;
    let dim = model.info().hidden_size;
    let w_provenance = match &a.reference_points {
        Some(path) => {
            let points = load_reference_points(path, dim, "the model's hidden states")?;
            settings.reference = ReferenceSpec::Points { points, origin: path.display().to_string() };
            json!({"origin": "file", "path": path, "file_sha256": file_sha256(path)?})
        }
        None => json!({"origin": "seed", "rng": "philox4x64-10+box-muller", "seed": a.seed, "n_bins": a.n_bins}),
    };
    let documents = tokenize_documents(model, &data.corpus, a.max_tokens)?;
    let pref_mode = match a.pref_tokens {
        PrefTokensArg::Response => PrefTokens::Response,
        PrefTokensArg::All => PrefTokens::All,
        PrefTokensArg::Last => PrefTokens::Last,
    };
    let preference = data.preferences.as_ref().map(|p| tokenize_preferences(model, p, a.max_tokens, pref_mode)).transpose()?;
    let provenance = json!({
        "model": {"spec": model_spec, "load": model.provenance()},
        "corpus": data.corpus.selection,
        "preferences": data.preferences.as_ref().map(|p| &p.selection),
        "reference_points": w_provenance,
        "max_tokens": a.max_tokens,
    });
    let mut settings_json = args_json(a);
    settings_json["min_count"] = json!(settings.min_count);
    settings_json["calibration"] = json!(settings.calibration.name());
    settings_json["pref_tokens"] = json!(a.preferences.as_ref().map(|_| pref_mode.name()));
    settings_json["dtype"] = json!(model.provenance().dtype);
    settings_json["device"] = json!(model.provenance().device);
    settings_json["units"] = json!("efficiency (nats / ln n_bins)");
    let info = model.info();
    let summary = json!({
        "tool": {"name": "infoplane", "version": env!("CARGO_PKG_VERSION")},
        "model": {"id": model_spec, "family": info.family, "n_layers": info.n_layers, "dim": info.hidden_size, "vocab_size": info.vocab_size},
        "settings": settings_json,
        "provenance": provenance,
    });
    Ok(Prepared { documents, preference, settings, summary, origins: Origins::new(data) })
}

/// Runs a prepared unit (the whole corpus, or one shard with the plan's n-gram counts).
/// Bytes the model holds: what this process holds now that the model is loaded (its resident
/// set, on Linux; else the weights counted from the config), plus the activations of a sequence
/// of `max_tokens` (every hidden state kept, attention scores of one layer, the MLP, logits).
fn model_bytes(model: &Model, max_tokens: usize) -> u64 {
    let resident = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()))
        .map(|kb| kb * 1024);
    let i = model.info();
    let (d, l, v, f) = (i.hidden_size as u64, i.n_layers as u64, i.vocab_size as u64, i.intermediate_size as u64);
    let (q, kv) = ((i.n_heads * i.head_dim) as u64, (i.n_kv_heads * i.head_dim) as u64);
    let params = v * d * if i.tied_embeddings { 1 } else { 2 } + l * (d * q + 2 * d * kv + q * d + 3 * d * f);
    let width = if model.provenance().dtype == "bf16" { 2 } else { 4 };
    let t = max_tokens as u64;
    let activations = t * (2 * d * (l + 2) * 4 + 3 * f * 4 + v * 4) + i.n_heads as u64 * t * t * 4;
    resident.unwrap_or(params * width) + activations
}

pub fn execute(model: &Model, prepared: Prepared, out_dir: &Path, stop: &AtomicBool, shard: Option<Shard>, ngram_counts: Option<&NgramCounts>, quiet: bool) -> Result<(AnalysisOutput, Value)> {
    let max_tokens = prepared.documents.iter().chain(prepared.preference.iter().flat_map(|p| &p.sequences)).map(Vec::len).max().unwrap_or(0);
    let bars = Bars::new(quiet);
    let source = ModelStates(model);
    let identity = prepared.summary["provenance"].clone();
    let input = AnalysisInput { source: &source, documents: &prepared.documents, preference: prepared.preference, identity, run_dir: out_dir, shard, ngram_counts, model_bytes: model_bytes(model, max_tokens) };
    let output = analyze(input, prepared.settings, &bars, stop).map_err(|e| prepared.origins.locate(e))?;
    Ok((output, prepared.summary))
}

/// Analyses `model` on the inputs into `out_dir`; returns summary.json's content. `extra` is
/// merged into the summary (a sweep's unit metadata).
pub fn run_unit(model: &Model, model_spec: &str, data: &Inputs, a: &AnalysisArgs, out_dir: &Path, stop: &AtomicBool, extra: Option<Value>) -> Result<Value> {
    let prepared = prepare(model, model_spec, data, a)?;
    let orders = prepared.settings.labels.orders;
    let (output, mut summary) = execute(model, prepared, out_dir, stop, None, None, a.quiet)?;
    if let Some(Value::Object(extra)) = extra {
        for (k, v) in extra {
            summary[k] = v;
        }
    }
    write_run(out_dir, &output, orders, summary)?;
    Ok(serde_json::from_slice(&std::fs::read(out_dir.join("summary.json"))?)?)
}
