"""Attribution methods computed by Xplique, on the Keras twin or on PyTorch through ``TorchWrapper``.

Every class holds its :class:`~generator.attribution.base.MethodSpec` and one
``_build`` step that creates the Xplique explainer; the shared base imports
TensorFlow (through :func:`generator.models.device.import_tensorflow`, so that
Triton is loaded first) and Xplique only when the first chunk is explained,
feeds normalised NHWC inputs and one-hot targets, and returns ``(n, H, W)`` maps.

PyTorch models are wrapped in ``xplique.wrappers.TorchWrapper``, which needs
TensorFlow in eager mode; it switches eager mode on for the whole process when
built. Here eager mode is switched on only while a wrapped model is explained
and restored afterwards, so Keras models explained later in the same process
still run as compiled graphs. Grad-CAM and Grad-CAM++ cannot go through the
wrapper (it exposes no Keras layer) and are declared unsupported for PyTorch.

Randomness: stochastic methods (SmoothGrad, VarGrad, SquareGrad, RISE, LIME,
Kernel SHAP) run eagerly with ``tf.random.set_seed(seed)`` and NumPy's legacy
global seed set for the call and restored afterwards (TensorFlow's global seed
is put back to its previous value), so two calls give the same maps. The
gradient statistics are reseeded at every chunk (reproducible for a fixed
``batch_size``); RISE, LIME and Kernel SHAP explain each image alone, reseeded,
so every image sees the same random design and maps do not depend on
``batch_size``. Sobol and HSIC use unscrambled quasi-Monte Carlo designs and are
deterministic.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar

import numpy as np
import torch

from generator.attribution.base import (
    FORMULAS,
    PAPERS,
    Explainer,
    MethodSpec,
    UnsupportedMethod,
    baseline_pixel,
    grid_segments,
)
from generator.attribution.handles import ChunkedForward, exact_float32, pass_size
from generator.models.device import import_tensorflow

__all__ = [
    "XPLIQUE_EXPLAINERS",
    "XpliqueGradCam",
    "XpliqueGradCamPP",
    "XpliqueGradientInput",
    "XpliqueHsic",
    "XpliqueIntegratedGradients",
    "XpliqueKernelShap",
    "XpliqueLime",
    "XpliqueOcclusion",
    "XpliqueRise",
    "XpliqueSaliency",
    "XpliqueSmoothGrad",
    "XpliqueSobol",
    "XpliqueSquareGrad",
    "XpliqueVarGrad",
]

_BOTH = frozenset({"torch", "keras"})
_KERAS = frozenset({"keras"})
_UNIFORM_BASELINES = ("black", "mean")
_GRADCAM_REASON = ("Xplique's TorchWrapper does not support {title}: it exposes no Keras layer outputs; "
                   "use captum.gradcam, or xplique.{key} on the Keras twin")
_GRAD_STAT = r"\epsilon_k \sim \mathcal{{N}}(0, \sigma^2),\ g_k = \nabla_x f_t(x + \epsilon_k),\ M = {stat}"


def _spec(key: str, family: str, title: str, paper: tuple[str, str], formula: str, *, signed: bool,
          reduction: str, frameworks: frozenset[str] = _BOTH, **defaults: Any) -> MethodSpec:
    """Build the spec of an Xplique method."""
    unsupported = {} if "torch" in frameworks else {"torch": _GRADCAM_REASON.format(title=title, key=key)}
    return MethodSpec(name=f"xplique.{key}", library="xplique", family=family, title=title, paper=paper[0],
                      url=paper[1], formula=formula, signed=signed, frameworks=frameworks, defaults=defaults,
                      channel_reduction=reduction, unsupported=unsupported)


@contextmanager
def _tf_state(tf: ModuleType, *, eager: bool, seed: int | None) -> Iterator[None]:
    """Run the block eagerly if asked and seeded if ``seed`` is given; restore TF's and NumPy's state."""
    from tensorflow.python.eager import (
        context,  # the only way to read TF's global seed back
    )

    was_eager, previous_seed, np_state = tf.config.functions_run_eagerly(), context.global_seed(), None
    tf.config.run_functions_eagerly(eager or was_eager)
    if seed is not None:
        np_state = np.random.get_state()
        tf.random.set_seed(seed)
        np.random.seed(seed)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(was_eager)
        if np_state is not None:
            tf.random.set_seed(previous_seed)
            np.random.set_state(np_state)


class XpliqueExplainer(Explainer):
    """Shared steps of the Xplique methods: NHWC inputs, one-hot targets, eager/seed state, (n, H, W) maps."""

    #: Whether the method back-propagates (False: TorchWrapper runs the forward passes without autograd).
    needs_grad: ClassVar[bool] = True
    #: Whether Xplique takes the baseline as one fill value (checked when the explainer is built).
    scalar_baseline: ClassVar[bool] = False
    #: Whether each image is explained alone with the generators reseeded (same random design per image).
    seed_per_image: ClassVar[bool] = False

    def __init__(self, handle: Any, params: Any = None) -> None:
        super().__init__(handle, params)
        self._method: Any = None
        if self.scalar_baseline:
            self._uniform_baseline()

    def _explain_chunk(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        tf = import_tensorflow()
        inputs = self._inputs(images)
        onehot = np.eye(self._num_classes(images), dtype=np.float32)[targets]
        eager = self.handle.framework == "torch"
        with _tf_state(tf, eager=eager or "seed" in self.params, seed=self.params.get("seed")), \
                warnings.catch_warnings(), exact_float32():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")  # TorchWrapper's
            maps = np.asarray(self._attribute(tf, inputs, onehot), dtype=np.float32)
        return self._finish(maps.reshape(maps.shape[:3]) if maps.ndim == 4 else maps)

    def _attribute(self, tf: ModuleType, inputs: np.ndarray, onehot: np.ndarray) -> Any:
        """Return Xplique's explanation of one chunk (``(n, H, W, 1)``), image by image if reseeded per image."""
        method = self._explainer(tf)
        if not self.seed_per_image:
            return method.explain(inputs, onehot)
        maps = []
        for index in range(len(inputs)):
            with _tf_state(tf, eager=True, seed=self.params["seed"]):
                maps.append(np.asarray(method.explain(inputs[index:index + 1], onehot[index:index + 1])))
        return np.concatenate(maps)

    def _explainer(self, tf: ModuleType) -> Any:
        """The Xplique explainer, built on first use around the Keras model or a TorchWrapper."""
        if self._method is None:
            self._method = self._build(self._xplique_model(tf))
        return self._method

    def _build(self, model: Any) -> Any:
        """Create the Xplique explainer for ``model`` from :attr:`params`."""
        raise NotImplementedError

    def _finish(self, maps: np.ndarray) -> np.ndarray:
        """Post-process ``(n, H, W)`` maps (identity unless a method says otherwise)."""
        return maps

    def _xplique_model(self, tf: ModuleType) -> Any:
        """The Keras model itself, or the torch model wrapped for Xplique (eager mode restored after)."""
        if self.handle.framework == "keras":
            return self.handle.model
        from xplique.wrappers import TorchWrapper

        # Xplique sends its internal batches (64 perturbed or interpolated inputs) in one call: on a CPU they
        # run in passes of CPU_PASS (RISE and occlusion 1.4 times, Integrated Gradients 1.2 times faster on one
        # core for the SmallCNN at 64 px).
        model = ChunkedForward(self.handle.model, pass_size(self.handle.device)).eval()
        with _tf_state(tf, eager=False, seed=None), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="TF is set to run eagerly")  # undone by _tf_state
            return TorchWrapper(model, self.handle.device, is_channel_first=True, requires_grad=self.needs_grad)

    def _inputs(self, images: np.ndarray) -> np.ndarray:
        """Prepared images, channels last, as float32 NumPy (what Xplique takes)."""
        inputs = self.handle.prepare(images)
        if isinstance(inputs, torch.Tensor):
            return np.ascontiguousarray(inputs.detach().permute(0, 2, 3, 1).cpu().numpy())
        return np.asarray(inputs, dtype=np.float32)

    def _uniform_baseline(self) -> float:
        """The baseline as one scalar in model-input space (Xplique takes a single fill value)."""
        pixel = baseline_pixel(self.handle, self.params["baseline"])
        if not np.allclose(pixel, pixel[0]):
            values = [round(v, 4) for v in pixel.tolist()]
            raise UnsupportedMethod(f"baseline {self.params['baseline']!r} maps to a different value per channel "
                                    f"{values} under this model's normalisation, and Xplique fills with one value")
        return float(pixel[0])


