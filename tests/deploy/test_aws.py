"""``deploy/aws``: the CloudFormation templates pass cfn-lint and yamllint, and wire what annota
needs: a worker service per queue scaled on the queue-depth series ``/metrics`` exports, migrations
before any server or worker, health checks on real routes, settings annota knows, least-privilege
roles, the data tier's availability and backups, and the SageMaker model as an ``http`` runner."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from annota.core.models.runner import ModelDeclaration
from annota.core.queue import QUEUES
from annota.runtime.api import CORE_ROUTES
from annota.runtime.cli import main
from annota.runtime.metrics import PATH as METRICS_PATH
from annota.runtime.metrics import QueueDepth, exposition
from annota.runtime.settings import ENV_PREFIX, Settings
from tests.deploy.tools import DEPLOY, tool

AWS = DEPLOY / "aws"
TEMPLATES = sorted(AWS.glob("*.yaml"))
ROOT = AWS / "annota.yaml"
WORKER = AWS / "worker.yaml"
#: ``${Name}`` in a Fn::Sub string
SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@cache
def _template(path: Path) -> dict[str, Any]:
    """The template as CloudFormation reads it (short-form tags become ``Ref``/``Fn::*``)."""
    decode = pytest.importorskip("cfnlint.decode").decode
    template, problems = decode(str(path))
    assert not problems, problems
    return json.loads(json.dumps(template))


def _resources(path: Path, kind: str | None = None) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in _template(path)["Resources"].items()
        if kind is None or resource["Type"] == kind
    }


def _sub(value: Any, **variables: str) -> str:
    """A Fn::Sub (either form) with its variables replaced by ``variables``, others by their names."""
    if isinstance(value, dict):
        value = value["Fn::Sub"]
    if isinstance(value, list):
        text, local = value
        variables = {**{key: f"<{key}>" for key in local}, **variables}
    else:
        text = value
    return SUB_VARIABLE.sub(lambda match: variables.get(match.group(1), f"<{match.group(1)}>"), text)


def _containers(task_definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        container["Name"]: container for container in task_definition["Properties"]["ContainerDefinitions"]
    }


def test_templates_pass_cfn_lint() -> None:
    linter = tool("cfn-lint", "cfn-lint")
    result = subprocess.run([linter, *map(str, TEMPLATES)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_templates_pass_yamllint() -> None:
    yamllint = tool("yamllint", "yamllint")
    config = "{extends: relaxed, rules: {line-length: {max: 160}}}"
    result = subprocess.run(
        [yamllint, "--strict", "-d", config, str(AWS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_worker_service_per_queue_after_the_migrations() -> None:
    stacks = _resources(ROOT, "AWS::CloudFormation::Stack")
    workers = {
        name: stack for name, stack in stacks.items() if stack["Properties"]["TemplateURL"] == "./worker.yaml"
    }
    assert sorted(stack["Properties"]["Parameters"]["Queue"] for stack in workers.values()) == sorted(QUEUES)
    for name, stack in workers.items():
        assert stack["DependsOn"] == "Migrations", name
        # every parameter given is declared by worker.yaml, and every one without default is given
        declared = _template(WORKER)["Parameters"]
        given = stack["Properties"]["Parameters"]
        assert set(given) <= set(declared), set(given) - set(declared)
        assert {key for key, spec in declared.items() if "Default" not in spec} <= set(given), name
    assert _template(WORKER)["Parameters"]["Queue"]["AllowedValues"] == list(QUEUES)
    (task,) = _resources(WORKER, "AWS::ECS::TaskDefinition").values()
    command = _containers(task)["annota"]["Command"]
    assert command[:3] == ["worker", "--queue", {"Ref": "Queue"}]
    options = {option for param in main.commands["worker"].params for option in param.opts}
    assert {arg for arg in command if isinstance(arg, str) and arg.startswith("--")} <= options


def test_migrations_run_before_servers_and_workers() -> None:
    resources = _resources(ROOT)
    migrate = _containers(resources["MigrateTaskDefinition"])["annota"]
    assert migrate["Command"] == ["migrate"] and "migrate" in main.commands
    run = resources["Migrations"]
    assert run["Properties"]["TaskDefinition"] == {"Ref": "MigrateTaskDefinition"}
    assert run["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["MigrationFunction", "Arn"]}
    assert "Migrations" in resources["ServerService"]["DependsOn"]
    # the function runs the task, waits for it and fails the stack when it fails
    code = resources["MigrationFunction"]["Properties"]["Code"]["ZipFile"]
    namespace: dict[str, Any] = {}
    exec(compile(code.replace("import boto3\nimport cfnresponse\n", ""), "index.py", "exec"), namespace)
    assert callable(namespace["handler"]) and namespace["CONTAINER"] == "annota"
    assert "cfnresponse.FAILED" in code and 'get_waiter("tasks_stopped")' in code


def test_health_checks_and_routing_use_real_routes() -> None:
    resources = _resources(ROOT)
    paths = {path for path, _, _ in CORE_ROUTES}
    target_group = resources["ServerTargetGroup"]["Properties"]
    assert target_group["HealthCheckPath"] == "/api/server/ready" in paths
    server = _containers(resources["ServerTaskDefinition"])["annota"]
    (url,) = re.findall(r"http://127\.0\.0\.1:8080(/[^']+)", server["HealthCheck"]["Command"][-1])
    assert url == "/api/server/health" in paths
    assert server["PortMappings"][0]["ContainerPort"] == target_group["Port"] == 8080
    assert server["Command"][:5] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    rules = {
        name: rule["Properties"] for name, rule in resources.items() if rule["Type"].endswith("ListenerRule")
    }
    patterns = {name: rule["Conditions"][0]["PathPatternConfig"]["Values"] for name, rule in rules.items()}
    # /metrics is answered by a fixed 404 before anything reaches a server
    assert METRICS_PATH in patterns["MetricsStayPrivate"]
    assert rules["MetricsStayPrivate"]["Priority"] < rules["ApiToServers"]["Priority"]
    assert rules["MetricsStayPrivate"]["Actions"][0]["Type"] == "fixed-response"
    assert {"/api", "/api/*"} <= set(patterns["ApiToServers"])
    listener = resources["HttpsListener"]["Properties"]
    assert listener["Protocol"] == "HTTPS" and listener["Certificates"] == [
        {"CertificateArn": {"Ref": "CertificateArn"}}
    ]
    assert listener["DefaultActions"][0]["TargetGroupArn"] == {"Ref": "UiTargetGroup"}


def test_queue_depth_reaches_cloudwatch_under_the_names_the_alarms_read() -> None:
    resources = _resources(ROOT)
    scrape = yaml.safe_load(resources["PrometheusConfig"]["Properties"]["Value"])
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == METRICS_PATH
    # the agent shares the server task's network: loopback, which /metrics answers without a token
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8080"]
    agent = json.loads(_sub(resources["AgentConfig"]["Properties"]["Value"], **{"AWS::StackName": "prod"}))
    emf = agent["logs"]["metrics_collected"]["prometheus"]["emf_processor"]
    (declaration,) = emf["metric_declaration"]
    assert re.fullmatch(declaration["label_matcher"], job["job_name"])
    # what /metrics really exports, selected by the agent's patterns
    exported = set(re.findall(r"^# TYPE (\S+) gauge$", exposition([QueueDepth()]).decode(), re.MULTILINE))
    selected = {
        name for name in exported for pattern in declaration["metric_selectors"] if re.search(pattern, name)
    }
    assert selected == {"annota_queue_depth", "annota_queue_running"}
    assert declaration["dimensions"] == [["queue"]]
    # the workers' alarms read those names in that namespace, by queue
    namespaces = {
        _sub(stack["Properties"]["Parameters"]["MetricNamespace"], **{"AWS::StackName": "prod"})
        for stack in _resources(ROOT, "AWS::CloudFormation::Stack").values()
        if "MetricNamespace" in stack["Properties"]["Parameters"]
    }
    assert namespaces == {emf["metric_namespace"]} == {"Annota/prod"}
    read = set()
    for name, alarm in _resources(WORKER, "AWS::CloudWatch::Alarm").items():
        metrics = [
            query["MetricStat"]["Metric"]
            for query in alarm["Properties"].get("Metrics", [])
            if "MetricStat" in query
        ]
        metrics += [alarm["Properties"]] if "MetricName" in alarm["Properties"] else []
        for metric in metrics:
            assert metric["Namespace"] == {"Ref": "MetricNamespace"}, name
            assert metric["Dimensions"] == [{"Name": "queue", "Value": {"Ref": "Queue"}}], name
            read.add(metric["MetricName"])
    assert read == selected
    scale_out = _resources(WORKER)["BacklogHigh"]["Properties"]
    assert scale_out["AlarmActions"] == [{"Ref": "ScaleOut"}]
    assert _resources(WORKER)["Idle"]["Properties"]["AlarmActions"] == [{"Ref": "ScaleIn"}]


def _annota_environment(path: Path) -> set[str]:
    names = set()
    for task in _resources(path, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            names |= {
                item["Name"] for item in container.get("Environment", []) + container.get("Secrets", [])
            }
    return {name for name in names if name.startswith(ENV_PREFIX)}


def test_every_setting_the_tasks_set_is_one_annota_reads() -> None:
    from annota.plugins.storage.s3 import Config as S3Config

    known = {ENV_PREFIX + field.upper() for field in Settings.__struct_fields__}
    known |= {f"{ENV_PREFIX}S3_{field.upper()}" for field in S3Config.__struct_fields__}
    # read by the containers' entry point, which writes it to the config file
    entry_point = {"ANNOTA_CONFIG_TOML"}
    for path in (ROOT, WORKER):
        unknown = _annota_environment(path) - known - entry_point
        assert not unknown, (path.name, unknown)
    for path in (ROOT, WORKER):
        for task in _resources(path, "AWS::ECS::TaskDefinition").values():
            annota = _containers(task).get("annota")
            if annota is None:
                # CVAT's UI
                continue
            if "EntryPoint" in annota:
                assert "ANNOTA_CONFIG=/tmp/annota.toml" in annota["EntryPoint"][2]
            # a read-only image: what annota writes goes to the data volume, /tmp and HOME
            assert annota["ReadonlyRootFilesystem"] is True
            mounts = {mount["ContainerPath"] for mount in annota["MountPoints"]}
            assert mounts == {"/var/lib/annota", "/tmp", "/home/annota"}
            # the password reaches libpq as PGPASSWORD, never inside the URL
            secrets = {item["Name"] for item in annota["Secrets"]}
            assert {"PGPASSWORD", "ANNOTA_SECRET_KEY"} <= secrets


def test_roles_reach_only_their_own_resources() -> None:
    resources = _resources(ROOT)
    access = resources["AppAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    for statement in access:
        assert statement["Effect"] == "Allow"
        assert "*" not in json.dumps(statement["Action"]).replace("/*", "")
        resource = json.dumps(statement["Resource"])
        assert "Bucket" in resource or "FileSystem" in resource, statement
    efs = next(statement for statement in access if "FileSystem" in json.dumps(statement["Resource"]))
    assert efs["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"] == {
        "Fn::GetAtt": ["AccessPoint", "Arn"]
    }
    execution = resources["ExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    secrets = next(
        statement for statement in execution if statement["Action"] == "secretsmanager:GetSecretValue"
    )
    assert secrets["Resource"] == [{"Ref": "DatabaseSecret"}, {"Ref": "SecretKeySecret"}]
    for name, resource in resources.items():
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
            for policy in resource["Properties"].get("Policies", []) + [resource["Properties"]]:
                for statement in policy.get("PolicyDocument", {}).get("Statement", []):
                    assert statement.get("Resource") != "*", name
    sagemaker = resources["SageMakerPolicy"]
    assert sagemaker["Condition"] == "HasSageMaker"
    assert sagemaker["Properties"]["PolicyDocument"]["Statement"][0]["Action"] == "sagemaker:InvokeEndpoint"


def test_data_is_highly_available_encrypted_and_backed_up() -> None:
    resources = _resources(ROOT)
    database = resources["Database"]["Properties"]
    assert database["MultiAZ"] is True and database["StorageEncrypted"] is True
    assert database["Engine"] == "postgres" and resources["Database"]["DeletionPolicy"] == "Snapshot"
    cache = resources["Cache"]["Properties"]
    assert cache["MultiAZEnabled"] and cache["AutomaticFailoverEnabled"] and cache["TransitEncryptionEnabled"]
    server = _containers(resources["ServerTaskDefinition"])["annota"]
    environment = {item["Name"]: item["Value"] for item in server["Environment"]}
    # TLS to Redis and PostgreSQL
    assert _sub(environment["ANNOTA_REDIS_URL"]).startswith("rediss://")
    assert _sub(environment["ANNOTA_DATABASE_URL"]).endswith("?sslmode=require")
    bucket = resources["Bucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    transitions = [
        t for rule in bucket["LifecycleConfiguration"]["Rules"] for t in rule.get("Transitions", [])
    ]
    # Instant Retrieval: media stay readable without a restore
    assert [t["StorageClass"] for t in transitions] == ["GLACIER_IR"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    point = resources["AccessPoint"]["Properties"]
    dockerfile_uid = re.search(r"useradd --uid (\d+) --gid (\d+)", (DEPLOY / "Dockerfile").read_text())
    assert dockerfile_uid is not None
    assert (point["PosixUser"]["Uid"], point["PosixUser"]["Gid"]) == dockerfile_uid.groups()
    (rule,) = resources["BackupPlan"]["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert rule["Lifecycle"] == {"DeleteAfterDays": 7} and rule["ScheduleExpression"].startswith(
        "cron(0 3 * * ? *"
    )
    selected = json.dumps(resources["BackupSelection"]["Properties"]["BackupSelection"]["Resources"])
    assert all(name in selected for name in ("Database", "FileSystem", "Bucket"))
    alarms = {
        alarm["Properties"]["MetricName"] for alarm in _resources(ROOT, "AWS::CloudWatch::Alarm").values()
    }
    assert {"HTTPCode_Target_5XX_Count", "TargetResponseTime", "CPUUtilization", "FreeStorageSpace"} <= alarms


def test_the_sagemaker_endpoint_becomes_an_http_model() -> None:
    value = _resources(ROOT)["SettingsToml"]["Properties"]["Value"]
    condition, with_endpoint, without = value["Fn::If"]
    assert condition == "HasSageMaker"
    text, variables = with_endpoint["Fn::Sub"]
    labels_if = variables["Labels"]["Fn::If"]
    url = _sub(
        variables["Url"],
        **{
            "AWS::Region": "eu-west-1",
            "AWS::URLSuffix": "amazonaws.com",
            "SageMakerEndpointName": "detector-1",
        },
    )
    rendered = _sub(
        text,
        SageMakerModelName="sagemaker",
        Labels=_sub(labels_if[1], SageMakerModelLabels='"person", "car"'),
        Url=url,
    )
    settings = tomllib.loads(rendered)
    (model,) = msgspec.convert(settings["models"], list[ModelDeclaration])
    assert model.kind == "http" and model.name == "sagemaker" and model.labels == ["person", "car"]
    assert model.options == {
        "protocol": "sagemaker",
        "url": "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/detector-1/invocations",
    }
    assert tomllib.loads(_sub(text, Labels="", Url=url))["models"][0].get("labels") is None
    # without an endpoint the file holds no settings
    assert tomllib.loads(without) == {}
