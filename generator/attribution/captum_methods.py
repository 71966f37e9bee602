"""Attribution methods computed by Captum on PyTorch models, one small class each.

Every class holds its :class:`~generator.attribution.base.MethodSpec` and one
``_attribute`` step that calls Captum on a prepared NCHW chunk; the shared base
prepares the inputs, seeds the torch random generator for stochastic methods
(forked, so the caller's global state is untouched) and collapses the channels.
Forward-only methods (occlusion, ablation, LIME, Kernel SHAP) run under
``torch.inference_mode``.

Randomness: torch's and NumPy's global generators are seeded for the call and
restored afterwards. SmoothGrad and GradientSHAP reseed with ``seed`` at every chunk, so
their maps are reproducible for a fixed ``batch_size``; LIME and Kernel SHAP
reseed for every image (the same perturbation design for each image), so their
maps do not depend on ``batch_size`` either.

Pass sizes: the defaults send 16 to 32 inputs per forward and backward pass, the sizes at which one
CPU core runs the default SmallCNN at 64 px fastest (its activations then fit the caches). Measured
on one thread against the earlier defaults of 64 inputs a pass (DeepLIFT: 64, as 32 images and their
baselines): saliency 1.6, Input x Gradient 1.7, Guided Backprop 1.3, DeepLIFT 1.1, Integrated
Gradients 1.2, GradientSHAP 1.4, occlusion 1.6, feature ablation 1.5 times faster. Saliency, Input x
Gradient, Guided Backprop, Grad-CAM, occlusion and feature ablation give the same maps bit for bit
in any pass size; DeepLIFT's ``batch_size`` and Integrated Gradients' ``internal_batch_size`` change
the last bits, GradientSHAP's ``batch_size`` its random draws, so all are stated parameters.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import (
    DeepLift,
    FeatureAblation,
    GradientShap,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    LayerAttribution,
    LayerGradCam,
    Lime,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from captum.attr._core.lime import get_exp_kernel_similarity_function
from torch import nn

from generator.attribution.base import (
    FORMULAS,
    PAPERS,
    Explainer,
    MethodSpec,
    baseline_inputs,
    grid_segments,
)
from generator.attribution.handles import exact_float32

__all__ = [
    "CAPTUM_EXPLAINERS",
    "CaptumDeepLift",
    "CaptumFeatureAblation",
    "CaptumGradCam",
    "CaptumGradientShap",
    "CaptumGuidedBackprop",
    "CaptumGuidedGradCam",
    "CaptumInputXGradient",
    "CaptumIntegratedGradients",
    "CaptumKernelShap",
    "CaptumLime",
    "CaptumOcclusion",
    "CaptumSaliency",
    "CaptumSmoothGrad",
]

_KERAS_REASON = "Captum explains PyTorch models only; use the xplique.* methods for the Keras twin"
_ALL_BASELINES = ("black", "mean", "blur")
_UNIFORM_BASELINES = ("black", "mean")
_RULES = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


def _spec(key: str, family: str, title: str, paper: tuple[str, str], formula: str, *, signed: bool,
          reduction: str, **defaults: Any) -> MethodSpec:
    """Build the spec of a Captum method (PyTorch only)."""
    return MethodSpec(name=f"captum.{key}", library="captum", family=family, title=title, paper=paper[0],
                      url=paper[1], formula=formula, signed=signed, frameworks=frozenset({"torch"}),
                      defaults=defaults, channel_reduction=reduction, unsupported={"keras": _KERAS_REASON})


@contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's and NumPy's global generators for the block, then restore them; no-op for None.

    Captum draws from both: ``torch.normal`` (NoiseTunnel), ``torch.bernoulli`` (LIME),
    ``np.random.uniform`` and ``np.random.choice`` (GradientSHAP).
    """
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def _reduce(attributions: torch.Tensor, how: str) -> torch.Tensor:
    """:func:`~generator.attribution.base.reduce_channels` on the device, so only ``(n, H, W)`` is copied back."""
    if how == "none":
        return attributions[:, 0]
    if how == "max_abs":
        return attributions.abs().amax(dim=1)
    reducers = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax}
    return reducers[how](attributions, dim=1)


