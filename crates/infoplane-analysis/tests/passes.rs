//! The two-phase analysis against an all-in-memory reference, resumption, and bad states, on a
//! synthetic model whose hidden states carry known token information.

use infoplane_analysis::{analyze, merge_units, AnalysisError, AnalysisInput, AnalysisOutput, AnalysisSettings, Checkpointing, LayerSelection, PreferenceInput, Quiet, ReferenceSpec, SequenceStates, Shard, StateSource};
use infoplane_analysis::Aggregate;
use infoplane_estimator::{rng::Philox, Accumulator, Calibration, LabelBatch, LabelSetSpec, ReferencePoints, Rows, Settings, SoftAssigner, Weighting};
use infoplane_labels::{Backoff, CorpusLabels, LabelConfig, NullPermutation, PrefTokens, SequenceLengths};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const D: usize = 8;
const BLOCKS: usize = 3;

/// States 0..=BLOCKS and final_norm; state s at position i mixes the embedding of token i with
/// (for s ≥ 1) that of token i − 1, plus noise, so deeper states know more context.
struct Synthetic {
    calls: AtomicUsize,
    /// Fail (as a crashed run would) on this forward call.
    fail_at: Option<usize>,
    /// Put a NaN in state 2 at this token position of every sequence.
    nan_at: Option<usize>,
}

impl Synthetic {
    fn new() -> Self {
        Synthetic { calls: AtomicUsize::new(0), fail_at: None, nan_at: None }
    }
}

fn embed(token: u32, c: usize) -> f64 {
    Philox::new(500 + token as u64, 1).normal(c as u64)
}

impl StateSource for Synthetic {
    fn state_names(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..=BLOCKS).map(|s| s.to_string()).collect();
        v.push("final_norm".into());
        v
    }
    fn dim(&self) -> usize {
        D
    }
    fn forward(&self, tokens: &[u32], nll: bool) -> Result<SequenceStates, AnalysisError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_at == Some(call) {
            return Err(AnalysisError::Source("simulated crash".into()));
        }
        let noise = Philox::new(tokens.iter().map(|&t| t as u64).sum::<u64>() + tokens.len() as u64, 9);
        let states = (0..=BLOCKS + 1)
            .map(|s| {
                let mut rows = Vec::with_capacity(tokens.len() * D);
                for (i, &t) in tokens.iter().enumerate() {
                    for c in 0..D {
                        let prev = if i > 0 { embed(tokens[i - 1], c) } else { 0.0 };
                        let mix = (s.min(BLOCKS) as f64) / BLOCKS as f64;
                        let v = embed(t, c) + mix * prev + 0.3 * noise.normal((s * 100_000 + i * D + c) as u64);
                        rows.push(if self.nan_at == Some(i) && s == 2 { f32::NAN } else { v as f32 });
                    }
                }
                rows
            })
            .collect();
        let next_token_nll = nll.then(|| (0..tokens.len().saturating_sub(1)).map(|i| 1.0 + (tokens[i + 1] % 5) as f32 * 0.25).collect());
        Ok(SequenceStates { states, next_token_nll })
    }
}

fn corpus() -> Vec<Vec<u32>> {
    let rng = Philox::new(3, 3);
    (0..12u64)
        .map(|d| {
            let len = 5 + (d as usize * 7) % 40;
            (0..len).map(|i| (rng.below(d * 1000 + i as u64, 9) as u32).pow(2) % 23).collect()
        })
        .collect()
}

fn settings(backoff: Backoff) -> AnalysisSettings {
    AnalysisSettings {
        labels: LabelConfig { orders: 3, backoff, backoff_min_count: 2 },
        weighting: Weighting::Frequency,
        min_count: 1,
        n_bins: 20,
        reference: ReferenceSpec::Seed(7),
        calibration: Calibration::FindEps,
        null_seed: 11,
        aggregate: Aggregate::RatioOfMeans,
        layers: LayerSelection::All,
        checkpointing: Checkpointing { every: Duration::from_secs(3600), every_sequences: Some(1) },
        keep_partials: true,
        layer_groups: 1,
        max_memory: None,
        estimate_time: false,
    }
}

