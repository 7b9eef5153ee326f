//! The training loop and everything it writes:
//!
//! ```text
//! OUTPUT/
//!   tokenizer.json              the tokenizer every checkpoint shares
//!   checkpoint-<step>/          config.json, model.safetensors, tokenizer.json,
//!                               tokenizer_config.json, trainer_state.json
//!   train_log.csv               step, tokens, loss, lr, grad_norm, eval_loss, elapsed_s
//!   manifest.toml               one [[model]] entry per checkpoint (the sweep-manifest format)
//! ```
//!
//! Each checkpoint directory is written into a temporary directory beside it, fsynced and renamed,
//! so it appears whole or not at all; the log and the manifest are rewritten atomically after each
//! checkpoint, so a run killed part-way leaves a valid manifest of the checkpoints it finished.
//!
//! A run is a pure function of (documents, tokenizer, shape, settings, seed) and the thread
//! count: initial weights and window starts come from Philox, every reduction has a fixed order.

use crate::data::{eval_batches, TokenStream, WindowSampler};
use crate::error::TrainError;
use crate::model::{ModelShape, TrainModel};
use crate::optim::{AdamW, AdamWConfig};
use crate::schedule::{checkpoint_steps, LrSchedule};
use crate::tokenizer::{encode_documents, tokenizer_json, BOS_TOKEN};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokenizers::Tokenizer;

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub steps: u64,
    /// Windows per step.
    pub batch: usize,
    /// Tokens per window.
    pub context: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the last step (end of the cosine).
    pub min_lr: f64,
    pub warmup: u64,
    pub seed: u64,
    /// How many log-spaced checkpoints to save (the last step is always one).
    pub checkpoints: usize,
    /// At most this many held-out windows of `context` tokens are scored at each checkpoint.
    pub eval_windows: usize,
    pub optimizer: AdamWConfig,
}

impl TrainSettings {
    /// Defaults for a small model: lr 3e-3 decaying to 3e-4, 10% warm-up, AdamW(0.9, 0.95),
    /// weight decay 0.1, clipping at 1, 8 checkpoints, 64 evaluation windows.
    pub fn new(steps: u64, batch: usize, context: usize, seed: u64) -> Self {
        TrainSettings { steps, batch, context, lr: 3e-3, min_lr: 3e-4, warmup: steps / 10, seed, checkpoints: 8, eval_windows: 64, optimizer: AdamWConfig::default() }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        if self.steps == 0 {
            return Err(TrainError::setting("steps", "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(TrainError::setting("batch", "must be at least 1"));
        }
        if self.context == 0 {
            return Err(TrainError::setting("context", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::setting("lr", format!("must be a positive number, found {}", self.lr)));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(TrainError::setting("min-lr", format!("must be in [0, lr = {}], found {}", self.lr, self.min_lr)));
        }
        if self.warmup > self.steps {
            return Err(TrainError::setting("warmup", format!("{} warm-up steps exceed the {} steps", self.warmup, self.steps)));
        }
        if self.checkpoints == 0 {
            return Err(TrainError::setting("checkpoints", "must be at least 1"));
        }
        let o = &self.optimizer;
        if !(0.0..1.0).contains(&o.beta1) || !(0.0..1.0).contains(&o.beta2) {
            return Err(TrainError::setting("betas", format!("must be in [0, 1), found ({}, {})", o.beta1, o.beta2)));
        }
        if !(o.eps > 0.0 && o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            return Err(TrainError::setting("weight-decay", format!("eps must be positive and weight decay non-negative, found {} and {}", o.eps, o.weight_decay)));
        }
        if let Some(c) = o.grad_clip {
            if !(c > 0.0 && c.is_finite()) {
                return Err(TrainError::setting("grad-clip", format!("must be positive, found {c}")));
            }
        }
        Ok(())
    }

    pub fn schedule(&self) -> LrSchedule {
        LrSchedule { lr: self.lr, min_lr: self.min_lr, warmup: self.warmup, total: self.steps }
    }

    pub fn checkpoint_steps(&self) -> Vec<u64> {
        checkpoint_steps(self.steps, self.checkpoints)
    }

    pub fn tokens_per_step(&self) -> u64 {
        (self.batch * self.context) as u64
    }
}

/// One training run.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The run's name: the manifest's `family` and `name` of every checkpoint.
    pub name: String,
    pub shape: ModelShape,
    pub settings: TrainSettings,
    pub output: PathBuf,
    /// Replace the checkpoints, log, manifest and tokenizer of an earlier run in `output`.
    pub overwrite: bool,
}

/// What a step reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub step: u64,
    pub tokens: u64,
    /// Mean cross-entropy (nats/token) of this step's batch, before its update.
    pub loss: f64,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub elapsed_s: f64,
}

/// A checkpoint that was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub step: u64,
    pub tokens: u64,
    pub path: PathBuf,
    pub loss: f64,
    /// Mean cross-entropy on the held-out windows (None without held-out text).
    pub eval_loss: Option<f64>,
    pub lr: f64,
}

