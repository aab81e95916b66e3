#!/usr/bin/env python3
"""`make bench-file-memory`: does the peak memory of one ingest grow with the log's size?

Ingests one log file of each size with the release CLI into a fresh local table and reports
the peak resident set size (the kernel's `ru_maxrss` of the process, from wait4; this parent
imports nothing large, so its own ~15 MB, which a vforked child's count includes until it
execs, stays far below the figure). Runs are interleaved, so a slow moment of the machine
hits every size. Both cores, as the CLI and the Lambda run; `--one-core` pins to core 0.

Inputs (made once by tools/generate_logs.py --seed 1, kept under bench/data/; all start with
the same records):
  100mb   one file of 73 400 records (~100 MB of JSON, 14 MB gzipped)
  1gb     one file of 734 000 records (~1 000 MB of JSON); the same file as `make bench`'s one-1gb
  10gb    1gb's records ten times over in one file (~10 GB of JSON, made from 1gb's file by
          streaming, as the generator would hold it all in memory; takes about a minute)

  bench/file_memory.py [--reps N] [--sizes 100mb,1gb,10gb] [--one-core]
"""
import argparse
import gzip
import os
import sys

import run

GENERATED = {
    "100mb": ("one-100mb", ["--single", "--records", "73400"]),
    "1gb": ("one-1gb", run.INPUTS["one-1gb"]),
}
REPEATED = {"10gb": ("one-10gb", "1gb", 10)}
MIB = 1 << 20
HEAD, TAIL = b'{"Records":[', b"]}"


def make_input(size):
    """The folder of the log of `size`, made once."""
    if size in GENERATED:
        return run.make_input(*GENERATED[size])
    name, base, times = REPEATED[size]
    folder = run.DATA / name
    if (folder / ".done").exists():
        return folder
    [source] = run.log_files(make_input(base))
    target = run.single_log(folder, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"making {name} from {base}'s records, {times} times …", file=sys.stderr)
    with gzip.open(target, "wb", compresslevel=1) as out:
        out.write(HEAD)
        for copy in range(times):
            if copy:
                out.write(b",")
            copy_records(source, out)
        out.write(TAIL)
    (folder / ".done").touch()
    return folder


def copy_records(source, out):
    """Writes the records of the log `source` (`{"Records":[...]}`, compact) without the brackets."""
    with gzip.open(source, "rb") as stream:
        if stream.read(len(HEAD)) != HEAD:
            raise RuntimeError(f"{source} does not start with {HEAD!r}")
        held = b""  # the last bytes read, which may hold the closing brackets
        while chunk := stream.read(1 << 22):
            held += chunk
            out.write(held[:-16])
            held = held[-16:]
        held = held.rstrip()
        if not held.endswith(TAIL):
            raise RuntimeError(f"{source} does not end with {TAIL!r}")
        out.write(held[: -len(TAIL)])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="100mb,1gb")
    parser.add_argument("--one-core", action="store_true")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    known = [*GENERATED, *REPEATED]
    unknown = [s for s in sizes if s not in known]
    if unknown:
        sys.exit(f"unknown size {', '.join(unknown)}; known: {', '.join(known)}")
    if not run.OURS.exists():
        sys.exit(f"{run.OURS} not found: cargo build --release")
    run.DATA.mkdir(parents=True, exist_ok=True)
    folders = {size: make_input(size) for size in sizes}
    # The 10 GB log is past the default bounds on one object (4 GiB of JSON, 10 M records).
    os.environ.setdefault("CLOUDTRAIL_DELTA_MAX_JSON_BYTES", str(64 << 30))
    os.environ.setdefault("CLOUDTRAIL_DELTA_MAX_RECORDS", str(100_000_000))

    peaks = {size: [] for size in sizes}
    for rep in range(args.reps):
        for size in sizes:
            folder = folders[size]
            _, rss, _ = run.run_once("ours", folder, run.log_files(folder), not args.one_core)
            peaks[size].append(rss)
            print(f"rep {rep + 1}/{args.reps} {size}: {rss / MIB:.1f} MiB",
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