fn run(source: &Synthetic, docs: &[Vec<u32>], dir: &std::path::Path, backoff: Backoff) -> Result<AnalysisOutput, AnalysisError> {
    run_shard(source, docs, dir, backoff, None, None)
}

fn run_shard(source: &Synthetic, docs: &[Vec<u32>], dir: &std::path::Path, backoff: Backoff, shard: Option<Shard>, preference: Option<PreferenceInput>) -> Result<AnalysisOutput, AnalysisError> {
    let input = AnalysisInput { source, documents: docs, preference, identity: serde_json::json!({"model": "synthetic"}), run_dir: dir, shard, ngram_counts: None, model_bytes: 0 };
    analyze(input, settings(backoff), &Quiet, &AtomicBool::new(false))
}

/// Pairs whose chosen responses repeat one token pattern and rejected ones another.
fn preferences() -> PreferenceInput {
    let (mut sequences, mut lengths) = (Vec::new(), Vec::new());
    for p in 0..9u32 {
        let prompt: Vec<u32> = (0..4 + p % 3).map(|i| (i * 7 + p) % 23).collect();
        for chosen in [true, false] {
            let mut seq = prompt.clone();
            seq.extend((0..5 + p % 4).map(|i| if chosen { 1 + i % 3 } else { 12 + (i * 5) % 7 }));
            lengths.push(SequenceLengths { chosen, prompt_tokens: prompt.len(), len: seq.len() });
            sequences.push(seq);
        }
    }
    PreferenceInput { sequences, lengths, mode: PrefTokens::Response }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300),
        (None, None) => true,
        _ => false,
    }
}

#[test]
fn shards_merged_equal_one_run_and_refuse_to_mix() {
    let docs = corpus();
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = run_shard(&Synthetic::new(), &docs, whole_dir.path(), Backoff::Katz, None, Some(preferences())).unwrap();
    assert!(whole.rows.iter().all(|r| r.get("preference").is_some()));
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<std::path::PathBuf> = (0..3).map(|i| root.path().join(format!("shard{i}"))).collect();
    for (i, dir) in dirs.iter().enumerate().rev() {
        run_shard(&Synthetic::new(), &docs, dir, Backoff::Katz, Some(Shard { index: i, count: 3 }), Some(preferences())).unwrap();
    }
    let merged = merge_units(&dirs).unwrap();
    assert_eq!(merged.counts, whole.counts);
    for (a, b) in whole.rows.iter().zip(&merged.rows) {
        for ((c, x), (_, y)) in a.values.iter().zip(&b.values) {
            assert!(close(*x, *y), "layer {}, {c}: {x:?} vs {y:?}", a.layer);
        }
    }
    for ((c, x), (_, y)) in whole.model.values.iter().zip(&merged.model.values) {
        assert!(close(*x, *y), "model {c}: {x:?} vs {y:?}");
    }
    let err = merge_units(&dirs[..2]).err().unwrap().to_string();
    assert!(err.contains("shard 2 of 3 is missing"), "{err}");
    let err = merge_units(&[dirs[0].clone(), dirs[0].clone(), dirs[1].clone()]).err().unwrap().to_string();
    assert!(err.contains("given twice"), "{err}");
    let err = merge_units(&[dirs[0].clone(), whole_dir.path().to_path_buf()]).err().unwrap().to_string();
    assert!(err.contains("not shards of one run"), "{err}");
}

