"""SmartNoise SQL on the queries of Sandbox's accuracy harness, at equal total ε per query.

    pip install smartnoise-sql
    python3 benches/peers/smartnoise_accuracy.py [--runs 25]

SmartNoise's ε is per statistic (an AVG is a noisy SUM and a noisy COUNT), so each query
gets ε = 1 / (its cost at ε = 1), as reported by `get_privacy_cost`: the whole query then
spends ε = 1, as in `cargo run -p sandbox-benches --bin accuracy`. Relative error is
|noisy - exact| / max(|exact|, 1), median and 90th percentile over runs and cells.
"""

import argparse
import os
import statistics
import time

import pandas as pd
import snsql
from snsql import Privacy

HERE = os.path.dirname(os.path.abspath(__file__))
PUMS = os.path.join(HERE, "..", "..", "..", "shared", "data", "pums")

QUERIES = [
    "SELECT COUNT(*) FROM PUMS.PUMS",
    "SELECT SUM(income) FROM PUMS.PUMS",
    "SELECT AVG(income) FROM PUMS.PUMS",
    "SELECT AVG(age) FROM PUMS.PUMS",
    "SELECT STDDEV(age) FROM PUMS.PUMS",
    "SELECT VARIANCE(age) FROM PUMS.PUMS",
    "SELECT COUNT(*) FROM PUMS.PUMS WHERE age > 40",
    "SELECT AVG(income) FROM PUMS.PUMS WHERE age BETWEEN 25 AND 65",
    "SELECT sex, COUNT(*) FROM PUMS.PUMS GROUP BY sex",
    "SELECT sex, AVG(income) FROM PUMS.PUMS GROUP BY sex",
    "SELECT married, AVG(age) FROM PUMS.PUMS GROUP BY married",
    "SELECT race, COUNT(*) FROM PUMS.PUMS GROUP BY race",
    "SELECT educ, COUNT(*) FROM PUMS.PUMS GROUP BY educ",
    "SELECT educ, AVG(income) FROM PUMS.PUMS GROUP BY educ",
    "SELECT sex, married, COUNT(*) FROM PUMS.PUMS GROUP BY sex, married",
]


def cells(df, keys):
    out = {}
    for row in df.itertuples(index=False):
        key = "|".join(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in row[:keys])
        value = row[keys]
        if value is not None and value == value:
            out[key] = float(value)
    return out


def exact_answer(df, sql, keys):
    import sqlite3

    con = sqlite3.connect(":memory:")
    df.to_sql("PUMS", con, index=False)
    local = sql.replace("PUMS.PUMS", "PUMS").replace("STDDEV(age)", "SQRT(AVG(age*age) - AVG(age)*AVG(age))").replace(
        "VARIANCE(age)", "(AVG(age*age) - AVG(age)*AVG(age))"
    )
    return cells(pd.read_sql_query(local, con), keys)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args()
    df = pd.read_csv(os.path.join(PUMS, "PUMS_pid.csv"))
    meta = os.path.join(PUMS, "PUMS_pid.yaml")
    print(f"SmartNoise SQL {snsql.__version__ if hasattr(snsql, '__version__') else ''}: total ε = 1 per query, {args.runs} runs")
    print()
    print("| query | ε per statistic | median rel. error | p90 rel. error | ms per query |")
    print("|---|---:|---:|---:|---:|")
    for sql in QUERIES:
        keys = sql.split(" FROM")[0].count(",")
        exact = exact_answer(df, sql, keys)
        probe = snsql.from_df(df, privacy=Privacy(epsilon=1.0, delta=1e-6), metadata=meta)
        cost, _ = probe.get_privacy_cost(sql)
        eps = 1.0 / cost
        reader = snsql.from_df(df, privacy=Privacy(epsilon=eps, delta=1e-6), metadata=meta)
        errors = []
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            res = reader.execute_df(sql)
            times.append((time.perf_counter() - t) * 1e3)
            noisy = cells(res, keys)
            for k, e in exact.items():
                n = noisy.get(k, 0.0)
                errors.append(abs(n - e) / max(abs(e), 1.0))
        errors.sort()
        med = errors[len(errors) // 2]
        p90 = errors[int(round((len(errors) - 1) * 0.9))]
        print(f"| `{sql}` | {eps:.3f} | {med:.4f} | {p90:.4f} | {statistics.median(times):.0f} |")


if __name__ == "__main__":
    main()
