"""The plan of the explanations stage and an estimate of its duration, shown before it starts.

At real scale (thousands of 224-px faces, a ResNet, twenty methods) the explanations stage runs
for hours, so before it starts the build prints what it will compute (images x methods x models,
and the model evaluations each map set and each metric needs) and how long that should take on
this machine. The estimate is calibrated, not guessed: a forward pass and a gradient of each
model are timed on a few of the chosen images, and every method's and metric's cost is counted
in those units from its parameters (Integrated Gradients' steps, occlusion's windows, RISE's
masks...). While the stage runs, the progress bar counts images and its ETA is the remaining
estimate rescaled by how far the work so far was from its own estimate.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MapSetPlan", "Plan", "calibrate", "map_set_seconds", "method_passes", "metric_passes", "notify",
           "sanity_seconds"]

#: Forward passes per image shared by all map sets of a model: MuFidelity's subsets, infidelity's perturbations.
SHARED_PASSES = 64 + 32
SENSITIVITY_SAMPLES = 4


def method_passes(method: str, params: dict[str, Any], size: int) -> tuple[float, bool]:
    """Model evaluations per image that ``method`` needs, and whether each is a gradient (forward + backward).

    Counted from the method's parameters: steps of a path, samples of a sampling method, sliding
    windows of occlusion, masks of RISE, perturbed samples of the surrogates, designs of Sobol and HSIC.
    """
    from generator.attribution.registry import REGISTRY

    spec = REGISTRY[method]
    p = {**spec.defaults, **params}
    family = spec.family
    if family == "gradient":
        return 1.0, True
    if family == "cam":
        return (2.0 if "guided" in method else 1.0), True
    if family == "path":
        return float(p["steps"]), True
    if family == "sampling":
        return float(p["samples"]), True
    if "patch_size" in p:
        windows = max(1, (size - int(p["patch_size"])) // int(p["stride"]) + 1)
        return float(windows * windows + 1), False
    if "nb_design" in p:
        grid = int(p.get("grid_size", 8))
        return float(p["nb_design"] * (grid * grid + 2 if method.endswith("sobol") else 1)), False
    if "samples" in p:
        return float(p["samples"]), False
    if "grid" in p:
        return float(int(p["grid"]) ** 2 + 1), False
    return 1.0, True


def metric_passes(method: str, params: dict[str, Any], size: int, steps: int, sensitivity_share: float) -> float:
    """Forward-pass equivalents per image of one map set's own metrics (deletion, insertion, max-sensitivity)."""
    from generator.attribution.registry import REGISTRY
    from generator.pipeline.evaluation_stage import SENSITIVITY_FAMILIES

    passes = 2.0 * max(steps - 1, 0)
    if REGISTRY[method].family in SENSITIVITY_FAMILIES:
        explained, gradient = method_passes(method, params, size)
        passes += SENSITIVITY_SAMPLES * sensitivity_share * explained * (3.0 if gradient else 1.0)
    return passes


def map_set_seconds(method: str, params: dict[str, Any], size: int, *, images: int, evaluated: int, steps: int,
                    sensitivity_share: float, forward: float, gradient: float) -> float:
    """Estimated seconds of one map set: its maps on ``images`` images and its own metrics on ``evaluated``.

    ``forward`` and ``gradient`` are the calibrated seconds per image of one forward pass and of one
    gradient (see :func:`calibrate`).
    """
    passes, needs_grad = method_passes(method, params, size)
    return (images * passes * (gradient if needs_grad else forward)
            + evaluated * metric_passes(method, params, size, steps, sensitivity_share) * forward)


def sanity_seconds(layers: int, methods: list[str], params: dict[str, dict[str, Any]], size: int, *, images: int,
                   forward: float, gradient: float) -> float:
    """Estimated seconds of the cascading-randomisation sanity check.

    Each method re-explains ``images`` images once for the trained model and once after each of the
    ``layers`` randomisation steps (one per parameterised layer).
    """
    total = 0.0
    for method in methods:
        passes, needs_grad = method_passes(method, dict(params.get(method, {})), size)
        total += (layers + 1) * images * passes * (gradient if needs_grad else forward)
    return total


@dataclass
class MapSetPlan:
    """One model x method: whether it is cached (or skipped: the method cannot explain the model), its seconds if not."""

    model: str
    method: str
    cached: bool
    seconds: float
    skipped: bool = False


