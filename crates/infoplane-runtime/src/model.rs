//! A loaded model: decoder, tokenizer, what it is and where it came from, and the forward pass
//! that returns every layer's hidden states per document.

use crate::config::{DecoderConfig, Family, Positions};
use crate::decoder::{BatchLayout, Decoder, DecoderOptions};
use crate::error::RuntimeError;
use crate::gguf::GgufFile;
use crate::hf;
use crate::llama2c::{self, Llama2cTokenizer};
use crate::source::ModelSource;
use crate::tokenizer::TextTokenizer;
use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The dtype the forward pass computes in (weights are converted to it on load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDType {
    #[default]
    F32,
    Bf16,
}

impl ComputeDType {
    pub fn dtype(self) -> DType {
        match self {
            ComputeDType::F32 => DType::F32,
            ComputeDType::Bf16 => DType::BF16,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ComputeDType::F32 => "f32",
            ComputeDType::Bf16 => "bf16",
        }
    }
}

impl std::str::FromStr for ComputeDType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" | "float32" => Ok(ComputeDType::F32),
            "bf16" | "bfloat16" => Ok(ComputeDType::Bf16),
            other => Err(format!("unknown dtype {other:?} (expected f32 or bf16)")),
        }
    }
}

/// Where the forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    /// A CUDA device by ordinal (needs the `cuda` feature).
    Cuda(usize),
}

impl DeviceSpec {
    pub fn name(self) -> String {
        match self {
            DeviceSpec::Cpu => "cpu".into(),
            DeviceSpec::Cuda(n) => format!("cuda:{n}"),
        }
    }
    fn device(self) -> Result<Device, RuntimeError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !cfg!(feature = "cuda") {
                    return Err(RuntimeError::Device(self.name(), "this build has no CUDA support (rebuild with `--features cuda`)".into()));
                }
                // candle's driver errors name the CUDA status only; say what to check.
                Device::new_cuda(n).map_err(|e| {
                    let why = crate::error::candle_message(&e);
                    RuntimeError::Device(self.name(), format!("cannot open it: {why} (is the NVIDIA driver loaded, and does `nvidia-smi` list GPU {n}?)"))
                })
            }
        }
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "cpu" {
            return Ok(DeviceSpec::Cpu);
        }
        if s == "cuda" {
            return Ok(DeviceSpec::Cuda(0));
        }
        match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
            _ => Err(format!("unknown device {s:?} (expected cpu or cuda:N)")),
        }
    }
}

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub dtype: ComputeDType,
    pub device: DeviceSpec,
    /// llama2.c only: the tokenizer `.bin` (default: `tokenizer.bin`, else the one `tok*.bin`
    /// beside the checkpoint).
    pub tokenizer: Option<PathBuf>,
}

/// What the model is.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub family: Family,
    pub model_type: String,
    pub n_layers: usize,
    pub hidden_size: usize,
    /// Rows of the token embedding (and of the logits).
    pub vocab_size: usize,
    /// For rotary models the trained context length (longer inputs run, as in transformers);
    /// for learned positions a hard limit.
    pub max_positions: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub tied_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

/// A file's identity.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileHash {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// Where a model came from and how it ran: enough to reproduce a result.
#[derive(Debug, Clone, Serialize)]
pub struct ModelProvenance {
    /// The path or hub id.
    pub source: String,
    /// `hf_safetensors`, `gguf` or `llama2c`.
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub model_type: String,
    /// Every weight file.
    pub weight_files: Vec<FileHash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_file: Option<FileHash>,
    /// tokenizer.json, the llama2.c tokenizer .bin, or (GGUF) the model file, which embeds it.
    pub tokenizer_file: FileHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenizer_config_file: Option<FileHash>,
    /// GGUF only: how many tensors of each stored type were dequantised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gguf_tensor_types: Option<BTreeMap<String, usize>>,
    pub dtype: &'static str,
    pub device: String,
    pub runtime: String,
}

/// Which outputs a forward pass should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub hidden: bool,
    pub logits: bool,
    pub next_token_nll: bool,
}

impl Default for Want {
    fn default() -> Self {
        Want { hidden: true, logits: false, next_token_nll: false }
    }
}

