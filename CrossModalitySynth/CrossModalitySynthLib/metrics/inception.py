"""The InceptionV3 network of the standard FID (pytorch-fid's ``FID Inception``), written here.

Architecture: Inception v3 (Szegedy et al. 2016) as ported from TensorFlow's 2015-12-05 graph,
with the changes pytorch-fid makes so that features match TensorFlow's FID code:

- every convolution is "BasicConv2d": conv without bias, BatchNorm (eps 0.001), ReLU;
- the average-pool branches of the A, C and first E blocks do not count padded zeros
  (``count_include_pad=False``);
- the pool branch of the last E block (``Mixed_7c``) uses a 3x3 max pool instead of an average pool;
- the input is resized to 299x299 (bilinear, ``align_corners=False``) and scaled from [0, 1] to
  [-1, 1]; the output is the 2048-d global average pool after ``Mixed_7c``.

Weights: the file ``pt_inception-2015-12-05-6726825d.pth`` of pytorch-fid (it cannot be
downloaded from here). Give its path as an argument or in the environment variable
``CMSYNTH_FID_WEIGHTS``. The classifier (``fc``, 1008 classes) in that file is not used.

torch is imported lazily so that the rest of the metrics package works without it.
"""

import os
import warnings
from typing import Optional

from ..errors import InputError
from ..registry import sha256_of

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILENAME
)
FID_WEIGHTS_ENV = "CMSYNTH_FID_WEIGHTS"
#: torch.hub naming convention: the hex digits after the last "-" start the file's sha256.
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
#: learnable parameters of the feature network (classifier excluded): torchvision inception_v3
#: (27,161,264) minus its aux classifier (3,326,696) and fc (2,049,000); asserted by the tests.
FID_INCEPTION_NUM_PARAMETERS = 21_785_568
FEATURE_DIM = 2048


def resolve_weights_path(weights_path: Optional[str] = None) -> str:
    """The weights file to use: the argument, else ``$CMSYNTH_FID_WEIGHTS``; error if missing.

    A folder is accepted too: the standard file name is looked for inside it.
    """
    path = weights_path or os.environ.get(FID_WEIGHTS_ENV) or ""
    if path and os.path.isdir(path):
        path = os.path.join(path, FID_WEIGHTS_FILENAME)
    if not path or not os.path.isfile(path):
        where = "at {!r}".format(path) if path else "(no path given and {} is not set)".format(FID_WEIGHTS_ENV)
        raise InputError(
            "The FID InceptionV3 weights file {} was not found {}; download it on a machine with "
            "internet access from {} and pass its path (weights_path=...) or set the environment "
            "variable {} to it.".format(FID_WEIGHTS_FILENAME, where, FID_WEIGHTS_URL, FID_WEIGHTS_ENV)
        )
    return path


