"""``dataset_args``: the options of one dataset, validated against that dataset's own ``Config``.

The ``data`` section holds what every dataset shares (name, root, image size, batch, workers, masks,
validation split); an option that belongs to one dataset (a synthetic preset, a RegDB split, a SYSU-MM01
gallery sampler, RGBNT201's aligned-twin rule, the generic layout's colour modality) is a field of that
dataset class's frozen ``Config`` and is set as ``dataset_args.<field>``. :func:`build_dataset_args` is
the second validation phase of :func:`reidkit.config.resolve`, the same as ``method_args`` gets: unknown
keys fail with a "did you mean", wrong types and ranges with what was expected.

Four keys lived in ``data`` until this release: ``data.preset``, ``data.trial``, ``data.gallery_sampler``
and ``data.exclude_aligned_twin``. Run folders, suites and checkpoints written before store them (every
saved config holds all four, whatever its dataset), so for one release :class:`MovedKeys` still reads
them: each source (method defaults, file, each ``--set``) has them moved to ``dataset_args`` before the
sources merge, so precedence is unchanged; a moved key the dataset takes logs one deprecation line naming
the new key, and one it does not take is dropped as the old code ignored it (silently when it holds the old
default, which every saved config carries).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from reidkit.config import ConfigError, build

log = logging.getLogger(__name__)

#: the ``data`` keys that moved to ``dataset_args``, with the default they had there
MOVED_DATA_KEYS: dict[str, Any] = {"preset": "small", "trial": 1, "gallery_sampler": "auto",
                                   "exclude_aligned_twin": False}


class MovedKeys:
    """The old ``data.*`` keys found in a resolve's sources, moved to ``dataset_args``."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def move(self, source: Mapping[str, Any]) -> dict[str, Any]:
        """``source`` with ``data.<moved key>`` as ``dataset_args.<key>`` (a ``dataset_args`` key it sets
        itself wins). The input is not modified."""
        section = source.get("data")
        if not isinstance(section, Mapping) or not set(section) & set(MOVED_DATA_KEYS):
            return dict(source)
        data = {k: v for k, v in section.items() if k not in MOVED_DATA_KEYS}
        moved = {k: v for k, v in section.items() if k in MOVED_DATA_KEYS}
        own = source.get("dataset_args")
        args = dict(own) if isinstance(own, Mapping) else {}
        for key, value in moved.items():
            self.values[key] = value
            args.setdefault(key, value)
        return {**source, "data": data, "dataset_args": args}

    def settle(self, args: dict[str, Any], fields: set[str], dataset: str) -> dict[str, Any]:
        """After the merge: warn once per moved key the dataset takes; drop the ones it does not take."""
        out = dict(args)
        for key, value in self.values.items():
            if key in fields:
                log.warning("config key data.%s is deprecated: use dataset_args.%s (the old key goes in the "
                            "next release)", key, key)
            elif out.get(key, MOVED_DATA_KEYS[key]) == value:
                out.pop(key, None)
                if value != MOVED_DATA_KEYS[key]:
                    log.warning("config key data.%s is deprecated (now dataset_args.%s) and dataset %r has no "
                                "such option: ignored, as it was before", key, key, dataset)
        return out


def dataset_options(name: str) -> type | None:
    """The ``Config`` class of the registered dataset ``name`` (None when it declares none)."""
    from reidkit.registry import DATASETS

    config = getattr(DATASETS.get(name), "Config", None)
    return config if dataclasses.is_dataclass(config) else None


def options_of(data: Mapping[str, Any]) -> type | None:
    """The ``Config`` of the dataset a raw (merged, unvalidated) config names, after checking that its ``data``
    section holds none of that dataset's options (they belong in ``dataset_args``)."""
    from reidkit.config import DataConfig

    section = data.get("data")
    name = section.get("dataset", DataConfig.dataset) if isinstance(section, Mapping) else DataConfig.dataset
    config = dataset_options(name) if isinstance(name, str) else None
    check_misplaced(data, config)
    return config


def check_misplaced(data: Mapping[str, Any], config: type | None) -> None:
    """An unknown ``data.<key>`` that is one of the dataset's options fails with the right place."""
    from reidkit.config import DataConfig

    section = data.get("data")
    if config is None or not isinstance(section, Mapping):
        return
    shared = {f.name for f in dataclasses.fields(DataConfig)}
    own = {f.name for f in dataclasses.fields(config)}
    for key in section:
        if key not in shared and key in own:
            raise ConfigError(f"unknown config key 'data.{key}': it is an option of the dataset; "
                              f"did you mean 'dataset_args.{key}'?")


def build_dataset_args(dataset: str, raw: Mapping[str, Any] | None, config: type | None,
                       moved: MovedKeys | None = None) -> Any:
    """Phase 2 of :func:`reidkit.config.resolve`: ``raw`` validated against ``config``, the dataset's own
    ``Config`` (a frozen instance of it; ``{}`` for a dataset without one)."""
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"dataset_args: expected a mapping, got {type(raw).__name__} {raw!r}")
    fields = {f.name for f in dataclasses.fields(config)} if config is not None else set()
    args = moved.settle(dict(raw or {}), fields, dataset) if moved is not None else dict(raw or {})
    if not fields:
        if args:
            raise ConfigError(f"dataset_args: dataset {dataset!r} takes no options, got {sorted(args)}")
        return config() if config is not None else {}
    return build(config, args, "dataset_args")


def open_dataset(data: Any, args: Any = None) -> Any:
    """The registered dataset ``data.dataset`` (a ``DataConfig``) loaded with its options ``args``."""
    from reidkit.registry import DATASETS

    cls = DATASETS.get(data.dataset)
    if dataset_options(data.dataset) is None:  # a plugin written before datasets had options
        return cls.from_config(data)
    return cls.from_config(data, args if dataclasses.is_dataclass(args) else None)


def route_settings(config: type | None, settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"data": ..., "dataset_args": ...}`` from the settings of the data commands (``reidkit data check
    NAME ROOT --set trial=3``): ``data`` and ``dataset_args`` mappings are kept, a bare key goes to
    ``dataset_args`` when it is one of the dataset's options (``config``) and to ``data`` otherwise."""
    own = {f.name for f in dataclasses.fields(config)} if config is not None else set()
    out: dict[str, dict[str, Any]] = {"data": {}, "dataset_args": {}}
    for key, value in settings.items():
        if key in out and isinstance(value, Mapping):
            out[key].update(value)
        else:
            out["dataset_args" if key in own else "data"][key] = value
    return out


def load_from_settings(name: str, settings: Mapping[str, Any]) -> Any:
    """Dataset ``name`` from the data commands' settings (:func:`route_settings`), validated as a run's
    ``data`` section and ``dataset_args`` are (the moved ``data.*`` keys still read)."""
    from reidkit.config import DataConfig

    config = dataset_options(name)
    moved = MovedKeys()
    routed = moved.move(route_settings(config, settings))
    data = build(DataConfig, {**routed["data"], "dataset": name}, "data")
    return open_dataset(data, build_dataset_args(name, routed.get("dataset_args"), config, moved))
