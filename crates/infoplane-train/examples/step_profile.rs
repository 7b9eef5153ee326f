//! Splits a training step's time: forward (to the logits), loss, backward, optimiser:
//! `RAYON_NUM_THREADS=1 cargo run --release -p infoplane-train --example step_profile -- LAYERS WIDTH HEADS VOCAB CONTEXT BATCH STEPS`
use infoplane_train::data::{TokenStream, WindowSampler};
use infoplane_train::optim::{AdamW, AdamWConfig};
use infoplane_train::{shape_for, train_tokenizer, TrainModel};
use std::time::Instant;

fn main() {
    infoplane_train::keep_freed_memory();
    let a: Vec<usize> = std::env::args().skip(1).map(|x| x.parse().expect("numbers")).collect();
    let (layers, width, heads, vocab, context, batch, steps) = (a[0], a[1], a[2], a[3], a[4], a[5], a[6] as u64);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = infoplane_store::read_corpus(&root.join("data/c4_sample/c4_en_train00000_first1000.jsonl"), &Default::default()).unwrap();
    let texts: Vec<&str> = corpus.documents.iter().take(300).map(|d| d.text.as_str()).collect();
    let tok = train_tokenizer(&texts, vocab).unwrap();
    let shape = shape_for(&tok, layers, width, heads, None, None, context, false).unwrap();
    let stream = TokenStream::new(infoplane_train::tokenizer::encode_documents(&tok, &texts).unwrap());
    let sampler = WindowSampler::new(&stream, 0, batch, context).unwrap();
    let model = TrainModel::init(&shape, 0).unwrap();
    let mut opt = AdamW::new(&model.params, AdamWConfig::default());
    let (mut tf, mut tl, mut tb, mut to) = (0.0, 0.0, 0.0, 0.0);
    for step in 1..=steps {
        let b = sampler.batch(&stream, step);
        let t0 = Instant::now();
        let logits = model.logits(&b.inputs, b.rows, b.context).unwrap();
        let t1 = Instant::now();
        let loss = infoplane_train::fused::cross_entropy(&logits, &b.targets).unwrap();
        let _ = loss.to_scalar::<f32>().unwrap();
        let t2 = Instant::now();
        let grads = loss.backward().unwrap();
        let t3 = Instant::now();
        opt.step(&model.params, &grads, 1e-3).unwrap();
        let t4 = Instant::now();
        tf += (t1 - t0).as_secs_f64();
        tl += (t2 - t1).as_secs_f64();
        tb += (t3 - t2).as_secs_f64();
        to += (t4 - t3).as_secs_f64();
    }
    let n = steps as f64 * 1e-3;
    println!("per step ms: forward {:.2}, loss {:.2}, backward {:.2}, optimiser {:.2}", tf / n, tl / n, tb / n, to / n);
}