/// Hooks for progress display; every method has an empty default.
pub trait TrainObserver {
    fn start(&mut self, _steps: u64, _params: u64) {}
    fn step(&mut self, _report: &StepReport) {}
    fn checkpoint(&mut self, _info: &CheckpointInfo) {}
    fn finish(&mut self) {}
    /// Polled after every step: true ends the run early, after a checkpoint of the current step
    /// (so the manifest and log stay valid); `train` then returns [`TrainError::Interrupted`].
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that shows nothing.
pub struct Silent;
impl TrainObserver for Silent {}

/// `trainer_state.json` of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub name: String,
    pub step: u64,
    pub tokens: u64,
    pub loss: f64,
    pub eval_loss: Option<f64>,
    pub lr: f64,
    pub grad_norm: f64,
    pub seed: u64,
    /// Seconds since the run started (tokenisation included).
    pub elapsed_s: f64,
    /// rayon threads (results are reproducible for a given count).
    pub threads: usize,
    pub params: u64,
    pub model: ModelShape,
    pub settings: TrainSettings,
    pub train_documents: usize,
    pub train_tokens: u64,
    pub eval_documents: usize,
    pub eval_tokens: u64,
    pub tokenizer_sha256: String,
}

/// What a finished run produced.
pub struct TrainSummary {
    /// The trained model as it is after the last step (the last checkpoint holds the same values).
    pub model: TrainModel,
    pub checkpoints: Vec<CheckpointInfo>,
    pub params: u64,
    pub manifest: PathBuf,
    pub log: PathBuf,
    pub train_tokens: u64,
    pub eval_tokens: u64,
    pub elapsed_s: f64,
    /// Optimisation steps per second over the whole loop (checkpoint writing included).
    pub steps_per_s: f64,
    pub final_loss: f64,
}

/// One row of `train_log.csv`.
#[derive(Debug, Clone)]
struct LogRow {
    report: StepReport,
    eval_loss: Option<f64>,
}

