"""The exit codes every `tierline` command uses (README, "Commands and exit codes")."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    REFUSED = 1  # the service or store refused, or a check failed (e.g. a reload that did not swap)
    USAGE = 2  # wrong arguments or settings (argparse's own errors are 2 as well)
    UNREACHABLE = 3  # the service or the store could not be reached
