#!/usr/bin/env python3
"""`make bench-file-memory`: does the peak memory of one ingest grow with the log's size?

Ingests one log file of each size with the release CLI into a fresh local table and reports
the peak resident set size (the kernel's `ru_maxrss` of the process, from wait4; this parent
imports nothing large, so its own ~10 MB, which a vforked child's count includes until it
execs, stays far below the figure). Runs are interleaved, so a slow moment of the machine
hits every size. Both cores, as the CLI and the Lambda run; `--one-core` pins to core 0.

Inputs (made once by ../shared/bench/gen_cloudtrail.py --seed 1, kept under bench/data/;
all start with the same records):
  100mb   one file of 67 000 records (~101 MB of JSON, 13 MB gzipped)
  1gb     one file of 670 000 records (~1 006 MB of JSON); the same file as `make bench`'s one-1gb
  10gb    one file of 6 700 000 records (~10 GB of JSON; generating it takes a while)

  bench/file_memory.py [--reps N] [--sizes 100mb,1gb,10gb] [--one-core]
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import run

SIZES = {
    "100mb": ("one-100mb", ["--single", "--records", "67000"]),
    "1gb": ("one-1gb", run.INPUTS["one-1gb"]),
    "10gb": ("one-10gb", ["--single", "--records", "6700000"]),
}
MIB = 1 << 20


def peak_rss(folder, one_core):
    """Peak RSS in bytes of ingesting `folder` into fresh tables."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="file-memory-", dir=run.DATA))
    try:
        cmd = (["taskset", "-c", "0"] if one_core else []) + [
            str(run.OURS), "ingest", "--table", f"{out}/ct", "--insights-table", f"{out}/ins",
            str(folder)]
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        stderr = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"ingest of {folder} failed:\n{stderr[-2000:]}")
        return usage.ru_maxrss * 1024
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="100mb,1gb")
    parser.add_argument("--one-core", action="store_true")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        sys.exit(f"unknown size {', '.join(unknown)}; known: {', '.join(SIZES)}")
    if not run.OURS.exists():
        sys.exit(f"{run.OURS} not found: cargo build --release")
    run.DATA.mkdir(parents=True, exist_ok=True)
    folders = {size: run.make_input(*SIZES[size]) for size in sizes}

    peaks = {size: [] for size in sizes}
    for rep in range(args.reps):
        for size in sizes:
            peaks[size].append(peak_rss(folders[size], args.one_core))
            print(f"rep {rep + 1}/{args.reps} {size}: {peaks[size][-1] / MIB:.1f} MiB",
                  file=sys.stderr)

    print()
    print(f"peak RSS of one ingest, {args.reps} interleaved runs, "
          f"{'one core' if args.one_core else 'both cores'}")
    for size in sizes:
        runs = " / ".join(f"{p / MIB:.1f}" for p in peaks[size])
        print(f"{size:>6}: {min(peaks[size]) / MIB:5.1f}–{max(peaks[size]) / MIB:5.1f} MiB  ({runs})")
    smallest, largest = sizes[0], sizes[-1]
    if smallest != largest:
        low = (min(peaks[largest]) - min(peaks[smallest])) / MIB
        high = (max(peaks[largest]) - max(peaks[smallest])) / MIB
        verdict = "no higher" if max(low, high) <= 0 else "higher"
        print(f"{largest} against {smallest}: lowest runs {low:+.1f} MiB, highest runs "
              f"{high:+.1f} MiB ({verdict})")


if __name__ == "__main__":
    main()
