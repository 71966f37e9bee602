"""Attribution engine: saliency maps from Captum (PyTorch) and Xplique (TensorFlow) behind one interface.

Build a :class:`ModelHandle` for a model (:func:`torch_handle`, :func:`keras_handle`),
then an explainer by name (:func:`build_explainer`, names in :data:`REGISTRY`), and
call :meth:`Explainer.explain` on uint8 images: one float32 map per image.
TensorFlow is imported only when an Xplique method first explains something.
"""
from __future__ import annotations

from generator.attribution.base import (
    BASELINES,
    Explainer,
    MethodSpec,
    UnsupportedMethod,
)
from generator.attribution.handles import ModelHandle, keras_handle, torch_handle
from generator.attribution.registry import (
    REGISTRY,
    available,
    build_explainer,
    check_maps,
)
from generator.attribution.selection import select_images

__all__ = [
    "BASELINES",
    "REGISTRY",
    "Explainer",
    "MethodSpec",
    "ModelHandle",
    "UnsupportedMethod",
    "available",
    "build_explainer",
    "check_maps",
    "keras_handle",
    "select_images",
    "torch_handle",
]
