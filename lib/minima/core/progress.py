"""Progress bars and library chatter for the terminal, never for the page.

Under papermill a notebook's ``sys.stderr`` is captured into the page, and so is the
kernel's file descriptor 2 (ipykernel redirects it into a pipe that it forwards to the
notebook), so a plain ``tqdm`` bar, or one on ``sys.__stderr__``, becomes dozens of lines
of text in the book. ipykernel keeps a copy of the original descriptor, the terminal (or
log) of the process that started the kernel, and hands it out as ``sys.stderr.fileno()``;
outside a kernel that is descriptor 2 itself. Bars and chatter go there.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

from tqdm import tqdm

_terminal = None


def terminal():
    """A text stream on the terminal that runs the batch (or ``None`` when there is none)."""
    global _terminal
    if _terminal is None:
        try:
            _terminal = open(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            # a kernel that does not capture descriptors: its own stderr is the terminal
            _terminal = sys.__stderr__
    return _terminal


def progress(iterable=None, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)`` drawn on the terminal, not in the notebook.

    Refreshes at most every 5 s unless ``mininterval`` is given; disabled when there is no terminal.
    """
    stream = terminal()
    kwargs.setdefault("mininterval", 5)
    disable = kwargs.pop("disable", False)
    return tqdm(iterable, file=stream, disable=stream is None or disable, **kwargs)


@contextlib.contextmanager
def terminal_only():
    """Send everything printed or warned inside the block to the terminal instead of the page
    (library load reports, deprecation warnings); the results a cell displays are unaffected."""
    stream = terminal() or open(os.devnull, "w")
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), warnings.catch_warnings():
        warnings.simplefilter("default")
        yield
