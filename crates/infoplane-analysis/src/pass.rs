//! One pass over sequences, in two phases, so that memory does not grow with the number of
//! layers times the number of distinct labels.
//!
//! Phase 1 (`forward`): sequence by sequence, the model gives every hidden state; the rows at
//! the pass's positions are turned into soft assignments at once (the GEMM and softmax), their
//! bin sums are added per state, and the assignments are appended to per-state spill files.
//! A checkpoint (spill files fsynced, then `progress.json` written atomically) is taken every few
//! seconds; a resumed run truncates the spill files to the checkpoint and goes on from the next
//! sequence, so it ends with the same bits as a run that never stopped.
//!
//! Phase 2 (`absorb`): state by state, one [`Accumulator`] holds the label sums of every label
//! set of that state only; the spilled rows stream through it in blocks. Its statistics are
//! written as a partial (the unit of merging and of resuming phase 2), and the spill is removed.
//!
//! The result equals, bit for bit, an all-in-memory run that keeps one accumulator per state and
//! calls `Accumulator::update` once per sequence (see the tests): bin sums are added per sequence
//! in the same order, and label sums are added row by row in position order either way.

use crate::{AnalysisError, Progress, StateSource};
use infoplane_estimator::{Accumulator, Estimate, LabelBatch, LabelIndex, LabelSetSpec, Rows, Settings, SoftAssigner};
use infoplane_labels::NullPermutation;
use infoplane_store::{read_partial, remove_spill, write_atomic, write_partial, SpillReader, SpillWriter};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Rows absorbed per block in phase 2 (bounds the working buffer: 4n + 8 bytes a row).
const ABSORB_ROWS: usize = 65_536;

/// A label set of a pass: what to compute, its keys with complete counts, and the id of every
/// row of the pass in global order.
pub struct PassLabelSet<'a> {
    pub spec: LabelSetSpec,
    pub index: &'a LabelIndex,
    pub ids: &'a [u32],
}

/// What one pass reads: the sequences, which token positions of each are rows, and the label
/// sets over those rows.
pub struct Pass<'a> {
    /// `corpus` or `preference`: names the work and partials folders.
    pub name: &'static str,
    pub sequences: &'a [Vec<u32>],
    /// The run-wide index of `sequences[0]` (a shard starts part-way), so errors name the
    /// sequence as the caller numbered it.
    pub first_sequence: usize,
    /// Per sequence, the token positions whose hidden states are rows (may be empty).
    pub rows: Vec<Range<usize>>,
    /// The global number of this pass's first row: a shard of a corpus covers the rows
    /// `first_row..first_row + total_rows()` of the label sets' id vectors and of the null.
    pub first_row: usize,
    pub sets: Vec<PassLabelSet<'a>>,
    /// The shuffled null of every set (one permutation of all rows).
    pub null: Option<&'a NullPermutation>,
    /// Also sum the model's next-token loss at the rows.
    pub loss: bool,
}

impl Pass<'_> {
    pub fn total_rows(&self) -> u64 {
        self.rows.iter().map(|r| r.len() as u64).sum()
    }
}

/// Which hidden states are analysed: indexes into the source's states, with their names.
#[derive(Clone, Debug)]
pub struct StateSelection {
    pub indexes: Vec<usize>,
    pub names: Vec<String>,
}

/// Phase 1's sums, exactly as they were when the last sequence was done.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ForwardTotals {
    /// The run this belongs to (settings, model, data): a resume must match it.
    pub fingerprint: String,
    pub sequences_done: usize,
    pub rows: u64,
    /// Per selected state, Σ p over the rows (f64), added sequence by sequence.
    pub bin_sums: Vec<Vec<f64>>,
    pub loss_sum: f64,
    pub loss_rows: u64,
    /// Wall seconds in the model's forward pass, and in soft assignment and spilling.
    #[serde(default)]
    pub model_seconds: f64,
    #[serde(default)]
    pub assign_seconds: f64,
}

