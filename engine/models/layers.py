"""Building blocks shared by the detection and recognition networks (inference form)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def hard_sigmoid(x: torch.Tensor, slope: float) -> torch.Tensor:
    """Paddle's hard sigmoid: clip(slope * x + 0.5, 0, 1)."""
    return torch.clamp(x * slope + 0.5, 0.0, 1.0)


class SqueezeExcite(nn.Module):
    """Channel attention: x * hardsigmoid(fc2(relu(fc1(mean(x))))).

    With ``residual`` the result is added to x (the detector neck's "RSE" layer).
    """

    def __init__(self, channels: int, slope: float = 1 / 6, residual: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // 4, 1)
        self.fc2 = nn.Conv2d(channels // 4, channels, 1)
        self.slope = slope
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = hard_sigmoid(self.fc2(F.relu(self.fc1(w))), self.slope)
        return x + x * w if self.residual else x * w


class LCNetV4Block(nn.Module):
    """Depthwise 3x3 token mixer (optionally with SE), then a GELU MLP of width 2*in.

    The MLP output is added back when the block keeps its shape.
    """

    def __init__(self, cin: int, cout: int, stride: tuple[int, int], se: bool) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin)
        self.se = SqueezeExcite(cin) if se else None
        self.fc1 = nn.Conv2d(cin, 2 * cin, 1)
        self.fc2 = nn.Conv2d(2 * cin, cout, 1)
        self.residual = cin == cout and tuple(stride) == (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x)
        if self.se is not None:
            y = self.se(y)
        z = self.fc2(F.gelu(self.fc1(y)))
        return y + z if self.residual else z


class HGStem(nn.Module):
    """PP-HGNet style stem: stride 4, a max-pool branch beside two 2x2 convolutions."""

    def __init__(self, mid: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, mid, 3, 2, 1)
        self.conv2a = nn.Conv2d(mid, mid // 2, 2)
        self.conv2b = nn.Conv2d(mid // 2, mid, 2)
        self.conv3 = nn.Conv2d(2 * mid, mid, 3, 2, 1)
        self.conv4 = nn.Conv2d(mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        a = F.relu(self.conv2a(F.pad(x, (0, 1, 0, 1))))
        a = F.relu(self.conv2b(F.pad(a, (0, 1, 0, 1))))
        # "SAME_UPPER" max-pool: the padded cells never win (x >= 0 after relu)
        p = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 1)
        x = F.relu(self.conv3(torch.cat([p, a], dim=1)))
        return F.relu(self.conv4(x))


class ConvStem(nn.Module):
    """Plain stem of the tiny recogniser: two stride-2 3x3 convs with batch-norm."""

    def __init__(self, mid: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, mid, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, cout, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(x))
