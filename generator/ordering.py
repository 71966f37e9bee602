"""The order in which group labels are listed: natural, so that ordinal bins read in order.

FairFace's age bins sorted as text come out ``0-2, 10-19, 20-29, 3-9``; compared chunk by chunk,
numbers as numbers, they read ``0-2, 3-9, 10-19, 20-29, ..., more than 70``. Labels without
digits sort as text, case-insensitively, so the order of the embedded default is unchanged.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["natural_key", "natural_sorted"]

_CHUNKS = re.compile(r"(\d+)")


def natural_key(label: object) -> tuple:
    """A sort key that compares runs of digits as numbers: ``"3-9" < "10-19"``; numbers before words."""
    parts = [p for p in _CHUNKS.split(str(label)) if p]
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts) + ((2, 0, str(label)),)


def natural_sorted(labels: Iterable[object]) -> list:
    """``labels`` in natural order (see :func:`natural_key`)."""
    return sorted(labels, key=natural_key)