/// How often phase 1 checkpoints.
#[derive(Clone, Copy, Debug)]
pub struct Checkpointing {
    pub every: Duration,
    /// Also after this many sequences (tests use 1).
    pub every_sequences: Option<usize>,
}

impl Default for Checkpointing {
    fn default() -> Self {
        Checkpointing { every: Duration::from_secs(10), every_sequences: None }
    }
}

pub(crate) struct PassDirs {
    pub work: PathBuf,
    pub partials: PathBuf,
}

impl PassDirs {
    pub fn new(run_dir: &Path, pass: &str) -> Self {
        PassDirs { work: run_dir.join(".work").join(pass), partials: run_dir.join("partials").join(pass) }
    }
    /// The work folder of group `g` of `groups` layer groups (the partials folder is shared).
    pub fn group(run_dir: &Path, pass: &str, g: usize, groups: usize) -> Self {
        let mut dirs = PassDirs::new(run_dir, pass);
        if groups > 1 {
            dirs.work = dirs.work.join(format!("group{g}"));
        }
        dirs
    }
    fn progress(&self) -> PathBuf {
        self.work.join("progress.json")
    }
    /// Per-state estimates, when partials are not kept (phase 2's resume points).
    fn estimates(&self) -> PathBuf {
        self.work.join("estimates")
    }
}

fn read_progress(path: &Path) -> Result<Option<ForwardTotals>, AnalysisError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| AnalysisError::Resume(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AnalysisError::Io(format!("{}: {e}", path.display()))),
    }
}

