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
