"""Loading backbone weights: torchvision's ImageNet files (hub cache or download), the weights shipped
inside the package (``synthetic-pretrained``), or a local state dict (e.g. one ``reidkit pretrain`` wrote).

A torchvision-layout file has its stem copied into every modality stem and its classifier ignored; a
file of another architecture is refused with :class:`WeightsError`; missing/unexpected keys are logged.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from reidkit.models.resnet_spec import ResNetSpec

log = logging.getLogger(__name__)


class WeightsError(ValueError):
    """Weights that cannot be used: unreadable file, wrong architecture, no ImageNet weights, offline."""


def _display_path(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home not in ("", "/") and text.startswith(home + os.sep) else text


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a state dict from ``path``: a plain ``{name: tensor}`` or ``{"state_dict": {...}}``.

    A ``module.`` prefix (DataParallel/DDP checkpoints) is removed. Raises ``FileNotFoundError`` naming the
    file when it does not exist and :class:`WeightsError` when it cannot be read as a state dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file not found: {path} (model.weights must be none, imagenet, synthetic-pretrained or an existing .pth file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or foreign files
        raise WeightsError(f"cannot read weights file {path}: {type(e).__name__}: {e}") from e
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {path} holds no state dict of tensors "
                           "(expected {name: tensor} or {'state_dict': {name: tensor}})")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _to_backbone_keys(state: Mapping[str, Tensor], model: nn.Module) -> tuple[dict[str, Tensor], list[str]]:
    """Map a torchvision-layout state dict onto the backbone's names (the stem copied into every stem).

    A state dict saved from a :class:`ReIDBackbone` (keys ``stems.*``) is returned as is. Returns the
    mapped dict and the ignored classifier keys (``fc.*``).
    """
    if any(k.startswith("stems.") for k in state):
        return dict(state), []
    mapped: dict[str, Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        head = key.split(".", 1)[0]
        if head in ("conv1", "bn1"):
            for stem_key in model.stems:
                mapped[f"stems.{stem_key}.{key}"] = value
        elif head == "fc":
            ignored.append(key)
        else:
            mapped[key] = value
    return mapped, ignored


def usable_tensors(state: Mapping[str, Tensor], own: Mapping[str, Tensor], source: str,
                   name: str) -> dict[str, Tensor]:
    """The tensors of ``state`` that ``own`` (a model's state dict) has, after checking that none differs in
    shape and that there is at least one; :class:`WeightsError` naming ``source`` and backbone ``name``."""
    mismatched = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
                  for k, v in state.items() if k in own and v.shape != own[k].shape]
    if mismatched:
        raise WeightsError(f"{source} does not fit backbone {name}: {len(mismatched)} tensors "
                           f"differ in shape, e.g. {'; '.join(mismatched[:3])}")
    usable = {k: v for k, v in state.items() if k in own}
    if not usable:
        raise WeightsError(f"{source} shares no tensor with backbone {name} "
                           f"(first keys in the file: {list(state)[:3]})")
    return usable


def load_state_dict_into(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Load ``state`` (torchvision or ReIDBackbone layout) into ``model``; report what did not match.

    ``model`` is a :class:`~reidkit.models.backbones.ReIDBackbone` or a subclass: what is read of it is its
    ``stems`` (where a torchvision stem is copied to), its ``spec`` (a :class:`ResNetSpec`, for messages) and
    its state dict.

    Tensors whose shapes differ raise :class:`WeightsError` (the file is for another architecture), as
    does a file sharing no tensor with the model. Missing and unexpected keys are logged as warnings
    (the BN-neck, absent from ImageNet files, only at debug level).
    """
    mapped, ignored = _to_backbone_keys(state, model)
    own = model.state_dict()
    usable = usable_tensors(mapped, own, source, model.spec.name)
    model.load_state_dict(usable, strict=False)
    unexpected = sorted(set(mapped) - set(own))
    missing = sorted(k for k in set(own) - set(usable) if not k.endswith("num_batches_tracked"))
    trunk_missing = [k for k in missing if not k.startswith("neck.")]
    if ignored:
        log.debug("%s: ignored classifier tensors %s", source, ignored)
    if trunk_missing:
        log.warning("%s: %d backbone tensors missing from the file, left at their initial values: %s%s",
                    source, len(trunk_missing), trunk_missing[:5], " ..." if len(trunk_missing) > 5 else "")
    if missing and not trunk_missing:
        log.debug("%s: BN-neck tensors not in the file, left at their initial values", source)
    if unexpected:
        log.warning("%s: %d tensors in the file are not in the backbone and were ignored: %s%s",
                    source, len(unexpected), unexpected[:5], " ..." if len(unexpected) > 5 else "")
    log.info("loaded %d tensors into %s from %s", len(usable), model.spec.name, source)


def _download(url: str, destination: Path) -> None:
    """Download ``url`` to ``destination`` (checked against the hash prefix in torchvision's file name).

    A separate function so tests can replace it; torch writes to a temporary file first, so an interrupted
    download leaves no partial file in the cache.
    """
    stem = destination.name.split(".")[0]
    hash_prefix = stem.rsplit("-", 1)[1] if "-" in stem else None
    destination.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", url, destination)
    torch.hub.download_url_to_file(url, str(destination), hash_prefix=hash_prefix, progress=False)


def imagenet_state_dict(spec: ResNetSpec) -> dict[str, Tensor]:
    """torchvision's ImageNet (IMAGENET1K_V1) weights for ``spec``, from the torch hub cache or downloaded.

    Raises :class:`WeightsError` when the architecture has no ImageNet weights, or when they are not
    cached and cannot be downloaded (the message names the file to place in the cache).
    """
    if spec.imagenet is None:
        raise WeightsError(f"no ImageNet weights exist for backbone {spec.name}; "
                           "use model.weights=none or model.weights=/path/to/file.pth")
    weights = getattr(torchvision.models, spec.imagenet).IMAGENET1K_V1
    filename = weights.url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not cached.is_file():
        try:
            _download(weights.url, cached)
        except Exception as e:  # URLError, socket timeouts, hash mismatch: all mean "no usable download"
            raise WeightsError(
                f"cannot download ImageNet weights for {spec.name} ({type(e).__name__}: {e}); offline, put "
                f"{filename} in {_display_path(cached.parent)}, "
                f"or pass model.weights=/path/to/{filename}") from e
    return read_state_dict(cached)


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (cached per path, size and modification time: a run builds its backbone from
    the same shipped file several times)."""
    stat = os.stat(path)
    return _sha256(os.fspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_weights(weights: str) -> Path | None:
    """The file that ``model.weights`` names: a shipped name (sha256 checked), a path, or None for
    ``none``/``imagenet``. Raises :class:`WeightsError` for a shipped file that is missing or damaged."""
    if weights in ("none", "imagenet"):
        return None
    from reidkit.models.pretrained import SHIPPED

    shipped = SHIPPED.get(weights)
    if shipped is None:
        return Path(weights).expanduser()
    if not shipped.path.is_file():
        raise WeightsError(f"the shipped weights {weights!r} are missing from the installed package "
                           f"({shipped.path}); reinstall reidkit or make them again (docs/pretraining.md)")
    digest = sha256(shipped.path)
    if shipped.sha256 and digest != shipped.sha256:
        raise WeightsError(f"the shipped weights {weights!r} ({shipped.path}) are damaged or replaced: sha256 "
                           f"{digest[:12]}... instead of {shipped.sha256[:12]}...")
    return shipped.path


def weights_card(weights: str) -> dict[str, str] | None:
    """``{"weights", "file", "card", "card_sha256"}`` for weights that have a card beside them (made by
    ``reidkit pretrain``); what ``env.json`` records. None for ``none``/``imagenet`` or no card."""
    path = resolve_weights(weights)
    card = None if path is None else path.with_suffix(".json")
    if card is None or not card.is_file():
        return None
    return {"weights": weights, "file": str(path), "card": str(card), "card_sha256": sha256(card)}


def _check_card(path: Path, backbone: str) -> None:
    """Refuse a file whose card says it was made for another backbone."""
    card = path.with_suffix(".json")
    if not card.is_file():
        return
    import json

    try:
        made_for = json.loads(card.read_text()).get("backbone")
    except (OSError, ValueError, AttributeError):
        return
    if made_for and made_for != backbone:
        raise WeightsError(f"{path} holds {made_for} weights (its card {card.name} says so), not {backbone}; "
                           f"set model.backbone={made_for} or choose other model.weights")


def load_weights(model: nn.Module, weights: str) -> None:
    """Apply ``model.weights``: ``"none"`` keeps the random init, ``"imagenet"``, the name of a shipped
    file (``reidkit.models.pretrained``), or a local file path (checked against its card, if any)."""
    if weights == "none":
        return
    if weights == "imagenet":
        load_state_dict_into(model, imagenet_state_dict(model.spec), f"ImageNet weights of {model.spec.name}")
        return
    load_state_dict_into(model, *read_weights(weights, model.spec.name))


def read_weights(weights: str, backbone: str) -> tuple[dict[str, Tensor], str]:
    """``(state dict, name for messages)`` of the file ``model.weights`` names (a shipped name or a path),
    refused when its card says it was made for another ``backbone``."""
    path = resolve_weights(weights)
    _check_card(path, backbone)
    return read_state_dict(path), weights if path.name != Path(weights).name else str(path)

