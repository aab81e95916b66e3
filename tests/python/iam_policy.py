"""What IAM would decide for the requests a function made: each S3 or DynamoDB request the
fault proxy recorded (faults.Request) becomes the actions IAM authorizes it by, with their
resource ARN and condition keys, and is evaluated against a role's statements from the
expanded template (an explicit Deny wins, else an Allow must match).

Covers what the functions use: S3 object reads, writes, multipart uploads, single and bulk
deletes and listings (path-style requests), and DynamoDB item operations with their leading
keys. Condition operators: StringEquals, StringLike and their ForAllValues forms."""
import json
import re
import urllib.parse

from template_expansion import PSEUDO


def as_list(value):
    return value if isinstance(value, list) else [value]


def role_statements(resources, function):
    """The statements of the inline policies of `<function>FunctionRole`."""
    role = resources[f"{function}FunctionRole"]["Properties"]["Policies"]
    return [s for policy in role for s in policy["PolicyDocument"]["Statement"]]


def authorizations(request):
    """The (action, resource ARN, condition context) IAM checks for one request."""
    if request.service == "dynamodb":
        return dynamodb_authorizations(request)
    url = urllib.parse.urlsplit(request.path)
    bucket, _, key = url.path.lstrip("/").partition("/")
    key = urllib.parse.unquote(key)
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    object_arn = f"arn:aws:s3:::{bucket}/{key}"
    method = request.method
    if not key:
        if method == "GET" and "list-type" in query:
            prefix = query.get("prefix", [""])[0]
            return [("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": [prefix]})]
        if method == "POST" and "delete" in query:
            keys = re.findall(rb"<Key>(.*?)</Key>", request.body)
            return [("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{unescape(k)}", {})
                    for k in keys]
        raise ValueError(f"unmapped bucket request {method} {request.path}")
    if method in ("GET", "HEAD"):
        action = "s3:GetObjectVersion" if "versionId" in query else "s3:GetObject"
        return [(action, object_arn, {})]
    if method in ("PUT", "POST"):
        return [("s3:PutObject", object_arn, {})]
    if method == "DELETE":
        action = "s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject"
        return [(action, object_arn, {})]
    raise ValueError(f"unmapped object request {method} {request.path}")


def unescape(xml_text):
    text = xml_text.decode()
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"),
                         ("&amp;", "&")):
        text = text.replace(entity, char)
    return text


def dynamodb_authorizations(request):
    operation = request.target.rsplit(".", 1)[-1]
    body = json.loads(request.body)
    table = (f"arn:aws:dynamodb:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}"
             f":table/{body['TableName']}")
    leading = []
    for item in (body.get("Item"), body.get("Key")):
        if item and "tablePath" in item:
            leading.append(item["tablePath"]["S"])
    if operation == "Query":
        names = body.get("ExpressionAttributeNames", {})
        values = body.get("ExpressionAttributeValues", {})
        for name, value in re.findall(r"(#?\w+)\s*=\s*(:\w+)", body["KeyConditionExpression"]):
            if names.get(name, name) == "tablePath":
                leading.append(values[value]["S"])
    return [(f"dynamodb:{operation}", table, {"dynamodb:LeadingKeys": leading})]


def matches(pattern, value):
    """IAM's wildcards: `*` any run of characters (`/` included), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def condition_holds(operator, key, patterns, context):
    patterns = as_list(patterns)
    values = context.get(key)
    for_all = operator.startswith("ForAllValues:")
    test = operator.split(":", 1)[1] if for_all else operator
    if test == "StringLike":
        one = lambda v: any(matches(p, v) for p in patterns)  # noqa: E731
    elif test == "StringEquals":
        one = lambda v: v in patterns  # noqa: E731
    else:
        raise ValueError(f"unsupported condition operator {operator}")
    if for_all:
        return all(one(v) for v in values or [])
    return values is not None and any(one(v) for v in values)


def statement_applies(statement, action, resource, context):
    if not any(matches(a, action) for a in as_list(statement["Action"])):
        return False
    if not any(matches(r, resource) for r in as_list(statement["Resource"])):
        return False
    return all(condition_holds(operator, key, patterns, context)
               for operator, keys in statement.get("Condition", {}).items()
               for key, patterns in keys.items())


def allowed(statements, action, resource, context):
    decision = False
    for statement in statements:
        if statement_applies(statement, action, resource, context):
            if statement["Effect"] == "Deny":
                return False
            decision = True
    return decision


def refused(statements, requests):
    """The authorizations of `requests` the statements do not allow, and the actions checked
    (each with how many times)."""
    denied, checked = [], {}
    for request in requests:
        for action, resource, context in authorizations(request):
            checked[action] = checked.get(action, 0) + 1
            if not allowed(statements, action, resource, context):
                denied.append((action, resource, context))
    return denied, checked
