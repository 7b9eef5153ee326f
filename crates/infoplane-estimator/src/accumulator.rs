//! Streaming sums for H(Z) and I(X; Z) over any number of label sets, their shuffled nulls, and
//! the partial-statistics form that merges exactly.
//!
//! Memory: per distinct label, a slot index (4 B per side) and its key; per label that occurs at
//! least twice, an n-vector of f64 sums and a count (8n + 8 B per side). A label known from a
//! complete pre-pass to occur once holds no vector: its term N_x/N·H(p_i) is added as a scalar.

use crate::kernel::{entropy_efficiency, Rows, SoftAssigner, CHUNK_ROWS};
use crate::labels::LabelIndex;
use crate::{Calibration, EstimatorError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

pub const PARTIAL_FORMAT_VERSION: u32 = 1;

/// How labels are weighted in Σ_x ω_x H(Z | X = x).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weighting {
    /// ω_x = N_x / N_kept (soft_h; with min_count 1, N_kept = N).
    Frequency,
    /// ω_x = 1 / |kept labels|.
    Uniform,
}

impl Weighting {
    pub fn name(&self) -> &'static str {
        match self {
            Weighting::Frequency => "frequency",
            Weighting::Uniform => "uniform",
        }
    }
    /// The default `--min-count` of each weighting: 1 for frequency (= soft_h), 5 for uniform.
    pub fn default_min_count(&self) -> u64 {
        match self {
            Weighting::Frequency => 1,
            Weighting::Uniform => 5,
        }
    }
}

/// What to compute for one label set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSetSpec {
    pub name: String,
    pub weighting: Weighting,
    /// Labels seen fewer times are dropped from the conditional term.
    pub min_count: u64,
    /// Also accumulate the same labels permuted over positions (the shuffled null).
    pub null: bool,
    /// Keep H(Z | X = x) of every kept label for the results.
    pub per_label: bool,
}

/// What every partial and result must agree on to be comparable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub n_bins: usize,
    pub dim: usize,
    pub epsilon: f64,
    pub calibration: String,
    pub reference_points_sha256: String,
}

impl Settings {
    pub fn new(assigner: &SoftAssigner, calibration: &Calibration) -> Self {
        Settings {
            n_bins: assigner.n_bins(),
            dim: assigner.dim(),
            epsilon: assigner.epsilon(),
            calibration: calibration.name(),
            reference_points_sha256: assigner.reference_points_sha256().to_string(),
        }
    }
}

/// Dense label ids (from the set's [`LabelIndex`]) for the rows of one update, and the permuted
/// ids for the null when the set keeps one.
#[derive(Clone, Copy, Debug)]
pub struct LabelBatch<'a> {
    pub ids: &'a [u32],
    pub null_ids: Option<&'a [u32]>,
}

const NO_SLOT: u32 = u32::MAX;
const SINGLETON: u32 = u32::MAX - 1;
const SKIPPED: u32 = u32::MAX - 2;
/// Counted once by the pre-pass and not seen yet. The lowest marker: smaller values are slots.
const ONCE: u32 = u32::MAX - 3;

/// What a label's pre-pass count makes of it: SKIPPED under `min_count`, ONCE (a scalar term)
/// when it occurs once, else NO_SLOT (a row of sums when first seen).
fn kind_from_count(count: u64, min_count: u64) -> u32 {
    if count < min_count {
        SKIPPED
    } else if count == 1 {
        ONCE
    } else {
        NO_SLOT
    }
}

#[derive(Clone, Debug, Default)]
struct Side {
    /// Per dense id: NO_SLOT, ONCE, SINGLETON (seen, scalar term), SKIPPED, or a row of `sums`.
    slots: Vec<u32>,
    slot_ids: Vec<u32>,
    slot_n: Vec<u64>,
    sums: Vec<f64>,
    /// Σ H(p_i) in nats over positions whose label occurs once in the whole data.
    singleton_h_sum: f64,
    singleton_count: u64,
    singleton_h: Vec<(u32, f64)>,
}

#[derive(Clone, Debug)]
struct LabelSet {
    spec: LabelSetSpec,
    index: LabelIndex,
    counts_complete: bool,
    /// sha256 of the complete counts, made when first asked: only partials and merges need it.
    fingerprint: OnceLock<String>,
    real: Side,
    null: Option<Side>,
}

impl LabelSet {
    /// What two accumulators' complete pre-pass counts must agree on (None without them).
    fn fingerprint(&self) -> Option<&str> {
        self.counts_complete.then(|| self.fingerprint.get_or_init(|| self.index.fingerprint()).as_str())
    }
}

/// Sums of soft assignments. Holds no reference points: [`Accumulator::update`] takes the
/// [`SoftAssigner`] and checks it matches the settings.
#[derive(Clone, Debug)]
pub struct Accumulator {
    settings: Settings,
    positions: u64,
    counts: Vec<f64>,
    sets: Vec<LabelSet>,
    poisoned: bool,
    /// Reused per-chunk soft-assignment buffers (not state: never serialised or merged).
    spare: Vec<ChunkOut>,
}

/// One chunk's soft assignments, its row entropies (when wanted) and its column sums.
#[derive(Clone, Debug, Default)]
struct ChunkOut {
    p: Vec<f32>,
    h: Vec<f64>,
    column_sums: Vec<f64>,
}

/// A chunk of an update: its output once assigned, and how many consumers have yet to read it
/// (the buffer goes back to the pool when none has).
struct ChunkSlot {
    out: RwLock<Option<ChunkOut>>,
    unread: AtomicUsize,
}

/// What a consumer does with each chunk, in chunk order.
enum Consume<'a> {
    /// Adds the chunk's column sums to the update's.
    Bins(Vec<f64>),
    /// Adds the chunk's rows to one side of one label set.
    Labels(SideJob<'a>),
}

