"""Keep numpy out of start-up.

sqlite-utils imports numpy whenever it is installed, to map numpy types to SQL
types. numpy is only here because matplotlib (the PDF report's picture) needs
it, and the progress store never writes numpy values: importing it at start-up
would cost the chat and the bot about 15 MB and 50 ms for nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def numpy_hidden() -> Iterator[None]:
    """Within the block, ``import numpy`` fails as if it were not installed (unless already imported)."""
    if "numpy" in sys.modules:
        yield
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # makes the import raise ImportError
    try:
        yield
    finally:
        if sys.modules.get("numpy", 0) is None:
            del sys.modules["numpy"]
