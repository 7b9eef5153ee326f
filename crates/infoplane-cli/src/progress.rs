//! Progress bars for long work: units (documents, layers) with tokens/s and ETA, on stderr.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use infoplane_analysis::Progress;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct Bars {
    bar: Mutex<Option<(ProgressBar, Instant, u64)>>,
    tokens: AtomicU64,
    quiet: bool,
}

impl Bars {
    pub fn new(quiet: bool) -> Self {
        Bars { bar: Mutex::new(None), tokens: AtomicU64::new(0), quiet }
    }
}

impl Progress for Bars {
    fn start(&self, phase: &str, units: u64, _tokens: u64) {
        let bar = if self.quiet { ProgressBar::hidden() } else { ProgressBar::with_draw_target(Some(units), ProgressDrawTarget::stderr()) };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {msg} elapsed {elapsed} ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(phase.to_string());
        self.tokens.store(0, Ordering::Relaxed);
        *self.bar.lock().expect("not poisoned") = Some((bar, Instant::now(), 0));
    }

    fn advance(&self, units: u64, tokens: u64) {
        let mut guard = self.bar.lock().expect("not poisoned");
        if let Some((bar, started, resumed)) = guard.as_mut() {
            bar.inc(units);
            let total = self.tokens.fetch_add(tokens, Ordering::Relaxed) + tokens;
            if bar.position() == units && units > 1 {
                // The first call after a resume reports work done earlier: not part of the rate.
                *resumed = total;
                bar.reset_eta();
            }
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("{:.0} tok/s", (total - *resumed) as f64 / secs));
        }
    }

    fn note(&self, text: &str) {
        if !self.quiet {
            match self.bar.lock().expect("not poisoned").as_ref() {
                Some((bar, _, _)) => bar.println(text),
                None => eprintln!("{text}"),
            }
        }
    }

    fn finish(&self) {
        if let Some((bar, _, _)) = self.bar.lock().expect("not poisoned").take() {
            bar.finish();
        }
    }
}
