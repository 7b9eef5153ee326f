"""Makes fixtures/corpus/*: Parquet files written by pandas/pyarrow (snappy, their defaults), so
tests check that infoplane reads Parquet it did not write itself. Run by hand:
    /work/venv/bin/python scripts/make_corpus_fixtures.py
"""
from pathlib import Path

import pandas as pd

out = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
out.mkdir(parents=True, exist_ok=True)
# A corpus: a string column with a null and a blank document, beside other columns.
pd.DataFrame({
    "id": [1, 2, 3, 4],
    "text": ["The first document.", None, "   ", "Zürich, 4 ½ — last"],
    "score": [0.5, 1.5, None, 2.0],
}).to_parquet(out / "pandas_corpus.parquet", compression="snappy", index=False)
