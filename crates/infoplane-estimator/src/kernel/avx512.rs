//! The AVX-512 soft assignment: positions in the SIMD lanes, one fused pass per chunk.
//!
//! Why not the generic path's `gemm` call: with bins in the lanes, n = 100 fills 7 registers of
//! 16 and wastes 12 lanes, and `gemm` reaches ~70% of a Zen 4's FMA peak on the estimator's shape.
//! With positions in the lanes every lane works; the softmax, the column sums and the row
//! entropies vectorise across positions, panel by panel while the panel is in L1; and later
//! panels' rows are prefetched while this one computes (measured on 2 Zen 4 cores: the soft
//! assignment with its entropies at ~185 GFLOP/s, 80% of the FMA peak, where the `gemm` call
//! alone reached ~160).
//!
//! Each score Σ_k z_ik w_jk is one FMA chain in k order, so a row's numbers do not depend on the
//! chunking or the thread count.

use super::{bytes_of, entropy_of_unnormalised, fast_ln, inverse_scaled_norm, CLIP};
use crate::EstimatorError;
use std::arch::x86_64::*;

/// Positions per panel: two 16-lane registers.
const PANEL: usize = 32;
/// Most bins per micro-kernel call: 2 × 12 accumulators, 2 panel registers and a broadcast fit
/// the 32 vector registers.
const MAX_BINS: usize = 12;

/// W packed for the micro-kernel: the bins cut into near-equal blocks of at most [`MAX_BINS`],
/// each block stored [d][bins] so one k step reads its weights contiguously.
pub(super) struct PackedW {
    n: usize,
    d: usize,
    blocks: Vec<Block>,
    data: Vec<f32>,
}

struct Block {
    first_bin: usize,
    bins: usize,
    offset: usize,
}

impl PackedW {
    /// `w_t` is W transposed, [d, n] row-major.
    pub(super) fn new(w_t: &[f32], n: usize, d: usize) -> Self {
        let count = n.div_ceil(MAX_BINS);
        let (base, extra) = (n / count, n % count);
        let mut blocks = Vec::with_capacity(count);
        let mut data = Vec::with_capacity(n * d);
        let mut first_bin = 0;
        for b in 0..count {
            let bins = base + usize::from(b < extra);
            blocks.push(Block { first_bin, bins, offset: data.len() });
            for k in 0..d {
                data.extend_from_slice(&w_t[k * n + first_bin..k * n + first_bin + bins]);
            }
            first_bin += bins;
        }
        PackedW { n, d, blocks, data }
    }
}

/// Per-thread buffers, reused across chunks.
#[derive(Default)]
pub(super) struct Scratch {
    panel: Vec<f32>,
    scores: Vec<f32>,
    exps: Vec<f32>,
    column_lanes: Vec<f64>,
}

type MicroKernel = unsafe fn(usize, *const f32, *const f32, *const f32, *mut f32, *mut f32, usize, *const i8, usize);

const KERNELS: [MicroKernel; MAX_BINS] = [
    micro::<1>, micro::<2>, micro::<3>, micro::<4>, micro::<5>, micro::<6>,
    micro::<7>, micro::<8>, micro::<9>, micro::<10>, micro::<11>, micro::<12>,
];

/// Scaled scores of one panel against one block of bins, `out[j * ld + i] = scale[i] · Σ_k
/// panel[k][i] · w[k][j]`, folding each lane's maximum into `max[i]`. Each k step also prefetches
/// one cache line of a later panel, at `prefetch + ⌊k·rate/2¹⁶⌋` lines (prefetches never fault,
/// so the address may run past the data). The hint is non-temporal: rows are read once, and
/// keeping them out of the shared L3 leaves it to the label sums (measured 3–4% faster with 8
/// label sets on Zen 4, 20 alternating runs; no change without labels).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro<const BINS: usize>(d: usize, panel: *const f32, w: *const f32, scale: *const f32, out: *mut f32, max: *mut f32, ld: usize, prefetch: *const i8, rate: usize) {
    let mut acc = [[_mm512_setzero_ps(); 2]; BINS];
    let (mut z, mut w) = (panel, w);
    for k in 0..d {
        _mm_prefetch::<_MM_HINT_NTA>(prefetch.wrapping_add(((k * rate) >> 16) * 64));
        let a0 = _mm512_loadu_ps(z);
        let a1 = _mm512_loadu_ps(z.add(16));
        for (j, acc) in acc.iter_mut().enumerate() {
            let b = _mm512_set1_ps(*w.add(j));
            acc[0] = _mm512_fmadd_ps(a0, b, acc[0]);
            acc[1] = _mm512_fmadd_ps(a1, b, acc[1]);
        }
        z = z.add(PANEL);
        w = w.add(BINS);
    }
    let scale = [_mm512_loadu_ps(scale), _mm512_loadu_ps(scale.add(16))];
    let mut lane_max = [_mm512_loadu_ps(max), _mm512_loadu_ps(max.add(16))];
    for (j, acc) in acc.iter().enumerate() {
        for h in 0..2 {
            let v = _mm512_mul_ps(acc[h], scale[h]);
            _mm512_storeu_ps(out.add(j * ld + 16 * h), v);
            lane_max[h] = _mm512_max_ps(v, lane_max[h]);
        }
    }
    _mm512_storeu_ps(max, lane_max[0]);
    _mm512_storeu_ps(max.add(16), lane_max[1]);
}

