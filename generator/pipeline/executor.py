"""Where the attribution maps are computed: in the build process, in worker processes, or on Ray.

The maps of a map set (one method on one model) are cut into tasks of whole explainer chunks
(:func:`chunk_tasks`). An :class:`Executor` runs tasks and hands their results back **in task
order**, keeping a window of tasks in flight, so that workers compute the next map sets while the
build writes and evaluates the current one:

* ``local`` with one worker (the default): the build process explains each chunk itself;
* ``local`` with ``workers: N``: N processes on this machine, each with ``cores / N`` intra-op
  threads;
* ``ray``: tasks on a Ray cluster (``address: auto`` or ``HOST:PORT``; without an address a local
  cluster of ``workers`` CPUs is started), one GPU per task where the cluster has GPUs.

The results are the same bytes on every engine and worker count: each task reseeds its
explainer per chunk exactly as the serial loop does, and the maps of the built-in network and of
torchvision models do not depend on the intra-op thread count with channels-last oneDNN kernels
(``tests/pipeline/test_executor.py`` checks the built-in network's; a torchvision ResNet-18's
saliency, IG and Grad-CAM maps were the same bytes with 1 and 2 threads when measured). Workers read the models from the cache folder,
so on a cluster of several machines ``output.cache_dir`` must be a folder every worker sees at
the same path (a shared file system). The model-heavy part of each map set's evaluation
(deletion and insertion curves, max-sensitivity's re-explanations) is sent to the same workers
with :meth:`Executor.submit` once its maps are in; the scores shared by a model's map sets
(MuFidelity, infidelity), the sanity checks and the figures stay in the build process.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator.errors import ConfigError
from generator.models.checkpoints import cpu_threads

__all__ = ["ChunkTask", "Executor", "Later", "MapFeed", "absolute_model", "chunk_tasks",
           "explain_chunk", "kept", "kept_explainer", "make_executor", "uses_workers"]

#: Images per task, rounded up to whole explainer chunks: small enough to spread a map set of the
#: default (46 images) over workers, large enough that a task outweighs sending it.
TASK_IMAGES = 32
#: Tasks in flight per worker: workers go on with the next map sets while the build evaluates one.
WINDOW = 4
#: Explainers a worker keeps ready (model and method), so consecutive tasks of one map set reuse them.
KEPT_EXPLAINERS = 4


@dataclass(frozen=True)
class ChunkTask:
    """Explain ``images`` (rows ``start`` to ``start + len(images)`` of map set ``key``) with one method."""

    key: str
    start: int
    config: Any
    trained: Any
    framework: str
    twin_path: Path | None
    method: str
    params: dict[str, Any]
    images: np.ndarray
    targets: np.ndarray


def task_images(method: str, params: dict[str, Any]) -> int:
    """Images per task for ``method``: :data:`TASK_IMAGES` rounded up to whole explainer chunks."""
    from generator.attribution.registry import REGISTRY

    batch = int(params.get("batch_size", REGISTRY[method].defaults.get("batch_size", 1)))
    return batch * max(1, -(-TASK_IMAGES // batch))


def chunk_tasks(key: str, config: Any, trained: Any, framework: str, twin_path: Path | None, method: str,
                params: dict[str, Any], images: np.ndarray, targets: np.ndarray, start: int = 0) -> list[ChunkTask]:
    """The tasks of one map set from image ``start`` on (a resumed map set starts where it stopped).

    The model's files are named by absolute paths: a worker of a Ray cluster may run in another folder.
    """
    size = task_images(method, params)
    trained, twin_path = absolute_model(trained), Path(twin_path).resolve() if twin_path is not None else None
    return [ChunkTask(key, begin, config, trained, framework, twin_path, method, params,
                      np.ascontiguousarray(images[begin:begin + size]), np.asarray(targets[begin:begin + size]))
            for begin in range(start, len(images), size)]


def absolute_model(trained: Any) -> Any:
    """``trained`` with its weights file and its configured model files as absolute paths."""
    import dataclasses

    files = {key: value.resolve() for key in ("path", "class_file")
             if isinstance(value := getattr(trained.config, key, None), Path)}
    model = trained.config.model_copy(update=files) if files else trained.config
    return dataclasses.replace(trained, path=Path(trained.path).resolve(), config=model)


_EXPLAINERS: OrderedDict[str, Any] = OrderedDict()


def explain_chunk(task: ChunkTask) -> np.ndarray:
    """The maps of one task (run in a worker; the explainer is built once per model and method)."""
    explainer = kept_explainer(task.config, task.trained, task.framework, task.twin_path, task.method, task.params)
    return explainer.explain(task.images, task.targets)


def kept_explainer(config: Any, trained: Any, framework: str, twin_path: Path | None, method: str,
                   params: dict[str, Any]) -> Any:
    """The explainer of ``method`` on one model, built once per process and kept for the next tasks."""
    from generator.attribution.registry import build_explainer
    from generator.pipeline.stages import kept_handle

    memo = json.dumps([trained.key, framework, str(twin_path), method, params], sort_keys=True, default=str)
    return kept(_EXPLAINERS, memo, lambda: build_explainer(method, kept_handle(config, trained, framework, twin_path),
                                                           params), KEPT_EXPLAINERS)


def kept(store: OrderedDict[str, Any], memo: str, make: Callable[[], Any], limit: int) -> Any:
    """``store[memo]``, made by ``make()`` on first use; the ``limit`` most recently used entries are kept."""
    if memo not in store:
        store[memo] = make()
        while len(store) > limit:
            store.popitem(last=False)
    store.move_to_end(memo)
    return store[memo]


class Later:
    """A call made when its result is asked for (what :meth:`Executor.submit` returns in the build process)."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._call: tuple[Callable[..., Any], tuple[Any, ...]] | None = (fn, args)
        self._value: Any = None

    def result(self) -> Any:
        if self._call is not None:
            fn, args = self._call
            self._value, self._call = fn(*args), None
        return self._value


