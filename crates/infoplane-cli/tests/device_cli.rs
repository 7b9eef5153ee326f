//! `--device`: a CUDA device that cannot be used is one clear line on stderr and exit 2, never a
//! panic, in CPU builds (CI) and in `--features cuda` builds alike.
mod common;

use common::{fixtures, infoplane};

fn hidden_on(device: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "The quick brown fox jumps over the lazy dog.\n").unwrap();
    let model = fixtures().join("models/llama");
    let out = dir.path().join("out");
    let args = ["hidden", "--model", model.to_str().unwrap(), "--text-file", text.to_str().unwrap(), "--device", device, "--output", out.to_str().unwrap()];
    let o = infoplane(&args, dir.path());
    assert!(!out.join("hidden_states.npy").exists(), "no output may be written when the device cannot be opened");
    o
}

fn stderr_lines(o: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr).lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

#[test]
fn unusable_cuda_device_is_one_line_and_exit_2() {
    // No machine has a thousand GPUs, so this fails in every build, with or without a GPU.
    let o = hidden_on("cuda:999");
    let lines = stderr_lines(&o);
    assert_eq!(o.status.code(), Some(2), "stderr: {lines:?}");
    assert_eq!(lines.len(), 1, "one line expected: {lines:?}");
    let line = &lines[0];
    assert!(line.starts_with("error: device cuda:999: "), "{line}");
    assert!(!line.contains("panicked"), "{line}");
    if cfg!(feature = "cuda") {
        assert!(line.contains("nvidia-smi"), "a CUDA build says what to check: {line}");
    } else {
        assert!(line.contains("no CUDA support") && line.contains("--features cuda"), "a CPU build says how to get CUDA: {line}");
    }
}

#[test]
fn unknown_device_names_the_accepted_forms() {
    let o = hidden_on("gpu0");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gpu0") && err.contains("cpu or cuda:N"), "{err}");
}
