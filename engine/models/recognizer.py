"""PP-OCRv6 CRNN-family text recogniser: LCNetV4 conv features, a sequence model, a CTC head.

Input: N x 3 x 48 x W (W a multiple of 8), normalised to [-1, 1].
Output: N x W/8 x C character probabilities (index 0 is the CTC blank).
The small variant's sequence model is a light SVTR (two transformer blocks over the columns);
the tiny variant's is a depthwise 1-D convolution over the columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.lcnetv4 import BackboneSpec, LCNetV4, stage


@dataclass(frozen=True)
class RecSpec:
    """Sizes of one recogniser variant."""

    backbone: BackboneSpec
    neck: str  # "svtr" or "conv"
    dims: int
    classes: int


REC_SPECS = {
    "small": RecSpec(
        BackboneSpec(
            "hg",
            48,
            96,
            (
                stage(96, 96, (1, 1), "TFF"),
                stage(96, 192, (2, 1), "FTFTFTF"),
                stage(192, 384, (2, 1), "FTF"),
            ),
        ),
        "svtr",
        120,
        18710,
    ),
    "tiny": RecSpec(
        BackboneSpec(
            "conv",
            24,
            48,
            (
                stage(48, 48, (1, 1), "TF"),
                stage(48, 96, (2, 1), "FTF"),
                stage(96, 160, (2, 1), "FTFF"),
            ),
        ),
        "conv",
        80,
        6906,
    ),
}


class ConvBNSwish(nn.Sequential):
    """Bias-free conv, batch-norm, swish."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], groups: int = 1) -> None:
        pad = (kernel[0] // 2, kernel[1] // 2)
        super().__init__(
            nn.Conv2d(cin, cout, kernel, 1, pad, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.SiLU()
        )


class Attention(nn.Module):
    """Multi-head self-attention over the column sequence."""

    def __init__(self, dims: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dims, 3 * dims)
        self.proj = nn.Linear(dims, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(n, t, c))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block with a swish MLP."""

    def __init__(self, dims: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=1e-5)
        self.attn = Attention(dims, heads)
        self.norm2 = nn.LayerNorm(dims, eps=1e-5)
        self.fc1 = nn.Linear(dims, int(dims * mlp_ratio))
        self.fc2 = nn.Linear(int(dims * mlp_ratio), dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.silu(self.fc1(self.norm2(x))))


class LightSVTRNeck(nn.Module):
    """Conv shortcut beside a local mixer and two transformer blocks; returns N x T x dims."""

    def __init__(self, cin: int, dims: int, depth: int = 2, heads: int = 8, kernel: int = 7) -> None:
        super().__init__()
        self.shortcut = ConvBNSwish(cin, dims, (1, 1))
        self.conv = ConvBNSwish(cin, dims, (1, 1))
        self.local = ConvBNSwish(dims, dims, (1, kernel), groups=dims)
        self.blocks = nn.ModuleList(TransformerBlock(dims, heads, 2.0) for _ in range(depth))
        self.norm = nn.LayerNorm(dims, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.shortcut(x)
        h = self.conv(x)
        h = h + self.local(h)
        n, c, _, t = h.shape
        seq = h.flatten(2).transpose(1, 2)
        for block in self.blocks:
            seq = block(seq)
        seq = self.norm(seq)
        return seq + short.flatten(2).transpose(1, 2)


class ConvNeck(nn.Module):
    """Tiny recogniser's sequence model: depthwise 1x5 and pointwise convs with hard-swish."""

    def __init__(self, cin: int, dims: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, (1, 5), 1, (0, 2), groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cin, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.bn1(self.dw(x)))
        x = F.hardswish(self.bn2(self.pw(x)))
        return self.fc(x.flatten(2).transpose(1, 2))


class TextRecognizer(nn.Module):
    """The whole recognition network, softmax included."""

    def __init__(self, spec: RecSpec) -> None:
        super().__init__()
        self.backbone = LCNetV4(spec.backbone)
        cin = self.backbone.out_channels[-1]
        self.neck: nn.Module = LightSVTRNeck(cin, spec.dims) if spec.neck == "svtr" else ConvNeck(cin, spec.dims)
        self.head = nn.Linear(spec.dims, spec.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """N x W/8 x C scores before the softmax (training takes their log-softmax for CTC)."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != 48:
            raise ValueError(f"recogniser input must be N x 3 x 48 x W, got {tuple(x.shape)}")
        feat = self.backbone(x)[-1]
        feat = F.avg_pool2d(feat, (3, 2), (3, 2))
        return self.head(self.neck(feat))
