"""The command line as a user meets it: exit codes, one-line errors, the `layers` table."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "generator", *args], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def assert_no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr


def test_check_reports_each_typo_on_its_own_line(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("seed: 1\ntrainng:\n  epochs: 2\nreport:\n  titel: x\n")
    done = cli("check", "--config", str(config))
    assert done.returncode == 2, done
    assert_no_traceback(done)
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.lstrip().startswith("- ")]
    assert len(errors) == 2, done.stderr
    (report,) = [line for line in errors if "report.titel" in line]
    (training,) = [line for line in errors if "'trainng'" in line]
    assert "did you mean 'title'" in report
    assert "did you mean 'training'" in training
    assert str(config) in done.stderr


def test_check_accepts_the_default_config():
    done = cli("check", "--config", "data/configs/default.yaml")
    assert done.returncode == 0, done.stderr
    assert "models:" in done.stdout


@pytest.fixture(scope="module")
def user_audit(tmp_path_factory):
    """A CSV dataset of 48-px faces and a class-file model with 2 outputs, as a user brings them."""
    import numpy as np
    import pandas as pd
    import torch
    from PIL import Image

    from generator.datasets.synthetic import SyntheticParams, generate

    root = tmp_path_factory.mktemp("user")
    faces = generate(SyntheticParams(image_size=48, images_per_identity=10,
                                     identities={"train_fair": 0, "train_biased": 0, "eval": 2}), seed=1)
    rows = []
    for k, index in enumerate(np.flatnonzero(faces.table["split"] == "eval")):
        (root / "img").mkdir(exist_ok=True)
        Image.fromarray(faces.images[index]).save(root / f"img/{k}.png")
        rows.append({"image": f"img/{k}.png", "gender": ["female", "male"][k % 2],
                     "tone": faces.table.loc[index, "skin_tone"]})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    (root / "net.py").write_text("import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"
                                 "    def __init__(self, outputs=2):\n        super().__init__()\n"
                                 "        self.conv = nn.Conv2d(3, 4, 3)\n        self.head = nn.Linear(4, outputs)\n\n"
                                 "    def forward(self, x):\n        return self.head(self.conv(x).mean(dim=(2, 3)))\n")
    import importlib.util

    spec = importlib.util.spec_from_file_location("user_net", root / "net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for outputs in (2, 3):
        torch.save(module.Net(outputs).state_dict(), root / f"net{outputs}.pt")
    return root


def _user_config(root, *, label="gender", cam_layer=None, outputs=2):
    import yaml

    model = {"name": "mine", "kind": "pytorch", "class_file": str(root / "net.py"), "class_name": "Net",
             "init_args": {"outputs": outputs}, "path": str(root / f"net{outputs}.pt"),
             "preprocessing": {"size": 48, "mean": [0.5] * 3, "std": [0.5] * 3}}
    if cam_layer:
        model["cam_layer"] = cam_layer
    raw = {"dataset": {"kind": "csv", "root": str(root), "annotations": str(root / "labels.csv"), "label": label,
                       "label_values": ["female", "male"], "attributes": ["tone"], "image_size": 48},
           "models": [model], "attribution": {"methods": ["captum.saliency"], "sanity_methods": ["captum.saliency"]}}
    path = root / f"config-{label}-{cam_layer}-{outputs}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_check_loads_the_data_and_the_models(user_audit):
    done = cli("check", "--config", _user_config(user_audit))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("ok: ")]
    assert any("dataset: 20 images listed" in line and "3 of the first 3 images decoded" in line for line in lines)
    assert any("model 'mine'" in line and "CAM layer conv" in line for line in lines), lines


@pytest.mark.parametrize(("fields", "expected"), [
    ({"label": "Gender"}, "Gender"),                           # a label column that is not in the table
    ({"cam_layer": "layer5"}, "layer5"),                       # a CAM layer the model does not have
    ({"outputs": 3}, "outputs 3 classes but the dataset's label has 2"),
])
def test_check_refuses_wrong_data_or_model_before_the_build(user_audit, fields, expected):
    done = cli("check", "--config", _user_config(user_audit, **fields))
    assert done.returncode != 0, done.stdout
    assert_no_traceback(done)
    assert "error:" in done.stderr and expected in done.stderr, done.stderr


def test_check_prints_a_calibrated_estimate_and_the_faces_it_found(user_audit):
    import re

    done = cli("check", "--config", _user_config(user_audit))
    assert done.returncode == 0, done.stderr
    estimate = next(line for line in done.stdout.splitlines() if line.startswith("ok: estimate:"))
    # 20 images; per tone group at most per_group 3 + 3 kinds of extremes x 1
    found = re.search(r"at most (\d+) images x 1 method\(s\) x 1 model\(s\)", estimate)
    assert found and 6 <= int(found.group(1)) <= 20, estimate
    assert re.search(r"about \d+ (s|min|h) on this machine", estimate), estimate
    assert any(line.startswith("ok: landmarks (dlib") and "of the 3 decoded images" in line
               for line in done.stdout.splitlines()), done.stdout


@pytest.mark.parametrize("where", ["node_modules", "results_dir"])
def test_check_refuses_missing_browser_libraries_or_an_output_it_cannot_write(user_audit, tmp_path, where):
    import yaml

    from helpers import copy_site_sources, outputs_under

    copy_site_sources(tmp_path)
    raw = yaml.safe_load(Path(_user_config(user_audit)).read_text())
    raw["output"] = outputs_under(tmp_path)
    blocker = tmp_path / "docs" / "a-file"
    blocker.write_text("not a folder")
    raw["output"][where] = str(tmp_path / "no_node_modules") if where == "node_modules" else str(blocker / "results")
    path = tmp_path / f"config-{where}.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = cli("check", "--config", str(path))
    assert done.returncode == 2, done.stdout
    assert_no_traceback(done)
    expected = ("no_node_modules", "npm ci") if where == "node_modules" else ("a-file/results", "cannot be created")
    assert all(text in done.stderr for text in expected), done.stderr


def test_build_with_missing_config_names_the_file(tmp_path):
    missing = tmp_path / "no-such-config.yaml"
    done = cli("build", "--config", str(missing), "--no-site")
    assert done.returncode == 2, done
    assert_no_traceback(done)
    assert str(missing) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def _layer_tables(stdout: str) -> dict[str, list[list[str]]]:
    """Model name -> table rows (split on whitespace) from the `layers` output."""
    tables: dict[str, list[list[str]]] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("== model '"):
            current = line.split("'")[1]
            tables[current] = []
        elif current is not None and line.strip():
            tables[current].append(line.split())
    return tables


def test_layers_of_the_default_models():
    done = cli("layers", "--config", "data/configs/default.yaml")
    assert done.returncode == 0, done.stderr
    assert_no_traceback(done)
    tables = _layer_tables(done.stdout)
    assert set(tables) == {"fair", "biased"}, done.stdout
    for model, rows in tables.items():
        (conv4,) = [row for row in rows if row[0] == "features.conv4"]
        assert conv4[1] == "Conv2d" and conv4[-1] == "yes", (model, conv4)
        (classifier,) = [row for row in rows if row[0] == "classifier"]
        assert classifier[-1] != "yes", (model, classifier)  # a 1-D output is no CAM candidate
    assert done.stdout.count("CAM layer in use: features.conv4") == 2


def test_layers_of_the_onnx_model():
    done = cli("layers", "--config", "data/configs/real-faces.yaml", "--model", "gender")
    assert done.returncode == 0, done.stderr
    assert_no_traceback(done)
    tables = _layer_tables(done.stdout)
    assert set(tables) == {"gender"}, done.stdout
    (conv,) = [row for row in tables["gender"] if row[0] == "layer_9_conv"]
    assert conv[1] == "Conv2d" and conv[-1] == "yes", conv


def test_layers_of_an_unknown_model_names_the_models():
    done = cli("layers", "--config", "data/configs/default.yaml", "--model", "nosuch")
    assert done.returncode == 2, done
    assert_no_traceback(done)
    assert "nosuch" in done.stderr
    assert "'fair'" in done.stderr and "'biased'" in done.stderr
    assert done.stdout == ""
