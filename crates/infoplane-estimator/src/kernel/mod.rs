//! Soft assignment p = softmax(z̄Wᵀ/ε), row by row, on f32/f16/bf16 input.
//!
//! The matrix product runs on the raw rows (no normalised copy) and each row of scores is scaled
//! by 1/(ε‖z‖) afterwards. Work is cut into fixed chunks of [`CHUNK_ROWS`] rows, done in parallel,
//! each on one thread: on CPUs with AVX-512F by our own kernel (`avx512`, positions in the SIMD
//! lanes), elsewhere by one single-threaded `gemm` call and a row-wise softmax. Either way every
//! row's numbers are the same whatever the thread count.

#[cfg(target_arch = "x86_64")]
mod avx512;

use crate::reference::ReferencePoints;
use crate::EstimatorError;
use half::{bf16, f16};
use rayon::prelude::*;

pub(crate) const CHUNK_ROWS: usize = 256;

thread_local! {
    /// Per-thread f32 copy of one chunk of f16/bf16 rows, reused across chunks.
    static WIDENED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}
#[cfg(target_arch = "x86_64")]
thread_local! {
    static AVX512_SCRATCH: std::cell::RefCell<avx512::Scratch> = std::cell::RefCell::new(avx512::Scratch::default());
}
const LANES: usize = 16;

/// Probabilities are clipped here before the logarithm, as soft_h does.
pub(crate) const CLIP: f64 = 1e-9;

/// A borrowed batch of rows, row-major, in the model's dtype.
#[derive(Clone, Copy, Debug)]
pub enum Rows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    BF16(&'a [bf16]),
}

