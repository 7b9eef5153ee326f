#!/usr/bin/env python3
"""Writes fixtures/correlate/{models.csv, scores.csv, expected.csv}: a small, realistic results table
and Open LLM Leaderboard v2-style scores, with the correlations scipy computes for them.

The tables exercise what `infoplane correlate` must get right: ties in metrics and in scores, a
missing metric value, a missing score, a model with no parameter count anywhere (dropped from the
partial statistic only), parameter counts from the results where given and from params_b otherwise,
a duplicated leaderboard row (the best rank wins), one id matched only ignoring case, and unmatched
ids on both sides.

expected.csv: metric, score, method, r, p, n with scipy.stats.pearsonr, scipy.stats.spearmanr and the
partial Spearman (scipy.stats.rankdata ranks of metric, score and ln(params); partial Pearson
r = (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)); two-sided p from Student's t, n - 3 dof).

Run by hand: /work/venv/bin/python scripts/make_correlation_fixture.py
"""
import csv
import math
import os

import numpy as np
import scipy
import scipy.stats as st

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "correlate")
BENCH = ["ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro"]

# (hf id, params) of plausible small/medium open models; the numbers below are synthetic.
MODELS = [
    ("EleutherAI/pythia-160m", 162_322_944), ("EleutherAI/pythia-410m", 405_334_016),
    ("EleutherAI/pythia-1b", 1_011_781_632), ("EleutherAI/pythia-1.4b", 1_414_647_808),
    ("EleutherAI/pythia-2.8b", 2_775_208_960), ("EleutherAI/pythia-6.9b", 6_857_302_016),
    ("HuggingFaceTB/SmolLM2-135M", 134_515_008), ("HuggingFaceTB/SmolLM2-360M", 361_821_120),
    ("HuggingFaceTB/SmolLM2-1.7B", 1_711_376_384), ("Qwen/Qwen2.5-0.5B", 494_032_768),
    ("Qwen/Qwen2.5-1.5B", 1_543_714_304), ("Qwen/Qwen2.5-3B", 3_085_938_688),
    ("Qwen/Qwen2.5-7B", 7_615_616_512), ("allenai/OLMo-1B-hf", 1_176_764_416),
    ("allenai/OLMo-7B-hf", 6_888_095_744), ("meta-llama/Llama-3.2-1B", 1_235_814_400),
    ("meta-llama/Llama-3.2-3B", 3_212_749_824), ("meta-llama/Llama-3.1-8B", 8_030_261_248),
    ("google/gemma-2-2b", 2_614_341_888), ("microsoft/phi-2", 2_779_683_840),
    ("tiiuae/falcon-7b", 6_921_720_704), ("mistralai/Mistral-7B-v0.1", 7_241_732_096),
    ("gpt2", 124_439_808), ("openai-community/gpt2-medium", 354_823_168),
]


def fmt(v):
    return "" if v is None else repr(float(v))


