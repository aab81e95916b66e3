"""template.yaml as SAM expands it (aws-sam-translator, offline), with its conditions and
intrinsics resolved for a set of parameters as CloudFormation would resolve them."""
import os
import re

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from aws_local import ROOT


# What `!Ref AWS::NoValue` resolves to: the property or list item is left out.
NO_VALUE = object()


class NoManagedPolicies:
    def load(self):
        return {}


def expand(**parameters):
    """The expanded template's resources under `parameters`, conditions resolved."""
    template = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/function.zip"  # as `sam package` does
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    expanded = transform(template, parameters, NoManagedPolicies())
    values = {name: spec.get("Default") for name, spec in expanded["Parameters"].items()}
    values.update(parameters)
    conditions = {}

    def condition(name):
        if name not in conditions:
            conditions[name] = resolve(expanded["Conditions"][name])
        return conditions[name]

    def resolve(node):
        if isinstance(node, list):
            return [v for v in map(resolve, node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        if set(node) == {"Ref"} and node["Ref"] in values:
            return values[node["Ref"]]
        if set(node) == {"Condition"}:
            return condition(node["Condition"])
        if set(node) == {"Fn::Equals"}:
            a, b = resolve(node["Fn::Equals"])
            return str(a) == str(b)
        if set(node) == {"Fn::Not"}:
            return not resolve(node["Fn::Not"][0])
        if set(node) == {"Fn::And"}:
            return all(resolve(node["Fn::And"]))
        if set(node) == {"Fn::Or"}:
            return any(resolve(node["Fn::Or"]))
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return resolve(yes if condition(name) else no)
        if set(node) == {"Fn::FindInMap"}:
            table, first, second = resolve(node["Fn::FindInMap"])
            return expanded["Mappings"][table][first][second]
        if set(node) == {"Fn::Sub"}:
            text, names = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
            names = {**{k: v for k, v in values.items() if isinstance(v, (str, int))},
                     **resolve(names)}
            return re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: str(names.get(m[1], m[0])), text)
        if set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            parts = resolve(parts)
            return separator.join(str(p) for p in parts) if isinstance(parts, list) else parts
        resolved = {k: resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    return {name: resolve(resource) for name, resource in expanded["Resources"].items()
            if "Condition" not in resource or condition(resource["Condition"])}


@pytest.mark.parametrize("schedule, state", [("rate(6 hours)", "ENABLED"), ("disabled", "DISABLED")])
def test_the_maintenance_schedule_is_off_when_disabled(schedule, state):
    resources = expand(MaintenanceSchedule=schedule)
    rule = resources["MaintenanceFunctionSchedule"]
    assert rule["Type"] == "AWS::Events::Rule"
    assert rule["Properties"]["State"] == state


def test_the_new_bucket_frees_what_vacuum_deletes_under_the_tables_prefix():
    resources = expand(TablesPrefix="tables/", NoncurrentVersionDays=9, TemporaryCommitFileDays=40)
    rules = {r["Id"]: r for r in resources["LogBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["tables-noncurrent-versions"]["Status"] == "Enabled"
    assert rules["tables-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 9}
    assert rules["tables-expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True
    assert rules["tables-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1}
    assert {r["Prefix"] for r in rules.values() if "commit-files" not in r["Id"]} == {"tables/"}
    commit_files = [r for r in rules.values() if "commit-files" in r["Id"]]
    assert sorted(r["Prefix"] for r in commit_files) == [
        "tables/cloudtrail/_delta_log/_commit_", "tables/cloudtrail_insights/_delta_log/_commit_"]
    assert all(r["ExpirationInDays"] == 40 for r in commit_files)
    # Noncurrent versions kept for good when asked.
    off = expand(NoncurrentVersionDays=0)["LogBucket"]["Properties"]["LifecycleConfiguration"]
    assert next(r for r in off["Rules"] if r["Id"] == "tables-noncurrent-versions")["Status"] == "Disabled"


def test_a_tables_bucket_of_ones_own_gets_no_rules_on_the_log_bucket():
    resources = expand(TablesBucket="my-tables")
    assert "LifecycleConfiguration" not in resources["LogBucket"]["Properties"]


def parameter_accepts(name, value):
    """Whether `value` matches parameter `name`'s AllowedPattern (a Java regex; these
    patterns mean the same in Python's)."""
    template = yaml_parse((ROOT / "template.yaml").read_text())
    return re.fullmatch(template["Parameters"][name]["AllowedPattern"], value) is not None


@pytest.mark.parametrize("prefix, allowed", [
    ("delta/", True), ("org/tables/", True), ("tables-2026/", True),
    ("*/", False), ("AWSLogs/", False), ("x/AWSLogs/", False), ("AWSLogs/delta/", False),
    ("del*ta/", False), ("delta?/", False), ("/delta/", False), ("delta", False),
    ("a//b/", False), ("", False),
])
def test_the_tables_prefix_never_covers_the_logs_nor_holds_wildcards(prefix, allowed):
    assert parameter_accepts("TablesPrefix", prefix) is allowed


def test_the_tables_prefix_must_differ_from_the_log_prefix():
    template = yaml_parse((ROOT / "template.yaml").read_text())
    (assertion,) = template["Rules"]["TablesApartFromLogs"]["Assertions"]

    def holds(tables, logs):
        values = {"TablesPrefix": tables, "LogPrefix": logs}

        def evaluate(node):
            if "Ref" in node:
                return values[node["Ref"]]
            if "Fn::Equals" in node:
                a, b = map(evaluate, node["Fn::Equals"])
                return a == b
            if "Fn::Not" in node:
                return not evaluate(node["Fn::Not"][0])
            raise AssertionError(f"unexpected {node}")

        return evaluate(assertion["Assert"])

    assert holds("delta/", "")
    assert holds("delta/", "org-trail/")
    assert not holds("org-trail/", "org-trail/")


def queue_statements(**parameters):
    policy = expand(**parameters)["DeliveryQueuePolicy"]["Properties"]["PolicyDocument"]
    return {s["Sid"]: s for s in policy["Statement"]}


def test_only_the_stacks_own_rule_and_bucket_may_send_to_the_queue_over_tls():
    statements = queue_statements(ExistingLogBucket="trail-bucket")
    events = statements["ExistingBucketEvents"]
    assert events["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ExistingBucketRule", "Arn"]}}}
    deny = statements["DenyInsecureTransport"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # With a bucket of the stack's own there is no EventBridge rule to allow.
    assert "ExistingBucketEvents" not in queue_statements()
    assert "DenyInsecureTransport" in queue_statements()
    for statement in statements.values():
        if statement["Effect"] == "Allow":
            assert "aws:SourceArn" in str(statement["Condition"]), statement
