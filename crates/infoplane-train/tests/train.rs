//! Training on the bundled C4 sample (data/c4_sample, committed with the repository): the
//! tokenizer, determinism, learning, the files written and their reload through the runtime.

use infoplane_runtime::{resolve, LoadOptions, Model, Want};
use infoplane_train::model::read_safetensors;
use infoplane_train::{shape_for, train, train_tokenizer, Silent, TrainError, TrainJob, TrainSettings, TrainerState, BOS_TOKEN};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn c4() -> &'static Vec<String> {
    static DOCS: OnceLock<Vec<String>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/c4_sample/c4_en_train00000_first1000.jsonl");
        let corpus = infoplane_store::read_corpus(&path, &Default::default()).expect("the bundled C4 sample reads");
        assert_eq!(corpus.documents.len(), 1000);
        corpus.documents.into_iter().map(|d| d.text).collect()
    })
}

fn tokenizer(docs: usize, vocab: usize) -> infoplane_train::Tokenizer {
    train_tokenizer(&c4()[..docs], vocab).unwrap()
}

fn job(dir: &Path, tok: &infoplane_train::Tokenizer, layers: usize, width: usize, steps: u64, seed: u64) -> TrainJob {
    let shape = shape_for(tok, layers, width, 4, Some(2), None, 32, false).unwrap();
    let mut settings = TrainSettings::new(steps, 8, 32, seed);
    settings.checkpoints = 4;
    settings.eval_windows = 16;
    TrainJob { name: format!("test-L{layers}-d{width}"), shape, settings, output: dir.to_path_buf(), overwrite: false }
}

#[test]
fn tokenizer_is_deterministic_lossless_and_adds_bos() {
    let a = tokenizer(200, 400);
    let b = tokenizer(200, 400);
    assert_eq!(a.to_string(false).unwrap(), b.to_string(false).unwrap(), "two trainings on the same text differ");
    assert_eq!(a.get_vocab_size(true), 400);
    assert_eq!(a.token_to_id(BOS_TOKEN), Some(0));
    let c = tokenizer(300, 400);
    assert_ne!(a.to_string(false).unwrap(), c.to_string(false).unwrap(), "more text gave the same merges");
    // Held-out text (document 900) round-trips byte for byte, after a BOS.
    let text = &c4()[900];
    let ids = a.encode(text.as_str(), true).unwrap().get_ids().to_vec();
    assert_eq!(ids[0], 0);
    assert_eq!(ids.iter().filter(|&&i| i == 0).count(), 1, "BOS only at the start");
    assert_eq!(a.decode(&ids[1..], false).unwrap(), *text);
    assert!(ids.len() * 3 < text.len() * 2, "merges compress: {} tokens for {} bytes", ids.len(), text.len());
    assert!(matches!(train_tokenizer(&c4()[..10], 257), Err(TrainError::Setting { setting: "vocab-size", .. })));
}

fn weights(dir: &Path, step: u64) -> Vec<u8> {
    std::fs::read(dir.join(format!("checkpoint-{step}/model.safetensors"))).unwrap()
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let tok = tokenizer(100, 300);
    let docs = &c4()[..100];
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = train(&job(dirs[0].path(), &tok, 1, 32, 12, 7), &tok, docs, &[], &mut Silent).unwrap();
    let b = train(&job(dirs[1].path(), &tok, 1, 32, 12, 7), &tok, docs, &[], &mut Silent).unwrap();
    let c = train(&job(dirs[2].path(), &tok, 1, 32, 12, 8), &tok, docs, &[], &mut Silent).unwrap();
    let steps: Vec<u64> = a.checkpoints.iter().map(|c| c.step).collect();
    assert_eq!(steps, vec![1, 2, 5, 12]);
    for &s in &steps {
        assert_eq!(weights(dirs[0].path(), s), weights(dirs[1].path(), s), "step {s}: same seed, different weights");
        assert_ne!(weights(dirs[0].path(), s), weights(dirs[2].path(), s), "step {s}: another seed, same weights");
    }
    assert_eq!(a.final_loss.to_bits(), b.final_loss.to_bits());
    assert_ne!(a.final_loss.to_bits(), c.final_loss.to_bits());
}

