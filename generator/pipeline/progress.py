"""Progress bars for stages that take more than a second (tqdm, on stderr)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(total: int | None, description: str, unit: str = "it") -> Iterator[tqdm]:
    """A tqdm bar; hidden when stderr is not a terminal unless GENERATOR_PROGRESS=1."""
    forced = os.environ.get("GENERATOR_PROGRESS") == "1"
    with tqdm(total=total, desc=description, unit=unit, leave=False, disable=None if not forced else False,
              dynamic_ncols=True) as bar:
        yield bar
