"""Forward-pass speed of `infoplane hidden` against PyTorch + transformers, side by side.

Run by hand (never by CI), from the repository root, after `cargo build --release`:

    /work/venv/bin/python scripts/bench_runtime.py [--data-dir ../shared/data] [--threads 2]

Both sides run SmolLM2-135M-Instruct (the Q4_1 GGUF of the shared data, dequantised to float32
by each side's own GGUF loader), on the same 512 token ids (infoplane's `token_ids.npy`, which
equal transformers' GGUF tokenizer's), with the same thread count, in f32 and bf16. Both return
every layer's hidden states and the final-norm output and no logits: infoplane `hidden` without
`--logits`, transformers' base model (`model.model`, no LM head) with `output_hidden_states=True`.
Timed: the forward pass alone (infoplane's own `forward:` line; `time.perf_counter` around the
PyTorch call), best and median of `--repeats` runs after one warm-up, the two sides
alternating run by run. Prints tokens/s and the ratio.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--binary", default="target/release/infoplane")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtypes", default="f32,bf16")
    args = ap.parse_args()

    data = Path(args.data_dir)
    gguf = data / "smollm2_135m_instruct_gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    corpus = data / "c4_en_sample_1k" / "c4_en_train00000_first1000.jsonl"
    binary = Path(args.binary)
    if not binary.is_file():
        sys.exit(f"{binary}: build it first (cargo build --release)")

    # Threads: rayon (candle, gemm) and torch intra-op, both pinned to the same count.
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="bench_runtime_"))
    text = []
    with open(corpus) as f:
        for line in f:
            text.append(json.loads(line)["text"])
            if sum(len(t) for t in text) > args.tokens * 8:
                break
    text_file = tmp / "text.txt"
    text_file.write_text("\n\n".join(text))

    def run_infoplane(dtype):
        out = tmp / f"out_{dtype}"
        cmd = [str(binary), "hidden", "--model", str(gguf), "--text-file", str(text_file), "--max-tokens", str(args.tokens), "--dtype", dtype, "--output", str(out)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"infoplane failed: {res.stderr}")
        m = re.search(r"forward: (\d+) tokens in ([0-9.]+) s", res.stderr)
        return int(m.group(1)), float(m.group(2)), out

    n, _, out = run_infoplane("f32")
    ids = np.load(out / "token_ids.npy")
    assert len(ids) == args.tokens == n, (len(ids), n)

    print(f"model: {gguf.name}; {n} tokens; threads {args.threads}; torch {torch.__version__}, transformers {transformers.__version__}")
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    base = model.model
    x = torch.tensor(ids[None, :], dtype=torch.long)

    rows = []
    for dtype in args.dtypes.split(","):
        base.to(torch.bfloat16 if dtype == "bf16" else torch.float32)
        torch_times, ours = [], []
        # Alternate the two sides run by run, so a change in machine load hits both alike.
        for i in range(args.repeats + 1):
            with torch.inference_mode():
                t0 = time.perf_counter()
                o = base(input_ids=x, output_hidden_states=True)
                dt = time.perf_counter() - t0
            assert len(o.hidden_states) == base.config.num_hidden_layers + 1
            _, ours_dt, _ = run_infoplane(dtype)
            if i:
                torch_times.append(dt)
                ours.append(ours_dt)
        rows.append((dtype, ours, torch_times))

    print(f"{'dtype':6} {'infoplane tok/s (best / median)':>34} {'PyTorch tok/s (best / median)':>32} {'ratio (best)':>13} {'ratio (median)':>15}")
    for dtype, ours, theirs in rows:
        ob, om = n / min(ours), n / statistics.median(ours)
        tb, tm = n / min(theirs), n / statistics.median(theirs)
        print(f"{dtype:6} {ob:16.1f} / {om:7.1f}         {tb:16.1f} / {tm:7.1f}     {ob / tb:10.2f}x {om / tm:13.2f}x")
    print(f"(ratio = infoplane tok/s ÷ PyTorch tok/s; load average {os.getloadavg()[0]:.2f} at the end; scratch files in {tmp})")


if __name__ == "__main__":
    main()
