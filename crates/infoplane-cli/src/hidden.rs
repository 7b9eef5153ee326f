//! `infoplane hidden`: one text file through a model, every layer's hidden states out as .npy.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use infoplane_runtime::{resolve, ComputeDType, DeviceSpec, LoadOptions, Model, Want};
use infoplane_store::{file_sha256, write_atomic, write_npy_f32, write_npy_i64};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct HiddenArgs {
    /// A model directory (config.json + safetensors + tokenizer.json), a .gguf file, a llama2.c
    /// .bin checkpoint, or a hub id org/name[@revision] already in the Hugging Face cache.
    #[arg(long, value_name = "PATH_OR_ID")]
    model: String,
    /// UTF-8 text, tokenised as one document with the model's usual special tokens.
    #[arg(long, value_name = "FILE")]
    text_file: PathBuf,
    /// Keep the first N tokens.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..))]
    max_tokens: u64,
    /// Compute dtype: f32 or bf16 (outputs are always float32).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: ComputeDType,
    /// cpu or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    device: DeviceSpec,
    /// llama2.c only: the tokenizer .bin (default: tokenizer.bin or the tok*.bin beside the model).
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Also write logits.npy [T, V].
    #[arg(long)]
    logits: bool,
    /// Output directory (created if missing; nothing is written unless the forward pass succeeds).
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
}

fn parse_dtype(s: &str) -> Result<ComputeDType, String> {
    s.parse()
}

fn parse_device(s: &str) -> Result<DeviceSpec, String> {
    s.parse()
}

pub fn run(args: HiddenArgs) -> Result<()> {
    let text = std::fs::read(&args.text_file).with_context(|| format!("{}", args.text_file.display()))?;
    let text = String::from_utf8(text).map_err(|e| anyhow!("{}: not UTF-8 text (invalid byte at offset {})", args.text_file.display(), e.utf8_error().valid_up_to()))?;
    let text_sha256 = file_sha256(&args.text_file)?;
    let src = resolve(&args.model)?;
    let opts = LoadOptions { dtype: args.dtype, device: args.device, tokenizer: args.tokenizer.clone() };
    let started = Instant::now();
    let model = Model::load(&src, &opts)?;
    let load_secs = started.elapsed().as_secs_f64();
    let mut ids = model.tokenizer().encode(&text, true)?;
    let total_tokens = ids.len();
    ids.truncate(args.max_tokens as usize);
    if ids.is_empty() {
        bail!("{}: the text gives no tokens", args.text_file.display());
    }
    let want = Want { hidden: true, logits: args.logits, next_token_nll: false };
    let started = Instant::now();
    let states = model.forward(&[&ids], want).with_context(|| args.text_file.display().to_string())?.remove(0);
    let secs = started.elapsed().as_secs_f64();
    let t = ids.len();
    eprintln!("forward: {t} tokens in {secs:.3} s ({:.1} tok/s)", t as f64 / secs);

    let info = model.info();
    let d = info.hidden_size;
    let mut hidden = Vec::with_capacity((info.n_layers + 1) * t * d);
    for layer in &states.hidden {
        hidden.extend_from_slice(layer);
    }
    let provenance = json!({
        "command": "hidden",
        "infoplane_version": env!("CARGO_PKG_VERSION"),
        "model": model.provenance(),
        "model_info": info,
        "text_file": {"path": args.text_file, "sha256": text_sha256, "bytes": text.len()},
        "tokens": {"used": t, "in_text": total_tokens, "max_tokens": args.max_tokens, "truncated": total_tokens > t,
                   "special_tokens": "the model's own (tokenizer post-processor or GGUF metadata)"},
        "outputs": {
            "hidden_states.npy": {"dtype": "float32", "shape": [info.n_layers + 1, t, d], "layout": "index 0 = embedding output, index l = output of block l before the final norm"},
            "final_norm.npy": {"dtype": "float32", "shape": [t, d]},
            "token_ids.npy": {"dtype": "int64", "shape": [t]},
            "logits.npy": if args.logits { json!({"dtype": "float32", "shape": [t, info.vocab_size]}) } else { json!(null) },
        },
        "timing_seconds": {"load": load_secs, "forward": secs},
    });
    write_outputs(&args.output, |dir| {
        write_npy_f32(&dir.join("hidden_states.npy"), &[info.n_layers + 1, t, d], &hidden)?;
        write_npy_f32(&dir.join("final_norm.npy"), &[t, d], &states.final_norm)?;
        let ids64: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        write_npy_i64(&dir.join("token_ids.npy"), &[t], &ids64)?;
        if let Some(logits) = &states.logits {
            write_npy_f32(&dir.join("logits.npy"), &[t, info.vocab_size], logits)?;
        }
        write_atomic(&dir.join("provenance.json"), serde_json::to_string_pretty(&provenance)?.as_bytes())?;
        Ok(())
    })
}

/// Creates `dir` if needed and runs `write`; on failure removes what this run created.
fn write_outputs(dir: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let names = ["hidden_states.npy", "final_norm.npy", "token_ids.npy", "logits.npy", "provenance.json"];
    let before: Vec<bool> = names.iter().map(|n| dir.join(n).exists()).collect();
    let result = write(dir);
    if result.is_err() {
        if created {
            let _ = std::fs::remove_dir_all(dir);
        } else {
            for (n, existed) in names.iter().zip(before) {
                if !existed {
                    let _ = std::fs::remove_file(dir.join(n));
                }
            }
        }
    }
    result
}