/// Trains `job.shape` on `train_docs` (each encoded with its BOS and laid end to end), scoring
/// `eval_docs` at every checkpoint, and writes the run into `job.output` (see the module notes).
/// The model's vocabulary must be the tokenizer's (`get_vocab_size(true)`).
pub fn train<S: AsRef<str> + Sync>(job: &TrainJob, tokenizer: &Tokenizer, train_docs: &[S], eval_docs: &[S], observer: &mut dyn TrainObserver) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    crate::keep_freed_memory();
    let settings = &job.settings;
    settings.validate()?;
    job.shape.validate()?;
    if job.shape.max_positions < settings.context {
        return Err(TrainError::setting("context", format!("{} exceeds the model's {} positions", settings.context, job.shape.max_positions)));
    }
    let vocab = tokenizer.get_vocab_size(true);
    if vocab != job.shape.vocab_size {
        return Err(TrainError::setting("vocab-size", format!("the model has {} rows but the tokenizer {vocab} tokens", job.shape.vocab_size)));
    }
    if tokenizer.token_to_id(BOS_TOKEN) != Some(job.shape.bos_token_id) {
        return Err(TrainError::Tokenizer(format!("the tokenizer's {BOS_TOKEN} is not id {}", job.shape.bos_token_id)));
    }
    prepare_output(&job.output, job.overwrite)?;

    let train_stream = TokenStream::new(encode_documents(tokenizer, train_docs)?);
    let eval_stream = TokenStream::new(encode_documents(tokenizer, eval_docs)?);
    let sampler = WindowSampler::new(&train_stream, settings.seed, settings.batch, settings.context)?;
    let evals = eval_batches(&eval_stream, settings.context, settings.batch, settings.eval_windows);

    let tok_json = tokenizer_json(tokenizer)?;
    let tok_sha = sha256_hex(tok_json.as_bytes());
    infoplane_store::write_atomic(&job.output.join("tokenizer.json"), tok_json.as_bytes())?;

    let model = TrainModel::init(&job.shape, settings.seed)?;
    let params = job.shape.parameter_count();
    let mut opt = AdamW::new(&model.params, settings.optimizer);
    let schedule = settings.schedule();
    let ckpt_steps = settings.checkpoint_steps();
    let threads = rayon::current_num_threads();
    observer.start(settings.steps, params);

    let mut log: Vec<LogRow> = Vec::with_capacity(settings.steps as usize);
    let mut written: Vec<CheckpointInfo> = Vec::new();
    let loop_started = Instant::now();
    let mut next_ckpt = 0;
    for step in 1..=settings.steps {
        let batch = sampler.batch(&train_stream, step);
        let loss = model.loss(&batch.inputs, &batch.targets, batch.rows, batch.context)?;
        let loss_value = loss.to_scalar::<f32>()? as f64;
        if !loss_value.is_finite() {
            return Err(TrainError::Diverged { step, loss: loss_value });
        }
        let grads = loss.backward()?;
        let lr = schedule.at(step);
        let grad_norm = opt.step(&model.params, &grads, lr)?;
        if !grad_norm.is_finite() {
            return Err(TrainError::Diverged { step, loss: grad_norm });
        }
        drop(grads);
        let report = StepReport { step, tokens: step * settings.tokens_per_step(), loss: loss_value, lr, grad_norm, elapsed_s: started.elapsed().as_secs_f64() };
        observer.step(&report);
        log.push(LogRow { report: report.clone(), eval_loss: None });

        let stop = observer.should_stop();
        let scheduled = next_ckpt < ckpt_steps.len() && ckpt_steps[next_ckpt] == step;
        if scheduled || stop {
            if scheduled {
                next_ckpt += 1;
            }
            let eval_loss = evaluate(&model, &evals)?;
            log.last_mut().expect("pushed above").eval_loss = eval_loss;
            let state = TrainerState {
                name: job.name.clone(),
                step,
                tokens: report.tokens,
                loss: loss_value,
                eval_loss,
                lr,
                grad_norm,
                seed: settings.seed,
                elapsed_s: started.elapsed().as_secs_f64(),
                threads,
                params,
                model: job.shape.clone(),
                settings: settings.clone(),
                train_documents: train_stream.documents,
                train_tokens: train_stream.len() as u64,
                eval_documents: eval_stream.documents,
                eval_tokens: eval_stream.len() as u64,
                tokenizer_sha256: tok_sha.clone(),
            };
            let path = write_checkpoint(&job.output, &model, &tok_json, &state)?;
            let info = CheckpointInfo { step, tokens: report.tokens, path, loss: loss_value, eval_loss, lr };
            written.push(info.clone());
            write_log(&job.output.join("train_log.csv"), &log)?;
            write_manifest(&job.output.join("manifest.toml"), &job.name, params, &written)?;
            observer.checkpoint(&info);
            if stop && step < settings.steps {
                observer.finish();
                return Err(TrainError::Interrupted { step, path: info.path });
            }
        }
    }
    observer.finish();
    let loop_s = loop_started.elapsed().as_secs_f64();
    Ok(TrainSummary {
        model,
        checkpoints: written,
        params,
        manifest: job.output.join("manifest.toml"),
        log: job.output.join("train_log.csv"),
        train_tokens: train_stream.len() as u64,
        eval_tokens: eval_stream.len() as u64,
        elapsed_s: started.elapsed().as_secs_f64(),
        steps_per_s: settings.steps as f64 / loop_s.max(1e-9),
        final_loss: log.last().map_or(f64::NAN, |r| r.report.loss),
    })
}

