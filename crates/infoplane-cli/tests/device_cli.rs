//! `--device`: a CUDA device that cannot be used is one clear line on stderr and exit 2, never a
//! panic, in CPU builds (CI) and in `--features cuda` builds alike.
mod common;

use common::{fixtures, infoplane, refuses};

/// `hidden` on `device` in a scratch directory: its arguments (output `out/`) and the directory.
fn hidden_on(device: &str) -> (Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "The quick brown fox jumps over the lazy dog.\n").unwrap();
    let model = fixtures().join("models/llama");
    let args = ["hidden", "--model", model.to_str().unwrap(), "--text-file", text.to_str().unwrap(), "--device", device, "--output", "out"];
    (args.map(str::to_string).to_vec(), dir)
}

#[test]
fn unusable_cuda_device_is_one_line_and_exit_2() {
    // No machine has a thousand GPUs, so this fails in every build, with or without a GPU.
    let (args, dir) = hidden_on("cuda:999");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = refuses(dir.path(), &args, &["cuda:999"]);
    assert!(line.starts_with("error: device cuda:999: "), "{line}");
    if cfg!(feature = "cuda") {
        assert!(line.contains("nvidia-smi"), "a CUDA build says what to check: {line}");
    } else {
        assert!(line.contains("no CUDA support") && line.contains("--features cuda"), "a CPU build says how to get CUDA: {line}");
    }
}

#[test]
fn unknown_device_names_the_accepted_forms() {
    let (args, dir) = hidden_on("gpu0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = infoplane(&args, dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path().join("out/hidden_states.npy").exists(), "no output may be written when the device cannot be opened");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gpu0") && err.contains("cpu or cuda:N"), "{err}");
}
