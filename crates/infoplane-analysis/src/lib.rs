//! One model on one corpus (METHOD.md §3–5): per-layer accumulators fed from forward passes, model-level aggregates.
