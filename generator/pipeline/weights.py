"""`generator weights`: train the default models of every replicate and ship them in ``data/weights/``.

Training is bit-identical on every x86-64 CPU with AVX2 (see :mod:`generator.portable`), but it
runs on one thread without oneDNN, about two minutes per model on the default data. Shipping
the weights keeps a cold `make site` within its time budget; the folder names are the training
cache keys, so weights are used only for the exact settings, seed, data and code that made
them (an edit of the training code or the data generator changes the keys, and
``tests/models/test_shipped_weights.py`` then asks for `make weights`).
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from generator.config import Config
from generator.pipeline.cache import Cache

__all__ = ["expected_weights", "make_weights"]


def expected_weights(config: Config, cache: Cache) -> dict[str, tuple[str, int]]:
    """``{training key: (model name, replicate)}`` of every built-in model of ``config``."""
    from generator.pipeline.stages import dataset_stage, train_key

    faces = dataset_stage(cache, config)
    return {train_key(cache, config, faces, model, r): (model.name, r)
            for model in config.models if model.kind == "default" for r in range(config.replicates)}


def _train_one(config: Config, cache_dir: str, key: str, name: str, replicate: int, target: str) -> str:
    from generator.pipeline.stages import dataset_stage, train_into

    cache = Cache(Path(cache_dir))
    faces = dataset_stage(cache, config)
    model = next(m for m in config.models if m.name == name)
    folder = Path(tempfile.mkdtemp(dir=target, prefix=f".{key}.", suffix=".tmp"))
    train_into(folder, config, faces, model, replicate, name if replicate == 0 else f"{name}#{replicate}")
    final = Path(target) / key
    if final.exists():
        shutil.rmtree(final)
    folder.chmod(0o755)
    os.replace(folder, final)
    return key


def make_weights(config: Config, target: Path, *, workers: int = 2) -> list[str]:
    """Train every built-in model of every replicate into ``target/<key>/``; remove folders of other keys.

    Each training uses one thread, so ``workers`` trainings run side by side in processes.
    """
    target.mkdir(parents=True, exist_ok=True)
    cache = Cache(config.output.cache_dir)
    wanted = expected_weights(config, cache)
    for stale in target.iterdir():
        if stale.is_dir() and stale.name not in wanted:
            shutil.rmtree(stale)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(_train_one, config, str(cache.root), key, name, r, str(target))
                for key, (name, r) in wanted.items()]
        return [job.result() for job in jobs]
