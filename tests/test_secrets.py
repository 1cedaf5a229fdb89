"""The build env's seal (chalicelib/state/secrets.py) and the local stack's key
(devstack/secret_key.py): what an operator and a user notice."""
from __future__ import annotations

import stat

import pytest

from chalicelib.settings import Settings, load_settings
from chalicelib.state.secrets import EnvBox, SecretsUnavailable, new_key
from devstack.secret_key import secret_key

ENV = {"NPM_TOKEN": "npm_s3cr3t-value", "EMPTY": ""}


def test_a_sealed_env_opens_to_the_same_values_and_shows_none_of_them():
    box = EnvBox(new_key())
    sealed = box.seal(ENV)
    assert "npm_s3cr3t-value" not in sealed and "NPM_TOKEN" not in sealed
    assert box.open(sealed) == ENV


def test_an_empty_env_needs_no_key():
    assert EnvBox("").seal({}) == ""
    assert EnvBox("").open("") == {}


def test_without_a_key_an_env_is_refused_saying_which_setting_is_missing():
    with pytest.raises(SecretsUnavailable, match="PERCEL_SECRET_KEY is not set"):
        EnvBox("").seal(ENV)
    with pytest.raises(SecretsUnavailable, match="no PERCEL_SECRET_KEY"):
        EnvBox("").open(EnvBox(new_key()).seal(ENV))


def test_rotation_a_new_key_first_still_opens_what_the_old_key_sealed():
    old, new = new_key(), new_key()
    sealed_before = EnvBox(old).seal(ENV)
    rotated = EnvBox(f"{new}, {old}")
    assert rotated.open(sealed_before) == ENV
    # New seals use the new key: once the old one is dropped they still open.
    assert EnvBox(new).open(rotated.seal(ENV)) == ENV


def test_a_key_that_did_not_seal_the_env_is_named_as_the_reason():
    with pytest.raises(SecretsUnavailable, match="a key the build runner's PERCEL_SECRET_KEY "
                                                 "does not hold"):
        EnvBox(new_key()).open(EnvBox(new_key()).seal(ENV))


def test_a_malformed_key_is_refused_without_quoting_it():
    with pytest.raises(ValueError, match="Fernet keys") as refused:
        EnvBox("not-a-key-hunter2")
    assert "hunter2" not in str(refused.value)


def test_the_key_is_read_from_PERCEL_SECRET_KEY_and_kept_out_of_the_settings_repr():
    key = new_key()
    settings = load_settings({"PERCEL_SECRET_KEY": key})
    assert settings.percel_secret_key == key
    assert key not in repr(settings) and Settings().percel_secret_key == ""


def test_the_local_stack_makes_one_key_readable_only_by_its_owner_and_reuses_it(tmp_path):
    first = secret_key(tmp_path / "state", environ={})
    assert stat.S_IMODE((tmp_path / "state" / "secret-key").stat().st_mode) == 0o600
    assert secret_key(tmp_path / "state", environ={}) == first
    assert EnvBox(first).open(EnvBox(first).seal(ENV)) == ENV


def test_the_operators_key_wins_over_the_kept_one(tmp_path):
    mine = new_key()
    assert secret_key(tmp_path, environ={"PERCEL_SECRET_KEY": mine}) == mine
    assert not (tmp_path / "secret-key").exists()
