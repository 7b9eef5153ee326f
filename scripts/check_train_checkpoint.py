"""Checks an `infoplane train` checkpoint with transformers (run by hand, not by CI).

Usage: /work/venv/bin/python scripts/check_train_checkpoint.py RUN_DIR/checkpoint-N TEXT_FILE LOGITS.npy
where LOGITS.npy comes from `infoplane hidden --model RUN_DIR/checkpoint-N --text-file TEXT_FILE
--max-tokens 64 --logits --output OUT` (OUT/logits.npy, OUT/token_ids.npy beside it).
Loads the checkpoint with AutoTokenizer/AutoModelForCausalLM, encodes the text (BOS first), and
prints the largest difference between transformers' logits and infoplane's.
"""
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ckpt, text_file, logits_file = sys.argv[1:4]
tok = AutoTokenizer.from_pretrained(ckpt)
model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
ours = np.load(logits_file)
ids = tok(Path(text_file).read_text(), return_tensors="pt").input_ids[:, : ours.shape[0]]
our_ids = np.load(Path(logits_file).with_name("token_ids.npy"))
assert ids[0, 0].item() == tok.bos_token_id, "no BOS"
assert (ids[0].numpy() == our_ids).all(), "token ids differ"
with torch.no_grad():
    theirs = model(ids).logits[0].numpy()
diff = np.abs(theirs - ours).max()
print(f"{ids.shape[1]} tokens; largest |logit difference| {diff:.3g} (largest logit {np.abs(theirs).max():.3g})")
sys.exit(0 if diff < 1e-4 * max(1.0, np.abs(theirs).max()) else 1)
