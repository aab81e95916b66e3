"""template.yaml as SAM expands it (aws-sam-translator, offline), with its conditions and
intrinsics resolved for a set of parameters as CloudFormation would resolve them, in a stack
with fixed pseudo parameters (PSEUDO)."""
import os
import re

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from aws_local import ROOT


# What `!Ref AWS::NoValue` resolves to: the property or list item is left out.
NO_VALUE = object()

STACK_UUID = "1d8a5d10-0000-4000-8000-000000000000"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "AWS::StackName": "cloudtrail-delta",
          "AWS::StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/cloudtrail-delta/{STACK_UUID}"}
LOG_BUCKET = f"cloudtrail-delta-{STACK_UUID}"


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
    for name, spec in expanded["Parameters"].items():
        if spec["Type"] == "CommaDelimitedList" and isinstance(values[name], str):
            values[name] = values[name].split(",")
    values.update(parameters)
    values.update(PSEUDO)
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
        if set(node) == {"Fn::Select"}:
            index, items = resolve(node["Fn::Select"])
            return items[int(index)]
        if set(node) == {"Fn::Split"}:
            separator, text = resolve(node["Fn::Split"])
            return text.split(separator)
        if set(node) == {"Fn::Sub"}:
            text, names = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
            names = {**{k: v for k, v in values.items() if isinstance(v, (str, int))},
                     **resolve(names)}
            # `${Resource.Attribute}` stays as written.
            return re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: str(names.get(m[1], m[0])), text)
        if set(node) == {"Fn::Join"}:
            separator, parts = node["Fn::Join"]
            parts = resolve(parts)
            return separator.join(str(p) for p in parts) if isinstance(parts, list) else parts
        resolved = {k: resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    return {name: resolve(resource) for name, resource in expanded["Resources"].items()
            if "Condition" not in resource or condition(resource["Condition"])}
