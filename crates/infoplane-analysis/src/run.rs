//! `analyze` end to end, below the CLI: labels from the pre-pass, W and ε, the corpus pass and the
//! preference pass, per-layer rows, model-level numbers, and the files of a run directory.

use crate::memory::{absorb_buffer_bytes, accumulator_bytes, MemoryEstimate};
use crate::metrics::{aggregate, layer_columns, layer_row, Aggregate, LayerRow, ModelLevel};
use crate::time_estimate::{calibrate, RunShape};
use crate::pass::{absorb, forward, Checkpointing, ForwardTotals, Pass, PassDirs, PassLabelSet, StateSelection};
use crate::{AnalysisError, Progress, StateSource};
use infoplane_estimator::{Calibration, Estimate, LabelSetSpec, ReferencePoints, Settings, SoftAssigner, Weighting};
use infoplane_labels::{CorpusLabels, LabelConfig, NullPermutation, PrefTokens, PreferenceLabels, SequenceLengths, PREFERENCE_SET};
use infoplane_store::{write_atomic, Column, Table};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Where W comes from.
pub enum ReferenceSpec {
    /// Drawn from the portable RNG for the model's width.
    Seed(u64),
    /// Given (e.g. read from a .npy file); `origin` is recorded.
    Points { points: ReferencePoints, origin: String },
}

/// Which hidden states are analysed (`--layers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LayerSelection {
    All,
    /// State names ("0", "12", "final_norm").
    Names(Vec<String>),
}

impl LayerSelection {
    /// `all`, or a comma list of indexes, inclusive ranges `a-b`, and `final_norm`.
    pub fn parse(text: &str) -> Result<Self, AnalysisError> {
        if text == "all" {
            return Ok(LayerSelection::All);
        }
        let mut names = Vec::new();
        for part in text.split(',').map(str::trim) {
            let bad = || AnalysisError::Settings(format!("--layers: {part:?} is not a layer index, a range a-b, or final_norm"));
            if part == "final_norm" {
                names.push(part.to_string());
            } else if let Some((a, b)) = part.split_once('-') {
                let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                names.extend((a..=b).map(|i| i.to_string()));
            } else {
                names.push(part.parse::<usize>().map_err(|_| bad())?.to_string());
            }
        }
        names.dedup();
        Ok(LayerSelection::Names(names))
    }
}

pub struct AnalysisSettings {
    pub labels: LabelConfig,
    pub weighting: Weighting,
    pub min_count: u64,
    pub n_bins: usize,
    pub reference: ReferenceSpec,
    pub calibration: Calibration,
    pub null_seed: u64,
    pub aggregate: Aggregate,
    pub layers: LayerSelection,
    pub checkpointing: Checkpointing,
    /// Write every state's partial statistics (needed to merge shards; at the paper's scale they
    /// take gigabytes per state). Without, only the estimates are kept.
    pub keep_partials: bool,
    /// Run the model this many times, each time spilling only a group of the layers (bounds the
    /// spill's disk: positions × layers / groups × (4n + 8) bytes). 1: one forward pass.
    pub layer_groups: usize,
    /// Refuse to start (after the cheap pre-pass, before any forward pass) when the estimated
    /// peak memory exceeds this many bytes.
    pub max_memory: Option<u64>,
    /// Before the forward pass, time one document and say how long the run will take (one more
    /// forward pass of that document; off where exact forward counts matter, as in tests).
    pub estimate_time: bool,
}

/// Preference pairs, tokenised: two sequences per pair (chosen, rejected), with their lengths.
pub struct PreferenceInput {
    pub sequences: Vec<Vec<u32>>,
    pub lengths: Vec<SequenceLengths>,
    pub mode: PrefTokens,
}

pub struct AnalysisInput<'a> {
    pub source: &'a dyn StateSource,
    /// Tokenised documents, truncated to the run's maximum: ALL documents of the corpus, also
    /// when only a shard is analysed (labels, back-off counts and the null are corpus-wide).
    pub documents: &'a [Vec<u32>],
    pub preference: Option<PreferenceInput>,
    /// What identifies the model and data (hashes): with the settings it fingerprints the run, so
    /// a resume never mixes two runs.
    pub identity: Value,
    pub run_dir: &'a Path,
    /// Analyse only shard `index` of `count`: a contiguous range of documents (and of preference
    /// pairs). Its partials merge with the other shards' into the whole run ([`merge_units`]).
    pub shard: Option<Shard>,
    /// N-gram counts made once for the whole corpus (a plan's); None: counted here.
    pub ngram_counts: Option<&'a infoplane_labels::NgramCounts>,
    /// Bytes the model holds: weights, and activations for the longest sequence (for the
    /// memory estimate).
    pub model_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Items `start..end` of `len` that belong to this shard (contiguous, sizes differ by ≤ 1).
    pub fn range(&self, len: usize) -> Range<usize> {
        (self.index * len / self.count)..((self.index + 1) * len / self.count)
    }
}