impl<'a> Rows<'a> {
    pub fn len(&self) -> usize {
        match self {
            Rows::F32(v) => v.len(),
            Rows::F16(v) => v.len(),
            Rows::BF16(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn slice(&self, range: std::ops::Range<usize>) -> Rows<'a> {
        match self {
            Rows::F32(v) => Rows::F32(&v[range]),
            Rows::F16(v) => Rows::F16(&v[range]),
            Rows::BF16(v) => Rows::BF16(&v[range]),
        }
    }
    /// The raw bytes (for prefetching) and the size of one element.
    #[cfg(target_arch = "x86_64")]
    fn bytes(&self) -> (&'a [u8], usize) {
        match self {
            Rows::F32(v) => (bytes_of(v), 4),
            Rows::F16(v) => (bytes_of(v), 2),
            Rows::BF16(v) => (bytes_of(v), 2),
        }
    }
}

/// The memory of `v` as bytes, for prefetching. Only for plain number types (f32, f16, bf16):
/// every byte of them is initialised and any bytes are valid `u8`s.
#[cfg(target_arch = "x86_64")]
fn bytes_of<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: the same memory and length in bytes; callers pass padding-free number types.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

/// W (transposed for the product) with 1/ε: everything needed to turn rows into soft assignments.
pub struct SoftAssigner {
    n: usize,
    d: usize,
    w_t: Vec<f32>, // [d, n]
    epsilon: f64,
    sha256: String,
    /// W packed for the AVX-512 path, when this CPU has AVX-512F.
    #[cfg(target_arch = "x86_64")]
    avx512: Option<avx512::PackedW>,
}

/// One block of soft assignments, for callers that keep them (e.g. spilled to disk) and add them
/// to an [`crate::Accumulator`] later with `add_bin_sums` and `absorb_labels`.
#[derive(Debug)]
pub struct Assigned {
    /// [rows, n] row-major.
    pub p: Vec<f32>,
    /// Σ over rows of p, per bin, summed chunk by chunk in a fixed order.
    pub column_sums: Vec<f64>,
    /// H(p_i) in nats with the clip, when asked for (labels seen once need it).
    pub row_entropy: Option<Vec<f64>>,
}

impl SoftAssigner {
    pub fn new(w: &ReferencePoints, epsilon: f64) -> Result<Self, EstimatorError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(EstimatorError::Calibration(format!("epsilon must be positive, got {epsilon}")));
        }
        let (n, d) = (w.n(), w.dim());
        let mut w_t = vec![0f32; n * d];
        for (j, row) in w.rows().chunks_exact(d).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                w_t[c * n + j] = v;
            }
        }
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::is_x86_feature_detected!("avx512f").then(|| avx512::PackedW::new(&w_t, n, d));
        Ok(SoftAssigner {
            n,
            d,
            w_t,
            epsilon,
            sha256: w.sha256().to_string(),
            #[cfg(target_arch = "x86_64")]
            avx512,
        })
    }

    /// The same assigner on the portable path (the `gemm` crate, bins in the lanes), for tests
    /// that compare it with the AVX-512 path.
    #[cfg(test)]
    fn portable(mut self) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            self.avx512 = None;
        }
        self
    }
    pub fn n_bins(&self) -> usize {
        self.n
    }
    pub fn dim(&self) -> usize {
        self.d
    }
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }
    pub fn reference_points_sha256(&self) -> &str {
        &self.sha256
    }

    /// Soft assignments of `rows` ([len/d, d]). `first_position` only names rows in errors.
    pub fn assign(&self, rows: Rows<'_>, first_position: u64, want_row_entropy: bool) -> Result<Assigned, EstimatorError> {
        let (mut p, mut h) = (Vec::new(), Vec::new());
        let column_sums = self.assign_into(rows, first_position, want_row_entropy, &mut p, &mut h)?;
        Ok(Assigned { p, column_sums, row_entropy: want_row_entropy.then_some(h) })
    }

    /// Like `assign`, into reusable buffers (`p` becomes [rows, n]; `row_entropy` [rows] when
    /// asked for); returns the per-bin column sums.
    pub fn assign_into(&self, rows: Rows<'_>, first_position: u64, want_row_entropy: bool, p: &mut Vec<f32>, row_entropy: &mut Vec<f64>) -> Result<Vec<f64>, EstimatorError> {
        let d = self.d;
        if !rows.len().is_multiple_of(d) {
            return Err(EstimatorError::Shape { got: rows.len(), dim: d });
        }
        let count = rows.len() / d;
        let n = self.n;
        p.resize(count * n, 0.0);
        row_entropy.resize(if want_row_entropy { count } else { 0 }, 0.0);
        let chunk_sums: Vec<Result<Vec<f64>, EstimatorError>> = if want_row_entropy {
            p.par_chunks_mut(CHUNK_ROWS * n)
                .zip(row_entropy.par_chunks_mut(CHUNK_ROWS))
                .enumerate()
                .map(|(c, (out, h))| self.assign_chunk(rows, c, first_position, out, Some(h), None))
                .collect()
        } else {
            p.par_chunks_mut(CHUNK_ROWS * n).enumerate().map(|(c, out)| self.assign_chunk(rows, c, first_position, out, None, None)).collect()
        };
        let mut column_sums = vec![0f64; n];
        for sums in chunk_sums {
            for (a, b) in column_sums.iter_mut().zip(sums?) {
                *a += b;
            }
        }
        Ok(column_sums)
    }

    /// Chunk `chunk` of `rows` (f16/bf16 widened to f32 first) on the path this CPU takes, on the
    /// calling thread; `out` holds the chunk's [m, n]. `next_chunk`, the chunk this thread does
    /// next when known, has its first rows prefetched while this one computes.
    pub(crate) fn assign_chunk(
        &self,
        rows: Rows<'_>,
        chunk: usize,
        first_position: u64,
        out: &mut [f32],
        row_entropy: Option<&mut [f64]>,
        next_chunk: Option<usize>,
    ) -> Result<Vec<f64>, EstimatorError> {
        let (n, d) = (self.n, self.d);
        let m = out.len() / n;
        let start = chunk * CHUNK_ROWS;
        let first_row = first_position + start as u64;
        WIDENED.with_borrow_mut(|widened| {
            let z = widen(rows.slice(start * d..(start + m) * d), widened);
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(packed) = &self.avx512 {
                    let (bytes, size) = rows.bytes();
                    let next = next_chunk.map_or(&[][..], |c| {
                        let start = (c * CHUNK_ROWS * d * size).min(bytes.len());
                        &bytes[start..(start + avx512::NEXT_ROWS * d * size).min(bytes.len())]
                    });
                    // SAFETY: `avx512` is only built when the CPU has AVX-512F.
                    return AVX512_SCRATCH.with_borrow_mut(|scratch| unsafe { avx512::assign_chunk(packed, self.epsilon, z, first_row, out, row_entropy, next, d * size, scratch) });
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the features were just detected on this CPU.
                    return unsafe { self.chunk_avx2(z, first_row, out, row_entropy) };
                }
            }
            self.chunk(z, first_row, out, row_entropy)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chunk_avx2(&self, z: &[f32], first_row: u64, out: &mut [f32], row_entropy: Option<&mut [f64]>) -> Result<Vec<f64>, EstimatorError> {
        self.chunk(z, first_row, out, row_entropy)
    }

    /// One chunk on the portable path (`z` is [m, d], its first row at position `first_row`):
    /// row norms, GEMM, softmax, column sums, row entropies. Inlined into a copy per instruction
    /// set (AVX2, baseline; CPUs with AVX-512 take `avx512::assign_chunk`) so every loop
    /// vectorises for the CPU it runs on. (The wrapper above is spelled out on purpose: a generic
    /// "run this closure with these features" helper leaves the closure un-inlined and
    /// baseline-compiled, which measured 25% slower.)
    #[inline(always)]
    fn chunk(&self, z: &[f32], first_row: u64, out: &mut [f32], row_entropy: Option<&mut [f64]>) -> Result<Vec<f64>, EstimatorError> {
        let (n, d) = (self.n, self.d);
        let m = out.len() / n;
        let mut scale = vec![0f32; m];
        for (i, row) in z.chunks_exact(d).enumerate() {
            scale[i] = inverse_scaled_norm(sum_of_squares(row), row, self.epsilon, first_row + i as u64)?;
        }
        // SAFETY: all pointers come from slices of exactly the sizes gemm reads and writes:
        // z is [m, d] row-major, w_t is [d, n] row-major, out is [m, n] row-major.
        unsafe {
            gemm::gemm(
                m, n, d,
                out.as_mut_ptr(), 1, n as isize, false,
                z.as_ptr(), 1, d as isize,
                self.w_t.as_ptr(), 1, n as isize,
                0.0, 1.0, false, false, false,
                gemm::Parallelism::None,
            );
        }
        softmax_rows_generic(out, n, &scale);
        let mut sums = vec![0f64; n];
        for row in out.chunks_exact(n) {
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
        if let Some(h) = row_entropy {
            for (h, row) in h.iter_mut().zip(out.chunks_exact(n)) {
                *h = row_entropy_nats(row);
            }
        }
        Ok(sums)
    }
}

/// The rows as f32: borrowed when they are f32, else widened into `buffer`.
#[inline(always)]
fn widen<'a>(rows: Rows<'a>, buffer: &'a mut Vec<f32>) -> &'a [f32] {
    fn into<'a, H>(v: &[H], buffer: &'a mut Vec<f32>) -> &'a [f32]
    where
        [H]: half::slice::HalfFloatSliceExt,
    {
        buffer.resize(v.len(), 0.0);
        half::slice::HalfFloatSliceExt::convert_to_f32_slice(v, buffer);
        buffer
    }
    match rows {
        Rows::F32(v) => v,
        Rows::F16(v) => into(v, buffer),
        Rows::BF16(v) => into(v, buffer),
    }
}

/// 1/(ε‖z‖) from the row's Σz² in f32. A row whose squares overflowed f32 but whose values are
/// finite is summed again in f64; a zero or non-finite row is an error naming its position.
#[inline(always)]
fn inverse_scaled_norm(sq: f32, row: &[f32], epsilon: f64, position: u64) -> Result<f32, EstimatorError> {
    let mut sq = sq as f64;
    if sq.is_infinite() && row.iter().all(|v| v.is_finite()) {
        sq = row.iter().map(|&v| (v as f64) * (v as f64)).sum();
    }
    if !sq.is_finite() || sq == 0.0 {
        return Err(EstimatorError::BadRow { position, reason: if sq == 0.0 { "zero vector (cannot be normalised)" } else { "non-finite value (NaN or Inf)" } });
    }
    Ok((1.0 / (epsilon * sq.sqrt())) as f32)
}

/// Efficiency-normalised entropy H(q)/ln n of a vector of non-negative sums (normalised by their
/// total, clipped at 1e-9 before the log, as soft_h's `_h_from_counts`). The same bits on every
/// CPU: the vector path runs the same operations in the same order as the scalar one.
pub fn entropy_efficiency(sums: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the features were just detected on this CPU.
        return unsafe { entropy_nats_avx512(sums) } / (sums.len() as f64).ln();
    }
    entropy_nats(sums) / (sums.len() as f64).ln()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn entropy_nats_avx512(sums: &[f64]) -> f64 {
    entropy_nats(sums)
}

/// −Σ q ln q with q = s/Σs, over eight lanes (an order the compiler can vectorise) and the tail.
#[inline(always)]
fn entropy_nats(sums: &[f64]) -> f64 {
    let total: f64 = sums.iter().sum();
    let term = |s: f64| {
        let q = s / total;
        q * ln_f64(q.max(CLIP))
    };
    let mut lanes = [0.0f64; 8];
    let chunks = sums.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &s) in lanes.iter_mut().zip(chunk) {
            *lane += term(s);
        }
    }
    let mut h: f64 = lanes.iter().sum();
    for &s in tail {
        h += term(s);
    }
    -h
}

