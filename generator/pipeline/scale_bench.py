"""``make bench-scale``: the FairFace example config at its own scale, timed against its estimates.

The config is ``data/configs/fairface.yaml`` as shipped (a torchvision ResNet-18 at 224 px, the
default methods, ``per_group: 2`` over race x age, its evaluation budget), pointed at a replica:
FairFace's layout filled with the demo's public-domain photographs and a seeded, untrained
ResNet-18 (:mod:`generator.datasets.replica`), so the cost is a real audit's while nothing is
downloaded. It prints ``check``'s estimate of the explanations stage, then builds (without the
site) and prints the build's own estimate, the stage timings and how far each estimate was from
the time the explanations stage really took. The numbers are written to
``<workdir>/scale-bench.json``.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Sequence
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path

import yaml

__all__ = ["main", "replica_config"]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "data" / "configs" / "fairface.yaml"


def replica_config(workdir: Path, *, images: int, example: Path = EXAMPLE) -> Path:
    """Write the replica and a copy of ``example`` that reads it; return the config's path."""
    from generator.datasets.replica import write_fairface_replica, write_resnet18

    workdir = Path(workdir).resolve()
    raw = yaml.safe_load(example.read_text(encoding="utf-8"))
    size = int(raw["dataset"].get("image_size", 224))
    root, labels = write_fairface_replica(workdir / "data", images=images, size=size)
    raw["dataset"].update(root=str(root), annotations=str(labels))
    for model in raw["models"]:
        model["path"] = str(write_resnet18(workdir / "models" / Path(model["path"]).name,
                                           num_classes=int(model.get("num_classes", 2))))
    # the result pages go to a copy of the site's sources, so that the project's own site is left alone
    shutil.copy2(REPO / "mkdocs.yml", workdir / "mkdocs.yml")
    shutil.copytree(REPO / "docs", workdir / "docs", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("results", "real-faces", "vendor", "scale-bench"))
    raw["output"] = {"results_dir": str(workdir / "docs" / "results"), "slides_dir": str(workdir / "slides"),
                     "cache_dir": str(workdir / "cache"), "site_dir": str(workdir / "site"),
                     "mkdocs_config": str(workdir / "mkdocs.yml"), "node_modules": str(REPO / "node_modules")}
    path = workdir / "fairface-replica.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


class _Tee(StringIO):
    """Keep what is written and pass it on (the build's plan goes to stderr)."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text)
        return super().write(text)


def _minutes(text: str) -> float | None:
    """Seconds of the build's printed estimate of the stage ("about 41 min", "about 1.2 h", "about 50 s").

    The total with the sanity check ("in all about ...") where the plan prints one, else the maps and metrics.
    """
    found = (re.search(r"; in all about ([\d.]+) (s|min|h)", text)
             or re.search(r"estimate on this machine for the maps and these metrics: about ([\d.]+) (s|min|h)", text))
    if not found:
        return None
    return float(found.group(1)) * {"s": 1, "min": 60, "h": 3600}[found.group(2)]


def main(argv: Sequence[str] | None = None) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as the command line does: TensorFlow's C++ notes off
    from generator.config import load_config
    from generator.pipeline import check as checks
    from generator.pipeline.build import build

    parser = argparse.ArgumentParser(prog="python -m generator.pipeline.scale_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="data/cache/scale-bench", help="replica, cache and outputs go here")
    parser.add_argument("--images", type=int, default=1000, help="images in the replica (the config's "
                                                                   "max_images caps what is read)")
    parser.add_argument("--estimate-only", action="store_true", help="print check's estimate and stop")
    args = parser.parse_args(argv)
    config = load_config(replica_config(Path(args.workdir), images=args.images))
    labels, sizes, images = checks._dataset(config, [])
    handles = {m.name: checks._model(config, m, labels)[1] for m in config.models}
    n, evaluated, check_seconds = checks.estimate(config, sizes, images, handles)
    print(f"check: at most {n} images x {len(config.attribution.methods)} methods, metrics on {evaluated}; "
          f"explanations estimated at {check_seconds / 60:.1f} min")
    report = {"images_at_most": n, "evaluation_images": evaluated, "check_estimate_s": check_seconds,
              "methods": list(config.attribution.methods), "params": config.attribution.params}
    if not args.estimate_only:
        start = time.perf_counter()
        tee = _Tee(sys.stderr)
        with redirect_stderr(tee):
            result = build(config, site=False)
        wall = time.perf_counter() - start
        actual = result.timings.get("explanations", float("nan"))
        planned = _minutes(tee.getvalue())
        report.update(wall_s=wall, timings=result.timings, build_estimate_s=planned, explanations_s=actual,
                      check_ratio=actual / check_seconds, build_ratio=(actual / planned) if planned else None)
        print(f"build: {wall / 60:.1f} min in all; explanations {actual / 60:.1f} min against check's estimate "
              f"{check_seconds / 60:.1f} min (x{actual / check_seconds:.2f})"
              + (f" and the build's {planned / 60:.1f} min (x{actual / planned:.2f})" if planned else ""))
        print("stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items()))
    out = Path(args.workdir) / "scale-bench.json"
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
