"""The stage catalogue: every cached result is made by a declared stage, whose key covers its declared inputs."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from generator.cli import main
from generator.pipeline.cache import Cache, code_hash
from generator.pipeline.graph import STAGES, stage, stage_key, stage_table

ROOT = Path(__file__).resolve().parents[2]


def _inputs(s, **changed):
    keys = {name: f"key-of-{name}" for name in s.inputs}
    return {**keys, **changed}


@pytest.mark.parametrize("declared", STAGES, ids=lambda s: s.name)
def test_every_declared_input_parameter_and_code_changes_the_key(declared, tmp_path):
    cache = Cache(tmp_path)
    base = stage_key(cache, declared.name, {"p": 1}, **_inputs(declared))
    assert re.fullmatch(r"[0-9a-f]{16}", base)
    assert stage_key(cache, declared.name, {"p": 1}, **_inputs(declared)) == base  # a pure function of its inputs
    for name in declared.inputs:
        assert stage_key(cache, declared.name, {"p": 1}, **_inputs(declared, **{name: "another"})) != base, name
    assert stage_key(cache, declared.name, {"p": 2}, **_inputs(declared)) != base
    # the code hash is part of it: the key equals the cache's key of the same payload with that hash
    assert base == cache.key(declared.cache_folder, {"p": 1, "code": code_hash(*declared.code)},
                             tuple(f"key-of-{n}" for n in declared.inputs))


def test_a_missing_or_undeclared_input_is_refused_with_both_lists(tmp_path):
    cache = Cache(tmp_path)
    with pytest.raises(TypeError, match=r"stage 'predict' reads \['faces', 'model'\]; not given: \['model'\]"):
        stage_key(cache, "predict", {}, faces="f")
    with pytest.raises(TypeError, match=r"not declared: \['twin'\].*generator.pipeline.graph"):
        stage_key(cache, "predict", {}, faces="f", model="m", twin="t")
    with pytest.raises(TypeError, match="cache keys"):
        stage_key(cache, "predict", {}, faces="f", model="")
    with pytest.raises(ValueError, match="'code' is added from the stage's declaration"):
        stage_key(cache, "train", {"code": "x"}, faces="f")
    with pytest.raises(KeyError, match="no stage 'trian' is declared.*train"):
        stage("trian")


def test_the_shipped_weights_keys_are_unchanged_by_the_declaration(tmp_path):
    """The training keys name the shipped weights' folders: deriving them from the catalogue keeps them."""
    cache = Cache(tmp_path)
    params = {"train": {"epochs": 1}, "split": "train_fair", "seed": 0}
    assert stage_key(cache, "train", params, faces="d") == cache.key(
        "train", {**params, "code": code_hash(*stage("train").code)}, ("d",))


def test_every_cache_folder_the_code_writes_is_a_declared_stage():
    """Each literal stage name the pipeline reads or writes the cache under belongs to a declared stage."""
    folders = {s.cache_folder for s in STAGES}
    used = set()
    for file in (ROOT / "generator").rglob("*.py"):
        text = file.read_text()
        used |= set(re.findall(r"(?:get_or_compute|is_done|is_valid|partial)\(\s*\"([a-z-]+)\"", text))
        assert "cache.key(" not in text or file.name in ("graph.py", "face_recognition_stage.py"), (
            f"{file}: a cache key built by hand; derive it with generator.pipeline.graph.stage_key")
    assert used, "the scan found no cache use: its pattern is out of date"
    assert used <= folders, f"cache folders not declared in generator.pipeline.graph: {sorted(used - folders)}"


@pytest.mark.parametrize("declared", STAGES, ids=lambda s: s.name)
def test_every_stage_names_a_function_that_exists_and_code_that_hashes(declared):
    module, _, name = declared.where.partition(":")
    found = importlib.import_module(f"generator.pipeline.{module}")
    for part in name.split("."):
        found = getattr(found, part)
    assert callable(found)
    assert re.fullmatch(r"[0-9a-f]{16}", code_hash(*declared.code))


def test_the_stages_command_prints_the_catalogue(capsys):
    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == stage_table()
    for s in STAGES:
        assert re.search(rf"^{re.escape(s.name)}\s", out, re.M), s.name
    assert "faces, model -> Predictions" in out


def test_the_pipeline_holds_no_framework_code():
    """torch and TensorFlow are called by the model and attribution adapters (generator.models, generator.attribution),
    not by the stages: saving, loading and hashing weights go through generator.models.checkpoints."""
    found = [f"{file.name}:{n}" for file in sorted((ROOT / "generator" / "pipeline").glob("*.py"))
             for n, line in enumerate(file.read_text().splitlines(), 1)
             if re.match(r"\s*(import (torch|tensorflow)\b|from (torch|tensorflow)\b)", line)]
    assert found == []