/// Tallies for provenance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    pub documents: usize,
    pub too_short_documents: usize,
    pub positions: usize,
    /// Distinct labels per label set, by name.
    pub distinct_labels: std::collections::BTreeMap<String, u64>,
    pub preference_sequences: usize,
    pub preference_positions: usize,
    pub preference_empty_sequences: usize,
}

/// What a finished unit (a whole run, or one shard) leaves in its directory as `unit.json`,
/// written last: its presence means the partials are complete.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UnitRecord {
    pub fingerprint: String,
    pub shard: Option<Shard>,
    pub states: Vec<String>,
    pub orders: usize,
    pub aggregate: Aggregate,
    pub epsilon: f64,
    pub reference_points_sha256: String,
    pub reference_origin: String,
    pub counts: Counts,
    /// Σ next-token loss over this unit's rows, and their number.
    pub loss_sum: f64,
    pub loss_rows: u64,
    pub preference: bool,
    /// Whether `partials/` holds this unit's statistics (a unit without them cannot merge).
    pub partials: bool,
    /// Where the time went (this process only: work done before a resume is counted when it
    /// was done).
    pub timing: Timing,
}

/// Wall seconds per stage. `model_seconds` is the forward pass itself; the rest is what the
/// analysis adds to it: the tokens-only pre-pass, soft assignment (GEMM, softmax, spill) during
/// the forward, and label absorption afterwards.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    pub prepass_seconds: f64,
    pub model_seconds: f64,
    pub assign_seconds: f64,
    pub labels_seconds: f64,
}

impl Timing {
    /// Seconds the analysis adds to the model's own forward time, as a fraction of it.
    pub fn overhead(&self) -> f64 {
        (self.prepass_seconds + self.assign_seconds + self.labels_seconds) / self.model_seconds
    }
}

pub const UNIT_RECORD: &str = "unit.json";