#[test]
fn loss_goes_down_and_checkpoints_reload_through_the_runtime() {
    let tok = tokenizer(400, 512);
    let (train_docs, eval_docs) = (&c4()[..400], &c4()[950..]);
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), &tok, 2, 64, 150, 0);
    j.settings.batch = 16;
    let s = train(&j, &tok, train_docs, eval_docs, &mut Silent).unwrap();
    assert_eq!(s.checkpoints.iter().map(|c| c.step).collect::<Vec<_>>(), vec![1, 5, 28, 150]);

    // Learning: held-out loss starts near ln V (uniform guess) and falls well below it.
    let first = s.checkpoints[0].eval_loss.unwrap();
    let last = s.checkpoints[3].eval_loss.unwrap();
    let uniform = (512f64).ln();
    assert!((first - uniform).abs() < 0.1, "initial held-out loss {first} vs ln V = {uniform}");
    assert!(last < uniform - 1.2, "held-out loss after 150 steps: {last} (ln V = {uniform})");
    let evals: Vec<f64> = s.checkpoints.iter().map(|c| c.eval_loss.unwrap()).collect();
    assert!(evals.windows(2).all(|w| w[1] < w[0]), "held-out loss not decreasing across checkpoints: {evals:?}");

    // Files of a checkpoint.
    let ck = dir.path().join("checkpoint-150");
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "trainer_state.json"] {
        assert!(ck.join(f).is_file(), "{f} missing");
    }
    let state: TrainerState = serde_json::from_str(&std::fs::read_to_string(ck.join("trainer_state.json")).unwrap()).unwrap();
    assert_eq!((state.step, state.tokens, state.seed), (150, 150 * 16 * 32, 0));
    assert_eq!(state.eval_loss, Some(last));
    assert_eq!(state.params, s.params);
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ck.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["num_key_value_heads"], 2);
    let names: Vec<String> = read_safetensors(&ck.join("model.safetensors")).unwrap().into_iter().map(|t| t.0).collect();
    assert_eq!(names.len(), 1 + 2 * 9 + 2);
    assert!(names.contains(&"model.layers.1.self_attn.k_proj.weight".to_string()) && names.contains(&"lm_head.weight".to_string()));

    // Log and manifest.
    let log = std::fs::read_to_string(dir.path().join("train_log.csv")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "step,tokens,loss,lr,grad_norm,eval_loss,elapsed_s");
    assert_eq!(lines.len(), 151);
    assert!(lines[150].starts_with(&format!("150,{},", 150 * 16 * 32)));
    let manifest = infoplane_compare::Manifest::read(&dir.path().join("manifest.toml")).unwrap();
    assert_eq!(manifest.models.len(), 4);
    let m = &manifest.models[3];
    assert_eq!((m.model.as_str(), m.step, m.tokens, m.params), ("checkpoint-150", Some(150), Some(150 * 16 * 32), Some(s.params)));
    assert_eq!(m.family, "test-L2-d64");

    // The runtime loads the checkpoint like any HF Llama and gives the in-memory model's logits.
    let model = Model::load(&resolve(ck.to_str().unwrap()).unwrap(), &LoadOptions::default()).unwrap();
    let text = &eval_docs[0];
    let ids = model.tokenizer().encode(text, true).unwrap();
    assert_eq!(ids, tok.encode(text.as_str(), true).unwrap().get_ids().to_vec(), "runtime tokenizer differs");
    assert_eq!(ids[0], 0, "the runtime's encoding starts with BOS");
    let ids = &ids[..32];
    let out = model.forward(&[ids], Want { hidden: false, logits: true, next_token_nll: false }).unwrap();
    let runtime_logits = out[0].logits.clone().unwrap();
    let ours = s.model.logits(ids, 1, 32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(runtime_logits.len(), ours.len());
    let scale = ours.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = ours.iter().zip(&runtime_logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff <= 1e-5 * scale.max(1.0), "logits differ by {diff} (largest {scale})");
    eprintln!("held-out loss by checkpoint {evals:?}; runtime vs in-memory logits: largest difference {diff:e} (largest logit {scale})");
}

