"""Translate deploy/template.yaml (AWS SAM) to plain CloudFormation, offline.

    python deploy/translate.py [SAM_TEMPLATE] [OUT_JSON]

Defaults: deploy/template.yaml -> target/deploy/template.cfn.json. Uses aws-sam-translator
as the CloudFormation transform would, with two differences needed to run without AWS:
local CodeUri paths become a placeholder S3 URI (what `sam package` would upload), and
managed policy names resolve only from the map bundled with the translator (a name not in
it fails here instead of being looked up through IAM).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_CODE = "s3://metasync-lint-placeholder/metasync-lambda.zip"


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short intrinsic forms (!Ref, !Sub, !GetAtt, ...)."""


def _intrinsic(loader: _Loader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


def _no_iam_lookup() -> dict[str, str]:
    raise SystemExit(
        "translate.py: the template names a managed policy that the translator's bundled "
        "map does not know; use its ARN (an IAM lookup needs network and credentials)"
    )


def _package_locally(template: dict[str, Any]) -> None:
    """Point local CodeUri paths (Globals and functions) at a placeholder S3 object."""

    def fix(props: dict[str, Any]) -> None:
        code = props.get("CodeUri")
        if isinstance(code, str) and not code.startswith("s3://"):
            props["CodeUri"] = PLACEHOLDER_CODE

    fix(template.get("Globals", {}).get("Function", {}))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            fix(resource.setdefault("Properties", {}))


def main() -> int:
    # The translator reads the region (for AWS::Region and the partition) from boto3's
    # default session; any region does for a lint, and no request is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "deploy" / "template.yaml"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "target" / "deploy" / "template.cfn.json"
    template = yaml.load(src.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (SafeLoader subclass)
    _package_locally(template)
    try:
        cfn = Translator(None, Parser()).translate(
            template, parameter_values={}, get_managed_policy_map=_no_iam_lookup
        )
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{src}: {cause.message}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cfn, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{src} -> {out} ({len(cfn.get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