/// Transposes a 16 × `cols` block (`cols` ≤ 16): `dst[c * ldd + r] = src[r * lds + c]` for the 16
/// rows r, writing only the first `keep` lanes of each destination row.
#[target_feature(enable = "avx512f")]
unsafe fn transpose16(src: *const f32, lds: usize, cols: usize, dst: *mut f32, ldd: usize, keep: usize) {
    let store_mask = lane_mask(keep);
    let r = transposed16(src, lds, cols);
    // A constant trip count for full blocks keeps the 16 registers out of memory.
    if cols == 16 {
        for (c, r) in r.iter().enumerate() {
            _mm512_mask_storeu_ps(dst.add(c * ldd), store_mask, *r);
        }
    } else {
        for (c, r) in r.iter().enumerate().take(cols) {
            _mm512_mask_storeu_ps(dst.add(c * ldd), store_mask, *r);
        }
    }
}

/// The 16 × `cols` block at `src` (`cols` ≤ 16) in registers, transposed: register c holds
/// column c, its lane r being `src[r * lds + c]`; registers past `cols` are zero.
#[inline(always)]
unsafe fn transposed16(src: *const f32, lds: usize, cols: usize) -> [__m512; 16] {
    let load_mask = lane_mask(cols);
    let mut r = [_mm512_setzero_ps(); 16];
    for (i, r) in r.iter_mut().enumerate() {
        *r = _mm512_maskz_loadu_ps(load_mask, src.add(i * lds));
    }
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for i in 0..4 {
        let (a, b, c, e) = (_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 2]), _mm512_castps_pd(t[4 * i + 3]));
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
    }
    for i in 0..2 {
        for j in 0..4 {
            t[8 * i + j] = _mm512_shuffle_f32x4::<0x88>(r[8 * i + j], r[8 * i + 4 + j]);
            t[8 * i + 4 + j] = _mm512_shuffle_f32x4::<0xdd>(r[8 * i + j], r[8 * i + 4 + j]);
        }
    }
    for j in 0..8 {
        r[j] = _mm512_shuffle_f32x4::<0x88>(t[j], t[8 + j]);
        r[8 + j] = _mm512_shuffle_f32x4::<0xdd>(t[j], t[8 + j]);
    }
    r
}

#[inline(always)]
fn lane_mask(lanes: usize) -> __mmask16 {
    if lanes >= 16 {
        0xffff
    } else {
        ((1u32 << lanes) - 1) as __mmask16
    }
}

/// Packs `rows` rows of `z` ([rows, d], rows ≤ PANEL) into `panel` as [d][PANEL], zero-padded;
/// returns each row's Σ_k z_ik² (one FMA chain per row, in k order; zero past `rows`).
#[target_feature(enable = "avx512f")]
unsafe fn pack_panel(z: &[f32], rows: usize, d: usize, panel: &mut [f32]) -> [f32; PANEL] {
    let mut squares = [0f32; PANEL];
    if rows == PANEL {
        // Full panels, the hot case: the squares come from the transposed registers for free.
        let mut acc = [_mm512_setzero_ps(); 2];
        for k in (0..d).step_by(16) {
            let cols = 16.min(d - k);
            for (h, acc) in acc.iter_mut().enumerate() {
                let columns = transposed16(z.as_ptr().add(16 * h * d + k), d, cols);
                let mut store = |c: usize| {
                    _mm512_storeu_ps(panel.as_mut_ptr().add((k + c) * PANEL + 16 * h), columns[c]);
                    *acc = _mm512_fmadd_ps(columns[c], columns[c], *acc);
                };
                // A constant trip count for full blocks keeps the 16 registers out of memory.
                if cols == 16 {
                    (0..16).for_each(&mut store);
                } else {
                    (0..cols).for_each(&mut store);
                }
            }
        }
        _mm512_storeu_ps(squares.as_mut_ptr(), acc[0]);
        _mm512_storeu_ps(squares.as_mut_ptr().add(16), acc[1]);
    } else {
        panel.fill(0.0);
        for (i, row) in z.chunks_exact(d).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                panel[k * PANEL + i] = v;
                squares[i] = v.mul_add(v, squares[i]);
            }
        }
    }
    squares
}

