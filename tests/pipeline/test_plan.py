"""The plan printed before the explanations stage: model evaluations counted from each method's
parameters, the estimate, and an ETA rescaled by the time actually spent."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.attribution.handles import torch_handle
from generator.pipeline.plan import MapSetPlan, Plan, calibrate, method_passes, metric_passes


@pytest.mark.parametrize(("method", "params", "expected"), [
    ("captum.saliency", {}, (1.0, True)),
    ("captum.integrated_gradients", {}, (32.0, True)),           # default steps
    ("captum.integrated_gradients", {"steps": 8}, (8.0, True)),
    ("captum.guided_gradcam", {}, (2.0, True)),                   # Grad-CAM and guided backprop
    ("captum.smoothgrad", {"samples": 5}, (5.0, True)),
    ("captum.occlusion", {}, (15.0 ** 2 + 1, False)),            # 8-px windows, stride 4, on 64 px: 15 x 15
    ("xplique.rise", {"samples": 400}, (400.0, False)),
    ("captum.lime", {}, (200.0, False)),
    ("captum.feature_ablation", {}, (65.0, False)),               # 8 x 8 cells and the unperturbed image
])
def test_method_passes_follow_the_parameters(method, params, expected):
    assert method_passes(method, params, 64) == expected


def test_metric_passes_count_deletion_insertion_and_sensitivity():
    assert metric_passes("captum.occlusion", {}, 64, steps=16, sensitivity_share=0.5) == 30.0  # no max-sensitivity
    # saliency: 30 deletion/insertion passes + 4 re-explanations x 1 gradient (3 forward passes) on half the images
    assert metric_passes("captum.saliency", {}, 64, steps=16, sensitivity_share=0.5) == pytest.approx(36.0)


def test_summary_and_eta():
    plan = Plan(46, ["fair", "biased"], ["captum.saliency", "captum.occlusion"], steps=16)
    plan.map_sets = [MapSetPlan("fair", "captum.saliency", True, 0.0), MapSetPlan("fair", "captum.occlusion", False, 60.0),
                     MapSetPlan("biased", "captum.saliency", False, 20.0),
                     MapSetPlan("biased", "captum.occlusion", False, 100.0)]
    plan.calibration = {"fair": (0.001, 0.003)}
    plan.shared_seconds = {"fair": 20.0}
    assert plan.seconds == 200.0
    text = plan.summary()
    assert "2 model(s) x 2 method(s) on 46 images = 4 map sets, 1 cached, 3 to compute" in text
    assert "about 3 min" in text and "longest: captum.occlusion on 'biased'" in text
    skipping = Plan(46, ["fair"], ["captum.saliency", "xplique.gradcam"], steps=16)
    skipping.map_sets = [MapSetPlan("fair", "captum.saliency", False, 20.0),
                         MapSetPlan("fair", "xplique.gradcam", True, 0.0, skipped=True)]
    skipping.calibration = {"fair": (0.001, 0.003)}
    assert "= 2 map sets, 0 cached, 1 skipped (the method cannot explain the model" in skipping.summary()
    plan.record(plan.map_sets[1], 120.0)  # took twice its estimate: the rest is expected to as well
    assert plan.eta() == "ETA ~5 min"  # (200 - 60) s x 2
    # half-way through the next map set (100 s estimated) after 20 s: running faster than the first one
    # estimate done 60 + 50 = 110 s, spent 120 + 20 = 140 s: left (200 - 110) x 140 / 110 = 115 s
    assert plan.eta(plan.map_sets[3], 0.5, 20.0) == "ETA ~2 min"
    assert plan.eta(plan.map_sets[3], 0.0, 0.0) == plan.eta()


def test_the_sanity_check_is_counted_per_layer_and_method():
    from generator.pipeline.plan import sanity_seconds

    # (3 layers + the trained model) x 2 images x (saliency 1 + IG 8 gradients) x 30 ms
    found = sanity_seconds(3, ["captum.saliency", "captum.integrated_gradients"],
                           {"captum.integrated_gradients": {"steps": 8}}, 64, images=2, forward=0.01, gradient=0.03)
    assert found == pytest.approx(4 * 2 * 9 * 0.03)
    plan = Plan(46, ["fair"], ["captum.saliency"], steps=16)
    plan.map_sets = [MapSetPlan("fair", "captum.saliency", False, 30.0)]
    plan.calibration = {"fair": (0.001, 0.003)}
    plan.sanity = (150.0, 12, 6, 8)
    text = plan.summary()
    assert "sanity check (6 method(s) re-explaining 8 images after each of 12 layer randomisations): about 2 min" in text
    assert "in all about 3 min" in text and plan.seconds == 30.0  # the progress bar's ETA covers the maps only


def test_calibration_times_a_forward_pass_and_a_gradient():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2))
    images = np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    forward, gradient = calibrate(torch_handle("t", net), images, np.zeros(8, dtype=np.int64))
    assert 0 < forward <= gradient < 1.0


def test_scale_bench_reads_the_build_estimate_with_the_sanity_check():
    from generator.pipeline.scale_bench import _minutes

    maps_only = "  estimate on this machine for the maps and these metrics: about 24 min (calibrated: ...)\n"
    assert _minutes(maps_only) == 24 * 60
    both = maps_only + "  then the sanity check (6 method(s) ...): about 6 min; in all about 30 min.\n"
    assert _minutes(both) == 30 * 60
    assert _minutes("no plan printed") is None