/// One document's outputs, all f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct DocStates {
    pub tokens: usize,
    /// L + 1 arrays of `[T·d]`: 0 the embedding output, l the output of block l (before the
    /// final norm). Empty unless `Want::hidden`.
    pub hidden: Vec<Vec<f32>>,
    /// `[T·d]`.
    pub final_norm: Vec<f32>,
    /// `[T·V]`.
    pub logits: Option<Vec<f32>>,
    /// `[T−1]`: −log p(t_{i+1} | t_≤i) in nats, from a float64 log-softmax of the logits.
    pub next_token_nll: Option<Vec<f32>>,
}

/// How documents of different lengths share a padded batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Left,
    Right,
}

/// A loaded model.
pub struct Model {
    decoder: Decoder,
    tokenizer: TextTokenizer,
    info: ModelInfo,
    provenance: ModelProvenance,
    spec: DeviceSpec,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("info", &self.info).field("source", &self.provenance.source).finish()
    }
}

fn hash(path: &Path) -> Result<FileHash, RuntimeError> {
    let sha256 = infoplane_store::file_sha256(path).map_err(|e| match e {
        infoplane_store::StoreError::Io { path, source } => RuntimeError::Io { path, source },
        other => RuntimeError::Invalid(other.to_string()),
    })?;
    let bytes = std::fs::metadata(path).map_err(|e| RuntimeError::io(path, e))?.len();
    Ok(FileHash { path: path.to_path_buf(), bytes, sha256 })
}

fn hash_all(paths: &[PathBuf]) -> Result<Vec<FileHash>, RuntimeError> {
    use rayon::prelude::*;
    paths.par_iter().map(|p| hash(p)).collect()
}

/// The tokenizer .bin beside a llama2.c checkpoint.
fn find_llama2c_tokenizer(checkpoint: &Path, vocab: usize) -> Result<PathBuf, RuntimeError> {
    let dir = checkpoint.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."));
    for name in ["tokenizer.bin".to_string(), format!("tok{vocab}.bin")] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    let candidates: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| RuntimeError::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("tok") && n.ends_with(".bin")))
        .collect();
    match candidates.len() {
        1 => Ok(candidates[0].clone()),
        0 => Err(RuntimeError::NotFound { spec: checkpoint.display().to_string(), reason: format!("no tokenizer.bin or tok*.bin beside it in {}; pass the tokenizer explicitly", dir.display()) }),
        _ => Err(RuntimeError::NotFound { spec: checkpoint.display().to_string(), reason: format!("several tok*.bin files in {}; pass the tokenizer explicitly", dir.display()) }),
    }
}

