#!/usr/bin/env bash
# infoplane analyze on a real model over the 1,000-document C4 sample (512 tokens each, all
# layers, orders 1-4 on both sides, Katz back-off and nulls): wall time, peak RSS, and the time
# the analysis adds to the model's own forward pass (from the run's timing.json).
#
#   bash scripts/bench_analyze.sh [MODEL] [OUT_DIR]      (run by hand; needs ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${INFOPLANE_SHARED_DATA:-../shared/data}
model=${1:-$data/smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf}
out=${2:-$(mktemp -d)/run}
cargo build --release -q
echo "model: $model; $(nproc) cores; $(date -u +%FT%TZ)"
/usr/bin/time -f "wall %e s, peak RSS %M KB" ./target/release/infoplane analyze --model "$model" \
  --corpus data/c4_sample/c4_en_train00000_first1000.jsonl --max-docs 1000 --max-tokens 512 \
  --quiet --output "$out" 2>&1 | grep -v '^\s*$'
python3 - "$out" <<'PY'
import json, sys
t = json.load(open(sys.argv[1] + "/timing.json"))
s = json.load(open(sys.argv[1] + "/summary.json"))
added = t["prepass_seconds"] + t["assign_seconds"] + t["labels_seconds"]
print(f"positions {s['counts']['positions']}, documents {s['counts']['documents']}")
print(f"model forward {t['model_seconds']:.1f} s; analysis adds {added:.1f} s = {100*added/t['model_seconds']:.1f}% "
      f"(pre-pass {t['prepass_seconds']:.1f}, soft assignment {t['assign_seconds']:.1f}, labels {t['labels_seconds']:.1f})")
PY
