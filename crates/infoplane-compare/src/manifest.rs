//! The sweep manifest: a TOML list of models and checkpoints to analyse with one set of settings.
//!
//! ```toml
//! [[model]]
//! model = "EleutherAI/pythia-160m"   # a local directory/file or a Hugging Face id (required)
//! revision = "step1000"              # a Hugging Face revision (branch, tag or commit), optional
//! name = "Pythia-160M"               # display name; default: the last part of `model`
//! family = "pythia-160m"             # one training run: its checkpoints form a trajectory; default: `model`
//! step = 1000                        # training step, optional
//! tokens = 2_097_152_000             # tokens seen, optional
//! params = 162_322_944               # parameter count, optional
//! id = "pythia-160m-step1000"        # unique id (a directory name); default: slug of name + step
//! ```

use crate::CompareError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The fields a `[[model]]` entry may have.
pub const MANIFEST_FIELDS: [&str; 8] = ["model", "revision", "name", "family", "step", "tokens", "params", "id"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// Local path or Hugging Face id.
    pub model: String,
    pub revision: Option<String>,
    pub name: String,
    pub family: String,
    pub step: Option<u64>,
    pub tokens: Option<u64>,
    pub params: Option<u64>,
    /// The id given in the manifest, if any; `id()` is the one to use.
    pub given_id: Option<String>,
}

impl ModelEntry {
    /// The unit's id: the given one, else slug(name) + "-step{N}" / "-tokens{N}" / "-{revision}".
    /// Deterministic, so a re-run of a sweep finds the same run directories.
    pub fn id(&self) -> String {
        if let Some(id) = &self.given_id {
            return id.clone();
        }
        let mut id = slug(&self.name);
        if let Some(step) = self.step {
            id.push_str(&format!("-step{step}"));
        } else if let Some(tokens) = self.tokens {
            id.push_str(&format!("-tokens{tokens}"));
        } else if let Some(rev) = &self.revision {
            id.push('-');
            id.push_str(&slug(rev));
        }
        id
    }
}

/// Lower-case ASCII letters, digits and '.', runs of anything else become one '-'.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches(|c| c == '-' || c == '.').to_string();
    if out.is_empty() {
        "model".to_string()
    } else {
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub path: PathBuf,
    pub models: Vec<ModelEntry>,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest, CompareError> {
        let text = std::fs::read_to_string(path).map_err(|e| CompareError::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Manifest, CompareError> {
        let fail = |reason: String| CompareError::Manifest { path: path.to_path_buf(), reason };
        let doc: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().trim().replace('\n', " ");
            fail(match line {
                Some(line) => format!("line {line}: {msg}"),
                None => msg,
            })
        })?;
        if let Some(key) = doc.keys().find(|k| k.as_str() != "model") {
            return Err(fail(format!("unknown top-level key `{key}` (a manifest is a list of [[model]] entries)")));
        }
        let entries = match doc.get("model") {
            None => return Err(fail("no [[model]] entries".into())),
            Some(toml::Value::Array(a)) => a,
            Some(_) => return Err(fail("`model` must be a list of [[model]] tables".into())),
        };
        if entries.is_empty() {
            return Err(fail("no [[model]] entries".into()));
        }
        let mut models = Vec::with_capacity(entries.len());
        for (i, value) in entries.iter().enumerate() {
            let table = value.as_table().ok_or_else(|| fail(format!("[[model]] entry {}: not a table", i + 1)))?;
            models.push(parse_entry(table).map_err(|reason| fail(format!("[[model]] entry {}{}: {reason}", i + 1, describe(table))))?);
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, m) in models.iter().enumerate() {
            let id = m.id();
            if let Some(j) = seen.insert(id.clone(), i) {
                return Err(fail(format!(
                    "[[model]] entries {} and {} have the same id {id:?}; give one an `id`, a `step` or a `tokens`",
                    j + 1,
                    i + 1
                )));
            }
        }
        Ok(Manifest { path: path.to_path_buf(), models })
    }
}

/// " (model = \"…\")" to help find an entry in a long manifest.
fn describe(table: &toml::Table) -> String {
    match table.get("model").and_then(|v| v.as_str()) {
        Some(m) => format!(" (model = {m:?})"),
        None => String::new(),
    }
}

