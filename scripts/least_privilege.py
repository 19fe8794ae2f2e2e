#!/usr/bin/env python3
"""Holds the deployment templates, as AWS SAM deploys them, to least privilege.

`python3 scripts/least_privilege.py template.yaml stacks/*.yaml` expands each
template with SAM's own translator (aws-sam-translator, offline) and fails,
naming each grant, when an expanded template
- attaches a managed policy to a role (SAM's AWSLambdaSQSQueueExecutionRole,
  AWSLambdaBasicExecutionRole and AWSCodeDeployRoleForLambda grant on "*");
- grants an action with a wildcard (`s3:*`), or an action on "*" where that
  action takes a resource (only those in NO_RESOURCE may have "*");
- grants on a resource pattern with a wildcard that no resource of the stack
  (or its name) anchors, e.g. `arn:aws:sqs:*:*:*`;
- lets a function's role, or a role or policy of a consumer's (its
  subscriber's), name another function's or consumer's resources (its queues,
  its log group, its alias);
- leaves a function without a role of its own.
Before that it plants each kind of defect into the first and fails unless
the check catches every one, so a check that stopped seeing them cannot pass.
"""

import copy
import logging
import os
import re
import sys

# The translator's notes on its feature toggles are not findings.
logging.disable(logging.WARNING)
# The translator asks boto for a region before it reads the parameters.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

# Actions that take no resource: "*" is the only resource they can have.
NO_RESOURCE = {
    "dynamodb:ListStreams",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}

# Pseudo parameters that place an ARN but anchor no pattern to the stack.
PLACE = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"}

# What grants: identity policies. Resource policies (bucket, queue, topic)
# name their principal and are held by the template test.
GRANTING = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}


class _NoApplications:
    """The translator's loader for nested applications: the template has none."""

    def load(self):
        return {}


def expand(template):
    """The template as CloudFormation receives it after SAM's transform."""
    if "Transform" not in template:
        return template
    template = copy.deepcopy(template)
    # A local CodeUri needs `sam build`; the translator only needs a location.
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://bucket/key"
    return transform(template, {"AWS::Region": "us-east-1"}, _NoApplications())


def as_list(value):
    return value if isinstance(value, list) else [value]


def branches(value):
    """Every value `value` can take: both sides of each Fn::If, no NoValue."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        return branches(yes) + branches(no)
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def references(value):
    """The logical ids and pseudo parameters `value` refers to."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else inner.split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(inner, list):
                    found.update(references(inner[1]))
            else:
                found.update(references(inner))
    elif isinstance(value, list):
        for inner in value:
            found.update(references(inner))
    return found


def statements(kind, properties):
    """The identity statements a granting resource carries."""
    if kind == "AWS::IAM::Role":
        for policy in properties.get("Policies", []):
            yield from as_list(policy["PolicyDocument"]["Statement"])
    else:
        yield from as_list(properties["PolicyDocument"]["Statement"])


def wildcard_unanchored(resource):
    """Whether a resource pattern's "*" may match beyond the stack's resources."""
    if isinstance(resource, str):
        return "*" in resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        text = resource["Fn::Sub"]
        text = text[0] if isinstance(text, list) else text
        star = text.find("*")
        before = re.findall(r"\$\{([^}!]+)\}", text[:star])
        return star >= 0 and all(name in PLACE for name in before)
    return False


def owner(logical_id, prefixes):
    """The function prefix `logical_id` belongs to (the longest that fits)."""
    fitting = [prefix for prefix in prefixes if logical_id.startswith(prefix)]
    return max(fitting, key=len, default=None)


def violations(expanded):
    """Each grant of `expanded` that breaks least privilege, in words."""
    found = []
    resources = expanded["Resources"]
    functions = {
        name: resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    prefixes = {name[: -len("Function")] for name in functions if name.endswith("Function")} | {
        name[: -len("Subscriber")]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::EventsV2::Subscriber"
    }
    roles = {}
    for name, function in functions.items():
        role = function["Properties"].get("Role")
        target = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
        if target not in resources or resources[target]["Type"] != "AWS::IAM::Role":
            found.append(f"{name}: its role is not a role of the stack's: {role}")
        elif target in roles.values():
            found.append(f"{name}: shares its role {target}")
        else:
            roles[name] = target
    role_owner = {role: owner(function, prefixes) for function, role in roles.items()}
    for name, resource in resources.items():
        kind = resource["Type"]
        if kind not in GRANTING:
            continue
        properties = resource.get("Properties", {})
        for arn in properties.get("ManagedPolicyArns", []):
            found.append(f"{name}: a managed policy {arn}")
        mine = role_owner.get(name) or owner(name, prefixes)
        for statement in statements(kind, properties):
            if statement.get("Effect") != "Allow":
                continue
            actions = [a for value in as_list(statement.get("Action", [])) for a in branches(value)]
            targets = [r for value in as_list(statement.get("Resource", [])) for r in branches(value)]
            for action in actions:
                if "*" in action:
                    found.append(f"{name}: a wildcard action {action}")
            if "*" in targets:
                for action in actions:
                    if action not in NO_RESOURCE:
                        found.append(f"{name}: {action} on *, though it takes a resource")
            for target in targets:
                if target != "*" and wildcard_unanchored(target):
                    found.append(f"{name}: a wildcard resource no stack resource anchors {target}")
            if mine is None:
                continue
            for referenced in sorted(references(targets) | references(statement.get("Condition", {}))):
                other = owner(referenced, prefixes)
                if other is not None and other != mine:
                    found.append(f"{name} (of {mine}): grants on {referenced}, of {other}")
    return found


def plants(template):
    """Templates each carrying one defect the check must catch, by name."""
    resources = template["Resources"]
    consumers = sorted(
        name[: -len("Function")]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function" and "CONSUMER_NAME" in str(resource)
    )
    mine, other = consumers[0], consumers[1]

    def planted(change):
        copied = copy.deepcopy(template)
        change(copied["Resources"])
        return copied

    def grant(statement):
        def change(resources):
            policy = resources[f"{mine}Role"]["Properties"]["Policies"][0]
            policy["PolicyDocument"]["Statement"].append(statement)

        return change

    def sam_role(resources):
        # What the template was: SAM makes the role, with its managed policies.
        del resources[f"{mine}Function"]["Properties"]["Role"]

    def managed(resources):
        resources[f"{mine}Role"]["Properties"]["ManagedPolicyArns"] = [
            "arn:aws:iam::aws:policy/AmazonSQSFullAccess"
        ]

    return {
        "SAM's own role for a function": planted(sam_role),
        "a managed policy on a role": planted(managed),
        "an action on *": planted(grant({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})),
        "a wildcard action": planted(
            grant({"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::GetAtt": ["InboxTable", "Arn"]}})
        ),
        "an unanchored wildcard resource": planted(
            grant({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:sqs:*:*:*"}})
        ),
        "another consumer's queue": planted(
            grant({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": [f"{other}Queue", "Arn"]}})
        ),
    }


def main():
    templates = {}
    for path in sys.argv[1:]:
        with open(path) as file:
            templates[path] = yaml_parse(file.read())
    first = next(iter(templates.values()))
    missed = [name for name, planted in plants(first).items() if not violations(expand(planted))]
    if missed:
        print("least privilege: the check misses what was planted: " + "; ".join(missed))
        return 1
    found = [f"{path}: {v}" for path, template in templates.items() for v in violations(expand(template))]
    for violation in found:
        print("least privilege: " + violation)
    if found:
        return 1
    print(
        f"least privilege: held by {len(templates)} templates as deployed "
        f"({len(plants(first))} planted defects caught)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