impl Model {
    pub fn load(src: &ModelSource, opts: &LoadOptions) -> Result<Model, RuntimeError> {
        let device = opts.device.device()?;
        let dtype = opts.dtype.dtype();
        let runtime = format!("infoplane-runtime {}", env!("CARGO_PKG_VERSION"));
        let (cfg, tensors, tokenizer, provenance) = match src {
            ModelSource::HfDir { dir, repo_id, revision, commit } => {
                let (config_path, cfg) = hf::read_config(dir)?;
                let files = hf::weight_files(dir)?;
                let tok_json = dir.join("tokenizer.json");
                if !tok_json.is_file() {
                    return Err(RuntimeError::NotFound { spec: dir.display().to_string(), reason: format!("{} is missing (only tokenizer.json tokenizers are read)", tok_json.display()) });
                }
                let tok_cfg = Some(dir.join("tokenizer_config.json")).filter(|p| p.is_file());
                let (hashes, loaded) = rayon::join(
                    || -> Result<_, RuntimeError> { Ok((hash_all(&files)?, hash(&config_path)?, hash(&tok_json)?, tok_cfg.as_deref().map(hash).transpose()?)) },
                    || -> Result<_, RuntimeError> { Ok((hf::read_safetensors(&files)?, TextTokenizer::from_hf_dir(&tok_json, tok_cfg.as_deref())?)) },
                );
                let (weight_files, config_file, tokenizer_file, tokenizer_config_file) = hashes?;
                let (tensors, tokenizer) = loaded?;
                let tensors = hf::normalise_names(&cfg, tensors);
                let prov = ModelProvenance {
                    source: src.display(),
                    format: "hf_safetensors",
                    repo_id: repo_id.clone(),
                    revision: revision.clone(),
                    commit: commit.clone(),
                    model_type: cfg.model_type.clone(),
                    weight_files,
                    config_file: Some(config_file),
                    tokenizer_file,
                    tokenizer_config_file,
                    gguf_tensor_types: None,
                    dtype: opts.dtype.name(),
                    device: opts.device.name(),
                    runtime,
                };
                (cfg, tensors, tokenizer, prov)
            }
            ModelSource::Gguf { path } => {
                let (file_hash, loaded) = rayon::join(
                    || hash(path),
                    || -> Result<_, RuntimeError> {
                        let g = GgufFile::open(path)?;
                        let mut cfg = g.config()?;
                        let tokenizer = g.tokenizer()?;
                        let (tensors, rope_freqs) = g.hf_tensors(&cfg)?;
                        if let (Some(f), Positions::Rotary(r)) = (rope_freqs, &mut cfg.positions) {
                            if f.len() != r.rotary_dim / 2 {
                                return Err(RuntimeError::TensorShape { path: path.clone(), name: "rope_freqs.weight".into(), expected: vec![r.rotary_dim / 2], got: vec![f.len()] });
                            }
                            r.freq_factors = Some(f);
                        }
                        let mut types = BTreeMap::new();
                        for t in g.tensor_types().values() {
                            *types.entry(t.to_string()).or_insert(0usize) += 1;
                        }
                        Ok((cfg, tensors, tokenizer, types))
                    },
                );
                let file_hash = file_hash?;
                let (cfg, tensors, tokenizer, types) = loaded?;
                let tensors = tensors.into_iter().map(|(k, v)| (k, (v, path.clone()))).collect();
                let prov = ModelProvenance {
                    source: src.display(),
                    format: "gguf",
                    repo_id: None,
                    revision: None,
                    commit: None,
                    model_type: cfg.model_type.clone(),
                    weight_files: vec![file_hash.clone()],
                    config_file: None,
                    tokenizer_file: file_hash,
                    tokenizer_config_file: None,
                    gguf_tensor_types: Some(types),
                    dtype: opts.dtype.name(),
                    device: opts.device.name(),
                    runtime,
                };
                (cfg, tensors, tokenizer, prov)
            }
            ModelSource::Llama2c { path } => {
                let (_header, cfg, tensors) = llama2c::read_checkpoint(path)?;
                let tok_path = match &opts.tokenizer {
                    Some(p) => p.clone(),
                    None => find_llama2c_tokenizer(path, cfg.vocab_size)?,
                };
                let tok = Llama2cTokenizer::read(&tok_path, cfg.vocab_size)?;
                let tokenizer = TextTokenizer::from_llama2c(tok, &tok_path);
                let weight_hash = hash(path)?;
                let prov = ModelProvenance {
                    source: src.display(),
                    format: "llama2c",
                    repo_id: None,
                    revision: None,
                    commit: None,
                    model_type: cfg.model_type.clone(),
                    weight_files: vec![weight_hash],
                    config_file: None,
                    tokenizer_file: hash(&tok_path)?,
                    tokenizer_config_file: None,
                    gguf_tensor_types: None,
                    dtype: opts.dtype.name(),
                    device: opts.device.name(),
                    runtime,
                };
                let tensors = tensors.into_iter().map(|(k, v)| (k, (v, path.clone()))).collect();
                (cfg, tensors, tokenizer, prov)
            }
        };
        let bound = tokenizer.id_bound();
        if bound > cfg.vocab_size {
            return Err(RuntimeError::VocabTooLarge { path: tokenizer.path().to_path_buf(), max_id: bound - 1, embedding_rows: cfg.vocab_size });
        }
        let decoder = build_decoder(&cfg, tensors, dtype, &device, src)?;
        Ok(Model::from_parts(decoder, tokenizer, provenance, opts.device))
    }