/// ln x for positive normal x, branch-free so it vectorises: fdlibm's `__ieee754_log`
/// (the reduction to [√2/2, √2), its degree-14 polynomial and ln 2 split in two; < 1 ulp).
#[inline(always)]
fn ln_f64(x: f64) -> f64 {
    const LN2_HI: f64 = 0.6931471803691238;
    const LN2_LO: f64 = 1.9082149292705877e-10;
    const LG: [f64; 7] = [
        0.6666666666666735,
        0.3999999999940942,
        0.2857142874366239,
        0.22222198432149784,
        0.1818357216161805,
        0.15313837699209373,
        0.14798198605116586,
    ];
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000); // [1, 2)
    let high = m > std::f64::consts::SQRT_2;
    let k = (exponent + high as i64) as f64;
    let f = if high { 0.5 * m } else { m } - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

/// H(p) in nats of one soft-assignment row (already sums to 1 up to rounding).
#[inline(always)]
fn row_entropy_nats(row: &[f32]) -> f64 {
    let mut total = [0f64; LANES];
    let mut acc = [0f64; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for ((t, a), &v) in total.iter_mut().zip(acc.iter_mut()).zip(c) {
            *t += v as f64;
            *a += v as f64 * fast_ln(v.max(CLIP as f32)) as f64;
        }
    }
    let mut t: f64 = total.iter().sum();
    let mut a: f64 = acc.iter().sum();
    for &v in tail {
        t += v as f64;
        a += v as f64 * fast_ln(v.max(CLIP as f32)) as f64;
    }
    entropy_of_unnormalised(t, a)
}

