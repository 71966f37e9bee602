"""The small convolutional network audited by the generator, and its input scaling.

The network is deliberately small (four 3x3 convolution blocks, global average
pooling, one linear layer) so that a fair and a biased model can both be trained
on a laptop CPU in well under a minute each. Every module has a readable dotted
name (``features.conv1`` ... ``features.conv4``, ``gap``, ``classifier``) so a
user can pick a Grad-CAM layer by name; :mod:`generator.models.keras_twin` gives
the Keras layers the same names with dots replaced by underscores.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from generator.errors import ConfigError, DataError

__all__ = ["MEAN", "STD", "SmallCNN", "check_images", "normalise", "preprocess", "scale_batch", "uint8_tensor"]

#: Per-channel (R, G, B) mean subtracted after scaling uint8 pixels to [0, 1].
MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
#: Per-channel (R, G, B) standard deviation divided by after subtracting MEAN.
STD: tuple[float, float, float] = (0.5, 0.5, 0.5)


def check_images(images: np.ndarray, *, name: str = "images", min_size: int = 1) -> None:
    """Refuse anything that is not a batch of RGB uint8 images in NHWC layout.

    Parameters
    ----------
    images : np.ndarray
        Candidate array, expected of shape ``(N, H, W, 3)`` and dtype ``uint8``.
    name : str
        Argument name used in the error message.
    min_size : int
        Smallest accepted height and width.

    Raises
    ------
    DataError
        If the type, dtype, shape or size is not accepted.
    """
    if not isinstance(images, np.ndarray):
        raise DataError(f"{name} must be a numpy array of shape (N, H, W, 3) and dtype uint8, "
                        f"got {type(images).__name__}")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"{name} must have shape (N, H, W, 3) and dtype uint8 (RGB, channels last), "
                        f"got shape {images.shape} and dtype {images.dtype}")
    if images.shape[0] == 0 or min(images.shape[1:3]) < min_size:
        raise DataError(f"{name} must hold at least one image of at least {min_size}x{min_size} "
                        f"pixels, got shape {images.shape}")


def uint8_tensor(images: np.ndarray) -> torch.Tensor:
    """Wrap a uint8 NHWC array as a CPU tensor without expanding it to float.

    Parameters
    ----------
    images : np.ndarray
        Images of shape ``(N, H, W, 3)``, dtype ``uint8``.

    Returns
    -------
    torch.Tensor
        uint8 tensor of the same shape; it shares memory with ``images`` unless
        the array is read-only or not C-contiguous, in which case it is a copy.

    Raises
    ------
    DataError
        If the images are not ``(N, H, W, 3)`` uint8.
    """
    check_images(images)
    if not (images.flags.c_contiguous and images.flags.writeable):
        images = np.array(images, order="C", copy=True)
    return torch.from_numpy(images)


def scale_batch(batch_uint8_nhwc: torch.Tensor) -> torch.Tensor:
    """Normalise a uint8 NHWC tensor into the float32 NCHW input of the network.

    ``x = (pixel / 255 - MEAN) / STD`` per channel, i.e. values in ``[-1, 1]``.
    The result stays on the device of the input, so a batch can be moved to the
    GPU as compact uint8 before it is expanded to float32.

    Parameters
    ----------
    batch_uint8_nhwc : torch.Tensor
        Tensor of shape ``(N, H, W, 3)``, dtype ``torch.uint8``.

    Returns
    -------
    torch.Tensor
        Contiguous float32 tensor of shape ``(N, 3, H, W)``.
    """
    x = batch_uint8_nhwc.permute(0, 3, 1, 2).to(torch.float32) / 255.0
    mean = torch.tensor(MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def preprocess(images_uint8_nhwc: np.ndarray) -> torch.Tensor:
    """Turn uint8 NHWC images into the normalised NCHW float32 tensor the network takes.

    Parameters
    ----------
    images_uint8_nhwc : np.ndarray
        Images of shape ``(N, H, W, 3)``, dtype ``uint8``.

    Returns
    -------
    torch.Tensor
        Contiguous float32 tensor of shape ``(N, 3, H, W)`` on the CPU, equal to
        ``(images / 255 - MEAN) / STD`` per channel.

    Raises
    ------
    DataError
        If the images are not ``(N, H, W, 3)`` uint8.
    """
    return scale_batch(uint8_tensor(images_uint8_nhwc))


def normalise(images_uint8_nhwc: np.ndarray) -> np.ndarray:
    """Return :func:`preprocess` as a channels-last NumPy array, the Keras twin's input.

    Parameters
    ----------
    images_uint8_nhwc : np.ndarray
        Images of shape ``(N, H, W, 3)``, dtype ``uint8``.

    Returns
    -------
    np.ndarray
        Float32 array of shape ``(N, H, W, 3)``, element for element equal to
        ``preprocess(images).permute(0, 2, 3, 1)``.

    Raises
    ------
    DataError
        If the images are not ``(N, H, W, 3)`` uint8.
    """
    return np.ascontiguousarray(preprocess(images_uint8_nhwc).permute(0, 2, 3, 1).numpy())


def _conv_block(index: int, in_channels: int, out_channels: int) -> list[tuple[str, nn.Module]]:
    """Return the named modules of one ``conv3x3 -> BatchNorm -> ReLU -> maxpool 2`` block."""
    return [
        (f"conv{index}", nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)),
        (f"bn{index}", nn.BatchNorm2d(out_channels)),
        (f"relu{index}", nn.ReLU()),
        (f"pool{index}", nn.MaxPool2d(kernel_size=2)),
    ]


class SmallCNN(nn.Module):
    """Four-block convolutional classifier for small RGB face crops.

    ``features`` holds four blocks ``conv3x3 (padding 1) -> BatchNorm -> ReLU ->
    MaxPool2d(2)`` with ``width, 2*width, 4*width, 4*width`` channels; ``gap``
    averages each channel over space; ``classifier`` is a linear layer to the
    logits. Batch normalisation is what lets the network pick up the small mouth
    region (without it, training stays at chance on the synthetic smile task); in
    eval mode it is a fixed per-channel affine map, which the Keras twin
    reproduces exactly. There is no dropout.

    Parameters
    ----------
    num_classes : int
        Number of output logits (at least 2).
    width : int
        Channels of the first convolution (at least 1).

    Raises
    ------
    ConfigError
        If ``num_classes`` or ``width`` is out of range.

    Notes
    -----
    Input: float32 ``(N, 3, H, W)`` normalised by :func:`preprocess`, with
    ``H, W >= 16``; output: logits ``(N, num_classes)``.
    """

    #: Dotted name of the last convolution, the default Grad-CAM layer.
    cam_layer_name: ClassVar[str] = "features.conv4"
    #: Smallest height and width the four poolings accept.
    min_input_size: ClassVar[int] = 16

    def __init__(self, *, num_classes: int = 2, width: int = 16) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if not isinstance(width, int) or width < 1:
            raise ConfigError(f"width must be an integer >= 1, got {width!r}")
        self.num_classes = num_classes
        self.width = width
        self.channels = (width, 2 * width, 4 * width, 4 * width)
        layers: list[tuple[str, nn.Module]] = []
        for index, (c_in, c_out) in enumerate(zip((3, *self.channels[:-1]), self.channels), start=1):
            layers += _conv_block(index, c_in, c_out)
        self.features = nn.Sequential(OrderedDict(layers))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(self.channels[-1], num_classes)

    @property
    def embedding_dim(self) -> int:
        """Length of the vector returned by :meth:`embed`."""
        return self.channels[-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the globally pooled feature vector, shape ``(N, embedding_dim)``.

        Parameters
        ----------
        x : torch.Tensor
            Normalised input of shape ``(N, 3, H, W)``.

        Returns
        -------
        torch.Tensor
            The input of the classifier; used as a face embedding.
        """
        return torch.flatten(self.gap(self.features(x)), start_dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits, shape ``(N, num_classes)``, for normalised input ``x``."""
        return self.classifier(self.embed(x))
