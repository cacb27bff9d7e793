"""SmartNoise SQL's time per query on a PUMS-like CSV, at total ε = 1 per query.

    python3 benches/peers/smartnoise_speed.py --csv FILE --reps 3 SQL...

Run by `cargo run --profile bench -p sandbox-benches --bin peers`, which writes the CSV,
makes a venv with `smartnoise-sql` and reads the output: one line per query, the median
milliseconds of `--reps` runs of `execute_df` (the reader and its metadata built once per
query, outside the timing), a tab, then the query. SmartNoise's ε is per statistic (an AVG
is a noisy SUM and a noisy COUNT), so each query gets ε = 1 / (its cost at ε = 1) and
spends ε = 1 in total, as Sandbox's does at `epsilon_per_query = 1`. The metadata are
SmartNoise's own PUMS bounds (age 0-100, income 0-500,000; pid the private id, one row
per person), with the CSV's row count.
"""

import argparse
import statistics
import sys
import time

import pandas as pd
import snsql
from snsql import Privacy

METADATA = """\
"":
  PUMS:
    PUMS:
      rows: {rows}
      age:
        type: int
        lower: 0
        upper: 100
      sex:
        type: string
      educ:
        type: string
      race:
        type: string
      income:
        type: int
        lower: 0
        upper: 500000
      married:
        type: string
      pid:
        type: int
        private_id: True
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("queries", nargs="+")
    args = ap.parse_args()
    df = pd.read_csv(args.csv, dtype={"sex": str, "educ": str, "race": str, "married": str})
    meta = args.csv + ".yaml"
    with open(meta, "w") as f:
        f.write(METADATA.format(rows=len(df)))
    for sql in args.queries:
        peer = sql.replace(" FROM pums", " FROM PUMS.PUMS")
        probe = snsql.from_df(df, privacy=Privacy(epsilon=1.0, delta=1e-6), metadata=meta)
        cost, _ = probe.get_privacy_cost(peer)
        reader = snsql.from_df(df, privacy=Privacy(epsilon=1.0 / cost, delta=1e-6), metadata=meta)
        times = []
        for _ in range(args.reps):
            t = time.perf_counter()
            reader.execute_df(peer)
            times.append((time.perf_counter() - t) * 1e3)
        print(f"{statistics.median(times):.1f}\t{sql}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