/// Rows the kernel prefetches from the thread's next chunk: its first two panels.
pub(super) const NEXT_ROWS: usize = 2 * PANEL;

/// One chunk of rows (`z`: [m, d] f32 with m = out.len() / n): soft assignments into `out`
/// ([m, n] row-major), H(p_i) into `row_entropy` when given; returns the column sums.
/// `first_row` is the position of z's first row, for errors. `next` holds the raw rows (of
/// `next_row_bytes` each) that follow on this thread, up to [`NEXT_ROWS`], or nothing.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn assign_chunk(
    w: &PackedW,
    epsilon: f64,
    z: &[f32],
    first_row: u64,
    out: &mut [f32],
    mut row_entropy: Option<&mut [f64]>,
    next: &[u8],
    next_row_bytes: usize,
    s: &mut Scratch,
) -> Result<Vec<f64>, EstimatorError> {
    let (n, d) = (w.n, w.d);
    let m = out.len() / n;
    debug_assert_eq!(z.len(), m * d);
    let panels = m.div_ceil(PANEL);
    s.panel.resize(PANEL * d, 0.0);
    s.scores.resize(n * PANEL, 0.0);
    // Rows past n are only read (and discarded) by the 16 × 16 transposes into `out`.
    s.exps.resize(n.next_multiple_of(16) * PANEL, 0.0);
    s.column_lanes.clear();
    s.column_lanes.resize(n * 8, 0.0);

    for p in 0..panels {
        let (first, rows) = (p * PANEL, PANEL.min(m - p * PANEL));
        let src = &z[first * d..(first + rows) * d];
        let squares = pack_panel(src, rows, d, &mut s.panel);
        let mut scale = [0f32; PANEL];
        for (i, row) in src.chunks_exact(d).enumerate() {
            scale[i] = inverse_scaled_norm(squares[i], row, epsilon, first_row + (first + i) as u64)?;
        }
        // Prefetch the rows of the panel after next (the next one is already on its way), spread
        // over this panel's micro-kernel calls; one panel ahead measured ~1% slower. The last two
        // panels prefetch the first two of the thread's next chunk, when the caller knows it.
        let r = (p + 2) * PANEL;
        let ahead: &[u8] = if r < m {
            bytes_of(&z[r * d..(r + PANEL).min(m) * d])
        } else if m.is_multiple_of(PANEL) {
            let j = r - m;
            &next[(j * next_row_bytes).min(next.len())..((j + PANEL) * next_row_bytes).min(next.len())]
        } else {
            &[]
        };
        let lines_per_call = ahead.len().div_ceil(64).div_ceil(w.blocks.len());
        let rate = (lines_per_call << 16) / d;
        let mut max = [f32::NEG_INFINITY; PANEL];
        for (b, block) in w.blocks.iter().enumerate() {
            let prefetch = ahead.as_ptr().cast::<i8>().wrapping_add(b * lines_per_call * 64);
            let (weights, out) = (w.data.as_ptr().add(block.offset), s.scores.as_mut_ptr().add(block.first_bin * PANEL));
            KERNELS[block.bins - 1](d, s.panel.as_ptr(), weights, scale.as_ptr(), out, max.as_mut_ptr(), PANEL, prefetch, rate);
        }
        let entropy = row_entropy.as_deref_mut().map(|h| &mut h[first..first + rows]);
        softmax_panel(&s.scores, &mut s.exps, n, &max, rows, &mut s.column_lanes, entropy);
        for j in (0..n).step_by(16) {
            for i in (0..rows).step_by(16) {
                transpose16(s.exps.as_ptr().add(j * PANEL + i), PANEL, 16.min(rows - i), out.as_mut_ptr().add((first + i) * n + j), n, 16.min(n - j));
            }
        }
    }
    Ok(s.column_lanes.chunks_exact(8).map(|lanes| lanes.iter().sum()).collect())
}

