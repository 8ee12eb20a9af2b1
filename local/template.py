"""Read template.yaml the way the local runtime needs it.

The local runtime is built from the deployed template itself, so a wiring mistake in the template
(a missing environment variable, a queue without a consumer, a substitution that does not resolve)
fails locally too. Only the few intrinsics the template uses are resolved, to local names and ARNs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout: int
    environment: dict[str, Any]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}"


@dataclass
class QueueSpec:
    logical_id: str
    name: str
    properties: dict[str, Any]

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.name}"

    @property
    def url(self) -> str:
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.name}"


class Template:
    """The SAM template with intrinsics resolved against local resource names."""

    def __init__(self, path: Path = TEMPLATE, prefix: str = "fieldbill-local", parameters=None):
        raw, matches = decode(str(path))
        if raw is None:
            raise ValueError(f"cannot parse {path}: {matches}")
        self.raw: dict[str, Any] = json.loads(json.dumps(raw))  # plain dicts, no cfn-lint nodes
        self.prefix = prefix
        self.parameters = {
            name: spec.get("Default", "") for name, spec in self.raw.get("Parameters", {}).items()
        }
        self.parameters.update(parameters or {})
        self.resources: dict[str, dict[str, Any]] = self.raw["Resources"]

    # ------------------------------------------------------------------ names
    def physical_name(self, logical_id: str) -> str:
        return f"{self.prefix}-{logical_id}"

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_}

    # ------------------------------------------------------------- intrinsics
    def ref(self, logical_id: str) -> str:
        if logical_id in self.parameters:
            value = self.parameters[logical_id]
            return ",".join(value) if isinstance(value, list) else str(value)
        if logical_id.startswith("AWS::"):
            return {
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": self.prefix,
            }[logical_id]
        resource = self.resources[logical_id]
        type_ = resource["Type"]
        name = self.physical_name(logical_id)
        if type_ == "AWS::SQS::Queue":
            return QueueSpec(logical_id, name, resource.get("Properties", {})).url
        if type_ == "AWS::Serverless::StateMachine":
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        if type_ == "AWS::SecretsManager::Secret":
            return name  # local secrets are addressed by name
        if type_ == "AWS::KMS::Key":
            return f"alias/{name}"
        if type_ == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
        if type_ == "AWS::SES::ConfigurationSet" and "Name" in resource.get("Properties", {}):
            return str(self.resolve(resource["Properties"]["Name"]))
        if type_ == "AWS::S3::Bucket":
            return name.lower()  # bucket names are lower case
        return name

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resources[logical_id]
        type_ = resource["Type"]
        name = self.physical_name(logical_id)
        if type_ == "AWS::SQS::Queue":
            spec = QueueSpec(logical_id, name, resource.get("Properties", {}))
            return {"Arn": spec.arn, "QueueName": spec.name, "QueueUrl": spec.url}[attribute]
        if type_ == "AWS::Serverless::Function" and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        if type_ == "AWS::Serverless::StateMachine":
            return {"Name": name, "Arn": self.ref(logical_id)}[attribute]
        if type_ == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{self.ref(logical_id)}"
        if type_ == "AWS::Logs::LogGroup" and attribute == "Arn":
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"
        raise KeyError(f"GetAtt {logical_id}.{attribute} is not resolved locally")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref":
                    return self.ref(arg)
                if key == "Fn::GetAtt":
                    logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                    return self.get_att(logical, attr)
                if key == "Fn::Sub":
                    text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                    return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub_var(m.group(1), extra), text)
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _sub_var(self, var: str, extra: dict[str, Any]) -> str:
        if var in extra:
            return str(self.resolve(extra[var]))
        if "." in var:
            return self.get_att(*var.split(".", 1))
        return self.ref(var)

    # ------------------------------------------------------------- resources
    def functions(self) -> dict[str, FunctionSpec]:
        glob = self.raw.get("Globals", {}).get("Function", {})
        global_env = glob.get("Environment", {}).get("Variables", {})
        out = {}
        for logical_id, res in self.of_type("AWS::Serverless::Function").items():
            props = res["Properties"]
            env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
            out[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=self.physical_name(logical_id),
                code_dir=ROOT / props["CodeUri"],
                handler=props.get("Handler", glob.get("Handler", "")),
                timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
                environment={k: str(self.resolve(v)) for k, v in env.items()},
                events=props.get("Events", {}),
            )
        return out

    def queues(self) -> dict[str, QueueSpec]:
        return {
            logical_id: QueueSpec(logical_id, self.physical_name(logical_id), res.get("Properties", {}))
            for logical_id, res in self.of_type("AWS::SQS::Queue").items()
        }

    def state_machine_definition(self, logical_id: str) -> str:
        """The ASL with every ${Placeholder} replaced from DefinitionSubstitutions (unknown ones fail)."""
        props = self.resources[logical_id]["Properties"]
        text = (ROOT / props["DefinitionUri"]).read_text()
        subs = {k: self.resolve(v) for k, v in props.get("DefinitionSubstitutions", {}).items()}
        missing = sorted(set(re.findall(r"\$\{([^}]+)\}", text)) - subs.keys())
        if missing:
            raise KeyError(f"{logical_id}: DefinitionSubstitutions missing {missing}")
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(subs[m.group(1)]), text)
