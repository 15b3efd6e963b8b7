"""Entry point: `python -m pipelines.steps <step> [--args…]`.

Exit codes: 0 success, 1 definitive failure (bad input, failed job, rejected gate), 2 usage error,
75 transient failure (a service stayed unreachable): the templates retry only that one.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from pipelines.steps import STEPS
from pipelines.steps._common import EXIT_TRANSIENT, StepError, TransientError

log = logging.getLogger("pipelines.steps")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in STEPS:
        print(f"usage: python -m pipelines.steps {{{','.join(STEPS)}}} [--help | args…]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    step = importlib.import_module(f"pipelines.steps.{STEPS[args[0]]}")
    try:
        result: int = step.main(args[1:])
    except TransientError as exc:
        log.error("%s failed, may succeed on retry: %s", args[0], exc)
        return EXIT_TRANSIENT
    except StepError as exc:
        log.error("%s failed: %s", args[0], exc)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