#[test]
fn two_phase_run_equals_one_accumulator_per_state_updated_per_document() {
    let docs = corpus();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&Synthetic::new(), &docs, dir.path(), Backoff::Katz).unwrap();

    // The all-in-memory reference: every state's accumulator with every label set, updated once
    // per document with the raw hidden states.
    let source = Synthetic::new();
    let labels = CorpusLabels::build(&settings(Backoff::Katz).labels, &docs).unwrap();
    let w = ReferencePoints::from_seed(7, 20, D).unwrap();
    let cal = Calibration::FindEps;
    let assigner = SoftAssigner::new(&w, cal.epsilon(20, D).unwrap()).unwrap();
    let null = NullPermutation::new(labels.positions(), 11).unwrap();
    let names = source.state_names();
    let mut accs: Vec<Accumulator> = names
        .iter()
        .map(|_| {
            let mut acc = Accumulator::new(Settings::new(&assigner, &cal));
            for (s, name) in labels.names().into_iter().enumerate() {
                let spec = LabelSetSpec { name, weighting: Weighting::Frequency, min_count: 1, null: true, per_label: false };
                acc.add_label_set(spec, labels.index(s).clone(), true).unwrap();
            }
            acc
        })
        .collect();
    for (d, tokens) in docs.iter().enumerate() {
        let pos = labels.document(d);
        if pos.valid.is_empty() {
            continue;
        }
        let states = source.forward(tokens, false).unwrap().states;
        let nulls: Vec<Vec<u32>> = (0..labels.names().len()).map(|s| null.null_ids(labels.ids(s), pos.global.clone()).unwrap()).collect();
        let batches: Vec<LabelBatch<'_>> = (0..nulls.len()).map(|s| LabelBatch { ids: labels.doc_ids(s, d), null_ids: Some(&nulls[s]) }).collect();
        for (acc, rows) in accs.iter_mut().zip(&states) {
            acc.update(&assigner, Rows::F32(&rows[pos.valid.start * D..pos.valid.end * D]), &batches).unwrap();
        }
    }
    assert_eq!(out.estimates.len(), names.len());
    for ((acc, got), name) in accs.iter().zip(&out.estimates).zip(&names) {
        let want = acc.estimate().unwrap();
        assert_eq!(want.positions, got.positions);
        assert_eq!(want.entropy.to_bits(), got.entropy.to_bits(), "layer {name}: H");
        for (a, b) in want.label_sets.iter().zip(&got.label_sets) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.mutual_information.to_bits(), b.mutual_information.to_bits(), "layer {name}, {}", a.name);
            assert_eq!(a.null_mutual_information.map(f64::to_bits), b.null_mutual_information.map(f64::to_bits), "layer {name}, {} null", a.name);
        }
    }
    // The synthetic model puts token identity in every state: complexity_1 clearly above its null.
    let row = out.rows.iter().find(|r| r.layer == "2").unwrap();
    assert!(row.get("complexity_1").unwrap() > row.get("complexity_null_1").unwrap() + 0.05, "{row:?}");
    let loss = out.model.get("next_token_loss").unwrap();
    assert!(loss > 1.0 && loss < 2.0, "loss {loss}");
    assert!(out.counts.too_short_documents > 0, "the corpus has documents shorter than 2K");
    // Partials are written per state and nothing of the work folder is needed afterwards.
    for name in &names {
        assert!(dir.path().join("partials/corpus").join(format!("{name}.safetensors")).exists());
    }
}

