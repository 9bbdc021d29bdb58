"""cfn-lint rule E9001 (this project's): an SQS queue feeding a Lambda function has a
visibility timeout of at least six times the function's timeout. cfn-lint's own E3505
only asks for at least one times.

https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-lambda-function-trigger.html
"""

from __future__ import annotations

from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch

DEFAULT_FUNCTION_TIMEOUT = 3  # seconds, Lambda's default
DEFAULT_VISIBILITY_TIMEOUT = 30  # seconds, SQS's default


def _logical_id(value: Any, attribute: str | None) -> str | None:
    """The logical id behind {"Ref": id} or {"Fn::GetAtt": [id, attribute]}."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, str):
            get_att = get_att.split(".", 1)
        if isinstance(get_att, list) and len(get_att) == 2 and get_att[1] == attribute:
            return get_att[0]
    return None


def _seconds(value: Any, default: int) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return None  # an intrinsic: not checkable here


class SqsVisibilitySixTimes(CloudFormationLintRule):
    id = "E9001"
    shortdesc = "SQS visibility timeout is at least 6x the consuming function's timeout"
    description = (
        "A queue that is an event source of a Lambda function needs a VisibilityTimeout "
        "of at least six times the function's Timeout (AWS guidance)"
    )
    source_url = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-lambda-function-trigger.html"
    tags = ["resources", "lambda", "sqs"]

    def match(self, cfn) -> list[RuleMatch]:
        matches = []
        resources = cfn.template.get("Resources", {})
        for name, mapping in cfn.get_resources(["AWS::Lambda::EventSourceMapping"]).items():
            props = mapping.get("Properties") or {}
            queue_id = _logical_id(props.get("EventSourceArn"), "Arn")
            function_id = _logical_id(props.get("FunctionName"), "Arn")
            queue = resources.get(queue_id) if queue_id else None
            function = resources.get(function_id) if function_id else None
            if not queue or queue.get("Type") != "AWS::SQS::Queue":
                continue
            if not function or function.get("Type") != "AWS::Lambda::Function":
                continue
            visibility = _seconds(
                (queue.get("Properties") or {}).get("VisibilityTimeout"), DEFAULT_VISIBILITY_TIMEOUT
            )
            timeout = _seconds(
                (function.get("Properties") or {}).get("Timeout"), DEFAULT_FUNCTION_TIMEOUT
            )
            if visibility is None or timeout is None:
                continue
            if visibility < 6 * timeout:
                matches.append(
                    RuleMatch(
                        ["Resources", queue_id, "Properties", "VisibilityTimeout"],
                        f"{queue_id} VisibilityTimeout {visibility} is less than 6 x "
                        f"{function_id} Timeout {timeout} = {6 * timeout} (event source {name})",
                    )
                )
        return matches
