"""Print the issue's comparison table from a pytest-benchmark JSON: our row, the peers', and the ratios.

    python -m pytest benchmarks --benchmark-enable --benchmark-only --benchmark-json=bench.json
    python benchmarks/report.py bench.json

    python benchmarks/report.py                 # runs the benchmarks first (MEMORA_BENCH_ROWS rows)
    python benchmarks/report.py --rows 87599    # ... on SQuAD-train's row count

Throughputs are rows per second of the median round (``extra_info["rows"]`` /
median), so the rows each round did may differ between engines (slow peers do
fewer, see ``peers.py``). Ratios are "memora_lite / peer": above 1 is better for
throughputs, below 1 is better for bytes and memory. The issue's reference figures
(measured by its author on this machine kind) are printed beside ours, and the
goals with what this run measured; nothing here judges a time by itself.

>>> _rate(2_180), _rate(354_000), _rate(1_730_000), _rate(None)
('2.2k', '354k', '1.73M', 'n/a')
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

ENGINE_ORDER = ["memora_lite", "milvus_lite", "sqlite", "hf_datasets", "lance", "parquet", "msgpack", "npy_memmap"]
LABELS = {
    "memora_lite": "memora_lite",
    "milvus_lite": "Milvus Lite",
    "sqlite": "SQLite, int BLOBs, WAL",
    "hf_datasets": "Hugging Face datasets",
    "lance": "Lance (pylance)",
    "parquet": "Parquet + zstd (pyarrow)",
    "msgpack": "an append-only msgpack file",
    "npy_memmap": "numpy .npy memmap (no store at all)",
}

# The table, as its author measured it (rows/s unless noted; None: the engine has no such path).
REFERENCE: dict[str, dict[str, Any]] = {
    "milvus_lite": {"label": "Milvus Lite 3.2.2", "fillrow": 425, "fillbulk_rows": 2_200, "fillbulk_numpy": None,
                    "readrange_py": 207, "readrange_np": 2_100, "readrandom": 514, "size": 160, "rss": 3_080},
    "sqlite": {"label": "SQLite, int BLOBs, WAL", "fillrow": 9_500, "fillbulk_rows": 18_000,
               "fillbulk_numpy": 38_000, "readrange_py": 70_000, "readrange_np": 354_000, "readrandom": 47_000,
               "size": 1_369, "rss": 6},
    "hf_datasets": {"label": "Hugging Face datasets 5.2", "fillrow": 23, "fillbulk_rows": 11_000,
                    "fillbulk_numpy": 68_000, "readrange_py": 48_000, "readrange_np": 1_730_000,
                    "readrandom": 7_100, "size": 3_105, "rss": 643},
    "lance": {"label": "Lance (pylance)", "fillrow": 44, "fillbulk_rows": 20_000, "fillbulk_numpy": 153_000,
              "readrange_py": 23_000, "readrange_np": 327_000, "readrandom": 1_300, "size": 3_077, "rss": 623},
    "parquet": {"label": "Parquet + zstd (pyarrow)", "fillrow": None, "fillbulk_rows": 16_000,
                "fillbulk_numpy": 39_000, "readrange_py": 42_000, "readrange_np": 179_000, "readrandom": 236,
                "size": 200, "rss": 158},
    "msgpack": {"label": "an append-only msgpack file", "fillrow": 27_000, "fillbulk_rows": 36_000,
                "fillbulk_numpy": None, "readrange_py": 62_000, "readrange_np": 20_000, "readrandom": 57_000,
                "size": 960, "rss": 19},
    "npy_memmap": {"label": "numpy .npy memmap (no store at all)", "fillrow": 28_000, "fillbulk_rows": 28_000,
                   "fillbulk_numpy": 183_000, "readrange_py": 142_000, "readrange_np": 5_030_000,
                   "readrandom": 63_000, "size": 1_936, "rss": 167},
}

# (key, heading): the columns, then two of ours.
COLUMNS: list[tuple[str, str]] = [
    ("fillrow", "one insert per call"),
    ("fillbulk", "bulk insert (dict rows / numpy)"),
    ("readrange_py", "50-row range reads as Python lists"),
    ("readrange_np", "range reads into numpy"),
    ("readrandom", "single-id get"),
    ("size", "bytes on disk per row"),
    ("rss", "RSS over baseline"),
]
EXTRA_COLUMNS: list[tuple[str, str]] = [("readbatch", "32 random ids per get"), ("scan_np", "full scan into numpy"),
                                        ("open", "open + first query")]
THROUGHPUTS = ("fillrow", "fillbulk_rows", "fillbulk_numpy", "readrange_py", "readrange_np", "readrandom", "readbatch",
               "scan_np")

# The goals for memora_lite: (figure, goal text, test).
GOALS: list[tuple[str, str, Callable[[float], bool]]] = [
    ("fillrow", ">= 100k rows/s", lambda v: v >= 100_000),
    ("fillbulk_rows", ">= 100k rows/s", lambda v: v >= 100_000),
    ("fillbulk_numpy", ">= 500k rows/s", lambda v: v >= 500_000),
    ("readrange_py", ">= 100k rows/s", lambda v: v >= 100_000),
    ("readrange_np", ">= 2M rows/s", lambda v: v >= 2_000_000),
    ("readrandom", ">= 50k gets/s", lambda v: v >= 50_000),
    ("size", "<= 100 bytes/row", lambda v: v <= 100),
    ("open", "< 10 ms (87,599 rows)", lambda v: v < 10),
    ("rss", "< 50 MB during a full scan", lambda v: v < 50),
]


# --- reading the JSON ---------------------------------------------------------------------------


def load(path: str) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def figures(bench: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{engine: {figure: value}}`` from the core workloads: rows/s, bytes/row, MB, ms.

    >>> def entry(workload, engine, median):
    ...     return {"stats": {"median": median}, "extra_info": {"workload": workload, "engine": engine, "rows": 100}}
    >>> figures({"benchmarks": [entry("fillrow", "memora_lite", 0.001), entry("narrow_threads", "numpy", 0.5)]})
    {'memora_lite': {'fillrow': 100000.0, 'fillrow_rows': 100}}
    """
    out: dict[str, dict[str, Any]] = {}
    for b in bench["benchmarks"]:
        info, median = b.get("extra_info", {}), b["stats"]["median"]
        workload, engine = info.get("workload"), info.get("engine")
        if workload not in (*THROUGHPUTS, "size", "scan_memory", "open_and_first_query"):
            continue  # the parts (floors, scaling, one kernel's threads) have tables of their own or none
        row = out.setdefault(engine, {})
        if workload in THROUGHPUTS:
            row[workload] = info["rows"] / median
            row[f"{workload}_rows"] = info["rows"]
        elif workload == "size":
            row["size"] = info["bytes_per_row"]
            row["stored_rows"] = info["stored_rows"]
        elif workload == "scan_memory":
            row["rss"] = info["rss_over_baseline_mb"]
            row["anon"] = info["anon_over_baseline_mb"]
            row["import_mb"] = info["import_mb"]
        elif workload == "open_and_first_query":
            row["open"] = median * 1000
    return out