pub struct AnalysisOutput {
    pub rows: Vec<LayerRow>,
    pub model: ModelLevel,
    pub epsilon: f64,
    pub reference_points_sha256: String,
    pub reference_origin: String,
    pub counts: Counts,
    pub fingerprint: String,
    pub timing: Timing,
    /// The full estimates per state (corpus pass), for callers that want every tally.
    pub estimates: Vec<Estimate>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the analysis (or one shard of it), leaving partials and `unit.json` under `run_dir`;
/// see [`write_run`] for the result files.
pub fn analyze(input: AnalysisInput<'_>, settings: AnalysisSettings, progress: &dyn Progress, stop: &AtomicBool) -> Result<AnalysisOutput, AnalysisError> {
    let source = input.source;
    let dim = source.dim();
    let all_states = source.state_names();
    let states = select_states(&all_states, &settings.layers)?;
    if settings.min_count == 0 {
        return Err(AnalysisError::Settings("--min-count must be at least 1".into()));
    }
    let keep_partials = settings.keep_partials;
    if input.shard.is_some() && !keep_partials {
        return Err(AnalysisError::Settings("a shard must keep its partial statistics (they are what merges)".into()));
    }
    if let Some(shard) = input.shard {
        if shard.count == 0 || shard.index >= shard.count {
            return Err(AnalysisError::Settings(format!("shard {} of {} does not exist", shard.index, shard.count)));
        }
    }
    let (w, reference_origin) = match settings.reference {
        ReferenceSpec::Seed(seed) => (ReferencePoints::from_seed(seed, settings.n_bins, dim)?, format!("philox4x64-10 seed {seed}")),
        ReferenceSpec::Points { points, origin } => {
            if points.dim() != dim {
                return Err(AnalysisError::Settings(format!("reference points {origin} have width {}, the model's hidden states {dim}", points.dim())));
            }
            (points, origin)
        }
    };
    let epsilon = settings.calibration.epsilon(w.n(), dim)?;
    let assigner = SoftAssigner::new(&w, epsilon)?;
    let est_settings = Settings::new(&assigner, &settings.calibration);

    let prepass = Instant::now();
    let labels = match input.ngram_counts {
        Some(counts) => CorpusLabels::build_with_counts(&settings.labels, counts, input.documents)?,
        None => CorpusLabels::build(&settings.labels, input.documents)?,
    };
    if labels.positions() == 0 {
        return Err(AnalysisError::Settings(format!(
            "no document has a valid position: all {} are shorter than {} tokens (2 × --orders)",
            input.documents.len(),
            2 * settings.labels.orders
        )));
    }
    let null = NullPermutation::new(labels.positions(), settings.null_seed)?;
    let mut timing = Timing { prepass_seconds: prepass.elapsed().as_secs_f64(), ..Timing::default() };

    let docs = input.shard.map_or(0..labels.documents(), |s| s.range(labels.documents()));
    let shard_rows: u64 = docs.clone().map(|d| labels.document(d).valid.len() as u64).sum();
    let n_bins = w.n();
    let tokens: u64 = input.documents.iter().map(|d| d.len() as u64 * 4).sum::<u64>() + input.preference.as_ref().map_or(0, |p| p.sequences.iter().map(|s| s.len() as u64 * 4).sum());
    let estimate = MemoryEstimate {
        model: input.model_bytes,
        labels: labels.memory_bytes() as u64 + 4 * labels.positions() as u64 + tokens,
        per_state: (0..labels.label_sets().len()).map(|s| accumulator_bytes(labels.index(s), settings.min_count, n_bins, true)).sum::<u64>()
            + absorb_buffer_bytes(shard_rows.min(65_536), n_bins, labels.label_sets().len()),
        spill_disk: shard_rows * states.names.len().div_ceil(settings.layer_groups.max(1)) as u64 * (4 * n_bins as u64 + 8),
    };
    progress.note(&estimate.describe());
    if let Some(max) = settings.max_memory {
        if estimate.peak() > max {
            return Err(AnalysisError::Memory(format!(
                "{}, more than --max-memory {:.2} GiB; lower --max-docs or --max-tokens, use --layers, or shard the run (infoplane plan)",
                estimate.describe(),
                max as f64 / (1u64 << 30) as f64
            )));
        }
    }
    let spec = |name: String| LabelSetSpec { name, weighting: settings.weighting, min_count: settings.min_count, null: true, per_label: false };
    let sets: Vec<PassLabelSet<'_>> = labels
        .names()
        .into_iter()
        .enumerate()
        .map(|(s, name)| PassLabelSet { spec: spec(name), index: labels.index(s), ids: labels.ids(s) })
        .collect();
    // Built once, for the time estimate and the preference pass; an error is reported by the pass.
    let pref_labels = input.preference.as_ref().map(|p| PreferenceLabels::build(&p.lengths, p.mode));
    if settings.estimate_time {
        // The preference pass's work: the sequences it runs (shards split pairs, as below; a
        // sequence with no sample position is not run) and their positions.
        let (pref_tokens, pref_rows) = match (&input.preference, &pref_labels) {
            (Some(p), Some(Ok(pl))) => {
                let pairs = input.shard.map_or(0..p.sequences.len() / 2, |s| s.range(p.sequences.len() / 2));
                (2 * pairs.start..2 * pairs.end)
                    .map(|s| pl.sequence(s).positions.len() as u64)
                    .zip(&p.sequences[2 * pairs.start..2 * pairs.end])
                    .filter(|&(rows, _)| rows > 0)
                    .fold((0, 0), |(t, r), (rows, seq)| (t + seq.len() as u64, r + rows))
            }
            _ => (0, 0),
        };
        let shape = RunShape {
            source,
            states: &states,
            assigner: &assigner,
            settings: &est_settings,
            labels: &labels,
            sets: &sets,
            null: &null,
            documents: input.documents,
            docs: docs.clone(),
            extra_rows: pref_rows,
            extra_tokens: pref_tokens,
        };
        if let Some(time) = calibrate(&shape) {
            progress.note(&time.describe());
        }
    }

    let fingerprint = sha256_hex(
        serde_json::to_string(&json!({
            "identity": input.identity,
            "labels": settings.labels,
            "weighting": settings.weighting.name(),
            "min_count": settings.min_count,
            "null_seed": settings.null_seed,
            "estimator": est_settings,
            "states": states.names,
            "preference": input.preference.as_ref().map(|p| p.mode.name()),
            "shard": input.shard,
        }))
        .expect("serialisable")
        .as_bytes(),
    );

    let corpus = Pass {
        name: "corpus",
        sequences: &input.documents[docs.clone()],
        first_sequence: docs.start,
        rows: docs.clone().map(|d| labels.document(d).valid.clone()).collect(),
        first_row: docs.clone().next().map_or(0, |d| labels.document(d).global.start),
        sets,
        null: Some(&null),
        loss: true,
    };
    let passes = Passes { source, states: &states, assigner: &assigner, settings: &est_settings, run_dir: input.run_dir, fingerprint: &fingerprint, checkpointing: settings.checkpointing, keep_partials, groups: settings.layer_groups, progress, stop };
    let (corpus_estimates, totals) = passes.run(&corpus, &mut timing)?;

    let mut pref_counts = (0, 0, 0);
    let pref_estimates = match (&input.preference, pref_labels) {
        (Some(pref), Some(pl)) => {
            let pl = pl?;
            if pl.positions() == 0 {
                return Err(AnalysisError::Settings("the preference pairs give no sample position (every response was truncated away?)".into()));
            }
            pref_counts = (pref.sequences.len(), pl.positions(), pl.empty_sequences());
            let pref_null = NullPermutation::new(pl.positions(), settings.null_seed)?;
            // Shards split pairs, never the two sequences of one pair.
            let pairs = input.shard.map_or(0..pref.sequences.len() / 2, |s| s.range(pref.sequences.len() / 2));
            let seqs = 2 * pairs.start..2 * pairs.end;
            let pass = Pass {
                name: "preference",
                sequences: &pref.sequences[seqs.clone()],
                first_sequence: seqs.start,
                rows: seqs.clone().map(|s| pl.sequence(s).positions.clone()).collect(),
                first_row: seqs.clone().next().map_or(0, |s| pl.sequence(s).global.start),
                sets: vec![PassLabelSet { spec: spec(PREFERENCE_SET.into()), index: pl.index(), ids: pl.ids() }],
                null: Some(&pref_null),
                loss: false,
            };
            Some(passes.run(&pass, &mut timing)?.0)
        }
        _ => None,
    };

    let record = UnitRecord {
        fingerprint,
        shard: input.shard,
        states: states.names.clone(),
        orders: settings.labels.orders,
        aggregate: settings.aggregate,
        epsilon,
        reference_points_sha256: w.sha256().to_string(),
        reference_origin,
        counts: Counts {
            documents: labels.documents(),
            too_short_documents: labels.too_short(),
            positions: labels.positions(),
            distinct_labels: labels.names().into_iter().enumerate().map(|(s, name)| (name, labels.index(s).len() as u64)).collect(),
            preference_sequences: pref_counts.0,
            preference_positions: pref_counts.1,
            preference_empty_sequences: pref_counts.2,
        },
        loss_sum: totals.loss_sum,
        loss_rows: totals.loss_rows,
        preference: pref_estimates.is_some(),
        partials: keep_partials,
        timing,
    };
    write_atomic(&input.run_dir.join(UNIT_RECORD), serde_json::to_string_pretty(&record).expect("serialisable").as_bytes())?;
    Ok(finish(record, corpus_estimates, pref_estimates))
}

/// What every pass of a run shares.
struct Passes<'a> {
    source: &'a dyn StateSource,
    states: &'a StateSelection,
    assigner: &'a SoftAssigner,
    settings: &'a Settings,
    run_dir: &'a Path,
    fingerprint: &'a str,
    checkpointing: Checkpointing,
    keep_partials: bool,
    groups: usize,
    progress: &'a dyn Progress,
    stop: &'a AtomicBool,
}

