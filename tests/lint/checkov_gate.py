"""Runs checkov on a CloudFormation template and holds its findings to the baseline file:
fails on a finding the baseline does not list (with the check's name), and on a baseline line
that no longer fails (so the baseline only ever lists what is there).

    checkov_gate.py <checkov> <template> <baseline>
"""
import json
import subprocess
import sys


def baseline(path):
    accepted = {}
    for number, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, reason = line.split(": ", 1) if ": " in line else (line, "")
        parts = head.split()
        if len(parts) != 2 or not reason.strip():
            sys.exit(f"{path}:{number}: expected `<check id> <resource>: <reason>`, got {line!r}")
        accepted[tuple(parts)] = reason.strip()
    return accepted


def findings(checkov, template):
    run = subprocess.run([checkov, "--file", template, "--framework", "cloudformation",
                          "--skip-download", "--quiet", "--compact", "--output", "json"],
                         capture_output=True, text=True)
    try:
        reports = json.loads(run.stdout)
    except json.JSONDecodeError:
        sys.exit(f"checkov gave no report (exit {run.returncode}):\n{run.stdout}{run.stderr}")
    reports = reports if isinstance(reports, list) else [reports]
    failed = {}
    for report in reports:
        if report.get("summary", {}).get("parsing_errors"):
            sys.exit(f"checkov could not parse {template}")
        for check in report.get("results", {}).get("failed_checks", []):
            failed[(check["check_id"], check["resource"])] = check["check_name"]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    return failed, passed


def main():
    checkov, template, baseline_path = sys.argv[1:]
    accepted = baseline(baseline_path)
    failed, passed = findings(checkov, template)
    new = sorted(set(failed) - set(accepted))
    stale = sorted(set(accepted) - set(failed))
    for check_id, resource in new:
        print(f"checkov: {check_id} {resource}: {failed[(check_id, resource)]} "
              f"(fix it, or accept it in {baseline_path} with a reason)")
    for check_id, resource in stale:
        print(f"checkov: {check_id} {resource} passes now: remove it from {baseline_path}")
    print(f"checkov: {passed} passed, {len(failed)} failed, all of them accepted"
          if not new else f"checkov: {passed} passed, {len(failed)} failed, {len(new)} not accepted")
    sys.exit(1 if new or stale else 0)


if __name__ == "__main__":
    main()
