//! Times the forward pass alone: `cargo run --release -p infoplane-runtime --example
//! forward_timing -- MODEL [TOKENS] [f32|bf16] [REPEATS]` (random token ids, hidden states kept).

use infoplane_runtime::{resolve, ComputeDType, LoadOptions, Model, Want};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).expect("usage: forward_timing MODEL [TOKENS] [f32|bf16] [REPEATS]");
    let tokens: usize = args.get(2).map_or(512, |s| s.parse().unwrap());
    let dtype: ComputeDType = args.get(3).map_or(ComputeDType::F32, |s| s.parse().unwrap());
    let repeats: usize = args.get(4).map_or(3, |s| s.parse().unwrap());
    let model = Model::load(&resolve(model).unwrap(), &LoadOptions { dtype, ..Default::default() }).unwrap();
    let v = model.info().vocab_size as u64;
    // A fixed LCG so runs are comparable.
    let mut x = 12345u64;
    let ids: Vec<u32> = (0..tokens)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % v) as u32
        })
        .collect();
    for i in 0..=repeats {
        let (t, c) = (Instant::now(), cpu_seconds());
        let out = model.forward(&[&ids], Want::default()).unwrap();
        let (s, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        if i > 0 {
            println!("{tokens} tokens in {s:.3} s ({:.1} tok/s), {cpu:.3} CPU s, {} arrays", tokens as f64 / s, out[0].hidden.len());
        }
    }
}

/// User + system CPU time of this process (Linux /proc; 0 elsewhere): less sensitive than wall
/// time to other load on the machine.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
