//! Learning-rate schedule and checkpoint steps: pure functions of the settings.

/// Linear warm-up then cosine decay.
///
/// Steps count from 1 (the first update is step 1). For `step ≤ warmup` the rate rises linearly,
/// `lr · step / warmup`, reaching `lr` at `step = warmup`; after it, it follows half a cosine from
/// `lr` down to `min_lr` at `step = total`. With `warmup = 0` the first step already uses `lr`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    pub lr: f64,
    pub min_lr: f64,
    pub warmup: u64,
    pub total: u64,
}

impl LrSchedule {
    pub fn at(&self, step: u64) -> f64 {
        if self.warmup > 0 && step <= self.warmup {
            return self.lr * step as f64 / self.warmup as f64;
        }
        if self.total <= self.warmup {
            return self.lr;
        }
        let progress = ((step.saturating_sub(self.warmup)) as f64 / (self.total - self.warmup) as f64).min(1.0);
        self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// `count` log-spaced steps from 1 to `total`, always including both ends (when `count ≥ 2`).
///
/// Step `i` of `count` is `round(total^(i / (count − 1)))`; where rounding makes two coincide,
/// the later one moves up to the next free step, so the result has `min(count, total)` distinct
/// ascending steps. `count = 1` gives only `total`.
pub fn checkpoint_steps(total: u64, count: usize) -> Vec<u64> {
    if total == 0 || count == 0 {
        return vec![];
    }
    let count = count.min(total as usize);
    if count == 1 {
        return vec![total];
    }
    let mut steps: Vec<u64> = Vec::with_capacity(count);
    for i in 0..count {
        let ideal = (total as f64).powf(i as f64 / (count - 1) as f64).round() as u64;
        let mut s = ideal.clamp(1, total);
        if let Some(&last) = steps.last() {
            s = s.max(last + 1);
        }
        // Leave room for the ones still to come (the last is always `total`).
        let remaining = (count - 1 - i) as u64;
        s = s.min(total - remaining);
        steps.push(s);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_linearly_and_cosine_ends_at_min() {
        let s = LrSchedule { lr: 1e-3, min_lr: 1e-4, warmup: 10, total: 110 };
        assert!((s.at(1) - 1e-4).abs() < 1e-15);
        assert!((s.at(5) - 5e-4).abs() < 1e-15);
        assert!((s.at(10) - 1e-3).abs() < 1e-15);
        assert!((s.at(60) - 5.5e-4).abs() < 1e-12, "{}", s.at(60));
        assert!((s.at(110) - 1e-4).abs() < 1e-15);
        for step in 11..110 {
            assert!(s.at(step + 1) < s.at(step));
        }
        let flat = LrSchedule { lr: 2e-3, min_lr: 0.0, warmup: 0, total: 5 };
        assert_eq!(flat.at(1), 2e-3 * 0.5 * (1.0 + (std::f64::consts::PI * 0.2).cos()));
    }

    #[test]
    fn checkpoint_steps_are_log_spaced_distinct_and_end_at_total() {
        assert_eq!(checkpoint_steps(1024, 11), vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);
        assert_eq!(checkpoint_steps(1000, 4), vec![1, 10, 100, 1000]);
        assert_eq!(checkpoint_steps(5, 10), vec![1, 2, 3, 4, 5]);
        assert_eq!(checkpoint_steps(300, 1), vec![300]);
        assert_eq!(checkpoint_steps(3, 3), vec![1, 2, 3]);
        for total in 1..200u64 {
            for count in 1..12 {
                let s = checkpoint_steps(total, count);
                assert_eq!(s.len(), count.min(total as usize));
                assert_eq!(*s.last().unwrap(), total);
                assert!(s.windows(2).all(|w| w[0] < w[1]));
                assert!(s[0] >= 1);
            }
        }
    }
}
