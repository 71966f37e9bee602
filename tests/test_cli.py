"""The command line as a user meets it: exit codes, one-line errors, the `layers` table."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
