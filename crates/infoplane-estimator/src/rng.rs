//! The named, portable RNG behind every random choice infoplane makes.
//!
//! Philox4x64-10 (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2, 3") is a
//! counter-based generator: output block `b` is a pure function of `(key, b)`, so a value depends
//! on its index only, never on thread count, batch size or machine. The raw stream equals
//! `numpy.random.Philox(key=seed)` (numpy increments the counter before each block, so numpy's
//! first block is counter 1; [`Philox::block`] takes the counter explicitly and
//! [`Philox::numpy_stream`] reproduces numpy's order for tests).
//!
//! Normals use Box–Muller on two uniforms with `libm` (a pure-Rust port of musl), so the bits do
//! not depend on the platform's libm either.

const M0: u64 = 0xD2E7_470E_E14C_6C93;
const M1: u64 = 0xCA5A_8263_9512_1157;
const W0: u64 = 0x9E37_79B9_7F4A_7C15;
const W1: u64 = 0xBB67_AE85_84CA_A73B;

/// Key words for the stream that draws reference points (`key = [seed, 0]`).
pub const DOMAIN_REFERENCE_POINTS: u64 = 0;
/// Key words for the stream that draws shuffled-label permutations (`key = [seed, 1]`).
pub const DOMAIN_NULL_PERMUTATION: u64 = 1;

#[derive(Clone, Copy, Debug)]
pub struct Philox {
    key: [u64; 2],
}

#[inline(always)]
fn mulhilo(a: u64, b: u64) -> (u64, u64) {
    let p = (a as u128) * (b as u128);
    ((p >> 64) as u64, p as u64)
}

impl Philox {
    pub fn new(seed: u64, domain: u64) -> Self {
        Philox { key: [seed, domain] }
    }

    /// The four 64-bit words of block `counter` (counter words 1..3 are zero).
    pub fn block(&self, counter: u64) -> [u64; 4] {
        let mut ctr = [counter, 0, 0, 0];
        let mut key = self.key;
        for round in 0..10 {
            if round > 0 {
                key[0] = key[0].wrapping_add(W0);
                key[1] = key[1].wrapping_add(W1);
            }
            let (hi0, lo0) = mulhilo(M0, ctr[0]);
            let (hi1, lo1) = mulhilo(M1, ctr[2]);
            ctr = [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0];
        }
        ctr
    }

    /// The first `len` raw words in numpy's order (blocks 1, 2, …), for cross-checking.
    pub fn numpy_stream(&self, len: usize) -> Vec<u64> {
        (0..len.div_ceil(4) as u64)
            .flat_map(|b| self.block(b + 1))
            .take(len)
            .collect()
    }

    /// Uniform in the open interval (0, 1) from the `index`-th word (53-bit mantissa, offset by half
    /// an ulp so that 0 is impossible and `ln` is always finite).
    #[inline]
    pub fn uniform(&self, index: u64) -> f64 {
        let word = self.block(index / 4)[(index % 4) as usize];
        ((word >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// The `index`-th standard normal: Box–Muller on the uniform pair (2⌊index/2⌋, 2⌊index/2⌋+1),
    /// cosine branch for even indices, sine branch for odd ones.
    #[inline]
    pub fn normal(&self, index: u64) -> f64 {
        let pair = index / 2;
        let u1 = self.uniform(2 * pair);
        let u2 = self.uniform(2 * pair + 1);
        let radius = libm::sqrt(-2.0 * libm::log(u1));
        let angle = 2.0 * std::f64::consts::PI * u2;
        if index.is_multiple_of(2) {
            radius * libm::cos(angle)
        } else {
            radius * libm::sin(angle)
        }
    }

    /// A uniform integer in `0..bound` from the `index`-th word (multiply-shift; the bias is below
    /// 2⁻³² for every bound a position count can take, and the map is fixed forever).
    #[inline]
    pub fn below(&self, index: u64, bound: u64) -> u64 {
        let word = self.block(index / 4)[(index % 4) as usize];
        ((word as u128 * bound as u128) >> 64) as u64
    }
}

/// A seeded permutation of `0..len` (Fisher–Yates from the top, draw `i` uses word `i`).
pub fn permutation(len: usize, seed: u64) -> Vec<u32> {
    assert!(len <= u32::MAX as usize, "permutation length exceeds u32");
    let rng = Philox::new(seed, DOMAIN_NULL_PERMUTATION);
    let mut perm: Vec<u32> = (0..len as u32).collect();
    for i in (1..len).rev() {
        let j = rng.below(i as u64, i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniforms_are_in_the_open_interval_and_normals_have_unit_variance() {
        let rng = Philox::new(7, 0);
        let n = 200_000u64;
        let (mut sum, mut sq) = (0.0, 0.0);
        for i in 0..n {
            let u = rng.uniform(i);
            assert!(u > 0.0 && u < 1.0);
            let z = rng.normal(i);
            sum += z;
            sq += z * z;
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }

    #[test]
    fn permutation_is_a_bijection_and_depends_on_the_seed() {
        let p = permutation(1000, 3);
        let mut seen = vec![false; 1000];
        for &i in &p {
            assert!(!seen[i as usize]);
            seen[i as usize] = true;
        }
        assert_ne!(p, permutation(1000, 4));
        assert_eq!(p, permutation(1000, 3));
    }
}
