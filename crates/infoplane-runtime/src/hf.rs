//! Hugging Face model directories: `config.json`, `model.safetensors` or a sharded
//! `model.safetensors.index.json`, `tokenizer.json` (+ `tokenizer_config.json`).

use crate::config::{DecoderConfig, Family};
use crate::error::RuntimeError;
use candle_core::{Device, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

const FORMAT: &str = "safetensors";

pub fn read_config(dir: &Path) -> Result<(PathBuf, DecoderConfig), RuntimeError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| RuntimeError::io(&path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| RuntimeError::Json { path: path.clone(), reason: e.to_string() })?;
    let cfg = DecoderConfig::from_hf_json(&path, &json)?;
    Ok((path, cfg))
}

/// The safetensors files of a directory: the shards an index names, or `model.safetensors`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| RuntimeError::io(&index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| RuntimeError::Json { path: index.clone(), reason: e.to_string() })?;
        let map = json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| RuntimeError::config(&index, "weight_map", "missing or not an object"))?;
        let mut files = BTreeSet::new();
        for (name, file) in map {
            let f = file.as_str().ok_or_else(|| RuntimeError::config(&index, format!("weight_map.{name}"), "expected a file name"))?;
            if f.contains('/') || f.contains('\\') || f == ".." {
                return Err(RuntimeError::config(&index, format!("weight_map.{name}"), format!("{f:?} is not a file name in this directory")));
            }
            files.insert(f.to_string());
        }
        if files.is_empty() {
            return Err(RuntimeError::config(&index, "weight_map", "names no files"));
        }
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let reason = if dir.join("pytorch_model.bin").exists() { "only pytorch_model.bin is present; convert it to safetensors (pickle files are not read)" } else { "no model.safetensors or model.safetensors.index.json" };
    Err(RuntimeError::NotFound { spec: dir.display().to_string(), reason: reason.into() })
}

/// Reads every tensor of the files (in their stored dtype, on the CPU), names as stored.
pub fn read_safetensors(files: &[PathBuf]) -> Result<HashMap<String, (Tensor, PathBuf)>, RuntimeError> {
    let mut out = HashMap::new();
    for path in files {
        let file = std::fs::File::open(path).map_err(|e| RuntimeError::io(path, e))?;
        // SAFETY: the map is read-only and dropped before returning; a file truncated while
        // mapped is the user's race, as with any reader.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| RuntimeError::io(path, e))?;
        let tensors = candle_core::safetensors::load_buffer(&mmap, &Device::Cpu).map_err(|e| {
            let msg = crate::error::candle_message(&e);
            RuntimeError::format(path, FORMAT, match header_problem(&mmap) {
                Some(problem) => format!("{msg}: {problem}"),
                None => msg,
            })
        })?;
        for (name, t) in tensors {
            out.insert(name, (t, path.clone()));
        }
    }
    Ok(out)
}

/// The first tensor whose header entry does not fit the file (the safetensors crate says only
/// "invalid shape, data type, or offset for tensor", or "file not fully covered"): a shape whose
/// size differs from its byte range, or a range past the end of the data.
fn header_problem(bytes: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    let data = (bytes.len() - 8 - n) as u64;
    let mut entries: Vec<(&String, u64, u64, &serde_json::Value)> = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(k, v)| {
            let o = v.get("data_offsets")?.as_array()?;
            Some((k, o.first()?.as_u64()?, o.get(1)?.as_u64()?, v))
        })
        .collect();
    entries.sort_by_key(|e| (e.1, e.2));
    for (name, start, end, info) in entries {
        if end < start || end > data {
            return Some(format!("tensor `{name}`: data_offsets [{start}, {end}] reach past the {data} bytes of data"));
        }
        let dtype = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        let width: u64 = match dtype {
            "F64" | "I64" | "U64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            "F8_E4M3" | "F8_E5M2" | "I8" | "U8" | "BOOL" => 1,
            _ => continue,
        };
        let shape: Option<Vec<u64>> = info.get("shape").and_then(|s| s.as_array()).and_then(|s| s.iter().map(|d| d.as_u64()).collect());
        let Some(shape) = shape else { continue };
        let need = shape.iter().try_fold(width, |a, &d| a.checked_mul(d));
        if need != Some(end - start) {
            let need = need.map_or("more than 2^64".to_string(), |b| b.to_string());
            return Some(format!("tensor `{name}`: shape {shape:?} of {dtype} needs {need} bytes, its data_offsets [{start}, {end}] hold {}", end - start));
        }
    }
    None
}

/// Renames stored tensors to the names the decoder asks for (GPT-2 checkpoints exist with and
/// without the `transformer.` prefix; some NeoX exports lack `gpt_neox.`).
pub fn normalise_names(cfg: &DecoderConfig, tensors: HashMap<String, (Tensor, PathBuf)>) -> HashMap<String, (Tensor, PathBuf)> {
    let (prefix, own) = match cfg.family {
        Family::Gpt2 => ("transformer.", "lm_head.weight"),
        Family::GptNeox => ("gpt_neox.", "embed_out.weight"),
        Family::Llama => ("model.", "lm_head.weight"),
    };
    let has_prefix = tensors.keys().any(|k| k.starts_with(prefix));
    if has_prefix {
        return tensors;
    }
    tensors.into_iter().map(|(k, v)| if k == own { (k, v) } else { (format!("{prefix}{k}"), v) }).collect()
}
