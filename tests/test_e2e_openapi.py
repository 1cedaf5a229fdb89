"""The API's contract (chalicelib/openapi.py) against the live stack: the document is served,
and schemathesis (schemathesis.readthedocs.io) finds no server error and no response that
breaks it, with a bounded number of generated requests per operation."""
from __future__ import annotations

import json
import subprocess
import sys

import schemathesis  # noqa: F401  (requirements-dev.txt; fail at collection when missing)

from chalicelib.openapi import document

# Requests generated per operation and phase: the run stays a few minutes on 2 cores.
MAX_EXAMPLES = 30
SEED = 20240611  # the same cases every run; change it to explore others


def bearer(stack) -> str:
    """The token schemathesis sends: the test stack's admin token (every route, tokens included)."""
    return stack.admin_token


def test_the_document_is_served_as_openapi_3_1(http):
    status, _, raw = http.request("GET", "/api/openapi.json")
    served = json.loads(raw)
    assert status == 200 and served == document() and served["openapi"] == "3.1.0"
    assert served["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(stack, tmp_path):
    token = bearer(stack)
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{stack.api_url}/api/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--header", f"Authorization: Bearer {token}",
         "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2",
         "--phases", "examples,coverage,fuzzing", "--request-timeout", "60",
         "--report", "json", "--report-json-path", str(report), "--no-color"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