class XpliqueSaliency(XpliqueExplainer):
    """Saliency: absolute input gradient, max over channels (Simonyan et al., 2014)."""

    spec = _spec("saliency", "gradient", "Saliency", PAPERS["simonyan2014"],
                 FORMULAS["saliency"], signed=False,
                 reduction="max", internal_batch_size=64, batch_size=64)
    note = "absolute gradient, max over channels"

    def _build(self, model: Any) -> Any:
        from xplique.attributions import Saliency

        return Saliency(model, batch_size=self.params["internal_batch_size"], reducer="max")


class XpliqueGradientInput(XpliqueExplainer):
    """Gradient times input, summed over channels (Shrikumar et al., 2016)."""

    spec = _spec("gradient_input", "gradient", "Gradient x Input", PAPERS["shrikumar2016"],
                 FORMULAS["input_x_gradient"], signed=True,
                 reduction="sum", internal_batch_size=64, batch_size=64)
    note = "normalised input times gradient, summed over channels"

    def _build(self, model: Any) -> Any:
        from xplique.attributions import GradientInput

        return GradientInput(model, batch_size=self.params["internal_batch_size"], reducer="sum")


class XpliqueIntegratedGradients(XpliqueExplainer):
    """Integrated Gradients, trapezoid rule on ``linspace(0, 1, steps)`` (Sundararajan et al., 2017)."""

    spec = _spec("integrated_gradients", "path", "Integrated Gradients", PAPERS["sundararajan2017"],
                 FORMULAS["integrated_gradients"],
                 signed=True, reduction="sum", baseline="black", steps=32, internal_batch_size=64,
                 batch_size=16)
    scalar_baseline = True
    choices = MappingProxyType({"baseline": _UNIFORM_BASELINES})
    note = "trapezoid rule on steps evenly spaced points from baseline to image (Xplique), summed over channels"

    def _build(self, model: Any) -> Any:
        from xplique.attributions import IntegratedGradients

        return IntegratedGradients(model, batch_size=self.params["internal_batch_size"], reducer="sum",
                                   steps=self.params["steps"], baseline_value=self._uniform_baseline())


