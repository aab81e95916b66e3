#!/usr/bin/env python3
"""`make bench`: cloudtrail-delta against the peers, on the same files, on one core.

Inputs (made once by tools/generate_logs.py --seed 1, kept under bench/data/):
  one-100k   one file of 100 000 records (~136 MB of JSON)
  one-1gb    one file of ~1 GB of JSON (734 000 records)
  500-small  500 files of 300 records, as CloudTrail delivers every 5 minutes per region

Tools, each pinned to one core with taskset and run REPS times, interleaved:
  ours       target/release/cloudtrail-delta ingest (file → committed local Delta table;
             many files are committed in batches, --objects-per-commit 500)
  ours-1     the same with --objects-per-commit 1: one commit per object, as the Lambda does
  python     bench/peers/python_deltalake.py (Python deltalake + pyarrow, one commit per file)
  duckdb     bench/peers/duckdb_parquet.py (1 thread, Parquet only, no commit)
  floor      libdeflate-gunzip -c FILE > /dev/null (decompression alone: no ingester can pass it)

Prints one table: median wall time, MB/s of JSON, ratio of each tool's time to ours, peak RSS
(the largest of the runs, from wait4), and Parquet bytes written.

  bench/run.py [--reps N] [--inputs one-100k,one-1gb,500-small] [--tools ours,ours-1,python,duckdb,floor]
"""
import argparse
import gzip
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "tools" / "generate_logs.py"
PEERS = ROOT / "bench" / "peers"
DATA = ROOT / "bench" / "data"
OURS = ROOT / "target" / "release" / "cloudtrail-delta"
PYTHON = sys.executable
KEY_DIR = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/04/30"

INPUTS = {
    "one-100k": ["--single", "--records", "100000"],
    "one-1gb": ["--single", "--records", "734000"],
    "500-small": ["--files", "500", "--records", "300"],
}


def make_input(name, args=None):
    """The input's folder (files under the AWSLogs layout), generated once by
    tools/generate_logs.py with `args` (by default the named input's)."""
    folder = DATA / name
    done = folder / ".done"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    args = args or INPUTS[name]
    print(f"generating {name} …", file=sys.stderr)
    if "--single" in args:
        target = single_log(folder, name)
        target.parent.mkdir(parents=True)
        with open(target, "wb") as out:
            subprocess.run([PYTHON, str(GENERATOR), *args, "--seed", "1"], stdout=out,
                           check=True)
    else:
        subprocess.run([PYTHON, str(GENERATOR), "--out", str(folder), *args, "--seed", "1"],
                       check=True)
    done.touch()
    return folder


def single_log(folder, name):
    """Where the one log file of the input `name` goes in its folder."""
    return folder / KEY_DIR / f"123456789012_CloudTrail_us-east-1_20240430T2200Z_{name}.json.gz"


def log_files(folder):
    return sorted(str(p) for p in folder.rglob("*.json.gz"))


def json_bytes(files):
    total = 0
    for f in files:
        with gzip.open(f, "rb") as stream:
            while chunk := stream.read(1 << 22):
                total += len(chunk)
    return total


def command(tool, folder, files, out, pinned=True):
    one_core = ["taskset", "-c", "0"] if pinned else []
    if tool in ("ours", "ours-1"):
        batch = ["--objects-per-commit", "1"] if tool == "ours-1" else []
        return one_core + [str(OURS), "ingest", *batch, "--table", f"{out}/ct", "--insights-table",
                           f"{out}/ins", str(folder)]
    if tool == "python":
        return one_core + [PYTHON, str(PEERS / "python_deltalake.py"), f"{out}/ct", *files]
    if tool == "duckdb":
        return one_core + [PYTHON, str(PEERS / "duckdb_parquet.py"), f"{out}/ct", *files]
    if tool == "floor":
        gunzip = shutil.which("libdeflate-gunzip")
        script = " ; ".join(f"{gunzip} -c '{f}' > /dev/null" for f in files)
        return one_core + ["sh", "-c", script]
    raise ValueError(tool)


def run_once(tool, folder, files, pinned=True):
    """(wall seconds, peak RSS bytes, Parquet bytes written); on core 0 when `pinned`."""
    out = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-{tool}-", dir=DATA))
    try:
        cmd = command(tool, folder, files, out, pinned)
        started = time.perf_counter()
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        stderr = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{tool} failed: {' '.join(cmd[:6])} …\n{stderr[-2000:]}")
        parquet = sum(p.stat().st_size for p in out.rglob("*.parquet"))
        return wall, usage.ru_maxrss * 1024, parquet
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--inputs", default=",".join(INPUTS))
    parser.add_argument("--tools", default="ours,ours-1,python,duckdb,floor")
    args = parser.parse_args()
    tools = args.tools.split(",")
    if "floor" in tools and not shutil.which("libdeflate-gunzip"):
        sys.exit("libdeflate-gunzip not found (Debian package libdeflate-tools)")
    if any(t.startswith("ours") for t in tools) and not OURS.exists():
        sys.exit(f"{OURS} not found: cargo build --release")
    DATA.mkdir(parents=True, exist_ok=True)

    rows = []
    for name in args.inputs.split(","):
        folder = make_input(name)
        files = log_files(folder)
        mb = json_bytes(files) / 1e6
        results = {tool: [] for tool in tools}
        for rep in range(args.reps):
            for tool in tools:  # interleaved: a slow moment of the machine hits every tool
                results[tool].append(run_once(tool, folder, files))
                print(f"{name} rep {rep + 1}/{args.reps} {tool}: {results[tool][-1][0]:.2f} s",
                      file=sys.stderr)
        medians = {t: statistics.median(r[0] for r in results[t]) for t in tools}
        for tool in tools:
            wall = medians[tool]
            rss = max(r[1] for r in results[tool])
            parquet = results[tool][-1][2]
            rows.append((name, f"{len(files)} files, {mb:,.0f} MB JSON", tool, wall, mb / wall,
                         {t: medians[t] / wall for t in tools if t != tool}, rss, parquet))

    print()
    print(f"one core (taskset -c 0), median of {args.reps} runs, peak RSS the largest run")
    header = f"{'input':<10} {'tool':<7} {'wall s':>8} {'MB/s':>8} {'peak RSS':>10} {'Parquet':>10}  time of others / ours"
    print(header)
    print("-" * len(header))
    by_input = {}
    for name, desc, tool, wall, rate, ratios, rss, parquet in rows:
        by_input.setdefault(name, desc)
        others = ""
        if tool.startswith("ours"):
            others = ", ".join(f"{t} {r:.1f}×" for t, r in ratios.items())
        print(f"{name:<10} {tool:<7} {wall:>8.2f} {rate:>8.1f} {rss / 1e6:>8.0f} MB "
              f"{(parquet / 1e6 if parquet else 0):>7.1f} MB  {others}")
    print()
    for name, desc in by_input.items():
        print(f"{name}: {desc}")


if __name__ == "__main__":
    main()