/// The softmax of one panel down its lanes: `scores` ([n][PANEL], scaled, with each lane's
/// maximum in `max`) becomes probabilities in `exps`; each bin's probabilities over the first `rows`
/// lanes are added to its 8 f64 lanes in `column_lanes`, and H(p_i) goes to `entropy`.
///
/// The entropy uses ln p = (s − max) − ln Σe, the log-sum-exp identity, instead of a logarithm
/// per element, with soft_h's clip: Σ p · max(ln p, ln 1e-9), normalised by Σp as elsewhere.
#[target_feature(enable = "avx512f")]
unsafe fn softmax_panel(scores: &[f32], exps: &mut [f32], n: usize, lane_max: &[f32; PANEL], rows: usize, column_lanes: &mut [f64], entropy: Option<&mut [f64]>) {
    let sp = scores.as_ptr();
    let ep = exps.as_mut_ptr();
    let max = [_mm512_loadu_ps(lane_max.as_ptr()), _mm512_loadu_ps(lane_max.as_ptr().add(16))];
    let mut total = [_mm512_setzero_ps(); 2];
    for j in 0..n {
        for h in 0..2 {
            let e = exp512(_mm512_sub_ps(_mm512_loadu_ps(sp.add(j * PANEL + 16 * h)), max[h]));
            _mm512_storeu_ps(ep.add(j * PANEL + 16 * h), e);
            total[h] = _mm512_add_ps(total[h], e);
        }
    }
    let inv = [_mm512_div_ps(_mm512_set1_ps(1.0), total[0]), _mm512_div_ps(_mm512_set1_ps(1.0), total[1])];
    // ln p = s − (max + ln Σe); lanes past `rows` are masked out of every sum.
    let mut shift = [0f32; PANEL];
    let mut totals = [0f32; PANEL];
    _mm512_storeu_ps(totals.as_mut_ptr(), total[0]);
    _mm512_storeu_ps(totals.as_mut_ptr().add(16), total[1]);
    for ((s, &m), &t) in shift.iter_mut().zip(lane_max).zip(&totals) {
        *s = m + fast_ln(t);
    }
    let shift = [_mm512_loadu_ps(shift.as_ptr()), _mm512_loadu_ps(shift.as_ptr().add(16))];
    let valid = [lane_mask(rows), lane_mask(rows.saturating_sub(16))];
    let ln_clip = _mm512_set1_ps((CLIP as f32).ln());
    let mut p_sum = [_mm512_setzero_pd(); 4];
    let mut plogp_sum = [_mm512_setzero_pd(); 4];
    let want_entropy = entropy.is_some();
    for j in 0..n {
        let mut column = _mm512_setzero_pd();
        for h in 0..2 {
            let at = ep.add(j * PANEL + 16 * h);
            let p = _mm512_maskz_mul_ps(valid[h], _mm512_loadu_ps(at), inv[h]);
            _mm512_storeu_ps(at, p);
            let (lo, hi) = widen_halves(p);
            column = _mm512_add_pd(column, _mm512_add_pd(lo, hi));
            if want_entropy {
                let ln_p = _mm512_max_ps(_mm512_sub_ps(_mm512_loadu_ps(sp.add(j * PANEL + 16 * h)), shift[h]), ln_clip);
                let (llo, lhi) = widen_halves(ln_p);
                p_sum[2 * h] = _mm512_add_pd(p_sum[2 * h], lo);
                p_sum[2 * h + 1] = _mm512_add_pd(p_sum[2 * h + 1], hi);
                plogp_sum[2 * h] = _mm512_fmadd_pd(lo, llo, plogp_sum[2 * h]);
                plogp_sum[2 * h + 1] = _mm512_fmadd_pd(hi, lhi, plogp_sum[2 * h + 1]);
            }
        }
        let lanes = column_lanes.as_mut_ptr().add(j * 8);
        _mm512_storeu_pd(lanes, _mm512_add_pd(_mm512_loadu_pd(lanes), column));
    }
    if let Some(entropy) = entropy {
        let (mut t, mut a) = ([0f64; PANEL], [0f64; PANEL]);
        for q in 0..4 {
            _mm512_storeu_pd(t.as_mut_ptr().add(8 * q), p_sum[q]);
            _mm512_storeu_pd(a.as_mut_ptr().add(8 * q), plogp_sum[q]);
        }
        for ((h, &t), &a) in entropy.iter_mut().zip(&t).zip(&a) {
            *h = entropy_of_unnormalised(t, a);
        }
    }
}

/// The 16 lanes of `v` as two vectors of 8 f64.
#[inline(always)]
unsafe fn widen_halves(v: __m512) -> (__m512d, __m512d) {
    let bits = _mm512_castps_si512(v);
    (_mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_castsi512_si256(bits))), _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64::<1>(bits))))
}

/// e^x for x ≤ 0, 16 lanes: the polynomial of the scalar `fast_exp`, with FMAs, and the power
/// of two applied by `vscalefps`. Inputs below −87 give e^−87.
#[inline(always)]
unsafe fn exp512(x: __m512) -> __m512 {
    let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
    let k = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let er = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0));
    _mm512_scalef_ps(er, k)
}