    /// A model from a decoder you built yourself (e.g. from trained `Var`s).
    pub fn from_parts(decoder: Decoder, tokenizer: TextTokenizer, provenance: ModelProvenance, device: DeviceSpec) -> Model {
        let c = decoder.config();
        let info = ModelInfo {
            family: c.family,
            model_type: c.model_type.clone(),
            n_layers: c.n_layers,
            hidden_size: c.hidden_size,
            vocab_size: c.vocab_size,
            max_positions: c.max_positions,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: c.head_dim,
            intermediate_size: c.intermediate_size,
            tied_embeddings: c.tie_word_embeddings,
            bos_token_id: c.bos_token_id,
            eos_token_ids: c.eos_token_ids.clone(),
        };
        Model { decoder, tokenizer, info, provenance, spec: device }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }
    pub fn provenance(&self) -> &ModelProvenance {
        &self.provenance
    }
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }
    pub fn config(&self) -> &DecoderConfig {
        self.decoder.config()
    }

    fn check_docs(&self, docs: &[&[u32]]) -> Result<(), RuntimeError> {
        let vocab = self.info.vocab_size;
        for (d, doc) in docs.iter().enumerate() {
            if let Some((position, &id)) = doc.iter().enumerate().find(|(_, &id)| id as usize >= vocab) {
                return Err(RuntimeError::TokenOutOfRange { doc: d, position, id, vocab });
            }
            if matches!(self.config().positions, Positions::Learned) && doc.len() > self.info.max_positions {
                return Err(RuntimeError::TooLong { doc: d, tokens: doc.len(), max: self.info.max_positions });
            }
        }
        Ok(())
    }

    /// Hidden states (and optionally logits and next-token losses) of each document. On the
    /// CPU documents run one at a time (fastest there); on a GPU in right-padded batches of up
    /// to 16k tokens.
    pub fn forward(&self, docs: &[&[u32]], want: Want) -> Result<Vec<DocStates>, RuntimeError> {
        self.check_docs(docs)?;
        if self.spec == DeviceSpec::Cpu {
            let mut out = Vec::with_capacity(docs.len());
            for (i, doc) in docs.iter().enumerate() {
                out.extend(self.run_batch(&[doc], &[i], want, Padding::Right)?);
            }
            return Ok(out);
        }
        let mut out = Vec::with_capacity(docs.len());
        let mut start = 0;
        while start < docs.len() {
            let mut end = start + 1;
            let mut longest = docs[start].len();
            while end < docs.len() && (end + 1 - start) * longest.max(docs[end].len()) <= 16_384 {
                longest = longest.max(docs[end].len());
                end += 1;
            }
            let index: Vec<usize> = (start..end).collect();
            out.extend(self.run_batch(&docs[start..end], &index, want, Padding::Right)?);
            start = end;
        }
        Ok(out)
    }

    /// All documents in one padded batch (whatever the device), padded on the given side.
    /// Results equal [`Model::forward`]'s up to float summation order.
    pub fn forward_padded(&self, docs: &[&[u32]], want: Want, padding: Padding) -> Result<Vec<DocStates>, RuntimeError> {
        self.check_docs(docs)?;
        let index: Vec<usize> = (0..docs.len()).collect();
        self.run_batch(docs, &index, want, padding)
    }

    fn run_batch(&self, docs: &[&[u32]], doc_index: &[usize], want: Want, padding: Padding) -> Result<Vec<DocStates>, RuntimeError> {
        let lengths: Vec<usize> = docs.iter().map(|d| d.len()).collect();
        let layout = match padding {
            Padding::Left => BatchLayout::left_padded(&lengths),
            Padding::Right => BatchLayout::right_padded(&lengths),
        };
        let empty = || DocStates { tokens: 0, hidden: if want.hidden { vec![vec![]; self.info.n_layers + 1] } else { vec![] }, final_norm: vec![], logits: want.logits.then(Vec::new), next_token_nll: want.next_token_nll.then(Vec::new) };
        if layout.width == 0 {
            return Ok(docs.iter().map(|_| empty()).collect());
        }
        let (b, t, d) = (docs.len(), layout.width, self.info.hidden_size);
        // Pad slots hold token 0; they are masked out of every real query.
        let mut ids = vec![0u32; b * t];
        for (r, doc) in docs.iter().enumerate() {
            ids[r * t + layout.offsets[r]..r * t + layout.offsets[r] + doc.len()].copy_from_slice(doc);
        }
        let ids = Tensor::from_vec(ids, (b, t), self.decoder.device())?;
        let out = self.decoder.forward(&ids, &layout)?;
        let to_rows = |x: &Tensor| -> Result<Vec<f32>, RuntimeError> { Ok(x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?) };
        let slice_doc = |all: &[f32], r: usize, width: usize| -> Vec<f32> {
            let start = (r * t + layout.offsets[r]) * width;
            all[start..start + lengths[r] * width].to_vec()
        };
        let mut results: Vec<DocStates> = (0..b).map(|_| empty()).collect();
        for (r, res) in results.iter_mut().enumerate() {
            res.tokens = lengths[r];
        }
        if want.hidden {
            for (l, h) in out.hidden.iter().enumerate() {
                let all = to_rows(h)?;
                for (r, res) in results.iter_mut().enumerate() {
                    let rows = slice_doc(&all, r, d);
                    let layer = if l == 0 { "the embedding output".to_string() } else { format!("block {} output", l - 1) };
                    check_finite(&rows, d, doc_index[r], &layer)?;
                    res.hidden[l] = rows;
                }
            }
        }
        let all = to_rows(&out.final_norm)?;
        for (r, res) in results.iter_mut().enumerate() {
            let rows = slice_doc(&all, r, d);
            check_finite(&rows, d, doc_index[r], "the final norm")?;
            res.final_norm = rows;
        }
        if want.logits || want.next_token_nll {
            let v = self.info.vocab_size;
            let logits = to_rows(&self.decoder.logits(&out.final_norm)?)?;
            for (r, res) in results.iter_mut().enumerate() {
                let rows = slice_doc(&logits, r, v);
                if want.next_token_nll {
                    res.next_token_nll = Some(next_token_nll(&rows, docs[r], v));
                }
                if want.logits {
                    res.logits = Some(rows);
                }
            }
        }
        Ok(results)
    }
}