/// A consumer and the chunk it takes next; it stops at its first failure.
struct Cursor<'a> {
    consume: Consume<'a>,
    next: usize,
    failure: Option<String>,
}

impl Cursor<'_> {
    /// Consumes chunks in order for as long as the next one is assigned, handing each buffer to
    /// `pool` once every consumer has read it.
    fn take_ready(&mut self, slots: &[ChunkSlot], n: usize, pool: &Mutex<Vec<ChunkOut>>) {
        while self.failure.is_none() && self.next < slots.len() {
            let slot = &slots[self.next];
            {
                let guard = slot.out.read().expect("no panics while held");
                let Some(out) = guard.as_ref() else { return };
                match &mut self.consume {
                    Consume::Bins(sums) => {
                        for (a, b) in sums.iter_mut().zip(&out.column_sums) {
                            *a += b;
                        }
                    }
                    Consume::Labels(job) => {
                        let h = (!out.h.is_empty()).then_some(out.h.as_slice());
                        let rows = Assignments { p: &out.p, row_entropy: h, n, in_cache: true };
                        self.failure = job.absorb(self.next * CHUNK_ROWS, rows).err();
                    }
                }
            }
            if slot.unread.fetch_sub(1, Ordering::AcqRel) == 1 {
                if let Some(out) = slot.out.write().expect("no panics while held").take() {
                    pool.lock().expect("no panics while held").push(out);
                }
            }
            self.next += 1;
        }
    }
}

/// The rows of one update, assigned chunk by chunk on every thread with chunks claimed in
/// order; after each chunk, the thread that computed it hands every chunk now ready to each
/// consumer it can lock (the column sums and every label-set side), so a chunk's p is mostly read
/// back from the cache of the core that wrote it, and its buffer is reused as soon as all have
/// read it. Each consumer takes chunks strictly in order, so no sum depends on the thread count.
/// Returns the update's column sums (partial on failure), whether any label set absorbed rows,
/// and the first failure (the lowest failing chunk's, else the first set's).
#[allow(clippy::too_many_arguments)]
fn assign_and_absorb(
    assigner: &SoftAssigner,
    rows: Rows<'_>,
    first_position: u64,
    want_row_entropy: bool,
    sets: &mut [LabelSet],
    labels: &[LabelBatch<'_>],
    spare: &mut Vec<ChunkOut>,
    n: usize,
) -> (Vec<f64>, bool, Option<EstimatorError>) {
    let m = rows.len() / assigner.dim();
    let chunks = m.div_ceil(CHUNK_ROWS);
    let consumers = std::iter::once(Consume::Bins(vec![0.0; n])).chain(side_jobs(sets, labels, 0..m).into_iter().map(Consume::Labels));
    let cursors: Vec<Mutex<Cursor<'_>>> = consumers.map(|consume| Mutex::new(Cursor { consume, next: 0, failure: None })).collect();
    let slots: Vec<ChunkSlot> = (0..chunks).map(|_| ChunkSlot { out: RwLock::new(None), unread: AtomicUsize::new(cursors.len()) }).collect();
    let pool = Mutex::new(std::mem::take(spare));
    // Chunks past the lowest failing one are not started; those before it all finish, so the
    // error reported is always the first bad row's.
    let (next, stop_after) = (AtomicUsize::new(0), AtomicUsize::new(usize::MAX));
    let errors = Mutex::new(Vec::new());
    // Each worker claims its next chunk before computing this one, so the kernel can prefetch it.
    let worker = || {
        let mut c = next.fetch_add(1, Ordering::Relaxed);
        while c < chunks && c <= stop_after.load(Ordering::Relaxed) {
            let following = next.fetch_add(1, Ordering::Relaxed);
            let mut out = pool.lock().expect("no panics while held").pop().unwrap_or_default();
            let len = CHUNK_ROWS.min(m - c * CHUNK_ROWS);
            out.p.resize(len * n, 0.0);
            out.h.resize(if want_row_entropy { len } else { 0 }, 0.0);
            let h = want_row_entropy.then_some(out.h.as_mut_slice());
            match assigner.assign_chunk(rows, c, first_position, &mut out.p, h, (following < chunks).then_some(following)) {
                Ok(sums) => {
                    out.column_sums = sums;
                    *slots[c].out.write().expect("no panics while held") = Some(out);
                }
                Err(e) => {
                    stop_after.fetch_min(c, Ordering::Relaxed);
                    errors.lock().expect("no panics while held").push((c, e));
                    return;
                }
            }
            // Start at a different consumer per chunk so threads seldom meet on one lock; one
            // locked elsewhere is left to that thread, or to the drain below.
            for k in 0..cursors.len() {
                if let Ok(mut cursor) = cursors[(c + k) % cursors.len()].try_lock() {
                    cursor.take_ready(&slots, n, &pool);
                }
            }
            c = following;
        }
    };
    let threads = rayon::current_num_threads().clamp(1, chunks.max(1));
    (0..threads).into_par_iter().for_each(|_| worker());
    let mut cursors: Vec<Cursor<'_>> = cursors.into_iter().map(|c| c.into_inner().expect("no panics while held")).collect();
    cursors.par_iter_mut().for_each(|cursor| cursor.take_ready(&slots, n, &pool));
    *spare = pool.into_inner().expect("no panics while held");
    spare.extend(slots.into_iter().filter_map(|slot| slot.out.into_inner().expect("no panics while held")));
    let absorbed = cursors[1..].iter().any(|c| c.next > 0);
    let failure = errors.into_inner().expect("no panics while held").into_iter().min_by_key(|(c, _)| *c).map(|(_, e)| e);
    let failure = failure.or_else(|| cursors.iter_mut().find_map(|c| c.failure.take()).map(EstimatorError::Corrupt));
    let column_sums = match cursors.swap_remove(0).consume {
        Consume::Bins(sums) => sums,
        Consume::Labels(_) => unreachable!("the first cursor sums the bins"),
    };
    (column_sums, absorbed, failure)
}

/// Adds rows `start..end` (whose soft assignments are `p`) to every label set's sums; the first
/// failure, if any, as a message naming the set.
fn absorb_block(sets: &mut [LabelSet], labels: &[LabelBatch<'_>], start: usize, end: usize, p: &[f32], row_entropy: Option<&[f64]>, n: usize) -> Option<String> {
    let rows = Assignments { p, row_entropy, n, in_cache: false };
    side_jobs(sets, labels, start..end)
        .into_par_iter()
        .filter_map(|mut job| job.absorb(0, rows).err())
        .collect::<Vec<_>>()
        .into_iter()
        .next()
}

/// Soft assignments of a run of rows ([rows, n]), with each row's H(p_i) when labels seen once
/// are possible, as absorbing reads them.
#[derive(Clone, Copy)]
struct Assignments<'a> {
    p: &'a [f32],
    row_entropy: Option<&'a [f64]>,
    n: usize,
    /// Just written by this process's kernel, so in cache: prefetching its rows is wasted work.
    in_cache: bool,
}

/// One side (real or null) of one label set, with its label ids for a run of rows.
struct SideJob<'a> {
    side: &'a mut Side,
    ids: &'a [u32],
    index: &'a LabelIndex,
    spec: &'a LabelSetSpec,
}

