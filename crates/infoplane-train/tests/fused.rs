//! The fused training forward (custom ops with hand-written backward passes) against the
//! runtime's differentiable decoder with candle's composite ops and autograd: same logits, same
//! loss, same gradient for every parameter, on shapes with grouped-query attention, tied
//! embeddings and weights far from their initial values.

use infoplane_estimator::rng::Philox;
use infoplane_train::model::{fnv1a64, ModelShape};
use infoplane_train::TrainModel;

fn shape(heads: usize, kv_heads: usize, tie: bool) -> ModelShape {
    ModelShape { vocab_size: 97, hidden_size: 32, layers: 2, heads, kv_heads, intermediate_size: 40, max_positions: 16, tie_embeddings: tie, bos_token_id: 0 }
}

/// Weights with O(1) activations (std 0.3 matrices, gains 1 ± 0.3) so every nonlinearity matters.
fn model(s: &ModelShape, seed: u64) -> TrainModel {
    let values = s
        .parameters()
        .into_iter()
        .map(|(name, dims, std)| {
            let rng = Philox::new(seed, fnv1a64(&name));
            let len: usize = dims.iter().product();
            let v = (0..len as u64).map(|i| match std {
                Some(_) => (0.3 * rng.normal(i)) as f32,
                None => (1.0 + 0.3 * rng.normal(i)) as f32,
            });
            (name, dims, v.collect())
        })
        .collect();
    TrainModel::from_values(s, values).unwrap()
}

fn tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let rng = Philox::new(seed, 99);
    (0..n as u64).map(|i| rng.below(i, vocab as u64) as u32).collect()
}

fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12) as f64;
    a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(0.0, f64::max) / scale
}

fn check(s: ModelShape) {
    let m = model(&s, 3);
    let (rows, t) = (3, 16);
    let inputs = tokens(rows * t, s.vocab_size, 1);
    let targets = tokens(rows * t, s.vocab_size, 2);
    let fused = m.logits(&inputs, rows, t).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let reference = m.reference_logits(&inputs, rows, t).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let d = max_rel(&fused, &reference);
    assert!(d < 2e-5, "{s:?}: logits differ by {d:e} (relative to the largest)");

    let lf = m.loss(&inputs, &targets, rows, t).unwrap();
    let lr = m.reference_loss(&inputs, &targets, rows, t).unwrap();
    let (vf, vr) = (lf.to_scalar::<f32>().unwrap(), lr.to_scalar::<f32>().unwrap());
    assert!(((vf - vr) / vr).abs() < 1e-5, "loss {vf} vs {vr}");
    assert!(vf > 1.0, "a random model's loss is far from 0: {vf}");
    let gf = lf.backward().unwrap();
    let gr = lr.backward().unwrap();
    for p in &m.params {
        let a = gf.get(p.var.as_tensor()).unwrap_or_else(|| panic!("no fused gradient for {}", p.name)).flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = gr.get(p.var.as_tensor()).unwrap_or_else(|| panic!("no reference gradient for {}", p.name)).flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(b.iter().any(|x| x.abs() > 1e-6), "{}: reference gradient is zero", p.name);
        let d = max_rel(&a, &b);
        assert!(d < 1e-4, "{s:?}: gradient of {} differs by {d:e}", p.name);
    }
}

#[test]
fn fused_matches_the_runtime_decoder_multi_head() {
    check(shape(4, 4, false));
}

#[test]
fn fused_matches_the_runtime_decoder_grouped_query_tied() {
    check(shape(4, 2, true));
}

#[test]
fn fused_matches_the_runtime_decoder_multi_query() {
    check(shape(2, 1, false));
}
