"""The layers hold: the request handler loads nothing of build time, and the API plumbing
nothing of the pipeline or the handler.

Each check imports modules in a fresh interpreter and reads sys.modules, so what another
test imported earlier cannot hide an import.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SERVING = sorted(f"chalicelib.serving.{path.stem}"
                 for path in (PROJECT / "chalicelib" / "serving").glob("*.py")
                 if path.stem != "__init__")
# Build-time libraries. urllib3 (under boto3) imports brotli when it is installed, to decode
# brotli responses, and falls back when it is not; so the child refuses these imports, as in a
# package built without them, and any import of ours fails the check.
REFUSED = ("brotli", "brotlicffi", "git")
# Build-time modules of ours: every pipeline module (siteconfig included), the output scan.
BUILD_TIME = ("chalicelib.pipeline", "chalicelib.storage.manifest", "chalicelib.storage.compress",
              "build_runner", *REFUSED)
CHILD = """
import importlib, importlib.abc, json, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {refused!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (refused: build time)", name=name)
        return None

sys.meta_path.insert(0, Refuse())
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after_importing(modules: list[str]) -> list[str]:
    code = CHILD.format(refused=REFUSED, modules=modules)
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def under(loaded: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [name for name in loaded
            if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)]


def test_the_serving_package_has_its_modules():
    assert {"chalicelib.serving.resolve", "chalicelib.serving.site",
            "chalicelib.serving.gateway"} <= set(SERVING)


@pytest.mark.parametrize("modules", [SERVING, ["chalicelib.serving.resolve"]],
                         ids=["handler-and-gateway", "resolver"])
def test_the_request_handler_imports_nothing_of_build_time(modules):
    assert under(loaded_after_importing(modules), BUILD_TIME) == []


def test_the_api_plumbing_imports_neither_pipeline_nor_serving():
    loaded = loaded_after_importing(["chalicelib.api"])
    assert under(loaded, ("chalicelib.pipeline", "chalicelib.serving", "brotli", "git")) == []