impl SideJob<'_> {
    /// Adds `rows`, whose first is row `start` of `ids`; a failure names the set.
    fn absorb(&mut self, start: usize, rows: Assignments<'_>) -> Result<(), String> {
        let ids = &self.ids[start..start + rows.p.len() / rows.n];
        self.side.absorb(ids, rows, self.index, self.spec).map_err(|e| format!("label set {:?}: {e}", self.spec.name))
    }
}

/// Every set's sides (real, then null where kept), in set order, with their labels for `range`.
fn side_jobs<'a>(sets: &'a mut [LabelSet], labels: &'a [LabelBatch<'_>], range: std::ops::Range<usize>) -> Vec<SideJob<'a>> {
    let mut jobs = Vec::new();
    for (set, batch) in sets.iter_mut().zip(labels) {
        jobs.push(SideJob { side: &mut set.real, ids: &batch.ids[range.clone()], index: &set.index, spec: &set.spec });
        if let (Some(null), Some(ids)) = (set.null.as_mut(), batch.null_ids) {
            jobs.push(SideJob { side: null, ids: &ids[range.clone()], index: &set.index, spec: &set.spec });
        }
    }
    jobs
}

impl Side {
    fn new(len: usize) -> Self {
        Side { slots: vec![NO_SLOT; len], ..Default::default() }
    }

    fn with_capacity(len: usize, repeated: usize, n: usize) -> Self {
        Side { slots: vec![NO_SLOT; len], slot_ids: Vec::with_capacity(repeated), slot_n: Vec::with_capacity(repeated), sums: Vec::with_capacity(repeated * n), ..Default::default() }
    }

