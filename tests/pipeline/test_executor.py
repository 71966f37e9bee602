"""The executors of :mod:`generator.pipeline.executor`: the same maps, bytes for bytes, wherever they run.

The map sets of a small default model are cut into tasks and run in the build process, on two
local worker processes and on a local Ray cluster of two CPUs. Every engine must hand back the
maps of the serial explainer bit for bit: SmoothGrad and GradientSHAP are random (reseeded per
explainer chunk), Integrated Gradients and Grad-CAM are not.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from generator.config import ConfigError, parse_config
from generator.models.nets import SmallCNN
from generator.pipeline.executor import (
    Executor,
    MapFeed,
    ProcessExecutor,
    RayExecutor,
    chunk_tasks,
    make_executor,
    task_images,
)
from generator.pipeline.stages import TrainedModel

METHODS = ("captum.smoothgrad", "captum.integrated_gradients", "captum.gradcam", "captum.gradient_shap")
N = 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    config = parse_config({"training": {"width": 4}}, source="test")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.save(SmallCNN(width=4).state_dict(), folder / "model.pt")
    trained = TrainedModel("fair", "k0", folder / "model.pt", "h0", None, 0.0, config.models[0], check={"classes": 2})
    images = np.random.default_rng(0).integers(0, 256, (N, 32, 32, 3), dtype=np.uint8)
    targets = np.arange(N) % 2
    tasks = [t for method in METHODS
             for t in chunk_tasks(method, config, trained, "torch", None, method, {}, images, targets)]
    return config, trained, images, targets, tasks


def _serial(setup) -> dict[str, np.ndarray]:
    """Each map set explained in one call, as the build does without workers."""
    from generator.attribution.registry import build_explainer
    from generator.pipeline.stages import handle_for

    config, trained, images, targets, _ = setup
    return {m: build_explainer(m, handle_for(config, trained, "torch")).explain(images, targets) for m in METHODS}


def _gathered(executor: Executor, tasks) -> dict[str, np.ndarray]:
    feed = MapFeed(executor, tasks)
    try:
        return {m: np.concatenate(list(feed.maps(m, 0))) for m in METHODS}
    finally:
        executor.close()


def test_tasks_are_whole_explainer_chunks(setup):
    *_, tasks = setup
    assert task_images("captum.smoothgrad", {}) == 32  # batch 4
    assert task_images("captum.integrated_gradients", {"batch_size": 10}) == 40
    assert task_images("captum.saliency", {}) == 32  # batch 16
    assert task_images("captum.saliency", {"batch_size": 64}) == 64  # a chunk is never split
    starts = [t.start for t in tasks if t.method == "captum.smoothgrad"]
    assert starts == [0, 32] and len(tasks[1].images) == N - 32


def test_tasks_name_the_model_files_by_absolute_paths(setup, monkeypatch):
    import dataclasses
    import os

    config, trained, images, targets, _ = setup
    monkeypatch.chdir(trained.path.parent)
    relative = dataclasses.replace(trained, path=Path(trained.path.name),
                                   config=trained.config.model_copy(update={"path": Path("weights.pt")}))
    task = chunk_tasks("k", config, relative, "torch", Path("twin.keras"), METHODS[0], {}, images, targets)[0]
    assert task.trained.path == trained.path and task.trained.path.is_absolute()
    assert task.trained.config.path == Path(os.getcwd()) / "weights.pt" and task.twin_path.is_absolute()


def test_the_feed_in_the_build_process_gives_the_serial_maps(setup):
    expected = _serial(setup)
    got = _gathered(Executor(), setup[-1])
    for method in METHODS:
        np.testing.assert_array_equal(got[method], expected[method], err_msg=method)


def test_one_model_is_loaded_once_for_all_its_methods_and_metrics(setup, monkeypatch):
    """The explainers of every method and the evaluation's curves share one handle per model and process
    (the model file is read once), and sharing it changes no map: the same bytes as fresh handles."""
    from generator.pipeline import evaluation_stage, executor, stages

    config, trained, images, targets, tasks = setup
    loads = []
    real = stages.handle_for
    monkeypatch.setattr(stages, "handle_for", lambda *a, **k: loads.append(a[1].key) or real(*a, **k))
    monkeypatch.setattr(stages, "_HANDLES", type(stages._HANDLES)())
    monkeypatch.setattr(executor, "_EXPLAINERS", type(executor._EXPLAINERS)())
    monkeypatch.setattr(evaluation_stage, "_CURVES", type(evaluation_stage._CURVES)())
    got = _gathered(Executor(), tasks)
    maps = got["captum.integrated_gradients"]
    deletion, insertion = evaluation_stage.curve_scores(config, trained, images[:8], targets[:8], maps[:8], 4)
    assert loads == ["k0"]
    expected = _serial(setup)
    for method in METHODS:
        np.testing.assert_array_equal(got[method], expected[method], err_msg=method)
    assert deletion.shape == insertion.shape == (8,) and np.isfinite(deletion).all()


def test_a_map_set_passed_over_is_drained_and_an_unknown_one_has_no_tasks(setup):
    *_, tasks = setup
    feed = MapFeed(Executor(), tasks)
    assert feed.maps("captum.saliency", 0) is None
    ig = np.concatenate(list(feed.maps("captum.integrated_gradients", 0)))  # SmoothGrad's tasks dropped
    np.testing.assert_array_equal(ig, _serial(setup)["captum.integrated_gradients"])
    with pytest.raises(RuntimeError, match="start at image 0"):
        feed.maps("captum.gradcam", 8)


def test_two_local_worker_processes_give_the_same_bytes(setup):
    expected = _serial(setup)
    got = _gathered(ProcessExecutor(2), setup[-1])
    for method in METHODS:
        np.testing.assert_array_equal(got[method], expected[method], err_msg=method)


def test_a_local_ray_cluster_gives_the_same_bytes(setup):
    expected = _serial(setup)
    executor = RayExecutor(2, None)
    assert executor.workers == 2 and executor.parallel
    got = _gathered(executor, setup[-1])
    for method in METHODS:
        np.testing.assert_array_equal(got[method], expected[method], err_msg=method)


def test_the_execution_section_is_checked_and_leaves_the_config_hash_alone():
    from generator.config import config_hash

    with pytest.raises(ConfigError, match="engine"):
        parse_config({"execution": {"engine": "dask"}}, source="test")
    with pytest.raises(ConfigError, match="only read with engine: ray"):
        parse_config({"execution": {"address": "auto"}}, source="test")
    with pytest.raises(ConfigError, match="workers"):
        parse_config({"execution": {"workers": 0}}, source="test")
    plain = parse_config({}, source="test")
    ray = parse_config({"execution": {"engine": "ray", "workers": 4, "address": "auto"}}, source="test")
    assert config_hash(plain) == config_hash(ray)
    assert type(make_executor(plain.execution)) is Executor
