//! Where a model lives: a path (HF directory, `.gguf` file, llama2.c `.bin`) or a hub id
//! `org/name[@revision]` resolved offline in the Hugging Face cache.

use crate::error::RuntimeError;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A resolved model location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum ModelSource {
    /// A directory with config.json, safetensors weights and tokenizer.json.
    HfDir {
        dir: PathBuf,
        /// The hub id when it was resolved from the cache.
        #[serde(skip_serializing_if = "Option::is_none")]
        repo_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        revision: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
    },
    Gguf { path: PathBuf },
    Llama2c { path: PathBuf },
}

impl ModelSource {
    /// The path or id a user would recognise.
    pub fn display(&self) -> String {
        match self {
            ModelSource::HfDir { repo_id: Some(id), revision, .. } => match revision {
                Some(r) if r != "main" => format!("{id}@{r}"),
                _ => id.clone(),
            },
            ModelSource::HfDir { dir, .. } => dir.display().to_string(),
            ModelSource::Gguf { path } | ModelSource::Llama2c { path } => path.display().to_string(),
        }
    }
}

/// The Hugging Face hub cache directory: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn hf_hub_cache() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("XDG_CACHE_HOME").map(|x| x.join("huggingface").join("hub")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("huggingface").join("hub")))
}

fn looks_like_gguf(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return true;
    }
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"GGUF"
}

/// A path (directory, `.gguf`, llama2.c `.bin`) or a hub id `org/name[@revision]`
/// (`revision` a branch, tag or commit; default `main`), looked up in the local cache only.
pub fn resolve(spec: &str) -> Result<ModelSource, RuntimeError> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(ModelSource::HfDir { dir: path.to_path_buf(), repo_id: None, revision: None, commit: None });
    }
    if path.is_file() {
        if looks_like_gguf(path) {
            return Ok(ModelSource::Gguf { path: path.to_path_buf() });
        }
        return Ok(ModelSource::Llama2c { path: path.to_path_buf() });
    }
    let (id, revision) = match spec.split_once('@') {
        Some((id, rev)) => (id, rev),
        None => (spec, "main"),
    };
    let parts: Vec<&str> = id.split('/').collect();
    let valid = |s: &str| !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if parts.is_empty() || parts.len() > 2 || !parts.iter().all(|p| valid(p)) || revision.is_empty() || revision.contains("..") {
        return Err(RuntimeError::NotFound { spec: spec.into(), reason: "no such file or directory, and not a hub id of the form org/name[@revision]".into() });
    }
    let cache = hf_hub_cache().ok_or_else(|| RuntimeError::NotFound { spec: spec.into(), reason: "no such path, and no Hugging Face cache directory is configured (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HOME all unset)".into() })?;
    resolve_in_cache(&cache, id, revision).map_err(|reason| RuntimeError::NotFound { spec: spec.into(), reason })
}

/// `models--ORG--NAME/refs/REVISION` → `snapshots/COMMIT/` (a revision that is itself a
/// snapshot directory name, i.e. a commit hash, is used directly).
pub fn resolve_in_cache(cache: &Path, id: &str, revision: &str) -> Result<ModelSource, String> {
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    if !repo.is_dir() {
        return Err(format!("not a path, and not in the Hugging Face cache ({} does not exist; downloads are not part of the default build)", repo.display()));
    }
    let ref_file = repo.join("refs").join(revision);
    let commit = if ref_file.is_file() {
        let c = std::fs::read_to_string(&ref_file).map_err(|e| format!("{}: {e}", ref_file.display()))?;
        c.trim().to_string()
    } else if repo.join("snapshots").join(revision).is_dir() {
        revision.to_string()
    } else {
        return Err(format!("revision {revision:?} is not in the cache (no {} and no snapshot of that name)", ref_file.display()));
    };
    if commit.is_empty() || commit.contains('/') || commit.contains("..") {
        return Err(format!("{}: not a commit hash: {commit:?}", ref_file.display()));
    }
    let dir = repo.join("snapshots").join(&commit);
    if !dir.is_dir() {
        return Err(format!("{} points at commit {commit}, but {} does not exist", ref_file.display(), dir.display()));
    }
    // A GGUF-only repository: one .gguf file in the snapshot and no config.json.
    if !dir.join("config.json").exists() {
        let ggufs: Vec<PathBuf> = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "gguf")).collect();
        if ggufs.len() == 1 {
            return Ok(ModelSource::Gguf { path: ggufs[0].clone() });
        }
    }
    Ok(ModelSource::HfDir { dir, repo_id: Some(id.to_string()), revision: Some(revision.to_string()), commit: Some(commit) })
}
