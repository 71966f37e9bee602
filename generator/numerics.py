"""Small numerical helpers shared by the stages (NumPy only)."""
from __future__ import annotations

import numpy as np

__all__ = ["softmax", "to_uint8"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of ``logits`` ``(N, C)``, float64.

    Computed in float64 whatever the input: NumPy's float32 ``exp`` differs by an ulp between its
    SIMD paths (AVX2, AVX-512), so float32 probabilities could differ between machines; float64's
    differ by about 1e-16 and round to the same float32 and to the same printed digits.
    """
    values = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 255] (perturbed, interpolated) as the uint8 images the explainers take: rounded, clipped."""
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)
