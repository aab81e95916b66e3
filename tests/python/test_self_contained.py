"""The repository carries everything its tests, demo and benchmarks use: no tracked file reads
the team's folder beside the project (written here in two parts, so this file does not match
itself)."""
import re
import subprocess

from aws_local import ROOT

BESIDE = "shared"
PATTERNS = [re.compile(r"\.\./" + BESIDE + r"\b"),
            re.compile(r"parent\s*/\s*[\"']" + BESIDE + r"[\"']")]


def test_nothing_reads_the_folder_beside_the_project():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    found = []
    for name in filter(None, tracked):
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(p.search(line) for p in PATTERNS):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