/// Phase 1. Returns the totals of all sequences; with `resume`, starts after the last
/// checkpoint of a run with the same fingerprint. Stops at a checkpoint when `stop` is set.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    source: &dyn StateSource,
    pass: &Pass<'_>,
    states: &StateSelection,
    assigner: &SoftAssigner,
    dirs: &PassDirs,
    fingerprint: &str,
    checkpointing: Checkpointing,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<ForwardTotals, AnalysisError> {
    let n = assigner.n_bins();
    let d = source.dim();
    let fresh = ForwardTotals { fingerprint: fingerprint.to_string(), sequences_done: 0, rows: 0, bin_sums: vec![vec![0.0; n]; states.indexes.len()], loss_sum: 0.0, loss_rows: 0, model_seconds: 0.0, assign_seconds: 0.0 };
    let mut totals = match read_progress(&dirs.progress())? {
        Some(saved) if saved.fingerprint != fingerprint => {
            return Err(AnalysisError::Resume(format!("{} belongs to a run with other settings, model or data; use a new output directory", dirs.progress().display())))
        }
        Some(saved) if saved.bin_sums.len() != states.indexes.len() || saved.bin_sums.iter().any(|s| s.len() != n) => {
            return Err(AnalysisError::Resume(format!("{}: its sums do not fit {} states of {n} bins", dirs.progress().display(), states.indexes.len())))
        }
        Some(saved) => saved,
        None => fresh,
    };
    let done_tokens: u64 = pass.sequences[..totals.sequences_done].iter().map(|s| s.len() as u64).sum();
    let all_tokens: u64 = pass.sequences.iter().map(|s| s.len() as u64).sum();
    progress.start(pass.name, pass.sequences.len() as u64, all_tokens);
    progress.advance(totals.sequences_done as u64, done_tokens);
    if totals.sequences_done == pass.sequences.len() {
        progress.finish();
        return Ok(totals);
    }
    let mut spill = SpillWriter::open(&dirs.work, &states.names, n, totals.rows)?;
    let mut last_checkpoint = Instant::now();
    let mut since_checkpoint = 0usize;
    let mut noted_time = totals.sequences_done > 0;
    let checkpoint = |spill: &mut SpillWriter, totals: &ForwardTotals| -> Result<(), AnalysisError> {
        spill.sync()?;
        let json = serde_json::to_vec(totals).expect("totals serialise");
        write_atomic(&dirs.progress(), &json)?;
        Ok(())
    };
    for seq in totals.sequences_done..pass.sequences.len() {
        if stop.load(Ordering::Relaxed) {
            checkpoint(&mut spill, &totals)?;
            return Err(AnalysisError::Interrupted { done: totals.sequences_done, total: pass.sequences.len() });
        }
        let tokens = &pass.sequences[seq];
        let rows = pass.rows[seq].clone();
        if !rows.is_empty() {
            let t = Instant::now();
            let out = source.forward(tokens, pass.loss).map_err(|e| match e {
                AnalysisError::Source(reason) => AnalysisError::SourceAt { pass: pass.name, sequence: pass.first_sequence + seq, reason },
                other => other,
            })?;
            totals.model_seconds += t.elapsed().as_secs_f64();
            let t = Instant::now();
            // Soft assignments of every selected state, in parallel; then added in state order.
            let assigned: Vec<_> = states
                .indexes
                .par_iter()
                .zip(&states.names)
                .map(|(&s, name)| {
                    let hidden = &out.states[s];
                    assigner.assign(Rows::F32(&hidden[rows.start * d..rows.end * d]), 0, true).map_err(|e| match e {
                        infoplane_estimator::EstimatorError::BadRow { position, reason } => AnalysisError::BadHiddenState {
                            pass: pass.name,
                            layer: name.clone(),
                            sequence: pass.first_sequence + seq,
                            position: rows.start + position as usize,
                            reason,
                        },
                        other => other.into(),
                    })
                })
                .collect();
            for (k, a) in assigned.into_iter().enumerate() {
                let a = a?;
                for (t, v) in totals.bin_sums[k].iter_mut().zip(&a.column_sums) {
                    *t += v;
                }
                spill.append(k, &a.p, a.row_entropy.as_deref().expect("asked for row entropies"))?;
            }
            if pass.loss {
                let nll = out.next_token_nll.as_ref().ok_or_else(|| AnalysisError::Source("the model gave no next-token loss".into()))?;
                for i in rows.clone() {
                    totals.loss_sum += nll[i] as f64;
                }
                totals.loss_rows += rows.len() as u64;
            }
            totals.rows += rows.len() as u64;
            totals.assign_seconds += t.elapsed().as_secs_f64();
        }
        totals.sequences_done = seq + 1;
        if !rows.is_empty() && !noted_time {
            noted_time = true;
            let left: u64 = pass.sequences[seq + 1..].iter().map(|s| s.len() as u64).sum();
            let per_token = totals.model_seconds.max(1e-9) / tokens.len().max(1) as f64;
            progress.note(&format!(
                "first {} sequence: {} tokens in {:.2} s; the rest of this pass ({left} tokens) takes about {:.0} s of forward",
                pass.name,
                tokens.len(),
                totals.model_seconds,
                left as f64 * per_token
            ));
        }
        progress.advance(1, tokens.len() as u64);
        since_checkpoint += 1;
        if last_checkpoint.elapsed() >= checkpointing.every || checkpointing.every_sequences.is_some_and(|k| since_checkpoint >= k) {
            checkpoint(&mut spill, &totals)?;
            last_checkpoint = Instant::now();
            since_checkpoint = 0;
        }
    }
    checkpoint(&mut spill, &totals)?;
    progress.finish();
    Ok(totals)
}