def main():
    rng = np.random.default_rng(20260415)
    n = len(MODELS)
    logp = np.log([p for _, p in MODELS])
    quality = (logp - logp.mean()) / logp.std() + rng.normal(0, 0.7, n)  # size explains part of quality
    # Metrics: optimality tracks quality beyond size, complexity falls with it (the paper's signs).
    complexity = np.round(0.62 - 0.05 * quality + rng.normal(0, 0.03, n), 3)
    expressivity = np.round(0.30 + 0.01 * quality + rng.normal(0, 0.03, n), 3)
    optimality = expressivity / complexity
    preference = np.round(0.02 + 0.01 * quality + rng.normal(0, 0.005, n), 4)
    entropy = np.round(0.85 + rng.normal(0, 0.03, n), 2)  # 2 decimals: many ties
    loss = 3.6 - 0.25 * quality + rng.normal(0, 0.1, n)
    complexity[5] = complexity[11]  # explicit ties
    expressivity[2] = expressivity[9] = expressivity[17]

    results = []
    for i, (model, params) in enumerate(MODELS):
        results.append({
            "id": model.split("/")[-1].lower(), "model": model, "name": model.split("/")[-1],
            "family": model.split("/")[0], "step": "", "tokens": "",
            # Some rows leave params to the leaderboard's params_b; gpt2-medium has none anywhere.
            "params": "" if i in (3, 12, 23) else params,
            "entropy": entropy[i], "complexity_1": complexity[i], "expressivity_1": expressivity[i],
            "optimality_1": optimality[i], "preference": preference[i], "next_token_loss": loss[i],
        })
    results[7]["complexity_1"] = None  # a missing metric value
    results[7]["optimality_1"] = None
    results[15]["model"] = "META-LLAMA/llama-3.2-1b"  # matches only ignoring case
    results.append({**results[0], "id": "my-local-model", "model": "/models/my-local-model", "name": "local"})  # no score

    scores = []
    for i, (model, params) in enumerate(MODELS):
        base = 8 + 6 * quality[i]
        row = {b: round(max(0.0, base * w + rng.normal(0, 2.5)), 1) for b, w in zip(BENCH, [2.2, 1.3, 0.5, 0.4, 0.9, 1.2])}
        row["params_b"] = 0.0 if i == 23 else round(params / 1e9, 1)
        scores.append({"model": model, **row})
    scores[4]["musr"] = None  # a missing score
    scores[6]["bbh"] = scores[8]["bbh"] = scores[10]["bbh"]  # ties in a score
    scores.append({"model": "some-org/not-analysed", **{b: 10.0 for b in BENCH}, "params_b": 13.0})
    scores.append({"model": "other/absent-7b", **{b: 12.5 for b in BENCH}, "params_b": 7.0})
    # A duplicated leaderboard entry with a worse rank and different numbers: must be ignored.
    dup = {"model": MODELS[1][0], **{b: 99.0 for b in BENCH}, "params_b": 0.4}
    order = sorted(range(len(scores)), key=lambda k: -np.nanmean([v if v is not None else np.nan for v in (scores[k][b] for b in BENCH)]))
    ranked = [dict(scores[k], rank=r + 1) for r, k in enumerate(order)]
    ranked.append(dict(dup, rank=len(ranked) + 1))
    for r in ranked:
        vals = [r[b] for b in BENCH if r[b] is not None]
        r["average"] = round(sum(vals) / len(vals), 2)

    os.makedirs(OUT, exist_ok=True)
    rcols = ["id", "model", "name", "family", "step", "tokens", "params", "entropy", "complexity_1", "expressivity_1", "optimality_1", "preference", "next_token_loss"]
    with open(os.path.join(OUT, "models.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rcols)
        for r in results:
            w.writerow(["" if r[c] is None else (fmt(r[c]) if isinstance(r[c], (float, np.floating)) else r[c]) for c in rcols])
    scols = ["rank", "model", "average", "params_b"] + BENCH
    with open(os.path.join(OUT, "scores.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(scols)
        for r in ranked:
            w.writerow(["" if r[c] is None else r[c] for c in scols])

    # The join, independently: best-ranked row per model, exact match then case-insensitive.
    best = {}
    for r in ranked:
        if r["model"] not in best or r["rank"] < best[r["model"]]["rank"]:
            best[r["model"]] = r
    lower = {k.lower(): v for k, v in best.items()}
    joined = []
    for r in results:
        s = best.get(r["model"]) or lower.get(r["model"].lower())
        if s is not None:
            joined.append((r, s))
    assert len(joined) == n

    def num(v):
        return np.nan if v is None or v == "" else float(v)

    metrics = ["entropy", "complexity_1", "expressivity_1", "optimality_1", "preference", "next_token_loss"]
    score_names = BENCH + ["benchmark_mean"]

    def score(s, name):
        if name == "benchmark_mean":
            vals = [num(s[b]) for b in BENCH]
            return np.nan if any(np.isnan(vals)) else float(np.mean(vals))
        return num(s[name])

    def params_of(r, s):
        if r["params"] not in ("", None):
            return float(r["params"])
        return s["params_b"] * 1e9 if s["params_b"] > 0 else np.nan

    rows = []
    for m in metrics:
        x_all = np.array([num(r[m]) for r, _ in joined])
        z_all = np.log(np.array([params_of(r, s) for r, s in joined]))
        for sc in score_names:
            y_all = np.array([score(s, sc) for _, s in joined])
            ok = ~np.isnan(x_all) & ~np.isnan(y_all)
            x, y = x_all[ok], y_all[ok]
            pr = st.pearsonr(x, y)
            sr = st.spearmanr(x, y)
            rows.append((m, sc, "pearson", pr.statistic, pr.pvalue, len(x)))
            rows.append((m, sc, "spearman", sr.statistic, sr.pvalue, len(x)))
            ok3 = ok & ~np.isnan(z_all)
            rx, ry, rz = (st.rankdata(v[ok3]) for v in (x_all, y_all, z_all))
            rxy, rxz, ryz = st.pearsonr(rx, ry).statistic, st.pearsonr(rx, rz).statistic, st.pearsonr(ry, rz).statistic
            r = (rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2))
            k = int(ok3.sum())
            t = r * math.sqrt((k - 3) / (1 - r * r))
            p = 2 * st.t.sf(abs(t), k - 3)
            rows.append((m, sc, "partial_spearman", r, p, k))
    with open(os.path.join(OUT, "expected.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["metric", "score", "method", "r", "p", "n"])
        for m, sc, meth, r, p, k in rows:
            w.writerow([m, sc, meth, repr(float(r)), repr(float(p)), k])
    print(f"wrote {OUT}: {len(results)} results, {len(ranked)} score rows, {len(rows)} correlations (scipy {scipy.__version__})")


if __name__ == "__main__":
    main()
