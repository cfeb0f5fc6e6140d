"""Progress bars for the terminal, never for the page.

Under papermill a notebook's ``sys.stderr`` is captured into the page, so a plain ``tqdm``
bar becomes dozens of lines of text in the book. The kernel process's own standard error
(``sys.__stderr__``) is inherited from the process that started it: the terminal running
``python -m minima run`` (or the Jupyter server's console). Bars go there.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings

from tqdm import tqdm


def progress(iterable=None, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)`` drawn on the terminal's standard error, not in the notebook.

    Refreshes at most every 5 s unless ``mininterval`` is given; disabled when that stream is gone.
    """
    stream = sys.__stderr__
    kwargs.setdefault("mininterval", 5)
    kwargs.setdefault("dynamic_ncols", False)
    return tqdm(iterable, file=stream, disable=stream is None or kwargs.pop("disable", False), **kwargs)


@contextlib.contextmanager
def terminal_only():
    """Send everything printed or warned inside the block to the terminal instead of the page
    (library load reports, deprecation warnings); the results a cell displays are unaffected."""
    stream = sys.__stderr__ or open(os.devnull, "w")
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), warnings.catch_warnings():
        warnings.simplefilter("default")
        yield
