"""The Chalice app packages for Lambda: what `chalice deploy` would upload is complete."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_chalice_package_holds_the_app_its_native_wheels_and_the_schedule(tmp_path):
    out = tmp_path / "pkg"
    chalice = Path(sys.executable).parent / "chalice"
    result = subprocess.run([str(chalice), "package", "--stage", "dev", str(out)], cwd=PROJECT,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
    assert result.returncode == 0, result.stderr[-2000:]
    names = zipfile.ZipFile(out / "deployment.zip").namelist()
    for required in ("app.py", "chalicelib/serving/site.py", "chalicelib/serving/resolve.py", "git/__init__.py",
                     "chalicelib/dashboard/static/index.html", "chalicelib/dashboard/static/app.js",
                     "redis/__init__.py", "boto3/__init__.py"):
        assert required in names, required
    # Native extensions built for Lambda's Linux, not only the pure-Python parts.
    assert any(n.startswith("_brotli.") and n.endswith(".so") for n in names)
    assert any(n.startswith("regex/_regex.") and n.endswith(".so") for n in names)
    assert not any(n.startswith(("tests/", "build_runner/", "devstack/", ".venv/")) for n in names)
    template = json.loads((out / "sam.json").read_text())
    kinds = {resource["Type"] for resource in template["Resources"].values()}
    assert "AWS::Serverless::Function" in kinds and "AWS::Serverless::Api" in kinds
    assert any("Cleanup" in name for name in template["Resources"])  # the @app.schedule
