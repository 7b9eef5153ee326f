#!/usr/bin/env python3
"""Known-answer fixture for infoplane's RNG: numpy's Philox4x64-10 raw stream.

Run by hand (never by CI):  python3 scripts/make_rng_fixture.py
Needs only numpy. Writes fixtures/rng/philox_numpy.json. infoplane's `Philox::numpy_stream`
must reproduce these words exactly (key = [seed, domain]).
"""
import json
import pathlib

import numpy as np

out = []
for seed, domain in [(0, 0), (1, 0), (12345, 0), (2**64 - 1, 1), (7, 1)]:
    bg = np.random.Philox(key=seed + (domain << 64))
    out.append({"seed": str(seed), "domain": domain, "raw": [str(x) for x in bg.random_raw(9)]})
path = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "rng" / "philox_numpy.json"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps({"numpy": np.__version__, "streams": out}, indent=1) + "\n")
print(path)