/// Phase 2 for every selected state: label sums and estimates, and (with `keep_partials`) the
/// partial statistics. A state finished by an earlier, interrupted phase 2 is read back (its
/// partial, or its estimate when partials are not kept) instead of recomputed.
pub(crate) fn absorb(pass: &Pass<'_>, states: &StateSelection, settings: &Settings, assigner: &SoftAssigner, totals: &ForwardTotals, dirs: &PassDirs, keep_partials: bool, progress: &dyn Progress) -> Result<Vec<Estimate>, AnalysisError> {
    let io = |path: &Path, e: std::io::Error| AnalysisError::Io(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(&dirs.partials).map_err(|e| io(&dirs.partials, e))?;
    std::fs::create_dir_all(dirs.estimates()).map_err(|e| io(&dirs.estimates(), e))?;
    progress.start(&format!("{} labels", pass.name), states.names.len() as u64, totals.rows * states.names.len() as u64);
    let mut estimates = Vec::with_capacity(states.names.len());
    for (k, name) in states.names.iter().enumerate() {
        let partial_path = dirs.partials.join(format!("{name}.safetensors"));
        let estimate_path = dirs.estimates().join(format!("{name}.json"));
        let estimate = if partial_path.exists() {
            let acc = Accumulator::from_partial(read_partial(&partial_path)?)?;
            if acc.settings() != settings || acc.positions() != totals.rows {
                return Err(AnalysisError::Resume(format!("{}: made with other settings or data; use a new output directory", partial_path.display())));
            }
            acc.estimate()?
        } else if !keep_partials && estimate_path.exists() {
            let bytes = std::fs::read(&estimate_path).map_err(|e| io(&estimate_path, e))?;
            let (fingerprint, estimate): (String, Estimate) = serde_json::from_slice(&bytes).map_err(|e| AnalysisError::Resume(format!("{}: {e}", estimate_path.display())))?;
            if fingerprint != totals.fingerprint {
                return Err(AnalysisError::Resume(format!("{}: made with other settings or data; use a new output directory", estimate_path.display())));
            }
            estimate
        } else {
            let acc = absorb_state(pass, name, settings, assigner, totals, k, dirs)?;
            let estimate = acc.estimate()?;
            if keep_partials {
                write_partial(&partial_path, &acc.to_partial()?)?;
            } else {
                write_atomic(&estimate_path, &serde_json::to_vec(&(&totals.fingerprint, &estimate)).expect("serialisable"))?;
            }
            estimate
        };
        remove_spill(&dirs.work, name)?;
        estimates.push(estimate);
        progress.advance(1, totals.rows);
    }
    progress.finish();
    Ok(estimates)
}

fn absorb_state(pass: &Pass<'_>, name: &str, settings: &Settings, assigner: &SoftAssigner, totals: &ForwardTotals, k: usize, dirs: &PassDirs) -> Result<Accumulator, AnalysisError> {
    let n = assigner.n_bins();
    let mut acc = Accumulator::new(settings.clone());
    for set in &pass.sets {
        acc.add_label_set(set.spec.clone(), set.index.clone(), true)?;
    }
    acc.add_bin_sums(&totals.bin_sums[k], totals.rows)?;
    let mut reader = SpillReader::open(&dirs.work, name, n, totals.rows)?;
    let (mut p, mut h) = (Vec::new(), Vec::new());
    let mut nulls: Vec<Vec<u32>> = vec![Vec::new(); pass.sets.len()];
    let mut start = 0usize;
    loop {
        let got = reader.read_block(ABSORB_ROWS, &mut p, &mut h)?;
        if got == 0 {
            break;
        }
        let range = pass.first_row + start..pass.first_row + start + got;
        for (set, out) in pass.sets.iter().zip(nulls.iter_mut()) {
            if set.spec.null {
                let null = pass.null.ok_or_else(|| AnalysisError::Source("a label set keeps a null but the pass has no permutation".into()))?;
                null.null_ids_into(set.ids, range.clone(), out)?;
            }
        }
        let batches: Vec<LabelBatch<'_>> = pass
            .sets
            .iter()
            .zip(&nulls)
            .map(|(set, null)| LabelBatch { ids: &set.ids[range.clone()], null_ids: set.spec.null.then_some(null.as_slice()) })
            .collect();
        acc.absorb_labels(&p, Some(&h), &batches)?;
        start += got;
    }
    Ok(acc)
}