# --- formatting ---------------------------------------------------------------------------------


def _rate(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "-"
    r = ours / theirs
    return f"{r:.2f}x" if r < 10 else f"{r:,.0f}x"


def _cell(key: str, row: dict[str, Any]) -> str:
    """One engine's figure for one column, as the issue writes it."""
    if key == "fillbulk":
        return f"{_rate(row.get('fillbulk_rows'))} / {_rate(row.get('fillbulk_numpy'))}"
    value = row.get(key)
    if value is None:
        return "n/a"
    if key in THROUGHPUTS:
        return _rate(value)
    if key == "size":
        return f"{value:,.0f}"
    if key == "rss":
        return f"+{value:,.0f} MB"
    if key == "open":
        return f"{value:,.1f} ms"
    return str(value)


def _ratio_cell(key: str, ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    if key == "fillbulk":
        return (f"{_ratio(ours.get('fillbulk_rows'), theirs.get('fillbulk_rows'))} / "
                f"{_ratio(ours.get('fillbulk_numpy'), theirs.get('fillbulk_numpy'))}")
    return _ratio(ours.get(key), theirs.get(key))


def _table(header: list[str], rows: list[list[str]]) -> str:
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# --- the report ---------------------------------------------------------------------------------


def measured_table(figs: dict[str, dict[str, Any]]) -> str:
    """Every engine of this run, then memora_lite / each peer."""
    cols = COLUMNS + EXTRA_COLUMNS
    engines = [e for e in ENGINE_ORDER if e in figs] + sorted(set(figs) - set(ENGINE_ORDER))
    rows = [[LABELS.get(e, e)] + [_cell(k, figs[e]) for k, _ in cols] for e in engines]
    ours = figs.get("memora_lite", {})
    rows += [[f"memora_lite / {LABELS.get(e, e)}"] + [_ratio_cell(k, ours, figs[e]) for k, _ in cols]
             for e in engines if e != "memora_lite"]
    return _table([""] + [h for _, h in cols], rows)


def reference_table(figs: dict[str, dict[str, Any]]) -> str:
    """The issue's table with our measured row added, and memora_lite / each reference figure."""
    ours = figs.get("memora_lite", {})
    rows = [[r["label"] + " (issue)"] + [_cell(k, r) for k, _ in COLUMNS] for r in REFERENCE.values()]
    rows.append(["memora_lite (this run)"] + [_cell(k, ours) for k, _ in COLUMNS])
    rows += [[f"memora_lite / {r['label']}"] + [_ratio_cell(k, ours, r) for k, _ in COLUMNS]
             for r in REFERENCE.values()]
    return _table([""] + [h for _, h in COLUMNS], rows)


def drift_table(figs: dict[str, dict[str, Any]]) -> str:
    """Each peer measured here / the issue's figure for it: how this machine and run compare with the issue's."""
    rows = [[LABELS.get(e, e)] + [_ratio_cell(k, figs[e], REFERENCE[e]) for k, _ in COLUMNS]
            for e in ENGINE_ORDER if e in figs and e in REFERENCE]
    return _table(["peer: this run / issue"] + [h for _, h in COLUMNS], rows)


def goals_table(figs: dict[str, dict[str, Any]]) -> str:
    ours = figs.get("memora_lite", {})
    rows = []
    for key, goal, test in GOALS:
        value = ours.get(key)
        rows.append([key, goal, _cell(key, ours), "-" if value is None else ("met" if test(value) else "NOT met")])
    return _table(["figure", "goal", "this run", ""], rows)


def scaling_table(bench: dict[str, Any]) -> str | None:
    results = [b for b in bench["benchmarks"] if b.get("extra_info", {}).get("workload") == "scaling"]
    if not results:
        return None
    rows = []
    for b in sorted(results, key=lambda b: (b["extra_info"]["op"], b["extra_info"]["store_rows"])):
        info, median = b["extra_info"], b["stats"]["median"]
        op = info["op"]
        if op == "scan_memory":
            cost = f"+{info['rss_over_baseline_mb']:,.1f} MB RSS (+{info['anon_over_baseline_mb']:,.1f} MB anon)"
            rate = _rate(info["rows"] / info["seconds"]) + " rows/s"
        elif op == "open":
            cost, rate = f"{median * 1e3:,.2f} ms per open + query", "-"
        else:
            cost = f"{median / info['calls'] * 1e6:,.1f} us per call"
            rate = _rate(info["rows"] / median) + " rows/s"
        rows.append([op, f"{info['store_rows']:,}", str(info.get("segments", "-")), cost, rate])
    return _table(["op", "store rows", "segments", "cost", "throughput"], rows)


def floors_table(bench: dict[str, Any], figs: dict[str, dict[str, Any]]) -> str | None:
    """Each workload's unskippable steps (``test_floors.py``), their sum as the best rate it allows, the
    goal, and what the whole workload did in this run."""
    steps: dict[str, list[tuple[str, float, int]]] = {}
    for b in bench["benchmarks"]:
        info = b.get("extra_info", {})
        if info.get("workload") == "floor":
            steps.setdefault(info["floor_of"], []).append((info["step"], b["stats"]["median"], info["rows"]))
    if not steps:
        return None
    goals = {key: goal for key, goal, _ in GOALS}
    ours = figs.get("memora_lite", {})
    rows = []
    for workload, parts in steps.items():
        seconds, n = sum(t for _, t, _ in parts), parts[0][2]
        bound = n / seconds
        measured = ours.get(workload)
        rows.append([workload, ", ".join(f"{step} {t * 1e3:,.1f}" for step, t, _ in parts), f"{seconds * 1e3:,.1f}",
                     _rate(bound), goals.get(workload, "-"), _rate(measured),
                     "-" if measured is None else f"{measured / bound:.2f}"])
    return _table(["workload", "steps alone, ms (median)", "sum, ms", "best rate they allow", "goal", "whole workload",
                   "whole / bound"], rows)


def faults_table(bench: dict[str, Any]) -> str | None:
    """Minor page faults per round of each fill workload (``minor_faults``): how much fresh memory
    each engine's writes touch, a cost this report's rates include."""
    fills = ("fillrow", "fillbulk_rows", "fillbulk_numpy")
    counts: dict[str, dict[str, int]] = {}
    for b in bench["benchmarks"]:
        info = b.get("extra_info", {})
        if info.get("workload") in fills and "minor_faults" in info:
            counts.setdefault(info["engine"], {})[info["workload"]] = info["minor_faults"]
    if not counts:
        return None
    rows = [[LABELS.get(engine, engine), *(f"{row[w]:,}" if w in row else "n/a" for w in fills)]
            for engine, row in counts.items()]
    return _table(["engine", *fills], rows)


def real_text(bench: dict[str, Any]) -> dict[str, Any] | None:
    for b in bench["benchmarks"]:
        if b.get("extra_info", {}).get("workload") == "size_real_text":
            return b["extra_info"]
    return None


def report(bench: dict[str, Any]) -> str:
    figs = figures(bench)
    stored = figs.get("memora_lite", {}).get("stored_rows")
    machine = bench.get("machine_info", {})
    out = [f"# memora_lite vs peers: {stored:,} SQuAD-shaped rows" if stored else "# memora_lite vs peers",
           f"python {machine.get('python_version', '?')}, {machine.get('cpu', {}).get('brand_raw', '?')}, "
           f"{bench.get('datetime', '')}",
           "", "## This run (rows/s unless noted; median round)", "", measured_table(figs),
           "", "## The issue's reference table, with this run's memora_lite row", "", reference_table(figs),
           "", "## Peers: this run / the issue's figures (how comparable the machines and runs are)", "",
           drift_table(figs), "", "## Goals", "", goals_table(figs)]
    scaling = scaling_table(bench)
    if scaling:
        out += ["", "## Scaling (memora_lite)", "", scaling]
    floors = floors_table(bench, figs)
    if floors:
        out += ["", "## Floors: the steps this design takes for a workload, each timed alone (test_floors.py)", "",
                floors]
    faults = faults_table(bench)
    if faults:
        out += ["", "## Minor page faults per fill round (first touches of fresh memory)", "", faults]
    text = real_text(bench)
    if text:
        import size_real_text

        out += ["", "## Size on real text", ""]
        out.append(_capture(lambda: size_real_text.print_report(text, None)))
    return "\n".join(out)


def _capture(fn: Callable[[], None]) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn()
    return buf.getvalue().rstrip()


def run_benchmarks(path: str, rows: int | None, extra: list[str]) -> None:
    env = dict(os.environ)
    if rows:
        env["MEMORA_BENCH_ROWS"] = str(rows)
    cmd = [sys.executable, "-m", "pytest", HERE, "--benchmark-enable", "--benchmark-only",
           f"--benchmark-json={path}", "-q", *extra]
    print("running:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=REPO, env=env, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", nargs="?", help="a pytest-benchmark JSON; without it, run the benchmarks first")
    parser.add_argument("--rows", type=int, help="rows per store when running (sets MEMORA_BENCH_ROWS)")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments when running, e.g. '-k memora'")
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    if args.json:
        print(report(load(args.json)))
        return 0
    with tempfile.TemporaryDirectory(prefix="memora_bench_") as tmp:
        path = os.path.join(tmp, "bench.json")
        run_benchmarks(path, args.rows, args.pytest_args.split())
        print(report(load(path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
