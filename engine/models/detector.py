"""PP-OCRv6 DB text detector: LCNetV4 backbone, RepLK-FPN neck, DB head (inference form).

Input: N x 3 x H x W, normalised to [-1, 1], H and W multiples of 32.
Output: N x 1 x H x W text probability map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.layers import SqueezeExcite
from engine.models.lcnetv4 import LCNetV4, det_spec


@dataclass(frozen=True)
class DetSpec:
    """Sizes of one detector variant."""

    widths: tuple[int, int, int, int]
    stem_mid: int
    neck: int
    kernel: int


DET_SPECS = {
    "small": DetSpec((48, 96, 192, 384), 24, 96, 7),
    "tiny": DetSpec((32, 48, 64, 160), 16, 64, 5),
}


class RepLKFPN(nn.Module):
    """Top-down FPN whose smoothing layers are large-kernel depthwise convolutions."""

    def __init__(self, in_channels: list[int], out: int, kernel: int) -> None:
        super().__init__()
        # registered deepest level first: the order the exported graph runs them in
        self.reduce = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, out, 1, bias=False), SqueezeExcite(out, 0.2, True))
            for c in reversed(in_channels)
        )
        self.smooth = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(out, out, kernel, 1, kernel // 2, groups=out),
                nn.Conv2d(out, out // 4, 1, bias=False),
                SqueezeExcite(out // 4, 0.2, True),
            )
            for _ in in_channels
        )

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        ins = [layer(f) for layer, f in zip(self.reduce, reversed(feats))]  # c5, c4, c3, c2
        tops = [ins[0]]
        for lateral in ins[1:]:
            tops.append(lateral + F.interpolate(tops[-1], scale_factor=2.0, mode="nearest"))
        outs = [layer(t) for layer, t in zip(self.smooth, tops)]
        n = len(outs)
        ups = [
            F.interpolate(o, scale_factor=float(2 ** (n - 1 - i)), mode="nearest") if i < n - 1 else o
            for i, o in enumerate(outs)
        ]
        return torch.cat(ups, dim=1)


class DBHead(nn.Module):
    """Differentiable-binarisation probability branch (the only one used at inference)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        mid = cin // 4
        self.conv = nn.Conv2d(cin, mid, 3, 1, 1)
        self.up1 = nn.ConvTranspose2d(mid, mid, 2, 2)
        self.up2 = nn.ConvTranspose2d(mid, 1, 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The map before the sigmoid (training's BCE takes these, which is stabler)."""
        x = F.relu(self.conv(x))
        x = F.relu(self.up1(x))
        return self.up2(x)


class TextDetector(nn.Module):
    """The whole detection network."""

    def __init__(self, spec: DetSpec) -> None:
        super().__init__()
        self.backbone = LCNetV4(det_spec(spec.widths, spec.stem_mid))
        self.neck = RepLKFPN(self.backbone.out_channels, spec.neck, spec.kernel)
        self.head = DBHead(spec.neck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """N x 1 x H x W text scores before the sigmoid (for training)."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"detector input must be N x 3 x H x W with H, W multiples of 32, got {tuple(x.shape)}")
        return self.head.logits(self.neck(self.backbone(x)))