#[test]
fn an_existing_run_is_kept_unless_overwrite() {
    let tok = tokenizer(50, 300);
    let docs = &c4()[..50];
    let dir = tempfile::tempdir().unwrap();
    let mut j = job(dir.path(), &tok, 1, 32, 3, 0);
    train(&j, &tok, docs, &[], &mut Silent).unwrap();
    let before = weights(dir.path(), 3);
    j.settings.seed = 1;
    let err = train(&j, &tok, docs, &[], &mut Silent).err().expect("refused");
    assert!(err.to_string().contains("already holds a training run"), "{err}");
    assert_eq!(weights(dir.path(), 3), before);
    j.overwrite = true;
    train(&j, &tok, docs, &[], &mut Silent).unwrap();
    assert_ne!(weights(dir.path(), 3), before);
    // No temporary directory is left behind.
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(names.iter().all(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.')), "{names:?}");
}

#[test]
fn bad_settings_name_the_setting() {
    let tok = tokenizer(30, 300);
    let docs = &c4()[..30];
    let dir = tempfile::tempdir().unwrap();
    let setting = |j: TrainJob| match train(&j, &tok, docs, &[], &mut Silent) {
        Err(TrainError::Setting { setting, .. }) => setting,
        Err(e) => panic!("other error {e}"),
        Ok(_) => panic!("accepted"),
    };
    let mut j = job(dir.path(), &tok, 1, 32, 3, 0);
    j.settings.warmup = 4;
    assert_eq!(setting(j), "warmup");
    let mut j = job(dir.path(), &tok, 1, 32, 3, 0);
    j.settings.lr = f64::NAN;
    assert_eq!(setting(j), "lr");
    let mut j = job(dir.path(), &tok, 1, 32, 3, 0);
    j.settings.context = 64;
    assert_eq!(setting(j), "context");
    assert!(matches!(shape_for(&tok, 1, 30, 4, None, None, 32, false), Err(TrainError::Setting { setting: "heads", .. })));
    assert!(matches!(shape_for(&tok, 1, 32, 4, Some(3), None, 32, false), Err(TrainError::Setting { setting: "kv-heads", .. })));
    assert!(matches!(shape_for(&tok, 0, 32, 4, None, None, 32, false), Err(TrainError::Setting { setting: "layers", .. })));
    // Too little text for one window.
    let short = ["a b"];
    let j = job(dir.path(), &tok, 1, 32, 3, 0);
    assert!(matches!(train(&j, &tok, &short, &[], &mut Silent), Err(TrainError::Data(_))));
}

struct StopAfter(u64, u64);
impl infoplane_train::TrainObserver for StopAfter {
    fn step(&mut self, r: &infoplane_train::StepReport) {
        self.1 = r.step;
    }
    fn should_stop(&self) -> bool {
        self.1 >= self.0
    }
}

#[test]
fn a_stop_request_checkpoints_the_current_step_and_keeps_the_manifest_valid() {
    let tok = tokenizer(50, 300);
    let dir = tempfile::tempdir().unwrap();
    let j = job(dir.path(), &tok, 1, 32, 20, 0);
    let err = train(&j, &tok, &c4()[..50], &[], &mut StopAfter(7, 0)).err().expect("stopped");
    assert!(matches!(err, TrainError::Interrupted { step: 7, .. }), "{err}");
    let manifest = infoplane_compare::Manifest::read(&dir.path().join("manifest.toml")).unwrap();
    assert_eq!(manifest.models.iter().map(|m| m.step.unwrap()).collect::<Vec<_>>(), vec![1, 3, 7]);
    assert!(dir.path().join("checkpoint-7/model.safetensors").is_file());
    assert_eq!(std::fs::read_to_string(dir.path().join("train_log.csv")).unwrap().lines().count(), 8);
}