class Executor:
    """Runs tasks and yields their results in task order (the base class runs them here, one by one)."""

    engine = "local"
    workers = 1

    @property
    def parallel(self) -> bool:
        """Whether tasks run outside the build process."""
        return False

    @property
    def shares_cores(self) -> bool:
        """Whether the workers run on this machine's cores, beside the build process."""
        return False

    def ordered(self, tasks: Iterable[ChunkTask]) -> Iterator[np.ndarray]:
        """The maps of each task, in the order of ``tasks``."""
        for task in tasks:
            yield explain_chunk(task)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` where this executor runs tasks (a module-level function, picklable arguments);
        the returned handle's ``result()`` gives its value. Queued behind the tasks already in flight.
        The build process itself makes the call when the result is asked for."""
        return Later(fn, args)

    def close(self) -> None:
        """Stop the workers (nothing to stop here)."""

    def describe(self) -> str:
        """The engine in words, for the plan and the profile."""
        return "in the build process"


class _Windowed(Executor):
    """Keeps ``WINDOW x workers`` tasks in flight and yields their results in order."""

    def ordered(self, tasks: Iterable[ChunkTask]) -> Iterator[np.ndarray]:
        pending: deque[Any] = deque()
        try:
            for task in tasks:
                pending.append(self._submit(task))
                if len(pending) >= WINDOW * self.workers:
                    yield self._result(pending.popleft())
            while pending:
                yield self._result(pending.popleft())
        finally:  # closed before the end (a failed stage, map sets passed over): the rest is not wanted
            for handle in pending:
                self._cancel(handle)

    @property
    def parallel(self) -> bool:
        return True

    def _submit(self, task: ChunkTask) -> Any:
        raise NotImplementedError

    def _result(self, handle: Any) -> np.ndarray:
        raise NotImplementedError

    def _cancel(self, handle: Any) -> None:
        """Drop a submitted task: one not started never runs, a running one's result is not awaited."""
        raise NotImplementedError


def _worker_threads(threads: int, log_levels: dict[str, int] | None = None) -> None:
    """Process-pool initializer: pin the kernels, set the intra-op threads, and give the libraries' loggers the
    levels they have in the build process (so a worker is as quiet as the build about tf.function retracing)."""
    import generator  # noqa: F401  (pins the CPU kernels before torch computes anything)

    for name, level in (log_levels or {}).items():
        logging.getLogger(name).setLevel(level)
    cpu_threads(threads)


QUIETED_LOGGERS = ("tensorflow", "fontTools")


def _log_levels() -> dict[str, int]:
    return {name: logging.getLogger(name).level for name in QUIETED_LOGGERS}


class ProcessExecutor(_Windowed):
    """``workers`` processes on this machine (spawned: no state of the build process is shared)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        threads = max(1, (os.cpu_count() or 1) // workers)
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_worker_threads, initargs=(threads, _log_levels()))

    @property
    def shares_cores(self) -> bool:
        return True

    def _submit(self, task: ChunkTask) -> Any:
        return self._pool.submit(explain_chunk, task)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._pool.submit(fn, *args)

    def _result(self, handle: Any) -> np.ndarray:
        return handle.result()

    def _cancel(self, handle: Any) -> None:
        handle.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        return f"on {self.workers} local worker processes"


class RayExecutor(_Windowed):
    """Tasks on a Ray cluster: the one at ``address``, or a local one of ``workers`` CPUs."""

    engine = "ray"

    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError as error:
            raise ConfigError("execution.engine 'ray' needs the ray package (pip install 'ray>=2.9'); "
                              "or set execution.engine: local") from error
        self._ray = ray
        self._started = not ray.is_initialized()
        self._local = not address or address == "auto"  # a cluster started here, or the one this machine heads
        if self._started:
            root = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False,
                                       "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers, **options)
        resources = ray.cluster_resources()
        self.workers = max(1, int(resources.get("CPU", workers)))
        gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        self._remote = ray.remote(num_cpus=1, num_gpus=gpus)(_ray_task)
        self._call = ray.remote(num_cpus=1, num_gpus=gpus)(_ray_call)

    @property
    def shares_cores(self) -> bool:
        return self._local

    def _submit(self, task: ChunkTask) -> Any:
        return self._remote.remote(task)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return _RayResult(self._ray, self._call.remote(fn, *args))

    def _result(self, handle: Any) -> np.ndarray:
        return self._ray.get(handle)

    def _cancel(self, handle: Any) -> None:
        try:
            self._ray.cancel(handle)
        except Exception:  # already finished, or the cluster is gone: nothing left to stop
            pass

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()

    def describe(self) -> str:
        return f"on Ray ({self.workers} CPUs)"


def _ray_task(task: ChunkTask) -> np.ndarray:
    """A Ray task: one thread per CPU the task holds, then the chunk."""
    return _ray_call(explain_chunk, task)


def _ray_call(fn: Callable[..., Any], *args: Any) -> Any:
    """A Ray task for :meth:`RayExecutor.submit`: one thread per CPU the task holds, then the call."""
    import generator  # noqa: F401  (pins the CPU kernels before torch computes anything)

    cpu_threads(1)
    return fn(*args)


class _RayResult:
    """The handle :meth:`RayExecutor.submit` returns."""

    def __init__(self, ray: Any, ref: Any) -> None:
        self._ray, self._ref = ray, ref

    def result(self) -> Any:
        return self._ray.get(self._ref)


def uses_workers(execution: Any) -> bool:
    """Whether an ``execution`` config section sends the maps to workers (Ray, or more than one local worker)."""
    return execution.engine == "ray" or execution.workers > 1


def make_executor(execution: Any) -> Executor:
    """The executor an ``execution`` config section asks for."""
    if execution.engine == "ray":
        return RayExecutor(execution.workers, execution.address)
    return ProcessExecutor(execution.workers) if uses_workers(execution) else Executor()


class MapFeed:
    """The results of a list of tasks, handed to the map sets they belong to, in order.

    The build walks its map sets in the order the tasks were listed; :meth:`maps` yields the
    maps of one map set's tasks. Tasks of map sets the build passes over (a method found
    unsupported when its explainer is built) are drained and dropped.
    """

    def __init__(self, executor: Executor, tasks: list[ChunkTask]) -> None:
        self._tasks = tasks
        self._keys = {task.key for task in tasks}
        self._results = executor.ordered(tasks)
        self._next = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def maps(self, key: str, start: int) -> Iterator[np.ndarray] | None:
        """The maps of map set ``key`` from image ``start`` on, or None when no task computes them."""
        if key not in self._keys:
            return None
        while self._tasks[self._next].key != key:  # map sets passed over: drop their results
            next(self._results)
            self._next += 1
        if self._tasks[self._next].start != start:
            raise RuntimeError(f"map set {key}: tasks start at image {self._tasks[self._next].start}, "
                               f"the map set at {start}")
        self._keys.discard(key)
        return self._take(key)

    def close(self) -> None:
        """Drop the tasks not handed out yet (those of map sets the build passed over or did not reach)."""
        self._results.close()

    def _take(self, key: str) -> Iterator[np.ndarray]:
        while self._next < len(self._tasks) and self._tasks[self._next].key == key:
            result = next(self._results)
            self._next += 1
            yield result
