"""Run configuration: YAML -> frozen dataclasses, strictly.

Order of precedence (later wins): the defaults in this module, the method's ``run_defaults``, the YAML
file (its ``_base_`` files first, :mod:`reidkit.config_files`), then ``--set a.b=value`` overrides (values
parsed as YAML). Unknown keys fail with their path and a "did you mean" suggestion; wrong types fail with
the expected and the given type; ``option(...)`` metadata adds choices and range checks. ``method_args``
is validated in a second phase against the chosen method's own ``Config`` dataclass, and ``dataset_args``
against the chosen dataset's (:mod:`reidkit.dataset_args`, which also still reads the ``data`` keys that
moved there). No interpolation or ``type=`` strings.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import operator
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A user's configuration mistake; the message names the key path."""


def option(default: Any = dataclasses.MISSING, *, choices: Sequence[Any] | None = None, ge=None, gt=None,
           le=None, lt=None, help: str = "", default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with validation metadata (choices, bounds) and a help text."""
    meta = {"choices": tuple(choices) if choices else None, "ge": ge, "gt": gt, "le": le, "lt": lt, "help": help}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


# ------------------------------------------------------------------------------------------------------
# the sections
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataConfig:
    dataset: str = option("synthetic", help="registered dataset name (reidkit list datasets)")
    root: str | None = option(None, help="dataset folder; None for the synthetic dataset's cache")
    height: int = option(128, ge=16)
    width: int = option(64, ge=8)
    batch_size: int = option(32, ge=2, help="training images per modality per step")
    instances: int = option(4, ge=1, help="images per (pseudo-)identity in a P x K batch")
    workers: int = option(2, ge=0, help="data-loading processes")
    image_cache_mb: int = option(2048, ge=0, help="keep decoded images in memory, up to this many MiB, so each "
                                                  "file is decoded once per run (the main process only; 0 = "
                                                  "decode every read; results are the same; a CHCR run 0.81x "
                                                  "the time: benchmarks/image-cache.md)")
    mask_root: str | None = option(None, help="folder of shape masks for datasets that ship none")
    on_bad_image: str = option("error", choices=("error", "skip"))
    val_ids: int = option(0, ge=0, help="hold out this many training identities as a validation split for "
                                        "tuning (they leave the training set; 0 = none). See docs/validation.md")
    val_seed: int = option(0, ge=0, help="which identities data.val_ids holds out (independent of the run seed)")


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = option("resnet-mini", help="registered backbone (reidkit list backbones)")
    weights: str = option("none", help="none, imagenet, synthetic-pretrained (shipped: resnet-mini pretrained "
                                       "without labels, docs/pretraining.md), or a .pth file (e.g. from "
                                       "reidkit pretrain)")
    pooling: str = option("gem", choices=("gem", "avg"))
    gem_p: float = option(3.0, gt=0)
    last_stride: int = option(1, choices=(1, 2))
    stems: str = option("shared", choices=("shared", "per-modality"))
    stem_batch: str = option("joint", choices=("joint", "per-modality"),
                             help="a shared stem in a multi-modality forward: joint = one batch of every "
                                  "modality (its BatchNorm statistics then match the running statistics "
                                  "used at evaluation); per-modality = one batch per modality (IMSL's code)")
    bnneck: bool = True
    channels_last: bool = option(True, help="channels-last (NHWC) memory format: 1.1-1.4x faster training and "
                                             "extraction on the CPU (benchmarks/memory-format.md) and the "
                                             "format tensor cores want; false = contiguous NCHW")


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = option(10, ge=0, help="0 evaluates the untrained model")
    iterations: int = option(50, ge=1, help="training steps per epoch")
    optimizer: str = option("adam", choices=("adam", "sgd"))
    lr: float = option(3.5e-4, gt=0)
    weight_decay: float = option(5e-4, ge=0)
    momentum: float = option(0.9, ge=0, lt=1)
    schedule: str = option("step", choices=("step", "multistep", "cosine", "constant"))
    step_size: int = option(20, ge=1)
    milestones: tuple[int, ...] = ()
    gamma: float = option(0.1, gt=0, le=1)
    warmup_epochs: int = option(0, ge=0)
    amp: str = option("auto", choices=("auto", "off", "bf16", "fp16"), help="mixed precision on CUDA only")
    grad_clip: float | None = option(None, gt=0)


@dataclass(frozen=True)
class EvalConfig:
    protocols: tuple[str, ...] = option((), help="protocol names; empty = all of the dataset's")
    trials: int | None = option(None, ge=1, help="at most this many trials per protocol")
    flip: bool = option(False, help="average the features of each image and its horizontal flip")
    batch_size: int = option(128, ge=1)
    every: int = option(0, ge=0, help="also evaluate every N epochs and log eval_<protocol>_mAP for the "
                                      "report's per-epoch plot (0 = only the final model); logged only, "
                                      "never used to choose a model")
    val_every: int = option(1, ge=0, help="with data.val_ids: score the validation split every N epochs and "
                                          "log val_<protocol>_mAP (0 = only the final model)")
    test: bool = option(True, help="score the test split at the end; false for tuning runs, which must not "
                                   "look at it (metrics.json then holds the validation scores only)")


@dataclass(frozen=True)
class RunConfig:
    method: str = ""
    seed: int = 0
    output: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    method_args: Any = field(default_factory=dict)
    #: the dataset's own options, validated against its ``Config`` (reidkit.dataset_args)
    dataset_args: Any = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------
# building dataclasses strictly
# ------------------------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(known))}"


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            if isinstance(value, str) and typing.get_args(tp)[:1] == (str,):
                value = [value]
            else:
                raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected bool (true/false), got {type(value).__name__} {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected int, got {type(value).__name__} {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path}: expected float, got {type(value).__name__} {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected str, got {type(value).__name__} {value!r}")
    return value


#: the bound keywords of :func:`option`: (key, symbol, test)
_BOUNDS = (("ge", ">=", operator.ge), ("gt", ">", operator.gt),
           ("le", "<=", operator.le), ("lt", "<", operator.lt))


def _check_meta(value: Any, meta: Mapping[str, Any], path: str) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, choices))}"
                          + _suggest(str(value), [str(c) for c in choices]).replace("known keys", "choices"))
    for key, word, ok in _BOUNDS:
        bound = meta.get(key)
        if bound is not None and isinstance(value, (int, float)) and not ok(value, bound):
            raise ConfigError(f"{path}: {value!r} is out of range (must be {word} {bound})")


def build(cls: type, data: Mapping[str, Any] | None, path: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, strictly (see module docstring)."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"unknown config key '{where}'{_suggest(str(key), list(fields))}")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        where = f"{path}.{name}" if path else name
        value = _coerce(data[name], hints[name], where)
        _check_meta(value, f.metadata, where)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{path or 'config'}: {e}") from None


#: config keys that change how fast a run goes, never what it computes: runs that differ only in these are
#: the same experiment (a checkpoint resumes across them, result tables group them)
SPEED_ONLY_KEYS: tuple[tuple[str, ...], ...] = (("data", "image_cache_mb"),)


def drop_keys(config: dict[str, Any], paths: Sequence[Sequence[str]]) -> dict[str, Any]:
    """A deep copy of a config dict without the keys at ``paths`` (e.g. :data:`SPEED_ONLY_KEYS`)."""
    config = copy.deepcopy(config)
    for path in paths:
        node = config
        for key in path[:-1]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return config


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain YAML-able data; tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def dump(cfg: RunConfig, *, comments: bool = False) -> str:
    """The resolved configuration as YAML (what ``config.yaml`` in a run directory holds).

    With ``comments``, every key documented with :func:`option` carries its help text, choices and bounds
    as a trailing ``# ...`` comment (``reidkit config --comments``); the YAML loads to the same data.
    """
    if not comments:
        return yaml.safe_dump(to_dict(cfg), sort_keys=False)
    return "\n".join(_commented_lines(cfg, 0)) + "\n"


def describe_option(f: dataclasses.Field) -> str:
    """One line: a field's help text, its choices and bounds (empty when it has none)."""
    meta = f.metadata or {}
    parts = [meta["help"]] if meta.get("help") else []
    if meta.get("choices"):
        parts.append("one of " + ", ".join(str(c) for c in meta["choices"]))
    bounds = [f"{sym} {meta[key]}" for key, sym, _ in _BOUNDS if meta.get(key) is not None]
    if bounds:
        parts.append(" and ".join(bounds))
    return "; ".join(parts)


def _flow(value: Any) -> str:
    """``value`` as one line of YAML (flow style for lists and mappings)."""
    text = yaml.safe_dump(to_dict(value), default_flow_style=True, width=10**6)
    return text.removesuffix("\n...\n").rstrip("\n")


def _commented_lines(obj: Any, depth: int) -> list[str]:
    pad = "  " * depth
    lines = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        note = describe_option(f)
        if dataclasses.is_dataclass(value) and dataclasses.fields(value):
            lines.append(f"{pad}{f.name}:" + (f"  # {note}" if note else ""))
            lines += _commented_lines(value, depth + 1)
            continue
        lines.append(f"{pad}{f.name}: {_flow(value)}" + (f"  # {note}" if note else ""))
    return lines


# ------------------------------------------------------------------------------------------------------
# merging sources
# ------------------------------------------------------------------------------------------------------
def deep_merge(base: dict, update: Mapping[str, Any]) -> dict:
    """Recursive dict merge; ``update`` wins. Neither input is modified."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's float rule, so that ``1e-4`` and ``3.5e-4`` are numbers.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-4``): ``lr: 1e-4`` would otherwise be the
    string ``'1e-4'`` and fail the type check, a trap every learning-rate override falls into.
    """


_Loader.yaml_implicit_resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """Parse YAML text as every reidkit config, suite and override is read (``1e-4`` is a float)."""
    return yaml.load(text, Loader=_Loader)


def parse_override(text: str) -> dict:
    """``"a.b=value"`` -> ``{"a": {"b": value}}``, the value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set: bad key {key!r}")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}: value is not valid YAML ({e.__class__.__name__})") from None
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def resolve(method: str | None = None, *, config_file: str | Path | None = None,
            overrides: Sequence[str] = (), method_defaults: Mapping[str, Any] | None = None,
            method_config: type | None = None, dataset_config: type | None = None) -> RunConfig:
    """Merge every source and validate in two phases.

    Phase 1 builds the run sections; phase 2 validates ``method_args`` against ``method_config`` (the
    method's ``Config``) and ``dataset_args`` against ``dataset_config`` (default: the ``Config`` of the
    registered ``data.dataset``), replacing each raw mapping with a frozen instance.
    """
    from reidkit.dataset_args import MovedKeys, build_dataset_args, options_of

    moved = MovedKeys()  # the data.* keys of one dataset, read from older configs for one release
    data: dict = {}
    if method_defaults:
        data = deep_merge(data, moved.move(method_defaults))
    if config_file is not None:
        from reidkit.config_files import read_config  # it builds on this module's reader and merge

        data = deep_merge(data, moved.move(read_config(config_file)))
    for text in overrides:
        data = deep_merge(data, moved.move(parse_override(text)))
    if method:
        if data.get("method") and data["method"] != method:
            raise ConfigError(f"method: the config file says {data['method']!r} but --method says {method!r}")
        data["method"] = method
    raw_args = data.pop("method_args", {}) or {}
    raw_dataset_args = data.pop("dataset_args", {}) or {}
    dataset_config = dataset_config or options_of(data)  # the Config of data.dataset, checked against data
    cfg = build(RunConfig, data)
    if method_config is not None and method_config is not type(None):
        args = build(method_config, raw_args, "method_args")
    else:
        if raw_args:
            raise ConfigError(f"method_args: method {cfg.method!r} takes no arguments, got {sorted(raw_args)}")
        args = {}
    dataset_args = build_dataset_args(cfg.data.dataset, raw_dataset_args, dataset_config, moved)
    return dataclasses.replace(cfg, method_args=args, dataset_args=dataset_args)
