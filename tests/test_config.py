"""Config validation: defaults, and messages that name the key, the value and what is allowed."""
from __future__ import annotations

from pathlib import Path

import pytest

from generator.config import Config, config_hash, load_config, parse_config
from generator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_default_config_file_matches_schema_defaults():
    loaded = load_config(ROOT / "data/configs/default.yaml")
    assert loaded.seed == 0
    assert [m.name for m in loaded.models] == ["fair", "biased"]
    assert loaded.dataset.synthetic == Config().dataset.synthetic


def test_empty_file_means_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == Config()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"sed": 1}, ["unknown key 'sed'", "did you mean 'seed'"]),
        ({"dataset": {"synthetc": {}}}, ["'dataset.synthetc'", "did you mean 'synthetic'", "allowed here: annotations, attributes", "synthetic)"]),
        ({"dataset": {"synthetic": {"image_size": 300}}}, ["'dataset.synthetic.image_size'", "128", "got 300"]),
        ({"dataset": {"synthetic": {"images_per_identity": 5}}}, ["images_per_identity", "10", "got 5"]),
        ({"dataset": {"synthetic": {"shortcut_groups": ["MST 11"]}}}, ["shortcut_groups", "MST 11", "MST 1-3"]),
        ({"dataset": {"synthetic": {"biased_shares": {"MST 1-3": -1}}}}, ["biased_shares", "missing share"]),
        ({"dataset": {"synthetic": {"biased_shares": {"MST 1-3": -1, "MST 4-5": 1, "MST 6-7": 1, "MST 8-10": 1}}}},
         ["biased_shares", "positive"]),
        ({"dataset": {"kind": "imagenet"}}, ["'dataset.kind'", "'synthetic'", "imagenet"]),
        ({"models": [{"name": "a"}, {"name": "a"}]}, ["unique", "'a'"]),
        ({"models": [{"name": "Bad Name"}]}, ["'models.0.name'", "Bad Name"]),
        ({"models": [{"name": "m", "train_split": "test"}]}, ["'models.0.train_split'", "train_fair", "got \"test\""]),
        ({"training": {"lr": 0}}, ["'training.lr'", "greater than 0"]),
        ({"seed": "abc"}, ["'seed'", "abc"]),
    ],
)
def test_bad_values_are_named(raw, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="my.yaml")
    message = str(info.value)
    assert message.startswith("my.yaml: invalid configuration")
    for part in expected:
        assert part in message, f"{part!r} missing from: {message}"


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: '.*nope.yaml'"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml: not a readable YAML file"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listing)


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffseed: 7\n".encode("utf-8"))
    assert load_config(path).seed == 7


def test_config_hash_changes_with_any_setting():
    assert config_hash(Config()) == config_hash(Config())
    assert config_hash(Config()) != config_hash(parse_config({"seed": 1}))
    assert config_hash(Config()) != config_hash(parse_config({"training": {"epochs": 3}}))


def test_config_hash_ignores_output_locations():
    moved = parse_config({"output": {"results_dir": "elsewhere/docs/results", "cache_dir": "/tmp/c"}})
    assert config_hash(moved) == config_hash(Config())


def test_missing_pairs_table_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"verification.pairs_table.*file not found: '.*nope.csv'.*BFW datatable"):
        parse_config({"verification": {"pairs_table": str(tmp_path / "nope.csv")}})


def test_config_hash_follows_pairs_table_content_not_location(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("fold,p1\n1,x\n")
    second.write_text("fold,p1\n1,x\n")
    same = [config_hash(parse_config({"verification": {"pairs_table": str(p)}})) for p in (first, second)]
    assert same[0] == same[1]
    second.write_text("fold,p1\n2,x\n")
    assert config_hash(parse_config({"verification": {"pairs_table": str(second)}})) != same[0]


def _model_file(tmp_path, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(b"x")
    return str(path)


def test_own_data_and_model_settings_are_checked(tmp_path):
    onnx = _model_file(tmp_path)
    pre = {"size": 32}
    cases = [
        ({"dataset": {"kind": "fairface", "root": str(tmp_path)}}, ["fairface", "needs dataset.annotations"]),
        ({"dataset": {"kind": "utkface", "root": str(tmp_path / "nowhere")}}, ["folder not found", "nowhere"]),
        ({"models": [{"name": "m", "kind": "onnx", "path": onnx}]}, ["'m'", "needs preprocessing"]),
        ({"models": [{"name": "m", "kind": "onnx", "path": onnx, "preprocessing": pre}]},
         ["preprocessing.size [32, 32]", "dataset.synthetic.image_size 64"]),
        ({"models": [{"name": "m", "kind": "onnx", "path": str(tmp_path / "gone.onnx"), "preprocessing": pre}]},
         ["file not found", "gone.onnx"]),
        ({"models": [{"name": "m", "kind": "keras", "path": onnx, "preprocessing": pre}]},
         ["does not look like a keras file", ".keras"]),
        ({"models": [{"name": "m", "kind": "default", "path": onnx}]}, ["takes no path", "kind 'default'"]),
        ({"models": [{"name": "m", "train_split": "train"}]}, ["train_split 'train' is for a user's dataset"]),
        ({"models": [{"name": "m", "kind": "onnx", "path": "package:no_such_pkg/x.onnx", "preprocessing": pre}]},
         ["no installed package 'no_such_pkg'"]),
        ({"attribution": {"group_by": ["race"]}}, ["group_by", "race", "skin_tone"]),
    ]
    for raw, expected in cases:
        with pytest.raises(ConfigError) as info:
            parse_config(raw, source="my.yaml")
        for part in expected:
            assert part in str(info.value), f"{part!r} missing from: {info.value}"


def test_example_configs_validate_with_their_files_in_place(tmp_path):
    """Each example config in data/configs/ is valid once its paths point at real files."""
    import yaml

    from generator.config import parse_config as parse

    root = tmp_path / "data"
    root.mkdir()
    files = {}
    for suffix in (".csv", ".txt", ".pt", ".keras", ".onnx", ".py"):
        files[suffix] = _model_file(tmp_path, "f" + suffix)
    for name in ("fairface", "celeba", "utkface", "bfw", "csv"):
        raw = yaml.safe_load((ROOT / "data/configs" / f"{name}.yaml").read_text())
        raw["dataset"]["root"] = str(root)
        for key in ("annotations", "identity_file"):
            if key in raw["dataset"]:
                raw["dataset"][key] = files[Path(raw["dataset"][key]).suffix]
        for model in raw["models"]:
            for key in ("path", "class_file"):
                if key in model:
                    model[key] = files[Path(model[key]).suffix]
        if "verification" in raw:
            raw["verification"]["pairs_table"] = files[".csv"]
        config = parse(raw, source=name)
        assert config.dataset.kind == name
