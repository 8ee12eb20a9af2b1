"""template.yaml wiring: what a deploy would only discover in AWS fails here first."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from local.template import Template

TEMPLATE = Template()
FUNCTIONS = TEMPLATE.functions()


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_a_handler_that_imports(logical_id, monkeypatch):
    # Given the function's CodeUri and Handler
    spec = FUNCTIONS[logical_id]
    module_name, func_name = spec.handler.rsplit(".", 1)
    path = spec.code_dir / f"{module_name}.py"
    assert path.exists(), f"{logical_id}: {path} missing"
    # When the module is imported with the function's own environment (nothing read at import)
    for key, value in spec.environment.items():
        monkeypatch.setenv(key, value)
    loader = importlib.util.spec_from_file_location(f"_wiring_{logical_id}", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    # Then the handler exists and is callable
    assert callable(getattr(module, func_name))


def test_every_definition_substitution_resolves_to_a_function_of_the_template():
    for logical_id, resource in TEMPLATE.of_type("AWS::Serverless::StateMachine").items():
        definition = json.loads(TEMPLATE.state_machine_definition(logical_id))  # raises on a missing one
        function_arns = {spec.arn for spec in FUNCTIONS.values()}
        used = {
            state["Parameters"]["FunctionName"]
            for state in definition["States"].values()
            if state["Type"] == "Task"
        }
        assert used and used <= function_arns
        # and every substitution is used by the definition (no stale ones)
        raw = TEMPLATE.resources[logical_id]["Properties"]["DefinitionUri"]
        text = (TEMPLATE_ROOT / raw).read_text()
        assert set(re.findall(r"\$\{([^}]+)\}", text)) == set(
            resource["Properties"]["DefinitionSubstitutions"]
        )


def test_every_queue_has_its_consumer_and_every_dlq_its_queue():
    queues = TEMPLATE.queues()
    consumed = set()
    for spec in FUNCTIONS.values():
        for event in spec.events.values():
            if event["Type"] == "SQS":
                consumed.add(TEMPLATE.resolve(event["Properties"]["Queue"]))
                assert "ReportBatchItemFailures" in event["Properties"].get("FunctionResponseTypes", [])
    dead_letter = {
        TEMPLATE.resolve(q.properties["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q.properties
    }
    for queue in queues.values():
        if queue.arn in dead_letter:
            assert queue.arn not in consumed, f"{queue.logical_id} is a DLQ: nothing should drain it silently"
        else:
            assert queue.arn in consumed, f"{queue.logical_id} has no consumer"
            assert "RedrivePolicy" in queue.properties, f"{queue.logical_id} has no DLQ"


def test_queue_visibility_timeout_is_at_least_six_times_the_consumer_timeout():
    queues = {q.arn: q for q in TEMPLATE.queues().values()}
    for spec in FUNCTIONS.values():
        for event in spec.events.values():
            if event["Type"] == "SQS":
                queue = queues[TEMPLATE.resolve(event["Properties"]["Queue"])]
                assert (
                    int(queue.properties["VisibilityTimeout"]) >= 6 * spec.timeout
                    or int(queue.properties["VisibilityTimeout"]) >= 900 * 6
                    or spec.timeout >= 900
                ), queue.logical_id


def test_every_dlq_has_an_alarm():
    alarms = [r["Properties"] for r in TEMPLATE.of_type("AWS::CloudWatch::Alarm").values()]
    watched = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms
        for d in a.get("Dimensions", [])
        if isinstance(d.get("Value"), dict) and "Fn::GetAtt" in d["Value"]
    }
    for queue in TEMPLATE.queues().values():
        if queue.logical_id.endswith("DLQ"):
            assert queue.logical_id in watched


def test_quickbooks_credentials_never_in_plain_environment():
    for spec in FUNCTIONS.values():
        for key, value in spec.environment.items():
            assert "SECRET" not in key or key == "QBO_APP_SECRET_NAME", key
            assert "client_secret" not in value.lower()


from local.template import ROOT as TEMPLATE_ROOT  # noqa: E402