/// H(q) in nats of q = p/t, from t = Σp and a = Σ p ln p (p's sum is 1 only up to rounding):
/// Σ q ln q = a/t − ln t.
#[inline(always)]
fn entropy_of_unnormalised(t: f64, a: f64) -> f64 {
    -(a / t - t.ln())
}

/// Σ v² with LANES independent accumulators, so the reduction vectorises.
#[inline(always)]
fn sum_of_squares(row: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|v| v * v).sum::<f32>()
}

#[inline(always)]
fn softmax_rows_generic(scores: &mut [f32], n: usize, scale: &[f32]) {
    for (row, &s) in scores.chunks_exact_mut(n).zip(scale) {
        let mut max = [f32::NEG_INFINITY; LANES];
        let mut tail_max = f32::NEG_INFINITY;
        let mut chunks = row.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for (m, v) in max.iter_mut().zip(c.iter_mut()) {
                *v *= s;
                *m = if *v > *m { *v } else { *m };
            }
        }
        for v in chunks.into_remainder() {
            *v *= s;
            tail_max = tail_max.max(*v);
        }
        let max = max.iter().fold(tail_max, |a, &b| a.max(b));
        let mut sum = [0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for (a, v) in sum.iter_mut().zip(c.iter_mut()) {
                *v = fast_exp(*v - max);
                *a += *v;
            }
        }
        let mut total: f32 = 0.0;
        for v in chunks.into_remainder() {
            *v = fast_exp(*v - max);
            total += *v;
        }
        let inv = 1.0 / (total + sum.iter().sum::<f32>());
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// e^x for x ≤ 0 (Cephes expf polynomial after Cody–Waite reduction; ≤ 2 ulp). Branch-free so the
/// softmax loop vectorises. Inputs below −87 give e^−87 (≈1.6e−38) instead of a denormal.
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    let x = x.max(-87.0);
    let t = x * LOG2E;
    let k = (t + 12_582_912.0) - 12_582_912.0; // round to nearest
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let er = p * r * r + r + 1.0;
    er * f32::from_bits((((k as i32) + 127) as u32) << 23)
}

