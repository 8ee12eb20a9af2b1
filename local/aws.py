"""Local AWS: moto in this process, with every resource created from template.yaml.

With a `data_dir` (`make serve`) the state is durable (docs/decisions/0004-durable-local-state.md):
table items, queued and in-flight messages, the KMS key and running Step Functions executions are
journaled to `data_dir/aws.sqlite` as they change and restored on start. Resources themselves
(table, queues, functions, state machine) are always created from the template, so a changed
template applies on restart.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from local import moto_dynamodb, moto_ses, moto_sqs, moto_stepfunctions
from local.durable import StateFile
from local.lambda_runtime import FunctionRegistry, install
from local.sqs_poller import Mapping, SqsPoller
from local.template import ACCOUNT, REGION, Template

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape (they name the same things apart)."""
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"]}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


class LocalAws:
    """Creates the table, queues, secret, key, functions and state machine of the template in moto."""

    def __init__(
        self,
        template: Template,
        secret_values: dict[str, str] | None = None,
        environment: dict[str, str] | None = None,
        data_dir: Path | None = None,
        outbox: Path | None = None,
    ):
        self.template = template
        self.data_dir = data_dir
        # The Maildir every message sent through SES lands in (local/moto_ses.py).
        self.outbox = outbox
        self.journal: StateFile | None = None
        self.restored: dict[str, int] = {}  # what start() found in the journal, by kind
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
        moto_stepfunctions.install()
        moto_ses.install()
        moto_ses.set_outbox(self.outbox)
        if self.data_dir is not None:
            self.journal = StateFile(self.data_dir / "aws.sqlite")
        self._create_table()
        self._create_queues()
        self._create_buckets()
        self._create_secret_and_key()
        self._create_topics()
        self._create_mail()
        self._create_functions()
        self._create_state_machines()
        self._apply_environment()
        if self.journal is not None:
            # Journal from here on: what the template created is not state, what requests change is.
            moto_dynamodb.set_journal(self.journal)
            moto_sqs.set_journal(self.journal)
            moto_stepfunctions.set_journal(self.journal)
        self.poller = SqsPoller(self.registry, self._event_source_mappings())
        self.poller.start()
        return self

    def stop(self) -> None:
        # Detach the journal first: whatever in-flight work does while the mock goes away is not
        # state (it is redone after a restart, like work a crash interrupted).
        moto_dynamodb.set_journal(None)
        moto_sqs.set_journal(None)
        moto_stepfunctions.set_journal(None)
        if self.poller:
            self.poller.stop()
        moto_ses.set_outbox(None)
        self._mock.stop()
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def resume_executions(
        self,
        on_unresumable: Callable[[moto_stepfunctions.ExecutionRecord, str], None],
        still_needed: Callable[[moto_stepfunctions.ExecutionRecord], bool] = lambda record: True,
    ) -> dict[str, list[str]]:
        """Start again every execution the journal says was running when the stack stopped.

        An execution resumes from its first state under its own name (the same ARN) when its state
        machine still has the definition it started with; otherwise `on_unresumable(record,
        reason)` decides (it must end the work cleanly) and the record is dropped. `still_needed`
        drops an execution whose work had ended (a kill between its last step and its end).
        """
        outcome: dict[str, list[str]] = {"resumed": [], "unresumable": [], "ended": []}
        if self.journal is None:
            return outcome
        client = boto3.client("stepfunctions")
        for record in moto_stepfunctions.running(self.journal):
            if not still_needed(record):
                moto_stepfunctions.forget(self.journal, record.arn)
                outcome["ended"].append(record.arn)
                continue
            reason = self._unresumable_reason(client, record)
            if reason is None:
                moto_stepfunctions.forget(self.journal, record.arn)  # the new start records it again
                client.start_execution(
                    stateMachineArn=record.state_machine_arn, name=record.name, input=record.input
                )
                outcome["resumed"].append(record.arn)
            else:
                on_unresumable(record, reason)
                moto_stepfunctions.forget(self.journal, record.arn)
                outcome["unresumable"].append(record.arn)
        return outcome

    @staticmethod
    def _unresumable_reason(client: Any, record: moto_stepfunctions.ExecutionRecord) -> str | None:
        try:
            definition = client.describe_state_machine(stateMachineArn=record.state_machine_arn)["definition"]
        except client.exceptions.StateMachineDoesNotExist:
            return "its state machine is no longer in the template"
        if moto_stepfunctions.definition_hash(definition) != record.definition_sha256:
            return "its state machine's definition changed while it was in flight"
        return None

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
            if self.journal is not None:
                self.restored["items"] = self.restored.get("items", 0) + moto_dynamodb.restore(
                    self.journal, self.template.physical_name(logical_id)
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
            if "DelaySeconds" in props:
                attributes["DelaySeconds"] = str(props["DelaySeconds"])
            if "MessageRetentionPeriod" in props:
                attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            sqs.create_queue(QueueName=queue.name, Attributes=attributes)
        if self.journal is not None:
            self.restored["messages"] = moto_sqs.restore(self.journal)

    def _create_buckets(self) -> None:
        """Buckets with the template's encryption, public access block and lifecycle rules. Their
        objects are not journaled: documents are prints made again on demand."""
        s3 = boto3.client("s3")
        for logical_id, res in self.template.of_type("AWS::S3::Bucket").items():
            name = self.template.ref(logical_id)
            props = self.template.resolve(res.get("Properties", {}))
            s3.create_bucket(Bucket=name)
            if "BucketEncryption" in props:
                # CloudFormation names it ServerSideEncryptionByDefault, the S3 API ApplyServerSide...
                rules = [
                    {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                    for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
            if "PublicAccessBlockConfiguration" in props:
                s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
                )
            rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
            if rules:
                s3.put_bucket_lifecycle_configuration(
                    Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
                )

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
            if self.journal is not None:
                key_id = self._durable_key(logical_id, key_id)
            kms.create_alias(AliasName=self.template.ref(logical_id), TargetKeyId=key_id)

    def _durable_key(self, logical_id: str, key_id: str) -> str:
        """The same key id and material on every start: what it encrypted (OAuth tokens) stays readable."""
        from moto.kms.models import kms_backends

        assert self.journal is not None
        backend = kms_backends[ACCOUNT][REGION]
        stored = self.journal.get("kms:keys", logical_id)
        if stored is None:
            material = backend.keys[key_id].key_material
            value = {"id": key_id, "material": base64.b64encode(material).decode()}
            self.journal.put("kms:keys", logical_id, json.dumps(value).encode())
            return key_id
        saved = json.loads(stored)
        key = backend.keys.pop(key_id)
        key.id = saved["id"]
        key.arn = key.arn.rsplit("/", 1)[0] + "/" + saved["id"]
        key.key_material = base64.b64decode(saved["material"])
        backend.keys[key.id] = key
        return str(key.id)

    def _create_topics(self) -> None:
        """SNS topics, and their subscriptions that deliver to a queue of the template (other
        protocols, like the alarm e-mail, have no local endpoint)."""
        sns = boto3.client("sns")
        for logical_id in self.template.of_type("AWS::SNS::Topic"):
            sns.create_topic(Name=self.template.physical_name(logical_id))
        for res in self.template.of_type("AWS::SNS::Subscription").values():
            if "Condition" in res:
                continue
            props = self.template.resolve(res["Properties"])
            if props["Protocol"] != "sqs":
                continue
            attributes = {"RawMessageDelivery": "true"} if props.get("RawMessageDelivery") else {}
            sns.subscribe(
                TopicArn=props["TopicArn"],
                Protocol="sqs",
                Endpoint=props["Endpoint"],
                Attributes=attributes,
            )

    def _create_mail(self) -> None:
        """SES as the template and its parameters set it up: the sender identity (verified, as an
        operator verifies it in AWS) and each configuration set with its event destinations."""
        sender = self.template.parameters.get("SesFromAddress")
        if sender:
            boto3.client("ses").verify_email_identity(EmailAddress=str(sender))
        sesv2, ses = boto3.client("sesv2"), boto3.client("ses")
        for logical_id in self.template.of_type("AWS::SES::ConfigurationSet"):
            sesv2.create_configuration_set(ConfigurationSetName=self.template.ref(logical_id))
        for res in self.template.of_type("AWS::SES::ConfigurationSetEventDestination").values():
            props = self.template.resolve(res["Properties"])
            destination = props["EventDestination"]
            ses.create_configuration_set_event_destination(
                ConfigurationSetName=props["ConfigurationSetName"],
                EventDestination={
                    "Name": destination["Name"],
                    "Enabled": destination.get("Enabled", True),
                    "MatchingEventTypes": destination["MatchingEventTypes"],
                    "SNSDestination": {"TopicARN": destination["SnsDestination"]["TopicARN"]},
                },
            )

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
