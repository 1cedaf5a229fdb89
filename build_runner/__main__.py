"""`python -m build_runner`: run one build runner until SIGTERM / Ctrl-C."""
from __future__ import annotations

import logging
import signal

from build_runner.loop import Runner
from build_runner.sandbox import make_sandbox
from chalicelib.context import build_context


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s runner %(levelname)s %(message)s")
    ctx = build_context()
    runner = Runner(ctx, make_sandbox(ctx.settings, log=logging.getLogger("percel.sandbox")))
    # Finish the current build's bookkeeping, then stop: no job is left claimed and unowned.
    signal.signal(signal.SIGTERM, lambda *_: runner.stop.set())
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.stop.set()


if __name__ == "__main__":
    main()
