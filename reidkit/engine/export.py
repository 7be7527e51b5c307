"""Export the embedding model of a checkpoint (``reidkit export``): TorchScript or ONNX, one file per modality.

The exported graph maps a normalised [B, 3, H, W] float32 batch of one modality to [B, D] L2-normalised
features, exactly as ``Method.embed`` does in eval mode (modality-specific stems are baked in, hence one
file per modality).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from reidkit.engine.checkpoint import CheckpointError

log = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")


class EmbeddingModel(torch.nn.Module):
    """``method.embed(images, modality)`` as a plain ``forward(images)``."""

    def __init__(self, method: torch.nn.Module, modality: str) -> None:
        super().__init__()
        self.method = method
        self.modality = modality

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.method.embed(images, self.modality)


def export_method(method: torch.nn.Module, modalities: Sequence[str], image_size: tuple[int, int], output: Path,
                  fmt: str) -> list[Path]:
    """Write one exported file per modality; returns their paths (``<stem>-<modality><suffix>``)."""
    if fmt not in FORMATS:
        raise CheckpointError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    method = method.eval().cpu()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, 3, *image_size)
    paths = []
    for modality in modalities:
        model = EmbeddingModel(method, modality).eval()
        suffix = output.suffix or (".pt" if fmt == "torchscript" else ".onnx")
        path = output.with_name(f"{output.stem}-{modality}{suffix}") if len(modalities) > 1 else output
        with torch.no_grad():
            if fmt == "torchscript":
                torch.jit.trace(model, example, check_trace=False).save(str(path))
            else:
                _export_onnx(model, example, path)
        log.info("exported %s embedding model to %s", modality, path)
        paths.append(path)
    return paths


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise CheckpointError("ONNX export needs the 'export' extra: pip install 'reidkit[export]'") from None
    torch.onnx.export(model, (example,), str(path), input_names=["images"], output_names=["features"],
                      dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, dynamo=False)


def export_checkpoint(checkpoint: str | Path, output: str | Path, fmt: str, *,
                      modalities: Sequence[str] | None = None) -> list[Path]:
    """Rebuild the method of ``checkpoint`` on the CPU, load its weights and export it."""
    from reidkit.engine.run import restore_checkpoint

    r = restore_checkpoint(checkpoint, device="cpu")
    method, dataset, cfg = r.method, r.dataset, r.cfg
    chosen = list(modalities or dataset.modalities)
    unknown = set(chosen) - set(dataset.modalities)
    if unknown:
        raise CheckpointError(f"--modality {', '.join(sorted(unknown))}: the model knows {', '.join(dataset.modalities)}")
    return export_method(method, chosen, (cfg.data.height, cfg.data.width), Path(output), fmt)