@dataclass
class Plan:
    """What the explanations stage will compute and how long it should take."""

    images: int
    models: list[str]
    methods: list[str]
    steps: int
    evaluation_images: int | None = None  # images the expensive metrics cover (None: all)
    map_sets: list[MapSetPlan] = field(default_factory=list)
    shared_seconds: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, tuple[float, float]] = field(default_factory=dict)
    done_seconds: float = 0.0
    spent_seconds: float = 0.0
    #: The sanity check, when it is to be computed: ``(seconds, layers, methods, images)``.
    sanity: tuple[float, int, int, int] | None = None

    @property
    def to_compute(self) -> list[MapSetPlan]:
        return [m for m in self.map_sets if not m.cached]

    @property
    def seconds(self) -> float:
        """The maps and their metrics (what the progress bar counts)."""
        return sum(m.seconds for m in self.to_compute) + sum(self.shared_seconds.values())

    def summary(self) -> str:
        """The plan in words, with the estimate (printed before the stage starts)."""
        todo = self.to_compute
        skipped = sum(m.skipped for m in self.map_sets)
        lines = [f"explanations: {len(self.models)} model(s) x {len(self.methods)} method(s) on {self.images} images "
                 f"= {len(self.map_sets)} map sets, {len(self.map_sets) - len(todo) - skipped} cached, "
                 + (f"{skipped} skipped (the method cannot explain the model; the Explanations page says why), "
                    if skipped else "") + f"{len(todo)} to compute."]
        if not todo:
            return lines[0]
        metric_images = self.images if self.evaluation_images is None else self.evaluation_images
        where = ("" if metric_images >= self.images else
                 f" The metrics run on a stratified subsample of {metric_images} of the {self.images} images "
                 "(attribution.budget.evaluation_images); the maps cover all.")
        lines.append(f"  each map set: the maps, deletion and insertion ({2 * max(self.steps - 1, 0)} forward passes "
                     f"per image), max-sensitivity ({SENSITIVITY_SAMPLES} re-explanations of up to 12 images, "
                     f"gradient, path and CAM methods); once per model: MuFidelity (64) and infidelity (32 forward "
                     f"passes per image).{where}")
        timing = ", ".join(f"'{m}' {f * 1e3:.2g} ms a forward pass and {g * 1e3:.2g} ms a gradient per image"
                           for m, (f, g) in self.calibration.items())
        longest = max(todo, key=lambda m: m.seconds)
        lines.append(f"  estimate on this machine for the maps and these metrics: about {_duration(self.seconds)} "
                     f"(calibrated: {timing}); longest: {longest.method} on '{longest.model}', about "
                     f"{_duration(longest.seconds)}.")
        if self.sanity is not None:
            seconds, layers, methods, images = self.sanity
            lines.append(f"  then the sanity check ({methods} method(s) re-explaining {images} images after each of "
                         f"{layers} layer randomisations): about {_duration(seconds)}; in all about "
                         f"{_duration(self.seconds + seconds)}.")
        lines.append("  Not in it: the cross-library agreement, the statistics and the figures, which follow.")
        return "\n".join(lines)

    def record(self, item: MapSetPlan, seconds: float) -> None:
        """Account for one computed map set (for the ETA)."""
        self.done_seconds += item.seconds
        self.spent_seconds += seconds

    def eta(self, current: MapSetPlan | None = None, fraction: float = 0.0, elapsed: float = 0.0) -> str:
        """Remaining time: what is left of the estimate, rescaled by actual over estimated time so far.

        ``current`` is the map set under way, ``fraction`` of its images done in ``elapsed`` seconds,
        so that the ETA moves image by image, not only when a map set is finished.
        """
        partial = current.seconds * min(max(fraction, 0.0), 1.0) if current is not None else 0.0
        done, spent = self.done_seconds + partial, self.spent_seconds + (elapsed if current is not None else 0.0)
        left = max(self.seconds - done, 0.0)
        scale = spent / done if done > 0 and spent > 0 else 1.0
        return f"ETA ~{_duration(left * scale)}"


def calibrate(handle: Any, images: np.ndarray, targets: np.ndarray, count: int = 8) -> tuple[float, float]:
    """Seconds per image of one forward pass and of one gradient of ``handle``'s model, timed on ``count`` images."""
    from generator.attribution.base import UnsupportedMethod
    from generator.attribution.registry import build_explainer

    batch, classes = images[:count], np.asarray(targets[:count])
    handle.logits(batch)  # warm-up: first calls allocate and choose kernels
    forward = _fastest(lambda: handle.logits(batch)) / len(batch)
    try:
        saliency = build_explainer("captum.saliency" if handle.framework == "torch" else "xplique.saliency", handle, {})
        saliency.explain(batch, classes)
        gradient = _fastest(lambda: saliency.explain(batch, classes)) / len(batch)
    except (UnsupportedMethod, RuntimeError, ValueError):  # no gradient: assume the usual forward + backward cost
        gradient = 3.0 * forward
    return forward, max(gradient, forward)


def _fastest(call: Any, repeats: int = 3) -> float:
    """The shortest of ``repeats`` timings of ``call()`` (the least disturbed by other work)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def notify(text: str) -> None:
    """Print a plan line on stderr (shown whatever the log level: it is what the user waits for)."""
    print(text, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
