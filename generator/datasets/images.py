"""Read image files into one uint8 RGB array, skipping the files that cannot be used.

The supported datasets (BFW, FairFace, CelebA's ``img_align_celeba``, UTKFace's
``.chip.jpg``) are already aligned face crops, so an image is only resized as a
whole (Pillow, bilinear); there is no face detection. An image whose aspect ratio
differs from the output's (CelebA's 178 x 218) is first centre-cropped (default),
padded with black, or stretched, as ``crop`` says, and counted in the notes.

A file that cannot be used is skipped and listed with the reason: missing,
empty, not an image, corrupt or truncated (Pillow's own check; truncated files
are not patched up), or larger than ``max_pixels``. Files that can be used but
need converting are counted in notes (``skipped.attrs["notes"]``, also logged):
grayscale, 16-bit (scaled to 8 bits), CMYK and palette images are converted to
RGB, transparency is composited on white, and the EXIF orientation is applied.
"""
from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from generator.datasets.tables import resolve_inside

__all__ = ["CROPS", "read_images"]

#: How an image whose aspect ratio differs from the output's is made to fit, in words.
CROPS = {"centre": "centre-cropped to it (the edges beyond it dropped; dataset.crop: centre)",
         "pad": "padded with black to it (dataset.crop: pad)",
         "resize": "stretched to it, the faces changing shape (dataset.crop: resize)"}

log = logging.getLogger(__name__)
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
_ORIENTATION = 0x0112


class _Skip(Exception):
    """The file cannot be used; the message is the reason."""


def read_images(root: str | Path, paths: Sequence[str], size: int | tuple[int, int], *,
                crop: str = "centre", max_pixels: int = 50_000_000,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Read, convert to RGB and resize the listed images.

    Parameters
    ----------
    root : str or Path
        The image root; ``paths`` are relative to it (and may not leave it).
    paths : sequence of str
        The images to read, e.g. ``FaceTable.table["path"]``.
    size : int or (int, int)
        Output side, or ``(height, width)``.
    crop : {"centre", "pad", "resize"}
        What becomes of an image of another aspect ratio before it is resized: its centred
        part of the output's aspect ratio (``centre``), the image padded with black to that
        ratio (``pad``), or the whole image stretched (``resize``). Counted in the notes.
    max_pixels : int
        Images with more pixels are skipped without being decoded.
    progress : callable, optional
        Called with ``1`` after each file (an increment, as ``tqdm.update`` takes).

    Returns
    -------
    images : numpy.ndarray of uint8, shape (M, H, W, 3)
        The usable images, in the order of ``paths``.
    skipped : pandas.DataFrame
        ``path`` and ``reason`` of each skipped file; ``skipped.attrs["notes"]``
        counts the conversions (e.g. ``"2 images: grayscale converted to RGB"``).
    kept : numpy.ndarray of bool, shape (len(paths),)
        Which paths gave an image; ``kept.sum() + len(skipped) == len(paths)``.

    Raises
    ------
    DataError
        If a path is absolute or leaves ``root`` (see
        :func:`~generator.datasets.tables.resolve_inside`).
    """
    height, width = (size, size) if isinstance(size, int) else size
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {sorted(CROPS)}, not {crop!r}")
    images = np.empty((len(paths), height, width, 3), dtype=np.uint8)
    kept, skipped, conversions, count = np.zeros(len(paths), dtype=bool), [], Counter(), 0
    for position, relative in enumerate(paths):
        try:
            image = _open_rgb(resolve_inside(root, relative), max_pixels, conversions)
        except _Skip as skip:
            skipped.append((str(relative), str(skip)))
        else:
            image = _fit(image, width / height, crop, conversions)
            images[count] = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
            kept[position], count = True, count + 1
        if progress is not None:
            progress(1)
    table = pd.DataFrame(skipped, columns=["path", "reason"], dtype=object)
    table.attrs["notes"] = tuple(f"{n} image{'s' * (n > 1)}: {what}" for what, n in sorted(conversions.items()))
    for note in table.attrs["notes"]:
        log.info("%s", note)
    return (images if count == len(paths) else images[:count].copy()), table, kept


def _fit(image: Image.Image, aspect: float, crop: str, conversions: Counter) -> Image.Image:
    """``image`` brought to the aspect ratio ``aspect`` (width / height) as ``crop`` says; counted when it changed."""
    w, h = image.size
    if abs(w - h * aspect) <= 1:
        return image
    conversions[f"another aspect ratio than the output's, {CROPS[crop]}"] += 1
    if crop == "resize":
        return image
    if crop == "centre":
        if w > h * aspect:  # too wide: keep the centred columns
            keep = round(h * aspect)
            return image.crop(((w - keep) // 2, 0, (w - keep) // 2 + keep, h))
        keep = round(w / aspect)
        return image.crop((0, (h - keep) // 2, w, (h - keep) // 2 + keep))
    target = (max(w, round(h * aspect)), max(h, round(w / aspect)))
    canvas = Image.new("RGB", target, (0, 0, 0))
    canvas.paste(image, ((target[0] - w) // 2, (target[1] - h) // 2))
    return canvas


def _open_rgb(path: Path, max_pixels: int, conversions: Counter) -> Image.Image:
    """The decoded, upright RGB image at ``path``; raises :class:`_Skip` with the reason it cannot be used."""
    if not path.is_file():
        raise _Skip("file not found" if not path.exists() else "not a file")
    if path.stat().st_size == 0:
        raise _Skip("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                pixels = image.width * image.height
                if pixels > max_pixels:
                    raise _Skip(f"too large: {pixels:,} pixels ({image.width}x{image.height}) exceed the limit "
                                f"of {max_pixels:,}")
                image.load()
                return _to_rgb(_upright(image, conversions), conversions)
    except Image.DecompressionBombError as exc:
        raise _Skip(f"too large: {exc}") from None
    except UnidentifiedImageError:
        raise _Skip("not an image file that Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _Skip(f"corrupt or truncated image: {exc}") from None


def _upright(image: Image.Image, conversions: Counter) -> Image.Image:
    """The image turned by its EXIF orientation tag (a copy either way)."""
    if image.getexif().get(_ORIENTATION, 1) != 1:
        conversions["EXIF orientation applied"] += 1
    return ImageOps.exif_transpose(image)


def _to_rgb(image: Image.Image, conversions: Counter) -> Image.Image:
    """8-bit RGB: 16-bit scaled by 1/257, transparency composited on white, other modes converted."""
    if image.mode in _SIXTEEN_BIT:
        conversions["16-bit scaled to 8 bits"] += 1
        scaled = np.clip(np.round(np.asarray(image, dtype=np.float64) / 257), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L").convert("RGB")
    if image.mode in _ALPHA or "transparency" in image.info:
        conversions["transparency composited on white"] += 1
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    if image.mode != "RGB":
        conversions["grayscale converted to RGB" if image.mode in ("L", "1") else
                    f"{image.mode} converted to RGB"] += 1
    return image.convert("RGB")
