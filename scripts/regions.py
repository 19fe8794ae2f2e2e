#!/usr/bin/env python3
"""The commercial AWS regions a template can deploy to, by cfn-lint's schemas.

`python3 scripts/regions.py [TEMPLATE]` prints, space-separated, the regions of
the commercial partition (aws) that cfn-lint has schemas of, or, given a template, those
of them where every resource type the template names exists (AWS SAM's types
count as the Lambda function they become). The test command lints each
template for exactly these regions; docs/deploy.md#regions lists them.
"""

import os
import sys

import cfnlint
from cfnlint.decode import decode
from cfnlint.helpers import REGIONS
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

# Not the commercial partition: China, GovCloud, the isolated and sovereign ones.
OTHER_PARTITIONS = ("cn-", "us-gov-", "us-iso", "eu-isoe-", "eusc-")


# The regions cfn-lint has schemas of; for another it would lint against
# us-east-1's and prove nothing.
SCHEMAS = os.path.join(os.path.dirname(cfnlint.__file__), "data", "schemas", "providers")


def commercial():
    return [
        region
        for region in REGIONS
        if not region.startswith(OTHER_PARTITIONS)
        and os.path.exists(os.path.join(SCHEMAS, f"{region}.json"))
    ]


def has(region, kind):
    if kind.startswith("AWS::Serverless::"):
        kind = "AWS::Lambda::Function"
    try:
        PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, kind)
    except Exception:  # cfn-lint's own "no such type in that region"
        return False
    return True


def main():
    regions = commercial()
    if len(sys.argv) > 1:
        template, errors = decode(sys.argv[1])
        if errors:
            print(f"{sys.argv[1]}: {errors}", file=sys.stderr)
            return 1
        kinds = {resource["Type"] for resource in template["Resources"].values()}
        regions = [region for region in regions if all(has(region, kind) for kind in kinds)]
    print(" ".join(regions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