class _GradientStatistic(XpliqueExplainer):
    """SmoothGrad-like methods: a statistic of gradients at Gaussian-noised copies."""

    reducer: ClassVar[str] = "mean"

    def _build(self, model: Any) -> Any:
        return self._xplique_class()(model, batch_size=self.params["internal_batch_size"], reducer=self.reducer,
                                     nb_samples=self.params["samples"], noise=float(self.params["noise"]))

    def _xplique_class(self) -> type:
        """The Xplique gradient-statistic class."""
        raise NotImplementedError


class XpliqueSmoothGrad(_GradientStatistic):
    """SmoothGrad: mean signed gradient over noisy copies (Smilkov et al., 2017)."""

    spec = _spec("smoothgrad", "sampling", "SmoothGrad", PAPERS["smilkov2017"],
                 _GRAD_STAT.format(stat=r"\sum_c \frac{1}{n}\sum_k g_k"), signed=True, reduction="sum",
                 samples=16, noise=0.15, internal_batch_size=64, batch_size=16, seed=0)
    reducer = "sum"
    note = "signed gradients averaged (no abs, Xplique), summed over channels"

    def _xplique_class(self) -> type:
        from xplique.attributions import SmoothGrad

        return SmoothGrad


class XpliqueVarGrad(_GradientStatistic):
    """VarGrad: variance of the gradients over noisy copies (Adebayo et al., 2018)."""

    spec = _spec("vargrad", "sampling", "VarGrad", PAPERS["adebayo2018"],
                 _GRAD_STAT.format(stat=r"\operatorname{mean}_c \operatorname{Var}_k(g_k)"), signed=False,
                 reduction="mean", samples=16, noise=0.15, internal_batch_size=64, batch_size=16, seed=0)
    note = "unbiased variance, mean over channels"

    def _xplique_class(self) -> type:
        from xplique.attributions import VarGrad

        return VarGrad


class XpliqueSquareGrad(_GradientStatistic):
    """SquareGrad (SmoothGrad-Squared): mean squared gradient over noisy copies (Hooker et al., 2019)."""

    spec = _spec("squaregrad", "sampling", "SquareGrad", PAPERS["hooker2019"],
                 _GRAD_STAT.format(stat=r"\operatorname{mean}_c \frac{1}{n}\sum_k g_k^2"), signed=False,
                 reduction="mean", samples=16, noise=0.15, internal_batch_size=64, batch_size=16, seed=0)
    note = "mean over channels"

    def _xplique_class(self) -> type:
        from xplique.attributions import SquareGrad

        return SquareGrad