def _build_module_classes():
    """Define the torch modules (deferred so that importing this file does not import torch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class BasicConv2d(nn.Module):
        def __init__(self, cin, cout, **kw):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))

    def avg3(x):
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    class BlockA(nn.Module):  # 35x35 grid
        def __init__(self, cin, pool_features):
            super().__init__()
            self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
            self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
            self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
            self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
            self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
            self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
            self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

        def forward(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = self.branch_pool(avg3(x))
            return torch.cat([b1, b5, b3, bp], 1)

    class BlockB(nn.Module):  # 35 -> 17 reduction
        def __init__(self, cin):
            super().__init__()
            self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
            self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
            self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
            self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

        def forward(self, x):
            b3 = self.branch3x3(x)
            bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = F.max_pool2d(x, kernel_size=3, stride=2)
            return torch.cat([b3, bd, bp], 1)

    class BlockC(nn.Module):  # 17x17 grid, factorised 7x7
        def __init__(self, cin, c7):
            super().__init__()
            self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
            self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
            self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
            self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
            self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
            self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
            self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
            self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
            self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
            self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

        def forward(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = x
            for layer in (
                self.branch7x7dbl_1,
                self.branch7x7dbl_2,
                self.branch7x7dbl_3,
                self.branch7x7dbl_4,
                self.branch7x7dbl_5,
            ):
                bd = layer(bd)
            bp = self.branch_pool(avg3(x))
            return torch.cat([b1, b7, bd, bp], 1)

    class BlockD(nn.Module):  # 17 -> 8 reduction
        def __init__(self, cin):
            super().__init__()
            self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
            self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
            self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
            self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
            self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
            self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

        def forward(self, x):
            b3 = self.branch3x3_2(self.branch3x3_1(x))
            b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
            bp = F.max_pool2d(x, kernel_size=3, stride=2)
            return torch.cat([b3, b7, bp], 1)

    class BlockE(nn.Module):  # 8x8 grid, expanded filter banks
        def __init__(self, cin, max_pool_branch):
            super().__init__()
            self.max_pool_branch = max_pool_branch
            self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
            self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
            self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
            self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
            self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
            self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
            self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
            self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
            self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

        def forward(self, x):
            b1 = self.branch1x1(x)
            t = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
            t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], 1)
            if self.max_pool_branch:
                pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
            else:
                pooled = avg3(x)
            bp = self.branch_pool(pooled)
            return torch.cat([b1, b3, bd, bp], 1)

    class FIDInceptionV3(nn.Module):
        """InceptionV3 pool-feature network of the standard FID.

        Input: ``(N, 3, H, W)`` float tensor with values in [0, 1] (any H, W; resized to 299).
        Output: ``(N, 2048)`` pool features.
        """

        def __init__(self):
            super().__init__()
            self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
            self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
            self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
            self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
            self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
            self.Mixed_5b = BlockA(192, 32)
            self.Mixed_5c = BlockA(256, 64)
            self.Mixed_5d = BlockA(288, 64)
            self.Mixed_6a = BlockB(288)
            self.Mixed_6b = BlockC(768, 128)
            self.Mixed_6c = BlockC(768, 160)
            self.Mixed_6d = BlockC(768, 160)
            self.Mixed_6e = BlockC(768, 192)
            self.Mixed_7a = BlockD(768)
            self.Mixed_7b = BlockE(1280, max_pool_branch=False)
            self.Mixed_7c = BlockE(2048, max_pool_branch=True)

        def forward(self, x):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            x = 2.0 * x - 1.0
            x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
            x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
            x = F.max_pool2d(x, kernel_size=3, stride=2)
            for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                         "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
                x = getattr(self, name)(x)
            return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    return FIDInceptionV3


_MODULE_CLASS = None


def build_fid_inception(weights_path: Optional[str] = None, load_weights: bool = True, check_hash: bool = True):
    """Build the FID InceptionV3 in eval mode, with the pytorch-fid weights loaded.

    ``load_weights=False`` builds it with random weights (architecture tests only). The file is
    found with :func:`resolve_weights_path`; its sha256 is compared with the prefix in its name
    (a warning on mismatch) and every backbone tensor must load with the right shape.
    """
    import torch

    global _MODULE_CLASS
    path = resolve_weights_path(weights_path) if load_weights else None  # fail before building
    if _MODULE_CLASS is None:
        _MODULE_CLASS = _build_module_classes()
    net = _MODULE_CLASS()
    if load_weights:
        if check_hash and not sha256_of(path).startswith(FID_WEIGHTS_SHA256_PREFIX):
            warnings.warn(
                "The FID weights file {} does not have the expected sha256 prefix {}; FID values may "
                "not be comparable with pytorch-fid.".format(path, FID_WEIGHTS_SHA256_PREFIX),
                UserWarning,
                stacklevel=2,
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(
                "The FID weights file {} could not be read ({}); download it again from {}.".format(
                    path, exc, FID_WEIGHTS_URL
                )
            )
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        state = {k: v for k, v in state.items() if not k.startswith("fc.") and not k.startswith("AuxLogits.")}
        own = net.state_dict()
        missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in state if k not in own]
        wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or wrong:
            raise InputError(
                "The file {} is not the pytorch-fid InceptionV3 weights ({} missing, {} unexpected, {} "
                "mis-shaped tensors, e.g. {}); download {} from {}.".format(
                    path, len(missing), len(unexpected), len(wrong),
                    (missing + unexpected + wrong)[:3], FID_WEIGHTS_FILENAME, FID_WEIGHTS_URL,
                )
            )
        net.load_state_dict(state, strict=False)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def count_parameters(net) -> int:
    """Number of learnable parameters (BatchNorm running statistics excluded)."""
    return int(sum(p.numel() for p in net.parameters()))
