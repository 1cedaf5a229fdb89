"""The Kubernetes manifests under deploy/k8s/, checked offline.

Core kinds are validated against the Kubernetes OpenAPI schemas that the
kubernetes-validate package ships (strict: unknown fields fail). KEDA's kinds have no
schema there, so their fields are checked against KEDA's documented ScaledObject and
redis-lists scaler specification. Nothing here talks to a cluster: none exists on the
development machine.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from chalicelib import keys
from chalicelib import settings as settings_module

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"  # the oldest minor with upstream support when this was written
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def documents() -> list[dict]:
    found = []
    for path in MANIFESTS:
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def one(kind: str) -> dict:
    (document,) = [doc for doc in documents() if doc["kind"] == kind]
    return document


def test_there_are_manifests_and_every_core_one_matches_the_kubernetes_schema():
    kinds = {doc["kind"] for doc in documents()}
    assert kinds == {"ConfigMap", "Secret", "Deployment"} | KEDA_KINDS
    for document in documents():
        if document["kind"] not in KEDA_KINDS:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_a_broken_deployment_is_refused_by_the_validation():
    broken = one("Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privilegd"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def runner_container() -> dict:
    (container,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_the_runner_gets_the_privileges_the_bwrap_sandbox_needs_and_no_api_token():
    pod = one("Deployment")["spec"]["template"]["spec"]
    context = runner_container()["securityContext"]
    assert context["privileged"] is True and context["runAsUser"] == 0
    assert pod["automountServiceAccountToken"] is False
    # SIGTERM lets a runner end the build it holds: at least the install and build timeouts.
    config = one("ConfigMap")["data"]
    assert pod["terminationGracePeriodSeconds"] >= int(config["INSTALL_TIMEOUT"]) + int(config["BUILD_TIMEOUT"])


def test_the_pod_memory_limit_leaves_room_for_one_build_and_the_runner():
    limits = runner_container()["resources"]["limits"]
    assert limits["memory"].endswith("Gi")
    limit_mib = int(limits["memory"][:-2]) * 1024
    assert limit_mib >= int(one("ConfigMap")["data"]["BUILD_MEMORY_MB"]) + 512


def test_every_variable_given_to_the_runner_is_a_setting_it_reads_and_accepts():
    readable = {f.name.upper() for f in fields(settings_module.Settings)} | set(settings_module._ENV_NAMES)
    refs = runner_container()["envFrom"]
    assert {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in refs} == {"percel-runner"}
    environ = {**one("ConfigMap")["data"],
               **{name: value for name, value in one("Secret")["stringData"].items() if name.isupper()}}
    assert set(environ) <= readable, set(environ) - readable
    settings = settings_module.load_settings(environ)  # raises on settings that do not go together
    assert settings.s3_endpoint_url == environ["PERCEL_S3_ENDPOINT"] and settings.s3_region == "auto"
    assert settings.redis_url == environ["REDIS_URL"] and settings.s3_access_key_id
    # What a build and its log announce as the site's address.
    assert settings.site_url("abc123") == "https://abc123.percel-sites.example/"


def test_the_work_directory_volume_is_where_the_image_puts_builds():
    dockerfile = (ROOT / "build_runner" / "Dockerfile").read_text()
    (mount,) = runner_container()["volumeMounts"]
    assert f"WORK_DIR={mount['mountPath']}" in dockerfile


def test_keda_scales_the_runner_deployment_on_the_build_queue():
    scaled = one("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == one("Deployment")["metadata"]["name"]
    assert 0 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    metadata = trigger["metadata"]
    assert metadata["listName"] == keys.QUEUE
    # KEDA reads every metadata value as a string.
    assert all(isinstance(value, str) for value in metadata.values())
    assert set(metadata) <= {"listName", "listLength", "activationListLength", "enableTLS", "unsafeSsl",
                             "databaseIndex", "address", "addressFromEnv", "host", "port",
                             "hostFromEnv", "portFromEnv", "passwordFromEnv", "usernameFromEnv"}
    assert int(metadata["listLength"]) >= 1


def test_keda_authenticates_to_redis_from_the_runner_secret():
    auth = one("TriggerAuthentication")
    assert one("ScaledObject")["spec"]["triggers"][0]["authenticationRef"]["name"] == auth["metadata"]["name"]
    secret = one("Secret")
    refs = auth["spec"]["secretTargetRef"]
    assert {ref["parameter"] for ref in refs} == {"address", "password"}
    for ref in refs:
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
