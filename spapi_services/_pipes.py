"""When the reader of a command's output goes away (``| head -1``, a pager quit early).

Nothing more can reach them, so the command stops without a word, with the status a
shell reports for ``cat``, ``grep`` or ``git`` stopped the same way: 128 + SIGPIPE (141).
A script that checks statuses (``set -o pipefail``, ``PIPESTATUS``) then sees this
command as it sees those, and can tell "the output was cut short" from "done".  Used by
``spapi-services`` and by ``python -m spapi_services.emulator`` (which runs without click).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

__all__ = ["EXIT_PIPE_CLOSED", "silence_stdout"]

#: The exit status of a command whose reader closed the pipe: 128 + SIGPIPE.
EXIT_PIPE_CLOSED = 141


def silence_stdout() -> None:
    """Point stdout at the null device, so that Python's last flush at exit does not
    report the closed pipe again ("Exception ignored ... BrokenPipeError")."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, sys.stdout.fileno())
        finally:
            os.close(null)
