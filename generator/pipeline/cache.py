"""Content-addressed cache of stage outputs, written atomically.

Every stage result lives in ``<cache_dir>/<stage>/<key>/`` where ``key`` is the hash
of the stage's parameters and of the keys of its inputs. A stage writes into a
temporary folder; a ``done.json`` listing each file with its SHA-256 is written
last, and the folder is then renamed into place. So:

* an interrupted run leaves only a temporary folder, which the next run ignores
  and removes, and finished entries are reused;
* an unchanged rerun finds every entry and recomputes nothing;
* a damaged entry (a file changed, truncated or missing) fails its checksum and is
  recomputed instead of used;
* a *resumable* stage (the attribution maps, which can take hours at 224 px) computes in a
  ``.<key>.partial`` folder that survives an interruption: the next run hands the same folder
  back, and the stage continues from what it recorded there (see
  :func:`generator.pipeline.attribution_stages.attribution_stage`).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from generator.fileio import atomic_write_bytes, atomic_write_text, file_sha256

__all__ = ["Cache", "atomic_write_bytes", "atomic_write_text", "code_hash", "file_sha256", "stable_hash"]

log = logging.getLogger(__name__)
DONE = "done.json"


def stable_hash(payload: Any, length: int = 16) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (sorted keys), truncated."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@functools.cache
def code_hash(*modules: str) -> str:
    """Hash of the source files of ``modules`` (a package means all its ``.py`` files).

    Part of every stage's cache key, so that a change to the code that computes a
    result invalidates exactly the results it computes. Nothing is imported.
    """
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"no source for module {name!r}")
        origin = Path(spec.origin)
        files = sorted(origin.parent.glob("*.py")) if origin.name == "__init__.py" else [origin]
        for file in files:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


class Cache:
    """A folder of finished stage results, one sub-folder per stage and key.

    Parameters
    ----------
    root
        The cache folder (``output.cache_dir`` in the config).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        #: Entries computed and entries found, per stage, since this object was made (for the stage profile).
        self.computed: dict[str, int] = {}
        self.reused: dict[str, int] = {}

    def key(self, stage: str, params: Any, inputs: tuple[str, ...] = ()) -> str:
        """The key of a stage run: a hash of its name, parameters and input keys."""
        return stable_hash({"stage": stage, "params": params, "inputs": list(inputs)})

    def path(self, stage: str, key: str) -> Path:
        """Where the entry for ``stage`` / ``key`` lives (it may not exist yet)."""
        return self.root / stage / key

    def is_done(self, stage: str, key: str) -> bool:
        """True when the entry was finished (its files are not checksummed: for plans, not for reading)."""
        return (self.path(stage, key) / DONE).is_file()

    def is_valid(self, stage: str, key: str) -> bool:
        """True when the entry exists and every file matches its recorded checksum."""
        entry = self.path(stage, key)
        try:
            listing = json.loads((entry / DONE).read_text())
        except (OSError, ValueError):
            return False
        for name, digest in listing.get("files", {}).items():
            file = entry / name
            if not file.is_file() or file_sha256(file) != digest:
                log.warning("cache entry %s is damaged (%s); recomputing", entry, name)
                return False
        return True

    def get_or_compute(self, stage: str, key: str, compute: Callable[[Path], None], *,
                       resumable: bool = False) -> Path:
        """Return the entry folder, computing it with ``compute(tmp_dir)`` if needed.

        ``compute`` writes its files into the folder it is given; the folder is
        sealed (checksums recorded) and renamed into place only after it returns.
        With ``resumable``, the folder is ``.<key>.partial`` and is kept when ``compute``
        is interrupted (an exception, a kill): the next call gives ``compute`` the same
        folder with whatever it wrote, so that it can continue; it is removed only once
        the entry is sealed.
        """
        entry = self.path(stage, key)
        if self.is_valid(stage, key):
            self.reused[stage] = self.reused.get(stage, 0) + 1
            return entry
        self.computed[stage] = self.computed.get(stage, 0) + 1
        entry.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale(entry)
        if resumable:
            tmp = self.partial(stage, key)
            tmp.mkdir(exist_ok=True)
        else:
            tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{key}.", suffix=".tmp"))
        try:
            compute(tmp)
            self._seal(tmp)
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(tmp, entry)
        finally:
            if tmp.exists() and not resumable:
                shutil.rmtree(tmp, ignore_errors=True)
        return entry

    def partial(self, stage: str, key: str) -> Path:
        """The folder a resumable computation of ``stage`` / ``key`` works in until it is sealed."""
        return self.root / stage / f".{key}.partial"

    def _seal(self, folder: Path) -> None:
        files = {
            p.relative_to(folder).as_posix(): file_sha256(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != DONE
        }
        (folder / DONE).write_text(json.dumps({"files": files}, indent=1, sort_keys=True))

    @staticmethod
    def _remove_stale(entry: Path) -> None:
        """Remove left-overs of interrupted runs of this key (temporary folders)."""
        for stale in entry.parent.glob(f".{entry.name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
