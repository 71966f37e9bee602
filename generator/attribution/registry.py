"""The registry of attribution methods: look a method up by name and build it for a model.

Adding a method is one class (in :mod:`generator.attribution.captum_methods` or
:mod:`generator.attribution.xplique_methods`) plus its place in that module's
tuple of explainers; its documentation and its place in every gallery follow
from :data:`REGISTRY`.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from generator.attribution.base import Explainer, MethodSpec, check_framework, closest
from generator.attribution.captum_methods import CAPTUM_EXPLAINERS
from generator.attribution.handles import ModelHandle
from generator.attribution.xplique_methods import XPLIQUE_EXPLAINERS
from generator.errors import ConfigError, DataError

__all__ = ["REGISTRY", "available", "build_explainer", "check_maps", "explainer_class"]

_CLASSES: Mapping[str, type[Explainer]] = MappingProxyType(
    {cls.spec.name: cls for cls in (*CAPTUM_EXPLAINERS, *XPLIQUE_EXPLAINERS)})

#: Every registered method by name (``"captum.saliency"``, ``"xplique.rise"``, ...), read-only.
REGISTRY: Mapping[str, MethodSpec] = MappingProxyType({name: cls.spec for name, cls in _CLASSES.items()})


def available(framework: str | None = None) -> list[str]:
    """Return the registered method names, sorted, optionally only those supporting ``framework``.

    Parameters
    ----------
    framework : {"torch", "keras"}, optional
        Keep only methods that can explain models of this framework.

    Returns
    -------
    list of str
        Method names such as ``"captum.integrated_gradients"``.
    """
    return sorted(name for name, spec in REGISTRY.items() if framework is None or framework in spec.frameworks)


def explainer_class(name: str) -> type[Explainer]:
    """Return the explainer class registered under ``name``.

    Raises
    ------
    ConfigError
        If no method has this name; the message lists the available names, closest first.
    """
    if name not in _CLASSES:
        raise ConfigError(f"unknown attribution method {name!r}; available methods (closest first): "
                          f"{closest(str(name), list(_CLASSES))}")
    return _CLASSES[name]


def build_explainer(name: str, handle: ModelHandle, params: Mapping[str, Any] | None = None) -> Explainer:
    """Build the explainer ``name`` for a model, with parameters overriding the method's defaults.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`.
    handle : ModelHandle
        The model to explain.
    params : Mapping, optional
        Parameter overrides; see ``REGISTRY[name].defaults`` for the accepted keys.

    Returns
    -------
    Explainer
        Ready to call :meth:`~generator.attribution.base.Explainer.explain` on many images.

    Raises
    ------
    ConfigError
        If the name is unknown (available names listed, closest first), a parameter key is
        unknown (accepted keys listed), a value is not accepted, or a layer is not in
        ``handle.layer_names`` (the five closest names listed).
    UnsupportedMethod
        If the method cannot explain a model of ``handle.framework`` (the reason is given).
    """
    cls = explainer_class(name)
    check_framework(cls.spec, handle)
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"parameters of {name} must be a mapping, got {type(params).__name__}")
    return cls(handle, params)


def check_maps(maps: np.ndarray) -> dict[str, Any]:
    """Count the maps that must not be plotted as valid ones.

    Parameters
    ----------
    maps : np.ndarray
        Attribution maps ``(N, H, W)``.

    Returns
    -------
    dict
        ``finite`` (bool, every value finite), ``n_nan`` and ``n_inf`` (counts of values),
        ``all_zero`` (number of maps that are zero everywhere).

    Raises
    ------
    DataError
        If ``maps`` is not a 3-D numeric array.
    """
    array = np.asarray(maps)
    if array.ndim != 3 or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"maps must be a numeric array (N, H, W), got shape {array.shape} and dtype {array.dtype}")
    n_nan, n_inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
    all_zero = int((array.reshape(len(array), -1) == 0).all(axis=1).sum())
    return {"finite": n_nan == 0 and n_inf == 0, "n_nan": n_nan, "n_inf": n_inf, "all_zero": all_zero}