/// ln x for positive normal x (Cephes logf; ≤ 2 ulp), branch-free.
#[inline(always)]
pub(crate) fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000); // [0.5, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut y = 7.037_683_6e-2f32;
    y = y * m - 1.151_461e-1;
    y = y * m + 1.167_699_9e-1;
    y = y * m - 1.242_014_1e-1;
    y = y * m + 1.424_932_3e-1;
    y = y * m - 1.666_805_8e-1;
    y = y * m + 2.000_071_4e-1;
    y = y * m - 2.499_999_4e-1;
    y = y * m + 3.333_333e-1;
    y = y * m * z;
    let ef = e as f32;
    y += -2.121_944_4e-4 * ef;
    y += -0.5 * z;
    m + y + 0.693_359_4 * ef
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_f64_is_within_two_ulps_of_std_and_entropies_agree_on_every_path() {
        let mut x = 1e-300f64;
        while x < 1e300 {
            for y in [x, x * 1.000_000_1, 1.0 + (x * 1e-9).min(0.5), 1.0 - (x * 1e-9).min(0.5)] {
                let (a, b) = (ln_f64(y), y.ln());
                assert!((a - b).abs() <= 2.0 * f64::EPSILON * b.abs(), "ln({y:e}): {a:e} vs {b:e}");
            }
            x *= 1.37;
        }
        assert_eq!(ln_f64(1.0), 0.0);
        for n in [2usize, 7, 8, 100, 1000] {
            let sums: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 * 0.37 + if i % 9 == 0 { 0.0 } else { 1e-12 }).collect();
            let total: f64 = sums.iter().sum();
            let naive = -sums.iter().map(|&s| s / total).map(|q| q * q.max(CLIP).ln()).sum::<f64>() / (n as f64).ln();
            let h = entropy_efficiency(&sums);
            assert!((h - naive).abs() < 1e-14, "n = {n}: {h} vs {naive}");
            assert_eq!(h.to_bits(), (entropy_nats(&sums) / (n as f64).ln()).to_bits(), "n = {n}: the vector path differs");
        }
    }

    #[test]
    fn fast_exp_and_ln_match_std_to_a_few_ulp() {
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (a, b) = (fast_exp(x), x.exp());
            assert!(((a - b) / b).abs() < 3e-7, "exp({x}): {a} vs {b}");
            x += 0.0173;
        }
        let mut x = 1e-9f32;
        while x < 1.0 {
            let (a, b) = (fast_ln(x) as f64, (x as f64).ln());
            assert!((a - b).abs() < 3e-7 * b.abs().max(1.0), "ln({x}): {a} vs {b}");
            x *= 1.013;
        }
    }

    #[test]
    fn rows_are_softmaxes_and_bad_rows_are_named() {
        let w = ReferencePoints::from_seed(1, 10, 8).unwrap();
        let a = SoftAssigner::new(&w, 0.1).unwrap();
        let mut z: Vec<f32> = (0..8 * 600).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let out = a.assign(Rows::F32(&z), 0, true).unwrap();
        for row in out.p.chunks(10) {
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-5);
        }
        assert!((out.column_sums.iter().sum::<f64>() - 600.0).abs() < 1e-3);
        z[8 * 300..8 * 301].fill(0.0);
        let err = a.assign(Rows::F32(&z), 1000, false).unwrap_err().to_string();
        assert!(err.contains("row 1300") && err.contains("zero"), "{err}");
        z[8 * 300] = f32::NAN;
        let err = a.assign(Rows::F32(&z), 0, false).unwrap_err().to_string();
        assert!(err.contains("row 300") && err.contains("non-finite"), "{err}");
    }

    #[test]
    fn half_precision_input_matches_f32_of_the_same_values() {
        let w = ReferencePoints::from_seed(2, 16, 32).unwrap();
        let a = SoftAssigner::new(&w, 0.05).unwrap();
        let z16: Vec<f16> = (0..32 * 50).map(|i| f16::from_f32(((i * 31) % 17) as f32 / 7.0 - 1.1)).collect();
        let z32: Vec<f32> = z16.iter().map(|v| v.to_f32()).collect();
        let zb: Vec<bf16> = z32.iter().map(|&v| bf16::from_f32(v)).collect();
        let zb32: Vec<f32> = zb.iter().map(|v| v.to_f32()).collect();
        assert_eq!(a.assign(Rows::F16(&z16), 0, false).unwrap().p, a.assign(Rows::F32(&z32), 0, false).unwrap().p);
        assert_eq!(a.assign(Rows::BF16(&zb), 0, false).unwrap().p, a.assign(Rows::F32(&zb32), 0, false).unwrap().p);
    }

    #[test]
    fn avx512_path_matches_the_portable_path() {
        // Shapes that hit micro-kernel widths 2 to 12, partial panels, a k tail and several chunks.
        // The scores differ only in the order of f32 rounding, so p agrees to ~1e-5 relative.
        for &(n, d, rows) in &[(100, 768, 600), (2, 16, 40), (3, 5, 70), (4, 19, 3), (5, 32, 32), (37, 20, 45), (7, 17, 33), (12, 2, 31), (13, 64, 257), (50, 33, 1), (25, 100, 64), (130, 48, 100)] {
            let w = ReferencePoints::from_seed(n as u64, n, d).unwrap();
            let fast = SoftAssigner::new(&w, 0.07).unwrap();
            let portable = SoftAssigner::new(&w, 0.07).unwrap().portable();
            #[cfg(target_arch = "x86_64")]
            if fast.avx512.is_none() {
                eprintln!("skipped: this CPU has no AVX-512, so there is one path only");
                return;
            }
            let z: Vec<f32> = (0..rows * d).map(|i| ((i.wrapping_mul(2_654_435_761) % 2003) as f32) / 1000.0 - 1.0).collect();
            let (a, b) = (fast.assign(Rows::F32(&z), 0, true).unwrap(), portable.assign(Rows::F32(&z), 0, true).unwrap());
            assert_eq!(a.p.len(), rows * n);
            for (i, (x, y)) in a.p.iter().zip(&b.p).enumerate() {
                assert!((x - y).abs() <= 1e-5 * y.max(1e-3), "n={n} d={d} rows={rows}: p[{}][{}] = {x} vs {y}", i / n, i % n);
            }
            for (x, y) in a.column_sums.iter().zip(&b.column_sums) {
                assert!((x - y).abs() <= 1e-5 * y.max(1.0), "n={n} d={d}: column sum {x} vs {y}");
            }
            for (x, y) in a.row_entropy.unwrap().iter().zip(b.row_entropy.unwrap()) {
                assert!((x - y).abs() <= 1e-5, "n={n} d={d}: row entropy {x} vs {y}");
            }
            // A row whose squares overflow f32 is normalised in f64: same p as the row scaled down.
            let mut scaled = z.clone();
            scaled[..d].iter_mut().for_each(|v| *v *= 1e20);
            for assigner in [&fast, &portable] {
                let big = assigner.assign(Rows::F32(&scaled), 0, false).unwrap();
                for (x, y) in big.p[..n].iter().zip(&b.p[..n]) {
                    assert!((x - y).abs() <= 1e-5 * y.max(1e-3), "n={n} d={d}: p of a 1e20-scaled row {x} vs {y}");
                }
            }
            let mut bad = z.clone();
            bad[(rows - 1) * d] = f32::INFINITY;
            let (ea, eb) = (fast.assign(Rows::F32(&bad), 5, false).unwrap_err(), portable.assign(Rows::F32(&bad), 5, false).unwrap_err());
            assert_eq!(ea.to_string(), eb.to_string());
        }
    }
}
