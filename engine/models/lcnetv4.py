"""PP-LCNetV4 backbone (inference form), shared by the PP-OCRv6 detector and recogniser."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.models.layers import ConvStem, HGStem, LCNetV4Block

# (in, out, stride, squeeze-excite) per block, one tuple of blocks per stage
Stage = tuple[tuple[int, int, tuple[int, int], bool], ...]


@dataclass(frozen=True)
class BackboneSpec:
    """Widths and strides of one backbone size."""

    stem: str  # "hg" or "conv"
    stem_mid: int
    stem_out: int
    stages: tuple[Stage, ...]


def stage(cin: int, cout: int, stride: tuple[int, int], se: str) -> Stage:
    """One stage: a first block ``cin -> cout`` with ``stride``, then blocks of ``cout``.

    ``se`` has one letter per block, "T" where the block has squeeze-excite.
    """
    blocks = []
    for i, flag in enumerate(se):
        blocks.append((cin if i == 0 else cout, cout, stride if i == 0 else (1, 1), flag == "T"))
    return tuple(blocks)


def det_spec(widths: tuple[int, int, int, int], stem_mid: int) -> BackboneSpec:
    """Detector backbone: four stages of stride 4, 8, 16, 32."""
    c1, c2, c3, c4 = widths
    return BackboneSpec(
        "hg",
        stem_mid,
        c1,
        (
            stage(c1, c1, (1, 1), "TF"),
            stage(c1, c2, (2, 2), "FTF"),
            stage(c2, c3, (2, 2), "FTFTF"),
            stage(c3, c4, (2, 2), "FTF"),
        ),
    )


class LCNetV4(nn.Module):
    """Returns the output of every stage (the detector's FPN uses all of them)."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        if spec.stem == "hg":
            self.stem: nn.Module = HGStem(spec.stem_mid, spec.stem_out)
        elif spec.stem == "conv":
            self.stem = ConvStem(spec.stem_mid, spec.stem_out)
        else:
            raise ValueError(f"unknown stem kind {spec.stem!r}")
        self.stages = nn.ModuleList(nn.Sequential(*(LCNetV4Block(*block) for block in stage)) for stage in spec.stages)
        self.out_channels = [stage[-1][1] for stage in spec.stages]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs
