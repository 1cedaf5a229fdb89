from build_runner.sandbox.base import (Cancel, LineSplitter, NoneSandbox, OnLine, RunResult, Sandbox,
                                       SandboxUnavailable, make_sandbox)

__all__ = ["Cancel", "LineSplitter", "NoneSandbox", "OnLine", "RunResult", "Sandbox", "SandboxUnavailable",
           "make_sandbox"]
