//! Prints this machine's f32 FMA peak, its f32 matrix-multiply rate on the estimator's shape (the
//! `gemm` crate), and the rate at which the estimator computes H(Z) alone, as a share of both. Run:
//! `cargo bench -p infoplane-estimator --bench kernel [-- ROWS DIM BINS]`.

use infoplane_estimator::{Accumulator, Calibration, ReferencePoints, Rows, Settings, SoftAssigner};
use rayon::prelude::*;
use std::time::Instant;

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The cores' f32 FMA peak in GFLOP/s: 16 independent 16-lane FMA chains per thread, one thread
/// per rayon thread (None without AVX-512F, where the estimator uses `gemm` anyway).
fn fma_peak(threads: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        #[target_feature(enable = "avx512f")]
        unsafe fn chains(steps: usize) -> f32 {
            let mut acc = [_mm512_set1_ps(1e-3); 16];
            let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            for _ in 0..steps {
                for a in acc.iter_mut() {
                    *a = _mm512_fmadd_ps(*a, x, y);
                }
            }
            acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
        }
        if !std::is_x86_feature_detected!("avx512f") {
            return None;
        }
        let steps = 20_000_000;
        let seconds = best_of(3, || {
            // SAFETY: AVX-512F was detected above.
            let sums: Vec<f32> = (0..threads).into_par_iter().map(|_| unsafe { chains(steps) }).collect();
            std::hint::black_box(sums);
        });
        Some((threads * steps * 16 * 16 * 2) as f64 / seconds / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = threads;
        None
    }
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (rows, d, n) = (*args.first().unwrap_or(&65_536), *args.get(1).unwrap_or(&768), *args.get(2).unwrap_or(&100));
    let threads = rayon::current_num_threads();
    let z: Vec<f32> = (0..rows * d).map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f32) / 500.0 - 1.0).collect();
    let w = ReferencePoints::from_seed(0, n, d).unwrap();
    let flops = 2.0 * rows as f64 * d as f64 * n as f64;

    // The peer: the same GEMM, multithreaded the way gemm does it itself, nothing else.
    let mut out = vec![0f32; rows * n];
    let matmul = best_of(5, || unsafe {
        gemm::gemm(rows, n, d, out.as_mut_ptr(), 1, n as isize, false, z.as_ptr(), 1, d as isize, w.rows().as_ptr(), d as isize, 1, 0.0, 1.0, false, false, false, gemm::Parallelism::Rayon(threads));
    });
    // And split into the estimator's fixed 256-row chunks, one single-threaded GEMM per chunk.
    let chunked = best_of(5, || {
        out.par_chunks_mut(256 * n).zip(z.par_chunks(256 * d)).for_each(|(o, zc)| unsafe {
            gemm::gemm(zc.len() / d, n, d, o.as_mut_ptr(), 1, n as isize, false, zc.as_ptr(), 1, d as isize, w.rows().as_ptr(), d as isize, 1, 0.0, 1.0, false, false, false, gemm::Parallelism::None);
        })
    });
    let eps = Calibration::FindEps.epsilon(n, d).unwrap();
    let assigner = SoftAssigner::new(&w, eps).unwrap();
    let entropy_only = best_of(5, || {
        let mut acc = Accumulator::new(Settings::new(&assigner, &Calibration::FindEps));
        acc.update(&assigner, Rows::F32(&z), &[]).unwrap();
        std::hint::black_box(acc.estimate().unwrap().entropy);
    });
    let gf = |s: f64| flops / s / 1e9;
    println!("workload: {rows} rows × d={d} × n={n}, {threads} threads");
    println!("f32 matmul (gemm, its own threading):      {:7.1} GFLOP/s  {:>10.0} rows/s", gf(matmul), rows as f64 / matmul);
    println!("f32 matmul (256-row chunks, as estimator): {:7.1} GFLOP/s  {:>10.0} rows/s", gf(chunked), rows as f64 / chunked);
    println!("H(Z) alone (normalise+matmul+softmax+sum): {:7.1} GFLOP/s  {:>10.0} rows/s", gf(entropy_only), rows as f64 / entropy_only);
    let best = gf(matmul).max(gf(chunked));
    println!("H(Z) rate / best matmul rate = {:.0}% (goal ≥ 50%)", 100.0 * gf(entropy_only) / best);
    match fma_peak(threads) {
        Some(peak) => {
            println!("f32 FMA peak (16 chains per thread):       {peak:7.1} GFLOP/s");
            println!("H(Z) rate / FMA peak = {:.0}%", 100.0 * gf(entropy_only) / peak);
        }
        None => println!("f32 FMA peak: not measured (no AVX-512F)"),
    }
}
