//! Measures training speed on the bundled C4 sample:
//! `cargo run --release -p infoplane-train --example train_speed -- LAYERS WIDTH HEADS VOCAB CONTEXT BATCH STEPS [SECONDS]`
//! Prints tokenizer time, steps/s and the loss reached (held-out loss at the end).

use infoplane_train::{shape_for, train, train_tokenizer, Silent, TrainJob, TrainSettings};
use std::time::Instant;

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|x| x.parse().expect("numbers")).collect();
    let (layers, width, heads, vocab, context, batch, steps) = (a[0], a[1], a[2], a[3], a[4], a[5], a[6] as u64);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = infoplane_store::read_corpus(&root.join("data/c4_sample/c4_en_train00000_first1000.jsonl"), &Default::default()).unwrap();
    let texts: Vec<&str> = corpus.documents.iter().map(|d| d.text.as_str()).collect();
    let (tr, ev) = texts.split_at(900);
    let t0 = Instant::now();
    let tok = train_tokenizer(tr, vocab).unwrap();
    println!("tokenizer: {} tokens in {:.2} s", tok.get_vocab_size(true), t0.elapsed().as_secs_f64());
    let shape = shape_for(&tok, layers, width, heads, None, None, context, false).unwrap();
    let mut settings = TrainSettings::new(steps, batch, context, 0);
    settings.checkpoints = 2;
    let out = tempfile::tempdir().unwrap();
    let job = TrainJob { name: "speed".into(), shape, settings, output: out.path().to_path_buf(), overwrite: false };
    let s = train(&job, &tok, tr, ev, &mut Silent).unwrap();
    println!(
        "params {} threads {} steps {} in {:.2} s: {:.2} steps/s, {:.0} tok/s; train tokens {}; loss {:.4} held-out {:?}",
        s.params,
        rayon::current_num_threads(),
        steps,
        s.elapsed_s,
        s.steps_per_s,
        s.steps_per_s * (batch * context) as f64,
        s.train_tokens,
        s.final_loss,
        s.checkpoints.last().unwrap().eval_loss
    );
}