class XpliqueOcclusion(XpliqueExplainer):
    """Occlusion: logit drop when a sliding square is set to the baseline (Zeiler & Fergus, 2014)."""

    spec = _spec("occlusion", "perturbation", "Occlusion", PAPERS["zeiler2014"],
                 r"\phi_i = \sum_{P \ni i}\big(f_t(x) - f_t(x_{P \leftarrow x'})\big)", signed=True,
                 reduction="none", baseline="black", patch_size=8, stride=4, internal_batch_size=64,
                 batch_size=16)
    scalar_baseline = True
    choices = MappingProxyType({"baseline": _UNIFORM_BASELINES})
    needs_grad = False
    note = "summed over the windows covering a pixel (Xplique's convention)"

    def _build(self, model: Any) -> Any:
        from xplique.attributions import Occlusion

        return Occlusion(model, batch_size=self.params["internal_batch_size"], patch_size=self.params["patch_size"],
                         patch_stride=self.params["stride"], occlusion_value=self._uniform_baseline())


class XpliqueRise(XpliqueExplainer):
    """RISE: logits averaged over random upsampled binary masks (Petsiuk et al., 2018)."""

    spec = _spec("rise", "perturbation", "RISE", PAPERS["petsiuk2018"],
                 r"M = \frac{\sum_k f_t(x \odot m_k + x'(1 - m_k))\,m_k}{\sum_k m_k}", signed=False,
                 reduction="none", baseline="black", samples=1000, grid_size=7, preservation=0.5,
                 internal_batch_size=64, batch_size=16, seed=0)
    scalar_baseline = True
    choices = MappingProxyType({"baseline": _UNIFORM_BASELINES})
    needs_grad = False
    seed_per_image = True
    note = "the same masks for every image (reseeded), bilinearly upsampled and randomly shifted"

    def _build(self, model: Any) -> Any:
        from xplique.attributions import Rise

        return Rise(model, batch_size=self.params["internal_batch_size"], nb_samples=self.params["samples"],
                    grid_size=self.params["grid_size"], preservation_probability=float(self.params["preservation"]),
                    mask_value=self._uniform_baseline())


class _Surrogate(XpliqueExplainer):
    """LIME-like methods on grid superpixels: one surrogate per image, reseeded with ``seed`` for each."""

    needs_grad = False
    seed_per_image = True

    def _mapping(self, tf: ModuleType) -> Any:
        """The ``map_to_interpret_space`` function: grid cells of an ``(H, W, C)`` image."""
        cells = self.params["grid"]

        def segments(image: Any) -> Any:
            return tf.constant(grid_segments(image.shape[0], image.shape[1], cells), dtype=tf.int32)

        return segments

    def _ref_value(self) -> np.ndarray:
        """The baseline colour, one value per channel in model-input space."""
        return baseline_pixel(self.handle, self.params["baseline"])


class XpliqueLime(_Surrogate):
    """LIME on grid superpixels with a ridge surrogate (Ribeiro et al., 2016)."""

    spec = _spec("lime", "surrogate", "LIME", PAPERS["ribeiro2016"],
                 FORMULAS["lime"],
                 signed=True, reduction="none", baseline="black", grid=8, samples=200, alpha=1.0,
                 kernel_width=45.0, internal_batch_size=64, batch_size=8, seed=0)
    choices = MappingProxyType({"baseline": _UNIFORM_BASELINES})
    note = "ridge surrogate, exponential Euclidean-distance kernel, cells kept with probability 1/2"

    def _build(self, model: Any) -> Any:
        from sklearn.linear_model import Ridge
        from xplique.attributions import Lime

        tf = import_tensorflow()
        return Lime(model, batch_size=self.params["internal_batch_size"],
                    interpretable_model=Ridge(alpha=float(self.params["alpha"])),
                    map_to_interpret_space=self._mapping(tf), ref_value=self._ref_value(),
                    nb_samples=self.params["samples"], kernel_width=float(self.params["kernel_width"]))


class XpliqueKernelShap(_Surrogate):
    """Kernel SHAP on grid superpixels (Lundberg & Lee, 2017)."""

    spec = _spec("kernel_shap", "surrogate", "Kernel SHAP", PAPERS["lundberg2017"],
                 FORMULAS["kernel_shap"], signed=True, reduction="none", baseline="black", grid=8, samples=200,
                 internal_batch_size=64, batch_size=8, seed=0)
    choices = MappingProxyType({"baseline": _UNIFORM_BASELINES})
    note = "Shapley kernel, linear regression surrogate"

    def _build(self, model: Any) -> Any:
        from xplique.attributions import KernelShap

        tf = import_tensorflow()
        return KernelShap(model, batch_size=self.params["internal_batch_size"], nb_samples=self.params["samples"],
                          map_to_interpret_space=self._mapping(tf), ref_value=self._ref_value())


