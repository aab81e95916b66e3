"""Log files for the tests and benchmarks, written as CloudTrail delivers them (gzipped, under
the AWSLogs/ key layout) by the repository's generator, tools/generate_logs.py."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tools" / "generate_logs.py"

_spec = importlib.util.spec_from_file_location("generate_logs", GENERATOR)
generate_logs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate_logs)


def generate(out, files, records, seed, kind="cloudtrail", **options):
    """Writes `files` log files of `records` records (Insights: pairs) under `out`; returns
    their paths in name order. `options`: org, digests, start (see the generator)."""
    return generate_logs.generate(out, files, records, seed, kind, **options)
