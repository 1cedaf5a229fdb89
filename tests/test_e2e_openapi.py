"""The API's contract (chalicelib/openapi.py) against the live stack: the document is served,
and schemathesis (schemathesis.readthedocs.io) finds no server error and no response that
breaks it, with a bounded number of generated requests per operation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import schemathesis  # noqa: F401  (requirements-dev.txt; fail at collection when missing)

from chalicelib.openapi import document

# Requests generated per operation and phase: the run stays a few minutes on 2 cores.
MAX_EXAMPLES = 30
SEED = 20240611  # the same cases every run; change it to explore others


def bearer(stack) -> str:
    """The token schemathesis sends: PERCEL_TEST_TOKEN, else the stack's admin token once the
    stack has one (PERCEL_ADMIN_TOKEN in its env), else a placeholder the API ignores today."""
    return (os.environ.get("PERCEL_TEST_TOKEN") or stack.env.get("PERCEL_ADMIN_TOKEN")
            or "percel-test-no-auth-yet")


def serves(stack, path: str, token: str) -> bool:
    """Whether the API has the route at all (the token routes may not be merged yet)."""
    request = urllib.request.Request(stack.api_url + path,
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as error:
        return error.code != 404


def test_the_document_is_served_as_openapi_3_1(http):
    status, _, raw = http.request("GET", "/api/openapi.json")
    served = json.loads(raw)
    assert status == 200 and served == document() and served["openapi"] == "3.1.0"
    assert served["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(stack, tmp_path):
    token = bearer(stack)
    excluded = [] if serves(stack, "/api/tokens", token) else ["--exclude-path-regex", "^/api/tokens"]
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{stack.api_url}/api/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--header", f"Authorization: Bearer {token}",
         "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2",
         "--phases", "examples,coverage,fuzzing", "--request-timeout", "60",
         "--report", "json", "--report-json-path", str(report), "--no-color", *excluded],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