class _Sensitivity(XpliqueExplainer):
    """Global-sensitivity methods on a coarse grid of masks (Sobol, HSIC): deterministic designs."""

    choices = MappingProxyType({"perturbation": ("inpainting", "blurring", "amplitude")})
    needs_grad = False
    note = ("quasi-Monte Carlo design (deterministic); inpainting sets masked cells to 0 in model-input space "
            "(grey); upsampled bicubically (Xplique)")

    def _build(self, model: Any) -> Any:
        return self._xplique_class()(model, grid_size=self.params["grid_size"], nb_design=self.params["nb_design"],
                                     perturbation_function=self.params["perturbation"],
                                     batch_size=self.params["internal_batch_size"])

    def _xplique_class(self) -> type:
        """The Xplique sensitivity class."""
        raise NotImplementedError


class XpliqueSobol(_Sensitivity):
    """Total Sobol indices of grid masks (Fel et al., 2021)."""

    spec = _spec("sobol", "perturbation", "Sobol Attribution", PAPERS["fel2021"],
                 r"S_{T_i} = \frac{\mathbb{E}_{M_{\sim i}}[\operatorname{Var}_{M_i}(f_t(x \odot M) \mid M_{\sim i})]}"
                 r"{\operatorname{Var}(f_t(x \odot M))}", signed=False, reduction="none", grid_size=8, nb_design=16,
                 perturbation="inpainting", internal_batch_size=64, batch_size=8)

    def _xplique_class(self) -> type:
        from xplique.attributions import SobolAttributionMethod

        return SobolAttributionMethod


class XpliqueHsic(_Sensitivity):
    """HSIC dependence between each grid mask and the logit (Novello et al., 2022)."""

    spec = _spec("hsic", "perturbation", "HSIC Attribution", PAPERS["novello2022"],
                 r"\mathcal{H}_i = \mathrm{HSIC}\big(M_i,\ f_t(x \odot M)\big)", signed=False, reduction="none",
                 grid_size=8, nb_design=256, perturbation="inpainting", internal_batch_size=64, batch_size=8)

    def _xplique_class(self) -> type:
        from xplique.attributions import HsicAttributionMethod

        return HsicAttributionMethod


class XpliqueGradCam(XpliqueExplainer):
    """Grad-CAM on a Keras convolution layer (Selvaraju et al., 2017); Keras models only."""

    spec = _spec("gradcam", "cam", "Grad-CAM", PAPERS["selvaraju2017"],
                 FORMULAS["gradcam"], signed=False,
                 reduction="none", frameworks=_KERAS, layer=None, internal_batch_size=64, batch_size=64)
    note = "upsampled bicubically by Xplique, overshoot below 0 clipped"

    def _build(self, model: Any) -> Any:
        from xplique.attributions import GradCAM

        return GradCAM(model, batch_size=self.params["internal_batch_size"], conv_layer=self.params["layer"])

    def _finish(self, maps: np.ndarray) -> np.ndarray:
        return np.maximum(maps, 0.0)


class XpliqueGradCamPP(XpliqueGradCam):
    """Grad-CAM++: Grad-CAM with higher-order weights (Chattopadhay et al., 2018); Keras models only."""

    spec = _spec("gradcampp", "cam", "Grad-CAM++", PAPERS["chattopadhay2018"],
                 r"M = \mathrm{up}\Big(\mathrm{ReLU}\big(\sum_k w_k A^k\big)\Big),\ w_k = \sum_{u,v} "
                 r"a^k_{uv}\,\mathrm{ReLU}\Big(\frac{\partial f_t}{\partial A^k_{uv}}\Big)", signed=False,
                 reduction="none", frameworks=_KERAS, layer=None, internal_batch_size=64, batch_size=64)

    def _build(self, model: Any) -> Any:
        from xplique.attributions import GradCAMPP

        return GradCAMPP(model, batch_size=self.params["internal_batch_size"], conv_layer=self.params["layer"])


#: Every Xplique explainer class, in the order the reports list them.
XPLIQUE_EXPLAINERS: tuple[type[XpliqueExplainer], ...] = (
    XpliqueSaliency, XpliqueGradientInput, XpliqueIntegratedGradients, XpliqueSmoothGrad, XpliqueVarGrad,
    XpliqueSquareGrad, XpliqueOcclusion, XpliqueRise, XpliqueLime, XpliqueKernelShap, XpliqueSobol, XpliqueHsic,
    XpliqueGradCam, XpliqueGradCamPP,
)