fn parse_entry(table: &toml::Table) -> Result<ModelEntry, String> {
    if let Some(key) = table.keys().find(|k| !MANIFEST_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field `{key}` (fields: {})", MANIFEST_FIELDS.join(", ")));
    }
    let string = |field: &str| -> Result<Option<String>, String> {
        match table.get(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) if s.trim().is_empty() => Err(format!("field `{field}` is empty")),
            Some(toml::Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(format!("field `{field}` must be a string, not {}", other.type_str())),
        }
    };
    let integer = |field: &str, min: i64| -> Result<Option<u64>, String> {
        match table.get(field) {
            None => Ok(None),
            Some(toml::Value::Integer(v)) if *v >= min => Ok(Some(*v as u64)),
            Some(toml::Value::Integer(v)) => Err(format!("field `{field}` must be ≥ {min}, got {v}")),
            Some(other) => Err(format!("field `{field}` must be an integer (e.g. 162_322_944), not {}", other.type_str())),
        }
    };
    let model = string("model")?.ok_or("field `model` is missing (a local path or a Hugging Face id)")?;
    let name = string("name")?.unwrap_or_else(|| {
        let base = model.trim_end_matches(['/', '\\']);
        base.rsplit(['/', '\\']).next().unwrap_or(base).to_string()
    });
    let id = string("id")?;
    if let Some(id) = &id {
        if id.starts_with('.') || !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(format!("field `id` = {id:?} must be a directory name: ASCII letters, digits, '.', '_', '-', not starting with '.'"));
        }
    }
    Ok(ModelEntry {
        family: string("family")?.unwrap_or_else(|| model.clone()),
        revision: string("revision")?,
        step: integer("step", 0)?,
        tokens: integer("tokens", 0)?,
        params: integer("params", 1)?,
        given_id: id,
        name,
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, CompareError> {
        Manifest::parse(Path::new("m.toml"), text)
    }

    #[test]
    fn entries_defaults_and_ids() {
        let m = parse(
            r#"
[[model]]
model = "EleutherAI/pythia-160m"
revision = "step1000"
family = "pythia-160m"
step = 1000
tokens = 2_097_152_000
params = 162_322_944

[[model]]
model = "/models/SmolLM2 135M/"
name = "SmolLM2 (135M)"

[[model]]
model = "allenai/OLMo-2-0425-1B"
revision = "stage1-step10000-tokens21B"
id = "olmo2-1b_s10k"
"#,
        )
        .unwrap();
        assert_eq!(m.models.len(), 3);
        let a = &m.models[0];
        assert_eq!((a.name.as_str(), a.family.as_str(), a.step, a.tokens, a.params), ("pythia-160m", "pythia-160m", Some(1000), Some(2_097_152_000), Some(162_322_944)));
        assert_eq!(a.id(), "pythia-160m-step1000");
        let b = &m.models[1];
        assert_eq!(b.family, "/models/SmolLM2 135M/");
        assert_eq!(b.id(), "smollm2-135m");
        assert_eq!(m.models[2].id(), "olmo2-1b_s10k");
        assert_eq!(parse("[[model]]\nmodel = \"x/y\"\nrevision = \"Main Branch\"\n").unwrap().models[0].id(), "y-main-branch");
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let cases = [
            ("[[model]]\nmodel = \"a\"\n[[model]]\nname = \"b\"\n", "entry 2"),
            ("[[model]]\nmodel = \"a\"\nstep = -5\n", "field `step` must be ≥ 0, got -5"),
            ("[[model]]\nmodel = \"a\"\nparams = 1.6e8\n", "field `params` must be an integer"),
            ("[[model]]\nmodel = \"a\"\nsetp = 5\n", "unknown field `setp`"),
            ("[[model]]\nmodel = \"a\"\nid = \"../x\"\n", "field `id`"),
            ("[[model]]\nmodel = 3\n", "field `model` must be a string"),
            ("[[model]]\nmodel = \"a/m\"\nstep = 1\n[[model]]\nmodel = \"b/m\"\nstep = 1\n", "entries 1 and 2 have the same id \"m-step1\""),
            ("[[model]]\nmodel = \"a\"\nstep = \n", "line 3"),
            ("title = \"x\"\n", "unknown top-level key `title`"),
            ("", "no [[model]] entries"),
        ];
        for (text, needle) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with("m.toml: "), "{e}");
            assert!(e.contains(needle), "{text:?}: {e:?} lacks {needle:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
        let e = parse("[[model]]\nmodel = \"a\"\n[[model]]\nmodel = \"q/r\"\nstep = 1.5\n").unwrap_err().to_string();
        assert!(e.contains("entry 2 (model = \"q/r\")"), "{e}");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Qwen/Qwen2.5-0.5B"), "qwen-qwen2.5-0.5b");
        assert_eq!(slug("  --  "), "model");
        assert_eq!(slug("a__b  c"), "a-b-c");
    }
}
