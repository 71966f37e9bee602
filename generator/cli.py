"""Command line: ``python -m generator build --config FILE``."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from generator.errors import GeneratorError

__all__ = ["main"]

DESCRIPTION = """\
Audit face-image classifiers for bias and explain them.

`build` reads one YAML config, makes (or loads) the faces and the models,
computes results by group, and writes the result pages (docs/results/),
the lecture deck (slides/build/) and the site (site/). Every stage is
cached under data/cache/ by the hash of its inputs, so a rerun only redoes
what changed and an interrupted run resumes where it stopped.

Start with the embedded default:
  python -m generator build --config data/configs/default.yaml
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m generator", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build = commands.add_parser("build", help="generate results, pages, deck and site from a config",
                                description="Generate results, pages, deck and site from one YAML config.")
    build.add_argument("--config", required=True, metavar="FILE", help="YAML config (see data/configs/)")
    build.add_argument("--no-site", action="store_true", help="write pages and deck but do not run mkdocs")
    build.add_argument("--slides-pdf", action="store_true", help="also export the deck to PDF (needs chromium)")
    build.add_argument("--engine", choices=("local", "ray"), help="where the maps are computed (execution.engine)")
    build.add_argument("--workers", type=int, metavar="N", help="local worker processes, or CPUs of a local Ray "
                                                              "cluster (execution.workers)")
    build.add_argument("--address", metavar="ADDR", help="Ray cluster to join: auto or HOST:PORT (execution.address)")
    build.add_argument("-v", "--verbose", action="count", default=0,
                       help="log each stage and its time; -v -v also shows TensorFlow's and fontTools' own logs")
    check = commands.add_parser("check", help="validate a config and exit",
                                description="Validate a YAML config and print the settings it resolves to.")
    check.add_argument("--config", required=True, metavar="FILE")
    layers = commands.add_parser("layers", help="list each model's layers with output shapes (to pick a CAM layer)",
                                 description="Load the models a config names and list their layers with output "
                                             "shapes; layers with a 4-D output can serve as cam_layer.")
    layers.add_argument("--config", required=True, metavar="FILE")
    layers.add_argument("--model", metavar="NAME", help="only this model (default: all)")
    weights = commands.add_parser("weights", help="train the built-in models of every replicate into data/weights/",
                                  description="Train the built-in models of every replicate of a config and write "
                                              "them to data/weights/ (shipped with the project; see `make weights`).")
    weights.add_argument("--config", required=True, metavar="FILE")
    weights.add_argument("--workers", type=int, default=2, help="trainings side by side (each uses one thread)")
    weights.add_argument("--force", action="store_true",
                         help="retrain weights that are already there under their key (default: keep them)")
    commands.add_parser("stages", help="list the pipeline's stages: what each reads and makes, its code",
                        description="List the stages of a build in order (generator/pipeline/graph.py): the results "
                                    "each reads, what it makes, and the modules whose source is part of its cache key.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status (2 for a user error)."""
    args = _parser().parse_args(argv)
    verbosity = getattr(args, "verbose", 0)
    logging.basicConfig(level=logging.INFO if verbosity else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if verbosity < 2:  # TensorFlow's C++ start-up lines (CUDA probing on a CPU machine) and fontTools' subsetting
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # errors that matter raise in Python
        logging.getLogger("fontTools").setLevel(logging.WARNING)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.function retracing notes of Xplique's loops
    try:
        return _run(args)
    except GeneratorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only or full output folder, a file vanishing under us
        where = f" '{err.filename}'" if err.filename else ""
        print(f"error: cannot read or write{where}: {err.strerror or err}. Finished stages are cached; fix the "
              "folder (permissions, free space) and run the same command again to resume", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished stages are cached; run the same command again to resume", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from generator.config import load_config

    if args.command == "stages":
        from generator.pipeline.graph import stage_table

        print(stage_table())
        return 0
    config = load_config(args.config)
    if args.command == "check":
        import yaml

        from generator.pipeline.check import check

        print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
        for line in check(config):
            print(f"ok: {line}")
        return 0
    if args.command == "layers":
        return _layers(config, args.model)
    if args.command == "weights":
        from generator.pipeline.stages import SHIPPED_WEIGHTS
        from generator.pipeline.weights import make_weights

        keys = make_weights(config, SHIPPED_WEIGHTS, workers=max(1, args.workers), force=args.force)
        print(f"wrote {len(keys)} models to {SHIPPED_WEIGHTS}" + ("" if args.force else
              " (weights already there under their key were kept; --force retrains them)"))
        return 0
    from generator.pipeline.build import build

    config = _with_execution(config, args)
    result = build(config, site=not args.no_site, slides_pdf=True if args.slides_pdf else None)
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    print(f"results: {result.results_dir}  deck: {result.deck_html}  site: {result.site_dir or '(not built)'}")
    print(f"time: {parts}")
    return 0


def _with_execution(config, args: argparse.Namespace):
    """The config with ``execution`` overridden by --engine, --workers and --address (checked like the file)."""
    from generator.config import parse_config

    given = {key: getattr(args, key) for key in ("engine", "workers", "address") if getattr(args, key) is not None}
    if not given:
        return config
    raw = config.model_dump(mode="python")
    raw["execution"] = {**raw["execution"], **given}
    return parse_config(raw, source=f"{args.config} with --{' --'.join(given)}")


def _layers(config, only: str | None) -> int:
    """Print the layer table of each model (default models are built untrained: layers do not need weights)."""
    from types import SimpleNamespace

    from generator.errors import ConfigError
    from generator.models.layers import format_layers, list_layers

    names = [m.name for m in config.models]
    if only is not None and only not in names:
        raise ConfigError(f"--model '{only}': no such model in the config; models: {names}")
    for model in config.models:
        if only is not None and model.name != only:
            continue
        if model.kind == "default":
            from generator.models.adapters import Preprocessing
            from generator.models.nets import SmallCNN
            from generator.pipeline.stages import image_size

            size = image_size(config)
            net = SmallCNN(num_classes=2, width=config.training.width).eval()
            loaded = SimpleNamespace(name=model.name, framework="torch", model=net, cam_layer=SmallCNN.cam_layer_name,
                                     preprocessing=Preprocessing(size=(size, size)))
        else:
            from generator.pipeline.stages import _load_file_model

            loaded = _load_file_model(model)
        print(f"== model '{model.name}' ({model.kind}); CAM layer in use: {loaded.cam_layer}")
        print(format_layers(list_layers(loaded)))
    return 0
