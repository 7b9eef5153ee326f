//! How long a run will take, said before it starts: the forward pass and the analysis of one
//! document (the longest of the run's) are timed on this machine and scaled to the whole run.
//! The document's hidden states and sums are thrown away; nothing here touches the results.

use crate::pass::{PassLabelSet, StateSelection};
use crate::StateSource;
use infoplane_estimator::{Accumulator, LabelBatch, Rows, Settings, SoftAssigner};
use infoplane_labels::{CorpusLabels, NullPermutation};
use std::ops::Range;
use std::time::Instant;

/// Rows the analysis calibration absorbs (the document's own, repeated).
const CALIBRATION_ROWS: usize = 8192;

/// The extrapolated time of a run, and what it was calibrated on.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeEstimate {
    pub forward_seconds: f64,
    pub analysis_seconds: f64,
    /// Tokens the run's forward passes read (documents and preference sequences).
    pub tokens: u64,
    /// Length of the calibration document, and its forward rate in tokens/s.
    pub calibration_tokens: usize,
    pub tokens_per_second: f64,
}

impl TimeEstimate {
    pub fn describe(&self) -> String {
        format!(
            "estimated time {} (model forward {}: {} tokens, {:.0} tok/s with the loss; analysis {}), timed on a {}-token document",
            duration(self.forward_seconds + self.analysis_seconds),
            duration(self.forward_seconds),
            self.tokens,
            self.tokens_per_second,
            duration(self.analysis_seconds),
            self.calibration_tokens
        )
    }
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=99 => format!("{s} s"),
        100..=5999 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// What the calibration needs of the run.
pub(crate) struct RunShape<'a> {
    pub source: &'a dyn StateSource,
    pub states: &'a StateSelection,
    pub assigner: &'a SoftAssigner,
    pub settings: &'a Settings,
    pub labels: &'a CorpusLabels,
    pub sets: &'a [PassLabelSet<'a>],
    pub null: &'a NullPermutation,
    pub documents: &'a [Vec<u32>],
    /// The run's documents (a shard's range).
    pub docs: Range<usize>,
    /// Rows the run analyses beyond the corpus's (preference positions), and the tokens they cost.
    pub extra_rows: u64,
    pub extra_tokens: u64,
}

/// Times one forward pass and one hidden state's analysis of the run's longest document and
/// scales them: forward by tokens, analysis by rows per state plus a fixed cost per state (its
/// accumulator copies the label indexes) times the states. `None` when the document cannot be
/// run (the pass itself then reports the error with its context) or has no analysed position.
pub(crate) fn calibrate(run: &RunShape<'_>) -> Option<TimeEstimate> {
    let longest = run.docs.clone().filter(|&d| !run.labels.document(d).valid.is_empty()).max_by_key(|&d| (run.documents[d].len(), std::cmp::Reverse(d)))?;
    let tokens = &run.documents[longest];
    // A short pass first: the first forward of a model pays one-off costs (threads, buffers).
    run.source.forward(&tokens[..tokens.len().min(16)], true).ok()?;
    let started = Instant::now();
    let states = run.source.forward(tokens, true).ok()?;
    let forward_seconds = started.elapsed().as_secs_f64().max(1e-9);
    // Preference sequences run without the next-token loss, which costs the vocabulary-wide
    // log-softmax: timed apart when there are any.
    let extra_seconds_per_token = if run.extra_tokens > 0 {
        let started = Instant::now();
        run.source.forward(tokens, false).ok()?;
        started.elapsed().as_secs_f64() / tokens.len() as f64
    } else {
        0.0
    };

    let &state = run.states.indexes.first()?;
    let hidden = states.states.get(state)?;
    let positions = &run.labels.document(longest).valid;
    let global = run.labels.document(longest).global.clone();
    let d = run.source.dim();
    let started = Instant::now();
    let mut acc = Accumulator::new(run.settings.clone());
    for set in run.sets {
        // Counts marked incomplete: the repeated rows below exceed the pre-pass counts, and every
        // label then takes the costlier vector path (labels seen once are scalars in the run).
        acc.add_label_set(set.spec.clone(), set.index.clone(), false).ok()?;
    }
    let per_state_fixed = started.elapsed().as_secs_f64();
    // The document's rows repeated to a block of the size the real pass absorbs at once, so the
    // rate is the steady one, not one short batch's start-up.
    let copies = CALIBRATION_ROWS.div_ceil(positions.len());
    let rows: Vec<f32> = hidden.get(positions.start * d..positions.end * d)?.repeat(copies);
    let repeat = |ids: &[u32]| ids.repeat(copies);
    let mut nulls: Vec<Vec<u32>> = vec![Vec::new(); run.sets.len()];
    for (set, out) in run.sets.iter().zip(nulls.iter_mut()) {
        if set.spec.null {
            run.null.null_ids_into(set.ids, global.clone(), out).ok()?;
            *out = repeat(out);
        }
    }
    let ids: Vec<Vec<u32>> = run.sets.iter().map(|set| repeat(&set.ids[global.clone()])).collect();
    let batches: Vec<LabelBatch<'_>> = run.sets.iter().zip(&ids).zip(&nulls).map(|((set, ids), null)| LabelBatch { ids, null_ids: set.spec.null.then_some(null.as_slice()) }).collect();
    let started = Instant::now();
    acc.update(run.assigner, Rows::F32(&rows), &batches).ok()?;
    let per_row = started.elapsed().as_secs_f64() / (positions.len() * copies) as f64;

    let corpus_tokens: u64 = run.docs.clone().map(|doc| run.documents[doc].len() as u64).sum();
    let corpus_rows: u64 = run.docs.clone().map(|doc| run.labels.document(doc).valid.len() as u64).sum();
    let all_tokens = corpus_tokens + run.extra_tokens;
    let tokens_per_second = tokens.len() as f64 / forward_seconds;
    let n_states = run.states.indexes.len() as f64;
    Some(TimeEstimate {
        forward_seconds: corpus_tokens as f64 / tokens_per_second + run.extra_tokens as f64 * extra_seconds_per_token,
        // Preference rows carry one label set, not the corpus's many: counting them at the
        // corpus rate errs long.
        analysis_seconds: n_states * (per_state_fixed + per_row * (corpus_rows + run.extra_rows) as f64),
        tokens: all_tokens,
        calibration_tokens: tokens.len(),
        tokens_per_second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(4.4), "4 s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(7300.0), "2h01m");
    }
}