fn check_finite(rows: &[f32], d: usize, doc: usize, layer: &str) -> Result<(), RuntimeError> {
    if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
        return Err(RuntimeError::NonFinite { doc, layer: layer.to_string(), position: i / d, dim: i % d, value: rows[i] });
    }
    Ok(())
}

/// −log softmax(logits_i)[t_{i+1}] for i < T − 1, in f64.
fn next_token_nll(logits: &[f32], ids: &[u32], v: usize) -> Vec<f32> {
    use rayon::prelude::*;
    (0..ids.len().saturating_sub(1))
        .into_par_iter()
        .map(|i| {
            let row = &logits[i * v..(i + 1) * v];
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
            let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
            (lse - row[ids[i + 1] as usize] as f64) as f32
        })
        .collect()
}

/// Builds the decoder from named tensors, naming the file of a missing or misshapen tensor.
fn build_decoder(cfg: &DecoderConfig, tensors: HashMap<String, (Tensor, PathBuf)>, dtype: DType, device: &Device, src: &ModelSource) -> Result<Decoder, RuntimeError> {
    let mut files: HashMap<String, PathBuf> = HashMap::with_capacity(tensors.len());
    let mut map = HashMap::with_capacity(tensors.len());
    for (k, (t, p)) in tensors {
        files.insert(k.clone(), p);
        map.insert(k, t);
    }
    let default_file = match src {
        ModelSource::HfDir { dir, .. } => dir.join(if dir.join("model.safetensors.index.json").is_file() { "model.safetensors.index.json" } else { "model.safetensors" }),
        ModelSource::Gguf { path } | ModelSource::Llama2c { path } => path.clone(),
    };
    let vb = candle_nn::VarBuilder::from_tensors(map, dtype, device);
    Decoder::new(cfg, vb, DecoderOptions::default()).map_err(|e| match e {
        RuntimeError::MissingTensor { name, .. } => RuntimeError::MissingTensor { path: default_file.clone(), name },
        RuntimeError::TensorShape { name, expected, got, .. } => RuntimeError::TensorShape { path: files.get(&name).cloned().unwrap_or(default_file.clone()), name, expected, got },
        other => other,
    })
}