    /// Adds each row of `p` to the sums of its label (scalar terms for labels seen once). With
    /// complete counts the side must have been classified (`classify`) when it was made.
    fn absorb(&mut self, job_ids: &[u32], rows: Assignments<'_>, index: &LabelIndex, spec: &LabelSetSpec) -> Result<(), String> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature was just detected on this CPU.
                return unsafe { self.absorb_avx512(job_ids, rows, index, spec) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature was just detected on this CPU.
                return unsafe { self.absorb_avx2(job_ids, rows, index, spec) };
            }
        }
        self.absorb_rows(job_ids, rows, index, spec)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn absorb_avx512(&mut self, job_ids: &[u32], rows: Assignments<'_>, index: &LabelIndex, spec: &LabelSetSpec) -> Result<(), String> {
        self.absorb_rows(job_ids, rows, index, spec)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn absorb_avx2(&mut self, job_ids: &[u32], rows: Assignments<'_>, index: &LabelIndex, spec: &LabelSetSpec) -> Result<(), String> {
        self.absorb_rows(job_ids, rows, index, spec)
    }

    #[inline(always)]
    fn absorb_rows(&mut self, job_ids: &[u32], rows: Assignments<'_>, index: &LabelIndex, spec: &LabelSetSpec) -> Result<(), String> {
        let Assignments { p, row_entropy, n, in_cache } = rows;
        if self.slots.len() < index.len() {
            self.slots.resize(index.len(), NO_SLOT);
        }
        // Locals, not fields: the compiler keeps them in registers across the loop's stores.
        let (mut singleton_h_sum, mut singleton_count) = (self.singleton_h_sum, self.singleton_count);
        let mut result = Ok(());
        for (i, &id) in job_ids.iter().enumerate() {
            self.prefetch_ahead(job_ids, (!in_cache).then_some(p), i, n);
            let mut slot = self.slots[id as usize];
            if slot == NO_SLOT {
                // First sight of a label that needs a row: with complete counts every other kind
                // was marked when the side was made (`classify`), without them every label does.
                slot = self.slot_ids.len() as u32;
                self.slot_ids.push(id);
                self.slot_n.push(0);
                self.sums.resize(self.sums.len() + n, 0.0);
                self.slots[id as usize] = slot;
            }
            match slot {
                ONCE => {
                    let h = row_entropy.expect("row entropies are computed when singletons are possible")[i];
                    singleton_h_sum += h;
                    singleton_count += 1;
                    if spec.per_label {
                        self.singleton_h.push((id, h));
                    }
                    self.slots[id as usize] = SINGLETON;
                }
                SKIPPED => {}
                SINGLETON => {
                    result = Err(format!("label {:?} occurs more often than the pre-pass counted (1)", index.key(id)));
                    break;
                }
                s => {
                    let s = s as usize;
                    self.slot_n[s] += 1;
                    let row = &p[i * n..(i + 1) * n];
                    for (a, &b) in self.sums[s * n..(s + 1) * n].iter_mut().zip(row) {
                        *a += b as f64;
                    }
                }
            }
        }
        self.singleton_h_sum = singleton_h_sum;
        self.singleton_count = singleton_count;
        result
    }

    /// Marks the labels the pre-pass counted once (ONCE) or under `min_count` (SKIPPED), so
    /// absorbing reads one array per row instead of also the label's count.
    fn classify(&mut self, counts: &[u64], min_count: u64) {
        for (slot, &count) in self.slots.iter_mut().zip(counts) {
            if *slot == NO_SLOT {
                *slot = kind_from_count(count, min_count);
            }
        }
    }

    /// Labels land on random rows of `sums`, so the loop stalls on cache misses unless they are
    /// asked for early: the slot of the label `2·AHEAD` positions on, then the sums row and count
    /// of the one `AHEAD` positions on (whose slot is in cache by then) and, when `p` is given
    /// (not already in cache), its row of `p`, which is read only when the label has or gets a
    /// row (so the hardware prefetcher cannot guess it).
    #[inline(always)]
    fn prefetch_ahead(&self, job_ids: &[u32], p: Option<&[f32]>, i: usize, n: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            const AHEAD: usize = 8;
            // SAFETY: prefetches never fault; every address is computed from in-bounds indices.
            unsafe {
                if let Some(&far) = job_ids.get(i + 2 * AHEAD) {
                    if let Some(slot) = self.slots.get(far as usize) {
                        _mm_prefetch::<_MM_HINT_T0>((slot as *const u32).cast());
                    }
                }
                if let Some(&near) = job_ids.get(i + AHEAD) {
                    let slot = self.slots.get(near as usize).copied().unwrap_or(SKIPPED);
                    let s = slot as usize;
                    if s < self.slot_n.len() {
                        _mm_prefetch::<_MM_HINT_T0>(self.slot_n.as_ptr().add(s).cast());
                        let row = self.sums.as_ptr().add(s * n).cast::<i8>();
                        for line in (0..n * 8).step_by(64) {
                            _mm_prefetch::<_MM_HINT_T0>(row.add(line));
                        }
                    }
                    // A label's first row (NO_SLOT) is added too, once its sums row exists.
                    if let Some(p) = p.filter(|_| s < self.slot_n.len() || slot == NO_SLOT) {
                        let p_row = p.as_ptr().wrapping_add((i + AHEAD) * n).cast::<i8>();
                        for line in (0..n * 4).step_by(64) {
                            _mm_prefetch::<_MM_HINT_T0>(p_row.wrapping_add(line));
                        }
                    }
                }
            }
        }
    }

    /// Σ_x ω_x H(Z | X = x) (efficiency units) and the label tallies.
    fn conditional(&self, n: usize, spec: &LabelSetSpec, index: &LabelIndex) -> Conditional {
        let ln_n = (n as f64).ln();
        let (mut weighted, mut unweighted) = (0.0f64, 0.0f64);
        let (mut kept, mut kept_positions, mut seen) = (0u64, 0u64, 0u64);
        let mut per_label = spec.per_label.then(Vec::new);
        // The rows' entropies (the costly part: a logarithm per bin) on every thread; their sum
        // below in label order, so no bit depends on the thread count.
        let row_h: Vec<f64> = (0..self.slot_ids.len())
            .into_par_iter()
            .with_min_len(64)
            .map(|s| if self.slot_n[s] >= spec.min_count { entropy_efficiency(&self.sums[s * n..(s + 1) * n]) } else { f64::NAN })
            .collect();
        for (id, &slot) in self.slots.iter().enumerate() {
            if slot >= ONCE {
                continue;
            }
            let s = slot as usize;
            let n_x = self.slot_n[s];
            if n_x == 0 {
                continue;
            }
            seen += 1;
            if n_x < spec.min_count {
                continue;
            }
            let h = row_h[s];
            weighted += n_x as f64 * h;
            unweighted += h;
            kept += 1;
            kept_positions += n_x;
            if let Some(list) = per_label.as_mut() {
                list.push(PerLabel { key: index.key(id as u32).to_vec(), count: n_x, entropy: h });
            }
        }
        let singleton_h = self.singleton_h_sum / ln_n;
        weighted += singleton_h;
        unweighted += singleton_h;
        kept += self.singleton_count;
        kept_positions += self.singleton_count;
        if let Some(list) = per_label.as_mut() {
            list.extend(self.singleton_h.iter().map(|&(id, h)| PerLabel { key: index.key(id).to_vec(), count: 1, entropy: h / ln_n }));
        }
        let value = match spec.weighting {
            Weighting::Frequency if kept_positions > 0 => weighted / kept_positions as f64,
            Weighting::Uniform if kept > 0 => unweighted / kept as f64,
            _ => f64::NAN,
        };
        Conditional { value, kept, kept_positions, repeated: self.slot_ids.len() as u64, singletons: self.singleton_count, seen: seen + self.singleton_count, per_label }
    }

    fn to_partial(&self) -> PartialSide {
        let (singleton_ids, singleton_h) = self.singleton_h.iter().copied().unzip();
        PartialSide {
            slot_ids: self.slot_ids.clone(),
            slot_n: self.slot_n.clone(),
            sums: self.sums.clone(),
            singleton_h_sum: self.singleton_h_sum,
            singleton_count: self.singleton_count,
            singleton_ids,
            singleton_h,
        }
    }