impl Passes<'_> {
    /// Both phases of `pass`, once per layer group: each group runs the model again but spills only
    /// its own states, so disk (and the forward's working set) shrinks by the number of groups.
    /// Returns every state's estimate, in order, and the first group's forward totals (every group
    /// sees the same rows, so their losses are equal).
    fn run(&self, pass: &Pass<'_>, timing: &mut Timing) -> Result<(Vec<Estimate>, ForwardTotals), AnalysisError> {
        let n = self.states.names.len();
        let groups = self.groups.clamp(1, n.max(1));
        let mut estimates = Vec::with_capacity(n);
        let mut first = None;
        for g in 0..groups {
            let range = g * n / groups..(g + 1) * n / groups;
            let group = StateSelection { indexes: self.states.indexes[range.clone()].to_vec(), names: self.states.names[range].to_vec() };
            let dirs = PassDirs::group(self.run_dir, pass.name, g, groups);
            let fingerprint = if groups > 1 { format!("{}-group{g}of{groups}", self.fingerprint) } else { self.fingerprint.to_string() };
            let totals = forward(self.source, pass, &group, self.assigner, &dirs, &fingerprint, self.checkpointing, self.progress, self.stop)?;
            timing.model_seconds += totals.model_seconds;
            timing.assign_seconds += totals.assign_seconds;
            let t = Instant::now();
            estimates.extend(absorb(pass, &group, self.settings, self.assigner, &totals, &dirs, self.keep_partials, self.progress)?);
            timing.labels_seconds += t.elapsed().as_secs_f64();
            first.get_or_insert(totals);
        }
        Ok((estimates, first.expect("at least one group")))
    }
}

