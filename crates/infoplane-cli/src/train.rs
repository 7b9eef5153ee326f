//! `infoplane train`: a small Llama-architecture model and its byte-level BPE tokenizer, trained
//! from scratch on a corpus, with log-spaced checkpoints in Hugging Face layout and a sweep
//! manifest that `analyze`/`sweep` read.

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use infoplane_store::{read_corpus, write_atomic, CorpusOptions};
use infoplane_train::{shape_for, train, train_tokenizer, AdamWConfig, CheckpointInfo, StepReport, TrainJob, TrainObserver, TrainSettings, Tokenizer};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Args)]
pub struct TrainArgs {
    /// Corpus: JSONL(.gz), plain text (a document a line), a directory of text files, or Parquet.
    #[arg(long, value_name = "FILE")]
    pub corpus: PathBuf,
    /// The JSON field or Parquet column that holds the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Use at most this many documents (sampled with --doc-seed when the corpus has more).
    #[arg(long)]
    pub max_docs: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub doc_seed: u64,
    /// Hold out the last K documents (in corpus order) from the tokenizer and the model: they are
    /// scored at every checkpoint and written to OUTPUT/heldout.jsonl for analysis.
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub holdout_docs: usize,
    /// Transformer blocks.
    #[arg(long)]
    pub layers: usize,
    /// Hidden size d.
    #[arg(long)]
    pub width: usize,
    /// Attention heads (width / heads must be even).
    #[arg(long)]
    pub heads: usize,
    /// Key/value heads (grouped-query attention); default: --heads.
    #[arg(long)]
    pub kv_heads: Option<usize>,
    /// MLP width; default: Llama's 8·width/3 rounded up to a multiple of 8.
    #[arg(long)]
    pub intermediate: Option<usize>,
    /// Tokenizer size: BOS + 256 bytes + merges (ignored with --tokenizer).
    #[arg(long, default_value_t = 512)]
    pub vocab_size: usize,
    /// Reuse this tokenizer.json (e.g. another run's) instead of training one.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Share the input embedding with the output layer.
    #[arg(long)]
    pub tie_embeddings: bool,
    /// Optimisation steps.
    #[arg(long)]
    pub steps: u64,
    /// Windows per step.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Tokens per window (also the model's max_position_embeddings).
    #[arg(long, default_value_t = 64)]
    pub context: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Learning rate at the last step; default: --lr / 10.
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Linear warm-up steps; default: a tenth of --steps.
    #[arg(long)]
    pub warmup: Option<u64>,
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    #[arg(long, default_value_t = 1.0)]
    pub grad_clip: f64,
    /// Seed of the initial weights and of the training windows.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Log-spaced checkpoints to save, from step 1 to the last step.
    #[arg(long, default_value_t = 8)]
    pub checkpoints: usize,
    /// Held-out windows scored at each checkpoint.
    #[arg(long, default_value_t = 64)]
    pub eval_windows: usize,
    /// Name of the run in the manifest (default: L<layers>-d<width>).
    #[arg(long)]
    pub name: Option<String>,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Replace an earlier run in the output directory.
    #[arg(long)]
    pub overwrite: bool,
    /// Threads for the tensor ops; default 1, or RAYON_NUM_THREADS when set. Small models train
    /// fastest on one thread (per-op work is too small to split; measured 40 vs 6–33 steps/s on 2
    /// busy cores); results are identical for any count.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A training run's progress bar; Ctrl-C (`stop`) ends the run at its next step with a checkpoint.
pub(crate) struct Bar {
    pub bar: ProgressBar,
    pub stop: Arc<AtomicBool>,
    /// Print a line at every checkpoint (off when several bars share the screen).
    pub log_checkpoints: bool,
}

impl TrainObserver for Bar {
    fn start(&mut self, steps: u64, params: u64) {
        self.bar.set_length(steps);
        self.bar.set_message(format!("{params} params"));
    }
    fn step(&mut self, r: &StepReport) {
        self.bar.set_position(r.step);
        if r.step.is_multiple_of(5) || r.step == 1 {
            self.bar.set_message(format!("loss {:.3}", r.loss));
        }
    }
    fn checkpoint(&mut self, c: &CheckpointInfo) {
        if !self.log_checkpoints {
            return;
        }
        let eval = c.eval_loss.map(|e| format!(", held-out loss {e:.4}")).unwrap_or_default();
        self.bar.println(format!("checkpoint step {} ({} tokens): loss {:.4}{eval}", c.step, c.tokens, c.loss));
    }
    fn finish(&mut self) {
        self.bar.finish();
    }
    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Sets RAYON_NUM_THREADS and CANDLE_NUM_THREADS (default 1, or RAYON_NUM_THREADS when set).
/// candle sizes its thread pools from these when it first runs an op, so call this before any
/// tensor work (and before other threads start). With 1, candle runs every op on the calling
/// thread, so several models can train at once on separate `std::thread`s without contention.
pub(crate) fn set_threads(threads: Option<usize>) -> Result<usize> {
    let n = match threads {
        Some(0) => bail!("--threads: must be at least 1"),
        Some(n) => n,
        None => std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(1),
    };
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    Ok(n)
}

pub fn run(a: TrainArgs, stop: Arc<AtomicBool>) -> Result<()> {
    let threads = set_threads(a.threads)?;
    if !(a.grad_clip >= 0.0) {
        bail!("--grad-clip: must be a non-negative number, found {}", a.grad_clip);
    }
    let corpus = read_corpus(&a.corpus, &CorpusOptions { text_field: a.text_field.clone(), max_docs: a.max_docs, seed: a.doc_seed, ..Default::default() })?;
    let n = corpus.documents.len();
    if a.holdout_docs >= n {
        bail!("--holdout-docs {}: the corpus has only {n} documents, so none would be left to train on", a.holdout_docs);
    }
    let (train_docs, heldout) = corpus.documents.split_at(n - a.holdout_docs);
    let train_texts: Vec<&str> = train_docs.iter().map(|d| d.text.as_str()).collect();
    let eval_texts: Vec<&str> = heldout.iter().map(|d| d.text.as_str()).collect();

    let tokenizer = match &a.tokenizer {
        Some(path) => Tokenizer::from_file(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => train_tokenizer(&train_texts, a.vocab_size)?,
    };
    let shape = shape_for(&tokenizer, a.layers, a.width, a.heads, a.kv_heads, a.intermediate, a.context, a.tie_embeddings)?;
    if a.tokenizer.is_none() && shape.vocab_size < a.vocab_size {
        eprintln!("note: the training text yields only {} tokens (asked for {})", shape.vocab_size, a.vocab_size);
    }
    let mut settings = TrainSettings::new(a.steps, a.batch, a.context, a.seed);
    settings.lr = a.lr;
    settings.min_lr = a.min_lr.unwrap_or(a.lr / 10.0);
    if let Some(w) = a.warmup {
        settings.warmup = w;
    }
    settings.checkpoints = a.checkpoints;
    settings.eval_windows = a.eval_windows;
    settings.optimizer = AdamWConfig { weight_decay: a.weight_decay, grad_clip: (a.grad_clip > 0.0).then_some(a.grad_clip), ..AdamWConfig::default() };
    let name = a.name.clone().unwrap_or_else(|| format!("L{}-d{}", a.layers, a.width));
    let job = TrainJob { name, shape, settings, output: a.output.clone(), overwrite: a.overwrite };

    let bar = if a.quiet { ProgressBar::hidden() } else { ProgressBar::with_draw_target(Some(a.steps), ProgressDrawTarget::stderr()) };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} steps {per_sec} {msg} elapsed {elapsed} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("training");
    let mut observer = Bar { bar, stop, log_checkpoints: true };
    let summary = train(&job, &tokenizer, &train_texts, &eval_texts, &mut observer)?;

    if !heldout.is_empty() {
        let mut text = String::new();
        for d in heldout {
            text.push_str(&serde_json::to_string(&json!({ "text": d.text, "index": d.index }))?);
            text.push('\n');
        }
        let path = a.output.join("heldout.jsonl");
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    let run = json!({
        "corpus": corpus.selection,
        "train_documents": train_docs.len(),
        "heldout_documents": heldout.len(),
        "heldout_indices": heldout.iter().map(|d| d.index).collect::<Vec<_>>(),
        "tokenizer": a.tokenizer.as_ref().map(|p| p.display().to_string()),
        "model": job.shape,
        "params": summary.params,
        "settings": job.settings,
        "threads": threads,
        "train_tokens": summary.train_tokens,
        "heldout_tokens": summary.eval_tokens,
        "elapsed_s": summary.elapsed_s,
        "steps_per_s": summary.steps_per_s,
    });
    write_atomic(&a.output.join("run.json"), serde_json::to_string_pretty(&run)?.as_bytes())?;
    let last = summary.checkpoints.last().expect("the last step is always a checkpoint");
    let eval = last.eval_loss.map(|e| format!(", held-out loss {e:.4}")).unwrap_or_default();
    println!(
        "trained {} ({} params) for {} steps in {:.1} s ({:.1} steps/s): loss {:.4}{eval}",
        job.name, summary.params, job.settings.steps, summary.elapsed_s, summary.steps_per_s, last.loss
    );
    println!("{} checkpoints; manifest: {}", summary.checkpoints.len(), summary.manifest.display());
    Ok(())
}
