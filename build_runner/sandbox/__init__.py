"""Running untrusted install and build commands: `make_sandbox(settings).run(...)`.

Modules, each importing only those listed before it: base (the contract, process
plumbing, exit statuses); network (the install step's allow-list proxy) and cgroups
(memory and process limits, cgroup v1 or v2); the backends bwrap, containers and plain; factory (make_sandbox).
"""
from build_runner.sandbox.base import Cancel, OnLine, RunResult, Sandbox, SandboxUnavailable
from build_runner.sandbox.factory import make_sandbox
from build_runner.sandbox.plain import NoneSandbox

__all__ = ["Cancel", "NoneSandbox", "OnLine", "RunResult", "Sandbox", "SandboxUnavailable", "make_sandbox"]