    fn from_partial(p: PartialSide, n: usize, index_len: usize, per_label: bool, set: &str, positions: u64) -> Result<Self, EstimatorError> {
        let bad = |why: String| EstimatorError::Corrupt(format!("label set {set:?}: {why}"));
        // Every position falls in at most one slot or singleton of a side: counts beyond the
        // positions are corrupt (and would overflow when partials merge).
        if p.slot_n.iter().try_fold(p.singleton_count, |a, &b| a.checked_add(b)).is_none_or(|rows| rows > positions) {
            return Err(bad(format!("its label counts sum to more than the partial's {positions} positions")));
        }
        if p.slot_n.len() != p.slot_ids.len() || p.sums.len() != p.slot_ids.len() * n {
            return Err(bad(format!("{} slots, {} counts and {} sums for {n} bins", p.slot_ids.len(), p.slot_n.len(), p.sums.len())));
        }
        if p.singleton_ids.len() != p.singleton_h.len() || (per_label && p.singleton_ids.len() as u64 != p.singleton_count) {
            return Err(bad("singleton lists disagree with the singleton count".into()));
        }
        if p.sums.iter().any(|v| !v.is_finite() || *v < 0.0) || !p.singleton_h_sum.is_finite() {
            return Err(bad("sums are negative or not finite".into()));
        }
        let mut side = Side::new(index_len);
        for (s, &id) in p.slot_ids.iter().enumerate() {
            if id as usize >= index_len || side.slots[id as usize] != NO_SLOT {
                return Err(bad(format!("slot {s} names label id {id}, out of range or repeated")));
            }
            side.slots[id as usize] = s as u32;
        }
        for &id in &p.singleton_ids {
            if id as usize >= index_len || side.slots[id as usize] != NO_SLOT {
                return Err(bad(format!("singleton label id {id} out of range or repeated")));
            }
            side.slots[id as usize] = SINGLETON;
        }
        side.slot_ids = p.slot_ids;
        side.slot_n = p.slot_n;
        side.sums = p.sums;
        side.singleton_h_sum = p.singleton_h_sum;
        side.singleton_count = p.singleton_count;
        side.singleton_h = p.singleton_ids.into_iter().zip(p.singleton_h).collect();
        Ok(side)
    }

    /// Adds `other`, whose label ids map to this side's through `map`.
    fn merge(&mut self, other: &Side, map: &[u32], n: usize, index_len: usize) {
        if self.slots.len() < index_len {
            self.slots.resize(index_len, NO_SLOT);
        }
        for (s, &oid) in other.slot_ids.iter().enumerate() {
            let id = map[oid as usize] as usize;
            let slot = match self.slots[id] {
                // Any marker: equal complete counts make ONCE or SKIPPED here impossible unless
                // a partial lied, and a new row is the answer that cannot index out of bounds.
                s if s < ONCE => s as usize,
                _ => {
                    let new = self.slot_ids.len() as u32;
                    self.slot_ids.push(id as u32);
                    self.slot_n.push(0);
                    self.sums.resize(self.sums.len() + n, 0.0);
                    self.slots[id] = new;
                    new as usize
                }
            };
            self.slot_n[slot] += other.slot_n[s];
            for (a, b) in self.sums[slot * n..(slot + 1) * n].iter_mut().zip(&other.sums[s * n..(s + 1) * n]) {
                *a += b;
            }
        }
        self.singleton_h_sum += other.singleton_h_sum;
        self.singleton_count += other.singleton_count;
        for &(oid, h) in &other.singleton_h {
            let id = map[oid as usize];
            self.slots[id as usize] = SINGLETON;
            self.singleton_h.push((id, h));
        }
    }
}

struct Conditional {
    value: f64,
    kept: u64,
    kept_positions: u64,
    repeated: u64,
    singletons: u64,
    seen: u64,
    per_label: Option<Vec<PerLabel>>,
}

impl Accumulator {
    pub fn new(settings: Settings) -> Self {
        let counts = vec![0.0; settings.n_bins];
        Accumulator { settings, positions: 0, counts, sets: Vec::new(), poisoned: false, spare: Vec::new() }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn positions(&self) -> u64 {
        self.positions
    }
    pub fn label_set_names(&self) -> impl Iterator<Item = &str> {
        self.sets.iter().map(|s| s.spec.name.as_str())
    }

    /// Adds a label set before the first update. With `counts_complete`, `index` holds the count of
    /// every label over all the positions this accumulator (and any it will merge with) sees: labels
    /// counted once then need no vector, and labels under `min_count` are not accumulated at all.
    /// Without it, the index may grow through [`Accumulator::index_mut`] as data streams in.
    pub fn add_label_set(&mut self, spec: LabelSetSpec, index: LabelIndex, counts_complete: bool) -> Result<usize, EstimatorError> {
        if self.positions > 0 {
            return Err(EstimatorError::Labels { set: spec.name, reason: "label sets must be added before the first update".into() });
        }
        if self.sets.iter().any(|s| s.spec.name == spec.name) {
            return Err(EstimatorError::Labels { set: spec.name, reason: "duplicate label-set name".into() });
        }
        if spec.min_count == 0 {
            return Err(EstimatorError::Labels { set: spec.name, reason: "min_count must be at least 1".into() });
        }
        let len = index.len();
        // With complete counts the labels that will hold vectors are known: allocate them once.
        let repeated = if counts_complete { index.counts().iter().filter(|&&c| c >= spec.min_count.max(2)).count() } else { 0 };
        let side = || {
            let mut side = Side::with_capacity(len, repeated, self.settings.n_bins);
            if counts_complete {
                side.classify(index.counts(), spec.min_count);
            }
            side
        };
        self.sets.push(LabelSet {
            real: side(),
            null: spec.null.then(side),
            spec,
            index,
            counts_complete,
            fingerprint: OnceLock::new(),
        });
        Ok(self.sets.len() - 1)
    }

    /// The label index of set `set`, to intern keys while streaming. Refused when the set's counts
    /// were declared complete (adding a key would break that promise).
    pub fn index_mut(&mut self, set: usize) -> Result<&mut LabelIndex, EstimatorError> {
        let s = &mut self.sets[set];
        if s.counts_complete {
            return Err(EstimatorError::Labels { set: s.spec.name.clone(), reason: "counts are complete; the index is frozen".into() });
        }
        Ok(&mut s.index)
    }
    pub fn index(&self, set: usize) -> &LabelIndex {
        &self.sets[set].index
    }

    /// Accumulates the soft assignments of `rows` ([len/d, d]) under one label batch per set, in
    /// the order the sets were added. On error nothing of this update counts; if some of its
    /// rows already reached the label sums, the accumulator is poisoned and refuses to report or
    /// serialise.
    pub fn update(&mut self, assigner: &SoftAssigner, rows: Rows<'_>, labels: &[LabelBatch<'_>]) -> Result<(), EstimatorError> {
        self.check_usable()?;
        let s = &self.settings;
        if assigner.n_bins() != s.n_bins || assigner.dim() != s.dim || assigner.epsilon().to_bits() != s.epsilon.to_bits() || assigner.reference_points_sha256() != s.reference_points_sha256 {
            return Err(EstimatorError::Mismatch("the soft assigner's W or ε differs from the accumulator's settings".into()));
        }
        let d = s.dim;
        if !rows.len().is_multiple_of(d) {
            return Err(EstimatorError::Shape { got: rows.len(), dim: d });
        }
        let count = rows.len() / d;
        self.check_labels(labels, count)?;
        let want_row_entropy = self.wants_row_entropy();
        let n = s.n_bins;
        let Accumulator { sets, counts, positions, spare, poisoned, .. } = self;
        let (column_sums, absorbed, failure) = assign_and_absorb(assigner, rows, *positions, want_row_entropy, sets, labels, spare, n);
        if let Some(e) = failure {
            // Label sums may hold rows of this update that its bin sums and count do not.
            *poisoned = absorbed;
            return Err(e);
        }
        for (c, v) in counts.iter_mut().zip(&column_sums) {
            *c += v;
        }
        *positions += count as u64;
        Ok(())
    }

