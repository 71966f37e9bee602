"""Tests of generator.models.train: learning, determinism, RNG hygiene, validation, predict."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from generator.errors import ConfigError, DataError, ModelError
from generator.models.nets import SmallCNN, preprocess
from generator.models.train import (
    HISTORY_COLUMNS,
    TrainParams,
    TrainResult,
    predict,
    train_model,
)

FAST = TrainParams(epochs=2, batch_size=32)


def square_images(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images; label 1 means a bright square sits in the centre (a known, learnable rule)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 160, (n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    rng.shuffle(labels)
    centre, half = size // 2, size // 8
    images[labels == 1, centre - half:centre + half, centre - half:centre + half] = 230
    return images, labels


@pytest.fixture(scope="module")
def square_run() -> tuple[TrainResult, list[tuple[int, dict]]]:
    images, labels = square_images(200, 48, seed=0)
    eval_images, eval_labels = square_images(60, 48, seed=1)
    calls: list[tuple[int, dict]] = []
    result = train_model(images, labels, TrainParams(epochs=8), seed=0, eval_images=eval_images,
                         eval_labels=eval_labels, progress=lambda epoch, metrics: calls.append((epoch, metrics)))
    return result, calls


def test_learns_the_centre_square(square_run: tuple[TrainResult, list]) -> None:
    history = square_run[0].history
    # known answer: the rule is trivially learnable, so the last epoch is (near) perfect.
    assert history["train_accuracy"].iloc[-1] >= 0.95, history
    assert history["eval_accuracy"].iloc[-1] >= 0.95, history
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_history_and_progress(square_run: tuple[TrainResult, list]) -> None:
    result, calls = square_run
    assert list(result.history.columns) == list(HISTORY_COLUMNS)
    assert result.history["epoch"].tolist() == list(range(1, 9))
    assert [epoch for epoch, _ in calls] == list(range(1, 9))
    assert calls[-1][1] == result.history.iloc[-1].drop("epoch").to_dict()
    assert result.history.notna().all().all()


def test_model_returned_on_cpu_in_eval_mode(square_run: tuple[TrainResult, list]) -> None:
    model = square_run[0].model
    assert isinstance(model, SmallCNN) and not model.training
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_eval_columns_are_nan_without_eval_set() -> None:
    images, labels = square_images(40, 32, seed=2)
    history = train_model(images, labels, FAST, seed=0).history
    assert len(history) == FAST.epochs
    assert history[["eval_loss", "eval_accuracy"]].isna().all().all()
    assert history[["train_loss", "train_accuracy"]].notna().all().all()


def test_same_seed_is_bit_identical_and_other_seed_differs() -> None:
    images, labels = square_images(64, 32, seed=3)
    first, second, other = (train_model(images, labels, FAST, seed=s) for s in (7, 7, 8))
    state, state_again, state_other = (r.model.state_dict() for r in (first, second, other))
    assert all(torch.equal(state[k], state_again[k]) for k in state)  # exact, no tolerance
    pd.testing.assert_frame_equal(first.history, second.history, check_exact=True)
    assert not all(torch.equal(state[k], state_other[k]) for k in state)


def test_flip_augmentation_changes_training() -> None:
    images, labels = square_images(64, 32, seed=4)
    flipped = train_model(images, labels, FAST, seed=0).model.state_dict()
    plain = train_model(images, labels, TrainParams(epochs=2, batch_size=32, augment_flip=False),
                        seed=0).model.state_dict()
    assert not all(torch.equal(flipped[k], plain[k]) for k in flipped)


def _global_flags() -> tuple:
    """The process-wide PyTorch switches train_model sets for its duration."""
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)


def test_caller_rng_and_determinism_flags_are_untouched() -> None:
    images, labels = square_images(32, 32, seed=5)
    torch.manual_seed(1234)
    before, flags = torch.get_rng_state(), _global_flags()
    train_model(images, labels, TrainParams(epochs=1), seed=0)
    assert torch.equal(before, torch.get_rng_state())
    assert flags == _global_flags()


@pytest.mark.parametrize("change, argument", [
    ({"images": np.zeros((8, 32, 32, 3), dtype=np.float32)}, "images"),
    ({"images": np.zeros((8, 3, 32, 32), dtype=np.uint8)}, "images"),
    ({"images": np.zeros((8, 8, 8, 3), dtype=np.uint8)}, "images"),
    ({"labels": np.array([0, 1] * 3)}, "labels"),
    ({"labels": np.array([0, 1, 2, 0, 1, 0, 1, 0])}, "labels"),
    ({"labels": np.array([0, 1, -1, 0, 1, 0, 1, 0])}, "labels"),
    ({"labels": np.zeros(8, dtype=int)}, "labels"),
    ({"labels": np.array([0.0, 1.0] * 4)}, "labels"),
    ({"eval_images": np.zeros((4, 32, 32, 3), dtype=np.uint8)}, "eval_labels"),
    ({"eval_images": np.zeros((4, 32, 32, 3), dtype=np.uint8), "eval_labels": np.array([0, 1])}, "eval_labels"),
    ({"eval_images": np.zeros((4, 32, 32), dtype=np.uint8), "eval_labels": np.array([0, 1, 0, 1])},
     "eval_images"),
])
def test_bad_inputs_raise_data_error_naming_the_argument(change: dict, argument: str) -> None:
    kwargs = {"images": np.zeros((8, 32, 32, 3), dtype=np.uint8), "labels": np.array([0, 1] * 4)}
    kwargs.update(change)
    with pytest.raises(DataError, match=argument):
        train_model(params=FAST, seed=0, **kwargs)


def test_labels_beyond_num_classes_name_the_limit() -> None:
    images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(DataError, match=r"labels must lie in \[0, 2\).*got value 5"):
        train_model(images, np.array([0, 1, 5, 1]), FAST, seed=0)


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": -1}, {"lr": 0.0}, {"weight_decay": -1e-3},
                                    {"width": 1.5}, {"augment_flip": "yes"}])
def test_bad_params_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        TrainParams(**kwargs)


def test_bad_seed_raises_config_error() -> None:
    images, labels = square_images(8, 32, seed=0)
    with pytest.raises(ConfigError, match="seed"):
        train_model(images, labels, FAST, seed=-1)


def test_params_as_dict() -> None:
    assert TrainParams(epochs=3, lr=0.5).as_dict() == {"epochs": 3, "batch_size": 32, "lr": 0.5,
                                                       "weight_decay": 1e-4, "width": 16, "augment_flip": True}


def test_defaults_match_the_config_schema() -> None:
    from generator.config import TrainingConfig

    assert TrainParams().as_dict() == TrainingConfig().model_dump()


def test_predict_matches_forward_pass(square_run: tuple[TrainResult, list]) -> None:
    model = square_run[0].model
    images, _ = square_images(10, 48, seed=9)
    logits, embeddings = predict(model, images, batch_size=4)
    assert logits.dtype == embeddings.dtype == np.float32
    assert logits.shape == (10, 2) and embeddings.shape == (10, model.embedding_dim)
    with torch.no_grad():
        x = preprocess(images)
        expected_logits, expected_embeddings = model(x).numpy(), model.embed(x).numpy()
    # tolerance: batches of 4 vs 10 (and a GPU, if any, vs the CPU) may sum in a different order in float32.
    np.testing.assert_allclose(logits, expected_logits, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(embeddings, expected_embeddings, atol=1e-5, rtol=1e-5)


def test_predict_restores_mode_and_refuses_bad_input() -> None:
    model = SmallCNN().train()
    images, _ = square_images(3, 32, seed=0)
    logits, _ = predict(model, images)
    assert model.training and math.isfinite(float(logits.sum()))
    with pytest.raises(DataError, match="images"):
        predict(model, images.astype(np.float32))
    with pytest.raises(ModelError, match="embed"):
        predict(torch.nn.Linear(3, 2), images)
    with pytest.raises(ConfigError, match="batch_size"):
        predict(model, images, batch_size=0)
