import pytest

from audiodiff.cli import main
from audiodiff.config import ConfigError, DiffusionRunConfig, apply_overrides, from_dict, load_yaml, to_dict


def test_round_trip_through_dict():
    config = from_dict(
        DiffusionRunConfig, {"train": {"steps": 5}, "model": {"channel_mults": [1, 2], "attention_levels": [1]}}
    )
    assert from_dict(DiffusionRunConfig, to_dict(config)) == config


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lr_rate'\]; valid keys are \[.*'lr'"):
        from_dict(DiffusionRunConfig, {"train": {"lr_rate": 1}})


def test_a_top_level_typo_in_a_recipe_is_refused_naming_it(tmp_path, capsys):
    recipe = tmp_path / "config.yaml"
    recipe.write_text("samplng:\n  steps: 10\ntrain:\n  steps: 1\n")
    assert main(["train", "--config", str(recipe)]) == 2
    error = capsys.readouterr().err
    assert "unknown key(s) ['samplng']; valid keys are [" in error and "'sampling'" in error


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match="data.segment_seconds: expected a number, got 'long'"):
        from_dict(DiffusionRunConfig, {"data": {"segment_seconds": "long"}})


def test_yaml_scientific_notation_strings_are_numbers():
    assert from_dict(DiffusionRunConfig, {"train": {"lr": "1e-4"}}).train.lr == 1e-4


def test_overrides_parse_values_as_yaml():
    data = apply_overrides({}, ["train.steps=10", "model.channel_mults=[1,2]", "data.path=x/y"])
    assert data == {"train": {"steps": 10}, "model": {"channel_mults": [1, 2]}, "data": {"path": "x/y"}}
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["train.steps"])


def test_inconsistent_sections_are_refused():
    with pytest.raises(ConfigError, match="needs model.dims=1"):
        from_dict(DiffusionRunConfig, {"data": {"representation": "wave"}})


def test_missing_and_malformed_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such config"):
        load_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