#[test]
fn a_run_that_crashed_resumes_to_the_same_bits() {
    let docs = corpus();
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = run(&Synthetic::new(), &docs, whole_dir.path(), Backoff::None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for fail_at in [2, 5] {
        let crashing = Synthetic { fail_at: Some(fail_at), ..Synthetic::new() };
        let err = run(&crashing, &docs, dir.path(), Backoff::None).err().expect("the simulated crash stops the run");
        assert!(err.to_string().contains("simulated crash"), "{err}");
    }
    let last = Synthetic::new();
    let resumed = run(&last, &docs, dir.path(), Backoff::None).unwrap();
    let analysed = whole.counts.documents - whole.counts.too_short_documents;
    assert_eq!(last.calls.load(Ordering::SeqCst), analysed - 2 - 5, "the resumed run redoes no finished document");
    for (a, b) in whole.rows.iter().zip(&resumed.rows) {
        assert_eq!(a.layer, b.layer);
        for ((c, x), (_, y)) in a.values.iter().zip(&b.values) {
            assert_eq!(x.map(f64::to_bits), y.map(f64::to_bits), "layer {}, {c}", a.layer);
        }
    }
    assert_eq!(whole.model, resumed.model);
    // A resume with other settings is refused rather than mixed in.
    let other = tempfile::tempdir().unwrap();
    let crashing = Synthetic { fail_at: Some(3), ..Synthetic::new() };
    assert!(run(&crashing, &docs, other.path(), Backoff::None).is_err());
    let err = run(&Synthetic::new(), &docs, other.path(), Backoff::Katz).err().unwrap().to_string();
    assert!(err.contains("other settings"), "{err}");
}

#[test]
fn a_non_finite_hidden_state_names_its_layer_and_position() {
    let docs = corpus();
    let dir = tempfile::tempdir().unwrap();
    let source = Synthetic { nan_at: Some(9), ..Synthetic::new() };
    let err = run(&source, &docs, dir.path(), Backoff::None).err().unwrap().to_string();
    assert!(err.contains("layer 2") && err.contains("token position 9") && err.contains("non-finite"), "{err}");
}

#[test]
fn a_model_error_in_a_shard_names_the_run_wide_sequence() {
    let docs = corpus();
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard { index: 2, count: 3 };
    // The first call of the shard fails: that is its first document with a valid position.
    let first = shard.range(docs.len()).find(|&d| docs[d].len() >= 6).unwrap();
    assert!(first > 0);
    let crashing = Synthetic { fail_at: Some(0), ..Synthetic::new() };
    match run_shard(&crashing, &docs, dir.path(), Backoff::None, Some(shard), None).err().unwrap() {
        AnalysisError::SourceAt { pass, sequence, reason } => {
            assert_eq!((pass, sequence, reason.as_str()), ("corpus", first, "simulated crash"));
        }
        other => panic!("expected the sequence to be named: {other}"),
    }
    // A bad hidden state in a shard is numbered run-wide too.
    let nan = Synthetic { nan_at: Some(9), ..Synthetic::new() };
    let dir = tempfile::tempdir().unwrap();
    match run_shard(&nan, &docs, dir.path(), Backoff::None, Some(shard), None).err().unwrap() {
        AnalysisError::BadHiddenState { sequence, .. } => assert!(shard.range(docs.len()).contains(&sequence), "sequence {sequence}"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_corpus_with_no_valid_position_is_refused() {
    let docs = vec![vec![1, 2, 3], vec![4]];
    let dir = tempfile::tempdir().unwrap();
    let err = run(&Synthetic::new(), &docs, dir.path(), Backoff::None).err().unwrap().to_string();
    assert!(err.contains("shorter than 6 tokens"), "{err}");
}

#[test]
fn without_partials_the_numbers_are_the_same_and_nothing_merges() {
    let docs = corpus();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let with = run(&Synthetic::new(), &docs, a.path(), Backoff::Katz).unwrap();
    let mut s = settings(Backoff::Katz);
    s.keep_partials = false;
    let input = AnalysisInput { source: &Synthetic::new(), documents: &docs, preference: None, identity: serde_json::json!({"model": "synthetic"}), run_dir: b.path(), shard: None, ngram_counts: None, model_bytes: 0 };
    let without = analyze(input, s, &Quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(with.rows, without.rows);
    assert!(!b.path().join("partials/corpus/0.safetensors").exists());
    let err = merge_units(&[b.path().to_path_buf()]).err().unwrap().to_string();
    assert!(err.contains("without partial statistics"), "{err}");
}

#[test]
fn layer_groups_change_no_bit() {
    let docs = corpus();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = run(&Synthetic::new(), &docs, a.path(), Backoff::Katz).unwrap();
    let source = Synthetic::new();
    let mut s = settings(Backoff::Katz);
    s.layer_groups = 3;
    let input = AnalysisInput { source: &source, documents: &docs, preference: Some(preferences()), identity: serde_json::json!({"model": "synthetic"}), run_dir: b.path(), shard: None, ngram_counts: None, model_bytes: 0 };
    let grouped = analyze(input, s, &Quiet, &AtomicBool::new(false)).unwrap();
    for (x, y) in one.rows.iter().zip(&grouped.rows) {
        assert_eq!(x.layer, y.layer);
        for ((c, p), (_, q)) in x.values.iter().zip(&y.values) {
            if !c.starts_with("preference") {
                assert_eq!(p.map(f64::to_bits), q.map(f64::to_bits), "layer {} {c}", x.layer);
            }
        }
    }
    assert_eq!(one.model.get("next_token_loss"), grouped.model.get("next_token_loss"));
    let forwards = source.calls.load(Ordering::SeqCst);
    let analysed = one.counts.documents - one.counts.too_short_documents;
    assert_eq!(forwards, 3 * analysed + 3 * 18, "three forward passes over the documents and the 18 preference sequences");
}
