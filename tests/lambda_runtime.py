"""A stand-in for Lambda's Python runtime, run by tests/test_packaging.py in a bare interpreter.

`python -I -S tests/lambda_runtime.py TASK_ROOT HANDLER`: no site-packages and no PYTHONPATH, so
only the standard library and the unpacked deployment package (TASK_ROOT, first on sys.path as
Lambda's /var/task is) can be imported. It first prints one JSON line describing where it runs,
then reads one event per line on stdin and prints the handler's answer as one JSON line, in one
process, as a warm Lambda handles requests one after another.
"""
import importlib
import json
import shutil
import sys


class LambdaContext:
    """The attributes of Lambda's context object a handler may read."""

    function_name = "percel-prod"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main() -> None:
    task_root, handler = sys.argv[1], sys.argv[2]
    sys.path.insert(0, task_root)
    module_name, function_name = handler.rsplit(".", 1)
    function = getattr(importlib.import_module(module_name), function_name)
    print(json.dumps({"git": shutil.which("git"), "sys_path": sys.path,
                      "app_file": sys.modules[module_name].__file__}), flush=True)
    for line in sys.stdin:
        print(json.dumps(function(json.loads(line), LambdaContext())), flush=True)


if __name__ == "__main__":
    main()
