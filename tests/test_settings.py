"""Settings: read from the environment in one place, and every one documented."""
from dataclasses import fields
from pathlib import Path

import pytest

from chalicelib.settings import _ENV_NAMES, Settings, load_settings


def env_name(field_name: str) -> str:
    return {v: k for k, v in _ENV_NAMES.items()}.get(field_name, field_name.upper())


def test_environment_overrides_defaults_with_the_right_types():
    settings = load_settings({"CLONE_TIMEOUT": "5.5", "MAX_REPO_FILES": "7", "STAGE": "local",
                              "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "MAX_INLINE_BYTES": ""})
    assert settings.clone_timeout == 5.5 and settings.max_repo_files == 7
    assert settings.is_local and settings.s3_endpoint_url == "http://127.0.0.1:9"
    assert settings.max_inline_bytes == Settings().max_inline_bytes  # empty keeps the default


def test_the_default_stage_is_strict():
    assert not load_settings({}).is_local


def test_every_setting_is_in_the_readme_table():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [env_name(f.name) for f in fields(Settings) if f"`{env_name(f.name)}`" not in readme]
    assert missing == []


def test_the_bucket_has_names_of_its_own_that_lambda_allows_and_they_win():
    """Lambda reserves AWS_*: there AWS_DEFAULT_REGION and AWS_ACCESS_KEY_ID are the function's
    region and its role's keys, so R2's endpoint, region and keys have PERCEL_S3_* names."""
    settings = load_settings({"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "eu-west-1",
                              "PERCEL_S3_ENDPOINT": "https://acct.r2.cloudflarestorage.com",
                              "PERCEL_S3_REGION": "auto", "PERCEL_S3_ACCESS_KEY_ID": "r2-key",
                              "PERCEL_S3_SECRET_ACCESS_KEY": "r2-secret"})
    assert settings.s3_endpoint_url == "https://acct.r2.cloudflarestorage.com"
    assert (settings.s3_region, settings.aws_region) == ("auto", "eu-west-1")
    assert (settings.s3_access_key_id, settings.s3_secret_access_key) == ("r2-key", "r2-secret")
    assert "r2-secret" not in repr(settings)
    assert load_settings({"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}).s3_endpoint_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("environ, named", [
    ({"PERCEL_S3_REGION": "auto"}, "PERCEL_S3_ENDPOINT"),  # "auto" means nothing to AWS S3
    ({"PERCEL_S3_ACCESS_KEY_ID": "r2-key"}, "PERCEL_S3_SECRET_ACCESS_KEY"),
    ({"PERCEL_S3_SECRET_ACCESS_KEY": "r2-secret"}, "PERCEL_S3_ACCESS_KEY_ID"),
    ({"CATCH_ALL_ROUTE": "proxy"}, "CATCH_ALL_ROUTE"),
])
def test_settings_that_cannot_work_are_refused_at_start_naming_the_variable(environ, named):
    with pytest.raises(ValueError, match=named):
        load_settings(environ)

# Which S3 endpoint percel talks to: its own variable, then the conventions other tools share.
ENDPOINT_CASES = [
    ({}, ""),  # AWS itself
    ({"AWS_ENDPOINT_URL": "http://10.0.0.5:4566"}, "http://10.0.0.5:4566"),
    ({"AWS_ENDPOINT_URL": "http://global:1", "AWS_ENDPOINT_URL_S3": "http://s3-only:2"}, "http://s3-only:2"),
    ({"AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": "http://global:1"}, "http://global:1"),
    ({"LOCALSTACK_HOST": "localstack:4510"}, "http://localstack:4510"),
    ({"LOCALSTACK_HOST": "localstack"}, "http://localstack:4566"),  # LocalStack's edge port
    ({"LOCALSTACK_HOST": ":4999"}, "http://localhost:4999"),
    ({"LOCALSTACK_HOST": "ls.example:443", "USE_SSL": "1"}, "https://ls.example:443"),
    ({"LOCALSTACK_HOST": "ls:1", "AWS_ENDPOINT_URL": "http://global:1"}, "http://global:1"),
    ({"LOCALSTACK_HOST": "ls:1", "AWS_ENDPOINT_URL_S3": "http://s3-only:2"}, "http://s3-only:2"),
    ({"PERCEL_S3_ENDPOINT": "https://r2:3", "AWS_ENDPOINT_URL": "http://global:1"}, "https://r2:3"),
]


@pytest.mark.parametrize(("environ", "endpoint"), ENDPOINT_CASES)
def test_the_s3_endpoint_follows_the_aws_and_localstack_variables(environ, endpoint):
    assert load_settings(environ).s3_endpoint_url == endpoint


def test_a_malformed_localstack_host_is_named():
    with pytest.raises(ValueError, match="LOCALSTACK_HOST must be <host>\\[:<port>\\], not 'ls:port'"):
        load_settings({"LOCALSTACK_HOST": "ls:port"})
