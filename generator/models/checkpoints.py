"""PyTorch weights on disk and the process's CPU threads: the framework calls the pipeline's stages make.

The stages (:mod:`generator.pipeline`) save, load and hash models only through these functions, so
the pipeline itself holds no PyTorch code. Each function imports torch when called: a fully cached
build never imports it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["cpu_threads", "load_into", "load_state", "save_state", "state_dict_hash", "training_device",
           "weights_match"]


def state_dict_hash(state: dict[str, Any]) -> str:
    """SHA-256 over a state_dict's names, dtypes, shapes and values (file-format independent), truncated."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}|{array.dtype}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def save_state(model: Any, path: Path) -> str:
    """Write ``model``'s state_dict to ``path``; return its :func:`state_dict_hash`."""
    import torch

    state = model.state_dict()
    torch.save(state, path)
    return state_dict_hash(state)


def load_state(path: Path) -> dict[str, Any]:
    """The state_dict saved at ``path``, on the CPU (tensors only: ``weights_only``)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def load_into(module: Any, path: Path) -> Any:
    """``module`` with the weights saved at ``path``, in eval mode."""
    module.load_state_dict(load_state(path))
    return module.eval()


def weights_match(path: Path, content_hash: str | None) -> bool:
    """Whether the weights at ``path`` hash to ``content_hash`` (False for a missing file or hash)."""
    return bool(content_hash) and Path(path).is_file() and state_dict_hash(load_state(path)) == content_hash


def cpu_threads(threads: int) -> int:
    """Set PyTorch's intra-op CPU threads of this process to ``threads`` (at least 1); return the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    return previous


def training_device() -> str:
    """What trains here, as the shipped weights' ``made_on`` records it: the GPU's name, or the CPU's."""
    from generator.models.device import torch_device
    from generator.portable import cpu_facts

    device = torch_device()
    if device.type == "cuda":
        import torch

        return f"GPU {torch.cuda.get_device_name(device)}"
    return cpu_facts()["cpu"]