    /// Whether absorbing labels needs H(p_i) of each row (labels known to occur once are scalars).
    pub fn wants_row_entropy(&self) -> bool {
        self.sets.iter().any(|s| s.counts_complete && s.spec.min_count <= 1)
    }

    /// The bin sums half of [`Accumulator::update`], for soft assignments computed earlier
    /// ([`SoftAssigner::assign`]): adds one block's column sums and its row count. Together with
    /// [`Accumulator::absorb_labels`] over the same rows, block by block, it gives the same bits
    /// as `update` on those blocks.
    pub fn add_bin_sums(&mut self, column_sums: &[f64], rows: u64) -> Result<(), EstimatorError> {
        self.check_usable()?;
        if column_sums.len() != self.settings.n_bins {
            return Err(EstimatorError::Shape { got: column_sums.len(), dim: self.settings.n_bins });
        }
        if column_sums.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(EstimatorError::Corrupt("bin sums are negative or not finite".into()));
        }
        for (c, v) in self.counts.iter_mut().zip(column_sums) {
            *c += v;
        }
        self.positions += rows;
        Ok(())
    }

    /// The label half of [`Accumulator::update`]: adds soft assignments `p` ([rows, n]) computed
    /// earlier to every label set's sums, with each row's H(p_i) in nats when
    /// [`Accumulator::wants_row_entropy`]. Blocks may be of any size: label sums are added in row
    /// order whatever the split. Poisons the accumulator on failure, as `update` does.
    pub fn absorb_labels(&mut self, p: &[f32], row_entropy: Option<&[f64]>, labels: &[LabelBatch<'_>]) -> Result<(), EstimatorError> {
        self.check_usable()?;
        let n = self.settings.n_bins;
        if !p.len().is_multiple_of(n) {
            return Err(EstimatorError::Shape { got: p.len(), dim: n });
        }
        let count = p.len() / n;
        self.check_labels(labels, count)?;
        if self.wants_row_entropy() && row_entropy.is_none_or(|h| h.len() != count) {
            return Err(EstimatorError::Labels { set: "*".into(), reason: format!("{count} rows need their row entropies (labels seen once are scalars)") });
        }
        if let Some(failure) = absorb_block(&mut self.sets, labels, 0, count, p, row_entropy, n) {
            self.poisoned = true;
            return Err(EstimatorError::Corrupt(failure));
        }
        Ok(())
    }

    /// One label batch per set, each with `count` in-range ids, and null ids exactly where the
    /// set keeps a null.
    fn check_labels(&self, labels: &[LabelBatch<'_>], count: usize) -> Result<(), EstimatorError> {
        if labels.len() != self.sets.len() {
            return Err(EstimatorError::Labels { set: "*".into(), reason: format!("{} label batches for {} label sets", labels.len(), self.sets.len()) });
        }
        for (set, batch) in self.sets.iter().zip(labels) {
            let check = |ids: &[u32], what: &str| -> Result<(), EstimatorError> {
                if ids.len() != count {
                    return Err(EstimatorError::Labels { set: set.spec.name.clone(), reason: format!("{} {what} for {count} rows", ids.len()) });
                }
                if let Some(bad) = ids.iter().find(|&&id| id as usize >= set.index.len()) {
                    return Err(EstimatorError::Labels { set: set.spec.name.clone(), reason: format!("label id {bad} is not in the index ({} labels)", set.index.len()) });
                }
                Ok(())
            };
            check(batch.ids, "labels")?;
            match (set.null.is_some(), batch.null_ids) {
                (true, Some(ids)) => check(ids, "null labels")?,
                (false, None) => {}
                (true, None) => return Err(EstimatorError::Labels { set: set.spec.name.clone(), reason: "the set keeps a null but no permuted labels were given".into() }),
                (false, Some(_)) => return Err(EstimatorError::Labels { set: set.spec.name.clone(), reason: "permuted labels given for a set without a null".into() }),
            }
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<(), EstimatorError> {
        if self.poisoned {
            return Err(EstimatorError::Corrupt("an earlier update failed part-way; these statistics are incomplete".into()));
        }
        Ok(())
    }

    /// H(Z), and for every label set I(X; Z), its null and the tallies, in efficiency units.
    pub fn estimate(&self) -> Result<Estimate, EstimatorError> {
        self.check_usable()?;
        if self.positions == 0 {
            return Err(EstimatorError::Corrupt("no positions were accumulated".into()));
        }
        let n = self.settings.n_bins;
        let entropy = entropy_efficiency(&self.counts);
        let label_sets = self
            .sets
            .par_iter()
            .map(|set| {
                let (real, null) = rayon::join(|| set.real.conditional(n, &set.spec, &set.index), || set.null.as_ref().map(|s| s.conditional(n, &set.spec, &set.index).value));
                let mi = entropy - real.value;
                let null_mi = null.map(|c| entropy - c);
                LabelEstimate {
                    name: set.spec.name.clone(),
                    weighting: set.spec.weighting,
                    min_count: set.spec.min_count,
                    mutual_information: mi,
                    null_mutual_information: null_mi,
                    corrected_mutual_information: null_mi.map(|v| mi - v),
                    regularity: (entropy > 0.0).then(|| mi / entropy),
                    conditional_entropy: real.value,
                    distinct_labels: if set.counts_complete { set.index.counts().iter().filter(|&&c| c > 0).count() as u64 } else { real.seen },
                    kept_labels: real.kept,
                    kept_positions: real.kept_positions,
                    repeated_labels: real.repeated,
                    singleton_labels: real.singletons,
                    per_label: real.per_label,
                }
            })
            .collect();
        Ok(Estimate {
            entropy,
            positions: self.positions,
            n_bins: n,
            dim: self.settings.dim,
            epsilon: self.settings.epsilon,
            calibration: self.settings.calibration.clone(),
            reference_points_sha256: self.settings.reference_points_sha256.clone(),
            label_sets,
        })
    }

    /// The state as plain data, for a store to write.
    pub fn to_partial(&self) -> Result<PartialState, EstimatorError> {
        self.check_usable()?;
        Ok(PartialState {
            format_version: PARTIAL_FORMAT_VERSION,
            settings: self.settings.clone(),
            positions: self.positions,
            counts: self.counts.clone(),
            label_sets: self
                .sets
                .iter()
                .map(|set| PartialLabelSet {
                    spec: set.spec.clone(),
                    counts_complete: set.counts_complete,
                    fingerprint: set.fingerprint().map(str::to_string),
                    key_values: set.index.values().to_vec(),
                    key_offsets: set.index.offsets().iter().map(|&o| o as u64).collect(),
                    key_counts: set.index.counts().to_vec(),
                    real: set.real.to_partial(),
                    null: set.null.as_ref().map(Side::to_partial),
                })
                .collect(),
        })
    }

    /// Rebuilds an accumulator from plain data, checking every length and id.
    pub fn from_partial(p: PartialState) -> Result<Self, EstimatorError> {
        if p.format_version != PARTIAL_FORMAT_VERSION {
            return Err(EstimatorError::Corrupt(format!("format version {} (this build reads {PARTIAL_FORMAT_VERSION})", p.format_version)));
        }
        let n = p.settings.n_bins;
        if p.counts.len() != n || n < 2 {
            return Err(EstimatorError::Corrupt(format!("{} bin counts for n_bins {n}", p.counts.len())));
        }
        if p.counts.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(EstimatorError::Corrupt("bin counts are negative or not finite".into()));
        }
        let mut acc = Accumulator::new(p.settings);
        acc.positions = p.positions;
        acc.counts = p.counts;
        for set in p.label_sets {
            let name = set.spec.name.clone();
            if total_count(&set.key_counts).is_none() {
                return Err(EstimatorError::Corrupt(format!("label set {name:?}: the label counts overflow")));
            }
            let offsets = set.key_offsets.iter().map(|&o| o as usize).collect();
            let index = LabelIndex::from_parts(set.key_values, offsets, set.key_counts).map_err(|e| EstimatorError::Corrupt(format!("label set {name:?}: {e}")))?;
            if set.counts_complete && set.fingerprint.as_deref() != Some(index.fingerprint().as_str()) {
                return Err(EstimatorError::Corrupt(format!("label set {name:?}: the label counts do not match their recorded fingerprint")));
            }
            if set.spec.null != set.null.is_some() {
                return Err(EstimatorError::Corrupt(format!("label set {name:?}: null statistics present/absent against its settings")));
            }
            let len = index.len();
            let per_label = set.spec.per_label;
            let side = |partial| -> Result<Side, EstimatorError> {
                let mut side = Side::from_partial(partial, n, len, per_label, &name, p.positions)?;
                if set.counts_complete {
                    side.classify(index.counts(), set.spec.min_count);
                }
                Ok(side)
            };
            let real = side(set.real)?;
            let null = set.null.map(side).transpose()?;
            if acc.sets.iter().any(|s| s.spec.name == name) {
                return Err(EstimatorError::Corrupt(format!("label set {name:?} appears twice")));
            }
            let fingerprint = set.fingerprint.filter(|_| set.counts_complete).map(OnceLock::from).unwrap_or_default();
            acc.sets.push(LabelSet { spec: set.spec, index, counts_complete: set.counts_complete, fingerprint, real, null });
        }
        Ok(acc)
    }

    /// Adds `other`'s statistics. Refuses partials made with different W, ε, n, d, calibration,
    /// label sets, settings or (for complete counts) different pre-pass counts.
    pub fn merge(&mut self, other: &Accumulator) -> Result<(), EstimatorError> {
        self.check_usable()?;
        other.check_usable()?;
        let (a, b) = (&self.settings, &other.settings);
        let differ = |what: &str, x: String, y: String| Err(EstimatorError::Mismatch(format!("{what} differs: {x} vs {y}")));
        if a.reference_points_sha256 != b.reference_points_sha256 {
            return differ("reference points (sha256)", a.reference_points_sha256.clone(), b.reference_points_sha256.clone());
        }
        if a.n_bins != b.n_bins || a.dim != b.dim {
            return differ("shape (n_bins × dim)", format!("{}×{}", a.n_bins, a.dim), format!("{}×{}", b.n_bins, b.dim));
        }
        if a.epsilon.to_bits() != b.epsilon.to_bits() || a.calibration != b.calibration {
            return differ("epsilon", format!("{} ({})", a.epsilon, a.calibration), format!("{} ({})", b.epsilon, b.calibration));
        }
        let names = |acc: &Accumulator| acc.sets.iter().map(|s| s.spec.name.clone()).collect::<Vec<_>>().join(",");
        if self.sets.len() != other.sets.len() || self.sets.iter().zip(&other.sets).any(|(x, y)| x.spec.name != y.spec.name) {
            return differ("label sets", names(self), names(other));
        }
        for (x, y) in self.sets.iter().zip(&other.sets) {
            if x.spec != y.spec {
                return differ(&format!("label set {:?} settings", x.spec.name), format!("{:?}", x.spec), format!("{:?}", y.spec));
            }
            if x.counts_complete != y.counts_complete || x.fingerprint() != y.fingerprint() {
                return differ(&format!("label set {:?} pre-pass counts", x.spec.name), format!("{:?}", x.fingerprint()), format!("{:?}", y.fingerprint()));
            }
        }
        // Checked before anything changes, so a refused merge leaves `self` as it was.
        let overflow = |what: &str| EstimatorError::Mismatch(format!("the merged {what} overflow"));
        let positions = self.positions.checked_add(other.positions).ok_or_else(|| overflow("position counts"))?;
        for (x, y) in self.sets.iter().zip(&other.sets) {
            if !x.counts_complete && total_count(x.index.counts()).zip(total_count(y.index.counts())).and_then(|(a, b)| a.checked_add(b)).is_none() {
                return Err(overflow(&format!("label counts of set {:?}", x.spec.name)));
            }
        }
        let n = self.settings.n_bins;
        for (x, y) in self.sets.iter_mut().zip(&other.sets) {
            let map: Vec<u32> = if x.counts_complete {
                (0..y.index.len() as u32).collect()
            } else {
                // Streaming indexes differ: map by key, and carry the other side's tallies over.
                (0..y.index.len() as u32)
                    .map(|oid| {
                        let id = x.index.insert(y.index.key(oid));
                        x.index.add_count(id, y.index.count(oid));
                        id
                    })
                    .collect()
            };
            let len = x.index.len();
            x.real.merge(&y.real, &map, n, len);
            if let (Some(xn), Some(yn)) = (x.null.as_mut(), y.null.as_ref()) {
                xn.merge(yn, &map, n, len);
            }
        }
        self.positions = positions;
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c += o;
        }
        Ok(())
    }
}

/// Σ of label counts, None when it overflows u64.
fn total_count(counts: &[u64]) -> Option<u64> {
    counts.iter().try_fold(0u64, |a, &b| a.checked_add(b))
}

/// Plain-data form of an accumulator (see the store crate for the file format).
#[derive(Clone, Debug, PartialEq)]
pub struct PartialState {
    pub format_version: u32,
    pub settings: Settings,
    pub positions: u64,
    pub counts: Vec<f64>,
    pub label_sets: Vec<PartialLabelSet>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PartialLabelSet {
    pub spec: LabelSetSpec,
    pub counts_complete: bool,
    pub fingerprint: Option<String>,
    pub key_values: Vec<i64>,
    pub key_offsets: Vec<u64>,
    pub key_counts: Vec<u64>,
    pub real: PartialSide,
    pub null: Option<PartialSide>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PartialSide {
    pub slot_ids: Vec<u32>,
    pub slot_n: Vec<u64>,
    pub sums: Vec<f64>,
    pub singleton_h_sum: f64,
    pub singleton_count: u64,
    pub singleton_ids: Vec<u32>,
    pub singleton_h: Vec<f64>,
}

/// Results in efficiency units (nats / ln n).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Estimate {
    pub entropy: f64,
    pub positions: u64,
    pub n_bins: usize,
    pub dim: usize,
    pub epsilon: f64,
    pub calibration: String,
    pub reference_points_sha256: String,
    pub label_sets: Vec<LabelEstimate>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelEstimate {
    pub name: String,
    pub weighting: Weighting,
    pub min_count: u64,
    /// NaN (JSON null) when no label reaches min_count.
    #[serde(deserialize_with = "null_as_nan")]
    pub mutual_information: f64,
    pub null_mutual_information: Option<f64>,
    /// I − I_null.
    pub corrected_mutual_information: Option<f64>,
    /// I / H (None when H = 0).
    pub regularity: Option<f64>,
    /// Σ_x ω_x H(Z | X = x).
    #[serde(deserialize_with = "null_as_nan")]
    pub conditional_entropy: f64,
    pub distinct_labels: u64,
    pub kept_labels: u64,
    pub kept_positions: u64,
    /// Labels that hold an n-vector of sums.
    pub repeated_labels: u64,
    /// Labels counted once by the pre-pass, held as scalars.
    pub singleton_labels: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub per_label: Option<Vec<PerLabel>>,
}

/// JSON has no NaN: an undefined value is written as null and read back as NaN.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PerLabel {
    pub key: Vec<i64>,
    pub count: u64,
    pub entropy: f64,
}