/// Mean held-out cross-entropy over the evaluation windows (all of `context` tokens).
pub fn evaluate(model: &TrainModel, batches: &[crate::data::Batch]) -> Result<Option<f64>, TrainError> {
    if batches.is_empty() {
        return Ok(None);
    }
    let (mut sum, mut rows) = (0.0f64, 0usize);
    for b in batches {
        let loss = model.loss(&b.inputs, &b.targets, b.rows, b.context)?.to_scalar::<f32>()? as f64;
        sum += loss * b.rows as f64;
        rows += b.rows;
    }
    Ok(Some(sum / rows as f64))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Names this trainer writes into an output directory.
fn is_run_file(name: &str) -> bool {
    name.starts_with("checkpoint-") || matches!(name, "manifest.toml" | "train_log.csv" | "tokenizer.json")
}

fn prepare_output(dir: &Path, overwrite: bool) -> Result<(), TrainError> {
    if dir.exists() && !dir.is_dir() {
        return Err(TrainError::File { path: dir.to_path_buf(), reason: "exists and is not a directory".into() });
    }
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let mut existing: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let entry = entry.map_err(|e| TrainError::io(dir, e))?;
        if is_run_file(&entry.file_name().to_string_lossy()) {
            existing.push(entry.path());
        }
    }
    existing.sort();
    if existing.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(TrainError::File {
            path: dir.to_path_buf(),
            reason: format!("already holds a training run ({} and {} more); choose another output directory or pass --overwrite", existing[0].display(), existing.len() - 1),
        });
    }
    for p in existing {
        let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        r.map_err(|e| TrainError::io(&p, e))?;
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut f = std::fs::File::create(path).map_err(|e| TrainError::io(path, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| TrainError::io(path, e))
}

/// `tokenizer_config.json` naming the special token for transformers' `AutoTokenizer`. No
/// `add_bos_token`: tokenizer.json's post-processor already adds the BOS, and that flag would make
/// loaders rebuild the post-processor.
fn tokenizer_config(context: usize) -> String {
    let v = serde_json::json!({
        "bos_token": BOS_TOKEN,
        "clean_up_tokenization_spaces": false,
        "eos_token": BOS_TOKEN,
        "model_max_length": context,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    serde_json::to_string_pretty(&v).expect("plain JSON")
}

/// Writes `OUTPUT/checkpoint-<step>/` atomically (temporary directory, fsync, rename).
fn write_checkpoint(out: &Path, model: &TrainModel, tok_json: &str, state: &TrainerState) -> Result<PathBuf, TrainError> {
    let final_path = out.join(format!("checkpoint-{}", state.step));
    let tmp = tempfile::Builder::new().prefix(&format!(".checkpoint-{}-", state.step)).tempdir_in(out).map_err(|e| TrainError::io(out, e))?;
    let t = tmp.path();
    let config = serde_json::to_string_pretty(&model.shape.hf_config()).expect("plain JSON");
    write_synced(&t.join("config.json"), config.as_bytes())?;
    write_synced(&t.join("model.safetensors"), &model.safetensors_bytes()?)?;
    write_synced(&t.join("tokenizer.json"), tok_json.as_bytes())?;
    write_synced(&t.join("tokenizer_config.json"), tokenizer_config(state.settings.context).as_bytes())?;
    let state_json = serde_json::to_string_pretty(state).expect("plain JSON");
    write_synced(&t.join("trainer_state.json"), state_json.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // tempdir creates 0700; checkpoints are outputs to share like any other.
        std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).map_err(|e| TrainError::io(t, e))?;
    }
    if final_path.exists() {
        std::fs::remove_dir_all(&final_path).map_err(|e| TrainError::io(&final_path, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &final_path).map_err(|e| TrainError::io(&final_path, e))?;
    if let Ok(d) = std::fs::File::open(out) {
        let _ = d.sync_all();
    }
    Ok(final_path)
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map(infoplane_store::format_f64).unwrap_or_default()
}

fn write_log(path: &Path, rows: &[LogRow]) -> Result<(), TrainError> {
    let mut text = String::from("step,tokens,loss,lr,grad_norm,eval_loss,elapsed_s\n");
    for r in rows {
        let p = &r.report;
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{:.3}",
            p.step,
            p.tokens,
            infoplane_store::format_f64(p.loss),
            infoplane_store::format_f64(p.lr),
            infoplane_store::format_f64(p.grad_norm),
            fmt_opt(r.eval_loss),
            p.elapsed_s
        );
    }
    Ok(infoplane_store::write_atomic(path, text.as_bytes())?)
}

/// A TOML basic string (JSON's escapes are a subset of TOML's).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

fn write_manifest(path: &Path, name: &str, params: u64, ckpts: &[CheckpointInfo]) -> Result<(), TrainError> {
    let mut text = String::from("# Checkpoints written by `infoplane train`; paths are relative to this file.\n");
    for c in ckpts {
        let dir = c.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = write!(
            text,
            "\n[[model]]\nmodel = {}\nname = {}\nfamily = {}\nstep = {}\ntokens = {}\nparams = {}\n",
            toml_str(&dir),
            toml_str(name),
            toml_str(name),
            c.step,
            c.tokens,
            params
        );
    }
    Ok(infoplane_store::write_atomic(path, text.as_bytes())?)
}
