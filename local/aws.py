"""Local AWS: moto in this process, with every resource created from template.yaml."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from typing import Any

import boto3
from moto import mock_aws

from local import moto_dynamodb, moto_sqs
from local.lambda_runtime import FunctionRegistry, install
from local.sqs_poller import Mapping, SqsPoller
from local.template import ACCOUNT, REGION, Template

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


class LocalAws:
    """Creates the table, queues, secret, key, functions and state machine of the template in moto."""

    def __init__(
        self,
        template: Template,
        secret_values: dict[str, str] | None = None,
        environment: dict[str, str] | None = None,
    ):
        self.template = template
        self.secret_values = secret_values or {}
        self.extra_environment = environment or {}
        self._mock = mock_aws(config=MOTO_CONFIG)  # type: ignore[arg-type]
        self.functions = template.functions()
        self.registry = FunctionRegistry(self.functions)
        self.poller: SqsPoller | None = None
        self.state_machines: dict[str, str] = {}
        self.environment: dict[str, str] = {}

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> LocalAws:
        for key, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
        }.items():
            os.environ[key] = value
        self._mock.start()
        install(self.registry)
        moto_dynamodb.install()
        moto_sqs.install()
        self._create_table()
        self._create_queues()
        self._create_secret_and_key()
        self._create_functions()
        self._create_state_machines()
        self._apply_environment()
        self.poller = SqsPoller(self.registry, self._event_source_mappings())
        self.poller.start()
        return self

    def stop(self) -> None:
        if self.poller:
            self.poller.stop()
        self._mock.stop()

    # ---------------------------------------------------------------- resources
    def _create_table(self) -> None:
        ddb = boto3.client("dynamodb")
        for logical_id, res in self.template.of_type("AWS::DynamoDB::Table").items():
            props = res["Properties"]
            ddb.create_table(
                TableName=self.template.physical_name(logical_id),
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
            )
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                ddb.update_time_to_live(
                    TableName=self.template.physical_name(logical_id), TimeToLiveSpecification=ttl
                )

    def _create_queues(self) -> None:
        sqs = boto3.client("sqs")
        queues = self.template.queues()
        # Dead-letter queues first: a redrive policy names an existing queue.
        ordered = sorted(queues.values(), key=lambda q: "RedrivePolicy" in q.properties)
        for queue in ordered:
            attributes: dict[str, str] = {}
            props = self.template.resolve(queue.properties)
            if "VisibilityTimeout" in props:
                attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
            if "MessageRetentionPeriod" in props:
                attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            sqs.create_queue(QueueName=queue.name, Attributes=attributes)

    def _create_secret_and_key(self) -> None:
        for logical_id, res in self.template.of_type("AWS::SecretsManager::Secret").items():
            value = json.loads(res["Properties"].get("SecretString", "{}"))
            value.update(self.secret_values)
            boto3.client("secretsmanager").create_secret(
                Name=self.template.physical_name(logical_id), SecretString=json.dumps(value)
            )
        kms = boto3.client("kms")
        for logical_id in self.template.of_type("AWS::KMS::Key"):
            key_id = kms.create_key(Description=logical_id)["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=self.template.ref(logical_id), TargetKeyId=key_id)

    def _create_functions(self) -> None:
        role = boto3.client("iam").create_role(
            RoleName="fieldbill-local-lambda", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", "# the local runtime runs the handler from the work tree\n")
        client = boto3.client("lambda")
        for spec in self.functions.values():
            client.create_function(
                FunctionName=spec.name,
                Runtime="python3.11",
                Role=role,
                Handler=spec.handler,
                Code={"ZipFile": buffer.getvalue()},
                Timeout=spec.timeout,
            )

    def _create_state_machines(self) -> None:
        client = boto3.client("stepfunctions")
        role = f"arn:aws:iam::{ACCOUNT}:role/fieldbill-local-states"
        for logical_id in self.template.of_type("AWS::Serverless::StateMachine"):
            definition = self.template.state_machine_definition(logical_id)
            arn = client.create_state_machine(
                name=self.template.physical_name(logical_id), definition=definition, roleArn=role
            )["stateMachineArn"]
            self.state_machines[logical_id] = arn

    def _apply_environment(self) -> None:
        """Handlers share this process, so their variables must agree: a clash is a wiring error."""
        merged: dict[str, str] = {}
        for spec in self.functions.values():
            for key, value in spec.environment.items():
                if key in merged and merged[key] != value:
                    raise ValueError(f"environment variable {key} differs between functions")
                merged[key] = value
        merged.update(self.extra_environment)
        os.environ.update(merged)
        self.environment = merged

    def _event_source_mappings(self) -> list[Mapping]:
        queues = {q.arn: q for q in self.template.queues().values()}
        mappings = []
        for spec in self.functions.values():
            for event in spec.events.values():
                if event["Type"] != "SQS":
                    continue
                props = event["Properties"]
                queue = queues[self.template.resolve(props["Queue"])]
                scaling = props.get("ScalingConfig") or {}
                mappings.append(
                    Mapping(
                        function_name=spec.logical_id,
                        queue_url=queue.url,
                        queue_arn=queue.arn,
                        batch_size=int(props.get("BatchSize", 10)),
                        batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                        report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                        max_concurrency=int(scaling.get("MaximumConcurrency", 1)),
                    )
                )
        return mappings

    # ---------------------------------------------------------------- operations
    def schedules(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Schedule event name -> (function logical id, the event the rule delivers)."""
        out = {}
        for spec in self.functions.values():
            for name, event in spec.events.items():
                if event["Type"] in ("Schedule", "ScheduleV2"):
                    payload = json.loads(event["Properties"].get("Input", "{}"))
                    out[name] = (spec.logical_id, payload)
        return out

    def fire_schedule(self, name: str) -> Any:
        """EventBridge rules never fire in moto: the local runtime fires them on demand."""
        function, payload = self.schedules()[name]
        return self.registry.invoke(function, payload)

    def queue_depths(self) -> dict[str, int]:
        sqs = boto3.client("sqs")
        depths = {}
        for queue in self.template.queues().values():
            attrs = sqs.get_queue_attributes(
                QueueUrl=queue.url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depths[queue.logical_id] = int(attrs["ApproximateNumberOfMessages"]) + int(
                attrs["ApproximateNumberOfMessagesNotVisible"]
            )
        return depths

    def drain(self, timeout: float = 60.0, ignore: tuple[str, ...] = ("DLQ",)) -> None:
        """Wait until every work queue is empty (dead-letter queues excepted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            depths = {k: v for k, v in self.queue_depths().items() if not any(s in k for s in ignore)}
            if not any(depths.values()) and not (self.poller and self.poller.busy()):
                return
            time.sleep(0.05)
        raise TimeoutError(f"queues not drained: {self.queue_depths()}")

    def wait_execution(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        client = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = client.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        raise TimeoutError(f"execution still running: {execution_arn}")