class CaptumExplainer(Explainer):
    """Shared steps of the Captum methods: prepare, seed, attribute, reduce channels."""

    #: Whether the method back-propagates to the input (False: forward passes only).
    needs_grad: ClassVar[bool] = True

    def _explain_chunk(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        inputs = self.handle.prepare(images).requires_grad_(self.needs_grad)
        target = torch.as_tensor(targets, device=inputs.device)
        with _seeded(self.params.get("seed"), inputs.device), exact_float32():
            attributions = self._attribute(inputs, target, images)
        return _reduce(attributions.detach(), self.spec.channel_reduction).float().cpu().numpy()

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        """Return Captum's attributions ``(n, C, H, W)`` (or ``(n, 1, H, W)``) for one chunk."""
        raise NotImplementedError

    def _baselines(self, images: np.ndarray) -> torch.Tensor:
        """The chosen baseline of every image of the chunk, prepared like the inputs."""
        return baseline_inputs(self.handle, images, self.params["baseline"])

    def _layer(self) -> nn.Module:
        """The module named by the ``layer`` parameter."""
        return dict(self.handle.model.named_modules())[self.params["layer"]]

    def _feature_mask(self, inputs: torch.Tensor) -> torch.Tensor:
        """Grid superpixels ``(1, 1, H, W)`` shared by all channels."""
        segments = grid_segments(inputs.shape[2], inputs.shape[3], self.params["grid"])
        return torch.as_tensor(segments, device=inputs.device)[None, None]


class CaptumSaliency(CaptumExplainer):
    """Saliency: absolute input gradient of the target logit, max over channels (Simonyan et al., 2014)."""

    spec = _spec("saliency", "gradient", "Saliency", PAPERS["simonyan2014"],
                 FORMULAS["saliency"], signed=False, reduction="max", batch_size=16)
    note = "absolute gradient, max over channels"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        return Saliency(self.handle.model).attribute(inputs, target=target, abs=True)


class CaptumInputXGradient(CaptumExplainer):
    """Input times gradient, summed over channels (Shrikumar et al., 2016)."""

    spec = _spec("input_x_gradient", "gradient", "Input x Gradient", PAPERS["shrikumar2016"],
                 FORMULAS["input_x_gradient"], signed=True, reduction="sum", batch_size=16)
    note = "normalised input times gradient, summed over channels"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        return InputXGradient(self.handle.model).attribute(inputs, target=target)


class CaptumIntegratedGradients(CaptumExplainer):
    """Integrated Gradients from a baseline, summed over channels (Sundararajan et al., 2017)."""

    spec = _spec("integrated_gradients", "path", "Integrated Gradients", PAPERS["sundararajan2017"],
                 FORMULAS["integrated_gradients"],
                 signed=True, reduction="sum", baseline="black", steps=32, rule="gausslegendre",
                 internal_batch_size=16, batch_size=16)
    choices = MappingProxyType({"baseline": _ALL_BASELINES, "rule": _RULES})
    note = "summed over channels"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        method = IntegratedGradients(self.handle.model)
        return method.attribute(inputs, baselines=self._baselines(images), target=target,
                                n_steps=self.params["steps"], method=self.params["rule"],
                                internal_batch_size=self.params["internal_batch_size"])


class CaptumGradientShap(CaptumExplainer):
    """GradientSHAP: expected gradients between a baseline and noisy inputs (Lundberg & Lee, 2017)."""

    spec = _spec("gradient_shap", "sampling", "GradientSHAP", PAPERS["lundberg2017"],
                 r"\phi_i = \mathbb{E}_{\epsilon,\,\alpha \sim U(0,1)}\Big[(x_i - x'_i)\,"
                 r"\frac{\partial f_t(x' + \alpha (x + \epsilon - x'))}{\partial x_i}\Big]",
                 signed=True, reduction="sum", baseline="black", samples=16, noise=0.1, batch_size=2, seed=0)
    choices = MappingProxyType({"baseline": _UNIFORM_BASELINES})
    note = "summed over channels"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        baseline = self._baselines(images[:1])
        return GradientShap(self.handle.model).attribute(inputs, baselines=baseline, target=target,
                                                         n_samples=self.params["samples"],
                                                         stdevs=float(self.params["noise"]))


class CaptumDeepLift(CaptumExplainer):
    """DeepLIFT (Rescale rule) from a baseline, summed over channels (Shrikumar et al., 2017)."""

    spec = _spec("deeplift", "gradient", "DeepLIFT", PAPERS["shrikumar2017"],
                 r"\phi_i = (x_i - x'_i)\,m_i,\quad \textstyle\sum_i \phi_i = f_t(x) - f_t(x')",
                 signed=True, reduction="sum", baseline="black", batch_size=16)
    choices = MappingProxyType({"baseline": _ALL_BASELINES})
    note = "Rescale rule, summed over channels"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        if getattr(self, "_once", None) is None:
            self._once = one_module_per_call(self.handle.model)
        with warnings.catch_warnings():  # Captum warns on every call that it sets hooks on activations
            warnings.simplefilter("ignore", UserWarning)
            return DeepLift(self._once).attribute(inputs, baselines=self._baselines(images), target=target)


def one_module_per_call(model: torch.nn.Module) -> torch.nn.Module:
    """The model with every module that its forward calls more than once split into one copy per call.

    Captum's DeepLIFT records each nonlinearity's input and output in hooks on its module, so a
    module called twice (a torchvision ResNet block calls its one ``relu`` after both convolutions)
    breaks it. The forward is traced with ``torch.fx``; each further call of a module gets its own
    deep copy (same weights), and in-place activations are made out-of-place. The result computes
    the same function. The model itself is not changed; one ``torch.fx`` cannot trace is returned
    as it is (DeepLIFT then works if no module is reused, or Captum says which one is).
    """
    import copy
    from collections import Counter

    import torch.fx

    try:
        traced = torch.fx.symbolic_trace(copy.deepcopy(model))
    except Exception:  # data-dependent control flow and other untraceable code
        return model
    calls = Counter(node.target for node in traced.graph.nodes if node.op == "call_module")
    if all(count == 1 for count in calls.values()):
        return model
    seen: Counter = Counter()
    for node in traced.graph.nodes:
        if node.op != "call_module" or calls[node.target] == 1:
            continue
        seen[node.target] += 1
        if seen[node.target] > 1:
            name = f"{str(node.target).replace('.', '_')}_call{seen[node.target]}"
            traced.add_submodule(name, copy.deepcopy(traced.get_submodule(str(node.target))))
            node.target = name
    for module in traced.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    traced.recompile()
    return traced.eval() if not model.training else traced


class CaptumSmoothGrad(CaptumExplainer):
    """SmoothGrad: saliency averaged over Gaussian-noised copies (Smilkov et al., 2017)."""

    spec = _spec("smoothgrad", "sampling", "SmoothGrad", PAPERS["smilkov2017"],
                 r"M_{uv} = \max_c \frac{1}{n}\sum_{k=1}^{n}\left|\frac{\partial f_t(x + \epsilon_k)}"
                 r"{\partial x_{cuv}}\right|,\ \epsilon_k \sim \mathcal{N}(0, \sigma^2)",
                 signed=False, reduction="max", samples=16, noise=0.15, internal_batch_size=64, batch_size=16,
                 seed=0)
    note = "absolute gradients averaged (abs applied before averaging), max over channels"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        tunnel = NoiseTunnel(Saliency(self.handle.model))
        per_pass = max(1, self.params["internal_batch_size"] // len(inputs))  # noisy copies per image and pass
        return tunnel.attribute(inputs, nt_type="smoothgrad", nt_samples=self.params["samples"],
                                nt_samples_batch_size=per_pass, stdevs=float(self.params["noise"]), target=target,
                                abs=True)


class CaptumGuidedBackprop(CaptumExplainer):
    """Guided Backpropagation: only positive gradients pass the ReLUs (Springenberg et al., 2015)."""

    spec = _spec("guided_backprop", "gradient", "Guided Backpropagation", PAPERS["springenberg2015"],
                 r"R^{l} = \mathbb{1}[a^{l} > 0]\,\mathbb{1}[R^{l+1} > 0]\,R^{l+1}",
                 signed=True, reduction="sum", batch_size=16)
    note = "summed over channels"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        with warnings.catch_warnings():  # Captum warns that it overrides ReLU gradients
            warnings.simplefilter("ignore", UserWarning)
            return GuidedBackprop(self.handle.model).attribute(inputs, target=target)


class CaptumGradCam(CaptumExplainer):
    """Grad-CAM on a convolution layer, ReLU'd and upsampled bilinearly (Selvaraju et al., 2017)."""

    spec = _spec("gradcam", "cam", "Grad-CAM", PAPERS["selvaraju2017"], FORMULAS["gradcam"],
                 signed=False, reduction="none", layer=None, batch_size=32)
    note = "ReLU of the weighted activations, upsampled bilinearly to the input"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        cam = LayerGradCam(self.handle.model, self._layer()).attribute(inputs, target=target,
                                                                       relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(inputs.shape[2:]), interpolate_mode="bilinear")


class CaptumGuidedGradCam(CaptumExplainer):
    """Guided Grad-CAM: Guided Backpropagation times upsampled Grad-CAM (Selvaraju et al., 2017)."""

    spec = _spec("guided_gradcam", "cam", "Guided Grad-CAM", PAPERS["selvaraju2017"],
                 r"M = \sum_c R^{\mathrm{guided}}_c \odot \mathrm{up}\big(\mathrm{ReLU}(\textstyle\sum_k "
                 r"\alpha_k A^k)\big)", signed=True, reduction="sum", layer=None, batch_size=64)
    note = "Grad-CAM upsampled bilinearly, summed over channels"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            method = GuidedGradCam(self.handle.model, self._layer())
            return method.attribute(inputs, target=target, interpolate_mode="bilinear")


class CaptumOcclusion(CaptumExplainer):
    """Occlusion: logit drop when a sliding square is set to the baseline (Zeiler & Fergus, 2014)."""

    needs_grad = False

    spec = _spec("occlusion", "perturbation", "Occlusion", PAPERS["zeiler2014"],
                 r"\phi_i = \operatorname{mean}_{P \ni i}\big(f_t(x) - f_t(x_{P \leftarrow x'})\big)",
                 signed=True, reduction="mean", baseline="black", patch_size=8, stride=4,
                 perturbations_per_eval=2, batch_size=16)
    choices = MappingProxyType({"baseline": _ALL_BASELINES})
    note = "averaged over the windows covering a pixel (Captum's convention)"

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        channels, patch, stride = inputs.shape[1], self.params["patch_size"], self.params["stride"]
        with torch.inference_mode():
            return Occlusion(self.handle.model).attribute(
                inputs, sliding_window_shapes=(channels, patch, patch), strides=(channels, stride, stride),
                baselines=self._baselines(images), target=target,
                perturbations_per_eval=self.params["perturbations_per_eval"])


class CaptumFeatureAblation(CaptumExplainer):
    """Feature ablation: logit drop when one grid cell is set to the baseline (Covert et al., 2021)."""

    needs_grad = False

    spec = _spec("feature_ablation", "perturbation", "Feature Ablation", PAPERS["covert2021"],
                 r"\phi_S = f_t(x) - f_t(x_{S \leftarrow x'})", signed=True, reduction="mean",
                 baseline="black", grid=8, perturbations_per_eval=2, batch_size=16)
    choices = MappingProxyType({"baseline": _ALL_BASELINES})

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return FeatureAblation(self.handle.model).attribute(
                inputs, baselines=self._baselines(images), target=target, feature_mask=self._feature_mask(inputs),
                perturbations_per_eval=self.params["perturbations_per_eval"])


class _PerImageSurrogate(CaptumExplainer):
    """LIME-like methods: one surrogate model per image, each reseeded with ``seed``."""

    needs_grad = False

    def _attribute(self, inputs: torch.Tensor, target: torch.Tensor, images: np.ndarray) -> torch.Tensor:
        mask, baselines = self._feature_mask(inputs), self._baselines(images)
        method = self._method()
        maps = []
        for index in range(len(inputs)):
            with _seeded(self.params["seed"], inputs.device), torch.inference_mode():
                maps.append(method.attribute(
                    inputs[index:index + 1], baselines=baselines[index:index + 1], target=target[index:index + 1],
                    feature_mask=mask, n_samples=self.params["samples"],
                    perturbations_per_eval=self.params["perturbations_per_eval"]))
        return torch.cat(maps)

    def _method(self) -> Lime | KernelShap:
        """The Captum surrogate explainer."""
        raise NotImplementedError


class CaptumLime(_PerImageSurrogate):
    """LIME on grid superpixels with a ridge surrogate, as the original ``lime`` package (Ribeiro et al., 2016)."""

    spec = _spec("lime", "surrogate", "LIME", PAPERS["ribeiro2016"], FORMULAS["lime"], signed=True, reduction="mean",
                 baseline="black", grid=8, samples=200, alpha=1.0, kernel_width=1.0,
                 perturbations_per_eval=64, batch_size=8, seed=0)
    choices = MappingProxyType({"baseline": _ALL_BASELINES})
    note = "ridge surrogate, exponential cosine-distance kernel, cells kept with probability 1/2"

    def _method(self) -> Lime:
        similarity = get_exp_kernel_similarity_function("cosine", float(self.params["kernel_width"]))
        return Lime(self.handle.model, interpretable_model=SkLearnRidge(alpha=float(self.params["alpha"])),
                    similarity_func=similarity)


class CaptumKernelShap(_PerImageSurrogate):
    """Kernel SHAP on grid superpixels (Lundberg & Lee, 2017)."""

    spec = _spec("kernel_shap", "surrogate", "Kernel SHAP", PAPERS["lundberg2017"],
                 FORMULAS["kernel_shap"], signed=True, reduction="mean", baseline="black", grid=8, samples=200,
                 perturbations_per_eval=64, batch_size=8, seed=0)
    choices = MappingProxyType({"baseline": _ALL_BASELINES})
    note = "Shapley kernel, linear regression surrogate"

    def _method(self) -> KernelShap:
        return KernelShap(self.handle.model)


#: Every Captum explainer class, in the order the reports list them.
CAPTUM_EXPLAINERS: tuple[type[CaptumExplainer], ...] = (
    CaptumSaliency, CaptumInputXGradient, CaptumIntegratedGradients, CaptumGradientShap, CaptumDeepLift,
    CaptumSmoothGrad, CaptumGuidedBackprop, CaptumGradCam, CaptumGuidedGradCam, CaptumOcclusion,
    CaptumFeatureAblation, CaptumLime, CaptumKernelShap,
)