/// Rows and model-level numbers from the estimates of every state.
fn finish(record: UnitRecord, corpus: Vec<Estimate>, preference: Option<Vec<Estimate>>) -> AnalysisOutput {
    let rows: Vec<LayerRow> = record
        .states
        .iter()
        .enumerate()
        .map(|(k, name)| layer_row(name, record.orders, &corpus[k], preference.as_ref().map(|p| &p[k])))
        .collect();
    let blocks: Vec<&LayerRow> = rows.iter().filter(|r| r.layer != "0" && r.layer != "final_norm").collect();
    let loss = (record.loss_rows > 0).then(|| record.loss_sum / record.loss_rows as f64);
    let model = aggregate(&blocks, record.orders, record.aggregate, loss);
    AnalysisOutput {
        rows,
        model,
        epsilon: record.epsilon,
        reference_points_sha256: record.reference_points_sha256,
        reference_origin: record.reference_origin,
        counts: record.counts,
        fingerprint: record.fingerprint,
        timing: record.timing,
        estimates: corpus,
    }
}

/// Reads a finished unit's record.
pub fn read_unit(dir: &Path) -> Result<UnitRecord, AnalysisError> {
    let path = dir.join(UNIT_RECORD);
    let bytes = std::fs::read(&path).map_err(|e| AnalysisError::Io(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| AnalysisError::Resume(format!("{}: {e}", path.display())))
}

/// The whole run from the finished shards of one model: their partials merged state by state,
/// losses summed. Refuses shards that do not belong together (another model, other settings,
/// data or W; a missing or repeated shard).
pub fn merge_units(dirs: &[PathBuf]) -> Result<AnalysisOutput, AnalysisError> {
    let records: Vec<UnitRecord> = dirs.iter().map(|d| read_unit(d)).collect::<Result<_, _>>()?;
    let first = records.first().ok_or_else(|| AnalysisError::Settings("no units to merge".into()))?;
    let count = first.shard.map_or(1, |s| s.count);
    let mut seen = vec![false; count];
    for (r, dir) in records.iter().zip(dirs) {
        if !r.partials {
            return Err(AnalysisError::Settings(format!("{}: ran without partial statistics (--no-partials) and cannot be merged", dir.display())));
        }
        let differ = |what: &str| AnalysisError::Settings(format!("{}: its {what} differs from {}'s; these units are not shards of one run", dir.display(), dirs[0].display()));
        if r.states != first.states || r.orders != first.orders || r.aggregate != first.aggregate {
            return Err(differ("layers, orders or aggregate"));
        }
        if r.epsilon.to_bits() != first.epsilon.to_bits() || r.reference_points_sha256 != first.reference_points_sha256 {
            return Err(differ("W or ε"));
        }
        if r.counts != first.counts || r.preference != first.preference {
            return Err(differ("corpus (documents, positions or labels)"));
        }
        let index = match r.shard {
            Some(s) if s.count == count => s.index,
            None if count == 1 => 0,
            _ => return Err(differ("shard count")),
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(AnalysisError::Settings(format!("{}: shard {index} is given twice", dir.display())));
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(AnalysisError::Settings(format!("shard {missing} of {count} is missing")));
    }
    let merge_pass = |pass: &str| -> Result<Vec<Estimate>, AnalysisError> {
        first
            .states
            .iter()
            .map(|state| {
                let mut merged: Option<infoplane_estimator::Accumulator> = None;
                for dir in dirs {
                    let path = dir.join("partials").join(pass).join(format!("{state}.safetensors"));
                    let acc = infoplane_estimator::Accumulator::from_partial(infoplane_store::read_partial(&path)?)?;
                    match merged.as_mut() {
                        None => merged = Some(acc),
                        Some(m) => m.merge(&acc).map_err(|e| AnalysisError::Settings(format!("{}: {e}", path.display())))?,
                    }
                }
                Ok(merged.expect("at least one unit").estimate()?)
            })
            .collect()
    };
    let corpus = merge_pass("corpus")?;
    let preference = if first.preference { Some(merge_pass("preference")?) } else { None };
    let mut record = first.clone();
    record.shard = None;
    record.loss_sum = records.iter().map(|r| r.loss_sum).sum();
    record.loss_rows = records.iter().map(|r| r.loss_rows).sum();
    record.timing = Timing {
        prepass_seconds: records.iter().map(|r| r.timing.prepass_seconds).sum(),
        model_seconds: records.iter().map(|r| r.timing.model_seconds).sum(),
        assign_seconds: records.iter().map(|r| r.timing.assign_seconds).sum(),
        labels_seconds: records.iter().map(|r| r.timing.labels_seconds).sum(),
    };
    record.fingerprint = sha256_hex(records.iter().map(|r| r.fingerprint.as_str()).collect::<Vec<_>>().join(",").as_bytes());
    Ok(finish(record, corpus, preference))
}

fn select_states(all: &[String], selection: &LayerSelection) -> Result<StateSelection, AnalysisError> {
    let indexes: Vec<usize> = match selection {
        LayerSelection::All => (0..all.len()).collect(),
        LayerSelection::Names(names) => names
            .iter()
            .map(|n| {
                all.iter().position(|a| a == n).ok_or_else(|| {
                    AnalysisError::Settings(format!("--layers: the model has no layer {n} (it has 0..{} and final_norm)", all.len().saturating_sub(2)))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(StateSelection { names: indexes.iter().map(|&i| all[i].clone()).collect(), indexes })
}

/// The per-layer table (`layers.csv` / `layers.parquet`).
pub fn layers_table(rows: &[LayerRow], orders: usize) -> Result<Table, AnalysisError> {
    let mut table = Table::new();
    table.push("layer", Column::Str(rows.iter().map(|r| Some(r.layer.clone())).collect()))?;
    for column in layer_columns(orders) {
        table.push(column.clone(), Column::F64(rows.iter().map(|r| r.get(&column)).collect()))?;
    }
    Ok(table)
}

/// Writes `summary.json`, `layers.csv`, `layers.parquet` and `timing.json` (each atomically). `summary` is the caller's provenance and settings, completed here.
pub fn write_run(run_dir: &Path, output: &AnalysisOutput, orders: usize, mut summary: Value) -> Result<(), AnalysisError> {
    let table = layers_table(&output.rows, orders)?;
    table.write_csv(&run_dir.join("layers.csv"))?;
    table.write_parquet(&run_dir.join("layers.parquet"))?;
    let model_level: serde_json::Map<String, Value> = output.model.values.iter().map(|(c, v)| (c.clone(), json!(v))).collect();
    summary["model_level"] = Value::Object(model_level);
    summary["counts"] = json!(output.counts);
    summary["estimator"] = json!({
        "epsilon": output.epsilon,
        "reference_points_sha256": output.reference_points_sha256,
        "reference_points": output.reference_origin,
    });
    summary["fingerprint"] = json!(output.fingerprint);
    // Timings differ run to run: kept out of summary.json, so the same command gives the same bytes.
    let timing = json!({
        "prepass_seconds": output.timing.prepass_seconds,
        "model_seconds": output.timing.model_seconds,
        "assign_seconds": output.timing.assign_seconds,
        "labels_seconds": output.timing.labels_seconds,
        "analysis_overhead": output.timing.overhead(),
    });
    write_atomic(&run_dir.join("timing.json"), serde_json::to_string_pretty(&timing).expect("serialisable").as_bytes())?;
    let text = serde_json::to_string_pretty(&summary).expect("serialisable");
    write_atomic(&run_dir.join("summary.json"), text.as_bytes())
        .map_err(AnalysisError::from)
    // `.work/<pass>/progress.json` stays (a few hundred bytes, the spill files are gone): with it a
    // `--resume` of a finished run redoes nothing.
}
