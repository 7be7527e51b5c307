import dataclasses

import pytest

from reidkit.config import ConfigError, RunConfig, build, dump, option, parse_override, read_yaml, resolve


@dataclasses.dataclass(frozen=True)
class ToyArgs:
    eps: float = option(0.6, gt=0, lt=1)
    mode: str = option("joint", choices=("joint", "hierarchical"))
    k1: int = 30


def test_defaults_resolve_to_frozen_dataclasses():
    cfg = resolve("toy", method_config=ToyArgs)
    assert isinstance(cfg, RunConfig) and cfg.method == "toy"
    assert cfg.method_args == ToyArgs()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


def test_unknown_key_names_its_path_and_suggests():
    with pytest.raises(ConfigError, match=r"unknown config key 'optim.lrr'; did you mean 'lr'\?"):
        resolve("toy", overrides=["optim.lrr=0.1"], method_config=ToyArgs)
    with pytest.raises(ConfigError, match=r"'method_args.epss'; did you mean 'eps'"):
        resolve("toy", overrides=["method_args.epss=0.5"], method_config=ToyArgs)
    with pytest.raises(ConfigError, match=r"unknown config key 'dta'; did you mean 'data'"):
        build(RunConfig, {"dta": {}})


def test_wrong_type_says_expected_and_got():
    with pytest.raises(ConfigError, match=r"optim.epochs: expected int, got str 'ten'"):
        resolve("toy", overrides=["optim.epochs=ten"], method_config=ToyArgs)
    with pytest.raises(ConfigError, match=r"data.root: expected str \| None, got int"):
        resolve("toy", overrides=["data.root=3"], method_config=ToyArgs)


def test_ranges_and_choices_are_checked():
    with pytest.raises(ConfigError, match=r"optim.lr: -0.1 is out of range \(must be > 0\)"):
        resolve("toy", overrides=["optim.lr=-0.1"], method_config=ToyArgs)
    with pytest.raises(ConfigError, match=r"method_args.eps: 1.5 is out of range \(must be < 1\)"):
        resolve("toy", overrides=["method_args.eps=1.5"], method_config=ToyArgs)
    with pytest.raises(ConfigError, match=r"method_args.mode: 'hierarchic' is not one of"):
        resolve("toy", overrides=["method_args.mode=hierarchic"], method_config=ToyArgs)


def test_precedence_defaults_method_file_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  lr: 0.01\n  epochs: 3\nmethod_args:\n  k1: 20\n")
    cfg = resolve("toy", config_file=path, overrides=["optim.epochs=5", "eval.protocols=[a-to-b]"],
                  method_defaults={"optim": {"lr": 0.5, "iterations": 7}}, method_config=ToyArgs)
    assert cfg.optim.lr == 0.01  # file beats method defaults
    assert cfg.optim.iterations == 7  # method defaults beat code defaults
    assert cfg.optim.epochs == 5  # --set beats the file
    assert cfg.eval.protocols == ("a-to-b",)
    assert cfg.method_args == ToyArgs(k1=20)


def test_int_is_accepted_for_float_and_yaml_values_parse():
    cfg = resolve("toy", overrides=["optim.lr=1", "data.root=null", "model.bnneck=false"], method_config=ToyArgs)
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.data.root is None and cfg.model.bnneck is False
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("optim.lr")


def test_method_without_config_rejects_arguments():
    with pytest.raises(ConfigError, match="takes no arguments"):
        resolve("toy", overrides=["method_args.x=1"], method_config=None)


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        resolve("toy", config_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        resolve("toy", config_file=bad)
    other = tmp_path / "other.yaml"
    other.write_text("method: imsl\n")
    with pytest.raises(ConfigError, match="config file says 'imsl' but --method says 'toy'"):
        resolve("toy", config_file=other)


@pytest.mark.parametrize("comments", [False, True])
def test_dump_round_trips(tmp_path, comments):
    cfg = resolve("toy", overrides=["optim.milestones=[2, 4]", "seed=3", "data.root='a # b: c'"],
                  method_config=ToyArgs)
    path = tmp_path / "config.yaml"
    path.write_text(dump(cfg, comments=comments))
    again = resolve("toy", config_file=path, method_config=ToyArgs)
    assert again == cfg and again.data.root == "a # b: c"


def test_commented_dump_documents_every_option():
    lines = dump(resolve("toy", method_config=ToyArgs), comments=True).splitlines()
    assert "  eps: 0.6  # > 0 and < 1" in lines
    assert "  mode: joint  # one of joint, hierarchical" in lines
    assert "  k1: 30" in lines  # a plain field: no comment
    assert any(line.startswith("  preset: small  # synthetic preset") for line in lines)


def test_exponent_floats_without_a_dot_are_numbers_in_overrides_and_files(tmp_path):
    # YAML 1.1 (PyYAML's default) reads 1e-4 as a string; reidkit reads it as YAML 1.2 does
    assert parse_override("optim.lr=1e-4") == {"optim": {"lr": 1e-4}}
    assert parse_override("optim.lr=3.5E-4")["optim"]["lr"] == pytest.approx(3.5e-4)
    assert parse_override("method_args.name=1e") == {"method_args": {"name": "1e"}}
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  lr: 1e-4\n  epochs: 3\n")
    assert read_yaml(path) == {"optim": {"lr": 1e-4, "epochs": 3}}
