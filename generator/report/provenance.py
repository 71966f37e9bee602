"""Facts about the software a build ran with, for the reproducibility page."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "environment_facts", "git_commit", "release_year"]

PACKAGES = ("torch", "torchvision", "tensorflow", "keras", "captum", "xplique", "fairlearn", "scikit-learn",
            "numpy", "pandas", "matplotlib", "mkdocs", "mkdocs-material")


def environment_facts() -> dict[str, object]:
    """Python and package versions and the git commit of the working tree."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"python": platform.python_version(), "packages": versions, "git_commit": git_commit(),
            "machine": machine_facts()}


def machine_facts() -> dict[str, str]:
    """CPU, the kernels torch uses, the threads of training, and the GPU (if any)."""
    import torch

    from generator.portable import TRAINING_THREADS, cpu_facts, kernel_state

    facts = {**cpu_facts(), **kernel_state(), "torch_threads": str(torch.get_num_threads()),
             "training_threads": str(TRAINING_THREADS)}
    facts["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)"
    return facts


def git_commit(folder: Path | None = None) -> str:
    """The commit hash of the repository (with '+dirty' for uncommitted changes), or 'unknown'."""
    cwd = str(folder or Path.cwd())
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def release_year(folder: Path | None = None) -> str:
    """The year a citation gives: ``SOURCE_DATE_EPOCH``'s, else the git commit's, else this year.

    Not the build's clock, so that two builds of one commit cite with the same bytes.
    """
    import os
    from datetime import datetime, timezone

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return str(datetime.fromtimestamp(int(epoch), tz=timezone.utc).year)
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%cs"], cwd=str(folder or Path.cwd()),
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout[:4].isdigit():
            return out.stdout[:4]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return str(datetime.now(tz=timezone.utc).year)
