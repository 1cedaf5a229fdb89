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
    # The source function (@app.lambda_function): its own timeout, and the API told its name.
    functions = [r["Properties"] for r in template["Resources"].values()
                 if r["Type"] == "AWS::Serverless::Function"]
    [source] = [f for f in functions if f["Handler"] == "app.source_upload"]
    assert source["Timeout"] == 900
    assert all(f["Environment"]["Variables"]["SOURCE_FUNCTION"] == "percel-dev-source_upload"
               for f in functions)


def test_the_wheel_is_the_percel_command_alone_and_installs_with_no_dependency(tmp_path):
    """pyproject.toml builds percel_cli only (not the Chalice app), with no runtime dependency:
    it installs offline into a bare virtualenv and runs there."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
                    "-w", str(tmp_path / "dist"), str(PROJECT)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("percel-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("percel-")} == {"percel_cli"}
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist" not in metadata and "Requires-Python: >=3.11" in metadata
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    result = subprocess.run([str(venv / "bin" / "percel"), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("percel ")
