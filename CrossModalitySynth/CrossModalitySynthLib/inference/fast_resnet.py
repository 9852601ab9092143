"""Optimised CPU inference of the CycleGAN ResNet generator (paths ``optimised-fp32`` and
``optimised-bf16`` of :mod:`.runners`): same function as the network's own forward, faster.

- fp32: the residual-block 3x3 convolutions as Winograd F(4x4, 3x3) (4x fewer multiplications,
  as 36 GEMMs per convolution); the same function up to float rounding.
- bf16: the convolutions in bfloat16 on channels-last tensors (oneDNN, AMX where the CPU has it);
  statistics of every InstanceNorm, the residual stream, the first and the last layer in float32.
- Both: activations channels-last (NHWC) from the first downsampling on (oneDNN's strided and
  transposed convolutions are faster there), the final 7x7 convolution to 1-3 channels as one
  GEMM and 49 shifted sums (oneDNN is slow for so few output channels), biases that InstanceNorm
  cancels dropped, InstanceNorm as torch's GroupNorm with one channel per group (the same
  function, which keeps the channels-last format), ReLUs fused into the copy that follows them,
  reused work buffers (one set per thread), batches cut into cache-sized chunks (one 256 x 256
  slice at a time for the paper-size network), and the chunks spread over worker threads
  (:class:`.slice_workers.SliceWorkers`).

Speed and accuracy figures: ``Testing/Benchmarks/results/cpu_kernels.md``.
"""

import threading
from typing import Dict, List, Optional, Tuple

from ..errors import ConfigError
from .slice_workers import SliceWorkers

# Winograd F(4x4, 3x3) (Lavin & Gray 2016), interpolation points 0, 1, -1, 2, -2 and infinity.
_WINO_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
            (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_WINO_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
           (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_WINO_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
_IN_EPS = 1e-5


def _reflect(p: int, n: int) -> int:
    """Index of padded position ``p`` (pad 1, reflection) in a length-``n`` axis, clipped."""
    if p < 0:
        p = -p
    if p > n - 1:
        p = 2 * (n - 1) - p
    return min(max(p, 0), n - 1)


def instance_norm(x, relu: bool):
    """InstanceNorm2d (affine=False, eps 1e-5) (+ ReLU) of an (N, C, H, W) tensor, any memory format.

    As GroupNorm with one channel per group, the same function: torch's GroupNorm kernel keeps the
    memory format, which its InstanceNorm does not on channels-last tensors. A
    bfloat16 input gives a bfloat16 output (statistics in float32).
    """
    y = _torch().nn.functional.group_norm(x, int(x.shape[1]), eps=_IN_EPS)
    return y.relu_() if relu else y


def reflect_edges_(p, width: int = 1) -> None:
    """Fill the ``width``-voxel border of a padded NHWC buffer by reflection, in place, from its
    inner part (as ``ReflectionPad2d(width)``): rows first, then whole columns (corners included)."""
    for k in range(1, width + 1):
        p[:, width - k, width:-width].copy_(p[:, width + k, width:-width])
        p[:, -width - 1 + k, width:-width].copy_(p[:, -width - 1 - k, width:-width])
    for k in range(1, width + 1):
        p[:, :, width - k].copy_(p[:, :, width + k])
        p[:, :, -width - 1 + k].copy_(p[:, :, -width - 1 - k])


def norm_relu_into(x, out) -> None:
    """``out[...] = ReLU(InstanceNorm(x))`` (statistics as :func:`instance_norm`), with the ReLU
    fused into the copy into ``out`` (another dtype or a view of a padded buffer)."""
    torch = _torch()
    y = instance_norm(x, relu=False)
    if y.dtype == out.dtype:
        torch.clamp_min(y, 0.0, out=out)
    else:  # clamp_min cannot cast on the way out: cast, then ReLU in the (smaller) target dtype
        out.copy_(y).clamp_min_(0.0)


def _torch():
    import torch

    return torch


class _Workspace:
    """Reusable buffers (large fresh allocations cost page faults on every call)."""

    def __init__(self) -> None:
        self.buffers: Dict[str, object] = {}

    def get(self, name: str, shape: Tuple[int, ...], dtype=None):
        torch = _torch()
        dtype = dtype or torch.float32
        buf = self.buffers.get(name)
        if buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != dtype:
            buf = torch.empty(shape, dtype=dtype)
            self.buffers[name] = buf
        return buf


class WinogradReflectConv3x3:
    """``ReflectionPad2d(1)`` + ``Conv2d(C, K, 3)`` (stride 1, no bias) as Winograd F(4x4, 3x3), fp32.

    Input and output: NHWC (N, H, W, C) / (N, H, W, K) contiguous float32.
    Each 6x6 input tile (reflection padding folded into the gather indices) is transformed
    (B^T d B), multiplied per transform position by the transformed filters (36 GEMMs
    (N*T x C) @ (C x K)), and transformed back (A^T m A) to a 4x4 output tile.
    """

    def __init__(self, weight) -> None:
        torch = _torch()
        g = torch.tensor(_WINO_G, dtype=torch.float64)
        bt = torch.tensor(_WINO_BT, dtype=torch.float64)
        at = torch.tensor(_WINO_AT, dtype=torch.float64)
        u = torch.einsum("ai,kcij,bj->abck", g, weight.detach().to("cpu", torch.float64), g)
        self.k, self.c = int(weight.shape[0]), int(weight.shape[1])
        self.U = u.reshape(36, self.c, self.k).float().contiguous()  # (36, C, K)
        self.BB = torch.kron(bt, bt).float().contiguous()  # (36, 36): vec(B^T d B)
        self.AA = torch.kron(at, at).float().contiguous()  # (16, 36): vec(A^T m A)
        self._index: Dict[Tuple[int, int, int], Tuple[object, int, int]] = {}

    def index(self, n: int, h: int, w: int):
        key = (n, h, w)
        if key not in self._index:
            torch = _torch()
            th, tw = -(-h // 4), -(-w // 4)
            rows = torch.tensor([[_reflect(4 * i + r - 1, h) for i in range(th)] for r in range(6)])
            cols = torch.tensor([[_reflect(4 * j + s - 1, w) for j in range(tw)] for s in range(6)])
            base = torch.arange(n).view(1, 1, n, 1, 1) * (h * w)
            idx = base + rows.view(6, 1, 1, th, 1) * w + cols.view(1, 6, 1, 1, tw)  # (6, 6, n, th, tw)
            entry = (idx.reshape(-1).contiguous(), th, tw)
            self._index = {key: entry}  # one shape at a time (swapped whole: safe across threads)
            return entry
        return self._index[key]

    def __call__(self, x_nhwc, out_nhwc, ws: _Workspace) -> None:
        torch = _torch()
        n, h, w, c = x_nhwc.shape
        idx, th, tw = self.index(n, h, w)
        nt, k = n * th * tw, self.k
        d = ws.get("wino_d", (36 * nt, c))
        torch.index_select(x_nhwc.reshape(n * h * w, c), 0, idx, out=d)
        v = ws.get("wino_v", (36, nt * c))
        torch.mm(self.BB, d.view(36, nt * c), out=v)
        v3 = v.view(36, nt, c)
        m = ws.get("wino_m", (36, nt, k))
        if torch.get_num_threads() == 1 and nt * c * k >= (1 << 24):
            for i in range(36):  # one thread, big GEMMs: 36 plain calls beat one bmm (measured)
                torch.mm(v3[i], self.U[i], out=m[i])
        else:  # several threads: bmm hands whole GEMMs to threads (about 15-25 % faster here)
            torch.bmm(v3, self.U, out=m)
        y = ws.get("wino_y", (16, nt * k))
        torch.mm(self.AA, m.view(36, nt * k), out=y)
        tiles = y.view(4, 4, n, th, tw, k).permute(2, 3, 0, 4, 1, 5)  # (n, th, 4, tw, 4, k): rows of K
        if th * 4 == h and tw * 4 == w:
            out_nhwc.view(n, th, 4, tw, 4, k).copy_(tiles)
        else:
            full = ws.get("wino_full", (n, th, 4, tw, 4, k))
            full.copy_(tiles)
            out_nhwc.copy_(full.view(n, th * 4, tw * 4, k)[:, :h, :w])


class FastResnetGenerator:
    """Optimised CPU inference of a :class:`ResnetGenerator` (fp32 Winograd or bf16 oneDNN/AMX).

    Build with :meth:`maybe` (None when the network is not a ResNet generator). The weights are
    copied (and transformed) at construction: later changes to ``net`` are not seen.
    """

    def __init__(self, net, precision: str = "fp32") -> None:
        torch = _torch()
        from torch import nn

        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"Unknown precision {precision!r}; use fp32 or bf16.")
        self.precision = precision
        self._local = threading.local()
        self.workers = SliceWorkers()
        self.in_channels = int(net.in_channels)
        self.res_channels = 4 * int(net.ngf)
        layers = list(net.model)
        convs = [m for m in layers if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        blocks = [m for m in layers if m.__class__.__name__ == "ResidualBlock"]
        downs = [m for m in convs if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
        ups = [m for m in convs if isinstance(m, nn.ConvTranspose2d)]
        cl = torch.channels_last
        low = torch.bfloat16 if precision == "bf16" else torch.float32

        def weight(m, dtype=torch.float32, channels_last=False):
            w = m.weight.detach().to("cpu", dtype).clone()
            return w.contiguous(memory_format=cl) if channels_last else w.contiguous()

        # Biases of every convolution followed by InstanceNorm cancel exactly: left out.
        self.stem_w = weight(convs[0], channels_last=True)
        self.down_w = [weight(m, low, channels_last=True) for m in downs]
        self.blocks: List[Tuple[object, object]] = []
        for b in blocks:
            c1, c2 = [m for m in b.block if isinstance(m, nn.Conv2d)]
            if precision == "fp32":
                self.blocks.append((WinogradReflectConv3x3(c1.weight), WinogradReflectConv3x3(c2.weight)))
            else:
                self.blocks.append((weight(c1, low, True), weight(c2, low, True)))
        self.up_w = [weight(m, low, channels_last=True) for m in ups]
        self.last_w = weight(convs[-1])
        # (C_out * 49, C): row (o, dy, dx) holds weight[o, :, dy, dx]
        self.last_wk = self.last_w.permute(0, 2, 3, 1).reshape(-1, self.last_w.shape[1]).contiguous()
        self.last_b = convs[-1].bias.detach().to("cpu", torch.float32).clone()

    @classmethod
    def maybe(cls, net, precision: str) -> "Optional[FastResnetGenerator]":
        """A fast forward for ``net`` when it is a CycleGAN ResNet generator in its reference layout."""
        from ..networks import ResnetGenerator

        if type(net) is not ResnetGenerator or not cls._standard_layout(net):
            return None
        return cls(net, precision)

    @staticmethod
    def _standard_layout(net) -> bool:
        from torch import nn

        kinds = [type(m).__name__ for m in net.model]
        blocks = kinds.count("ResidualBlock")
        expected = (["ReflectionPad2d", "Conv2d", "InstanceNorm2d", "ReLU"] + ["Conv2d", "InstanceNorm2d", "ReLU"] * 2
                    + ["ResidualBlock"] * blocks + ["ConvTranspose2d", "InstanceNorm2d", "ReLU"] * 2
                    + ["ReflectionPad2d", "Conv2d", "Tanh"])
        if kinds != expected:
            return False
        for m in net.modules():
            if isinstance(m, nn.InstanceNorm2d) and (m.affine or m.track_running_stats or m.eps != _IN_EPS):
                return False
        return True

    def supports(self, x) -> bool:
        """False for inputs the eager network must handle (and explain), e.g. a bad shape."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.dtype != _torch().float32:
            return False
        h, w = int(x.shape[2]), int(x.shape[3])
        return h % 4 == 0 and w % 4 == 0 and h >= 8 and w >= 8

    #: Workspace budget of one internal chunk of slices (Winograd tiles of the residual stage):
    #: bigger chunks are not faster for big slices, but small networks want whole batches.
    chunk_bytes = 16 * 1024 * 1024

    def chunk_size(self, x) -> int:
        h, w = -(-int(x.shape[2]) // 4), -(-int(x.shape[3]) // 4)
        per_slice = 36 * (-(-h // 4)) * (-(-w // 4)) * self.res_channels * 4  # bytes of the Winograd d buffer
        return max(1, self.chunk_bytes // max(per_slice, 1))

    def __call__(self, x):
        """(N, C_in, H, W) float32 -> (N, C_out, H, W) float32.

        The batch is cut into chunks (:meth:`chunk_size`); with several torch threads the chunks
        run on slice workers, each with its own work buffers. Every slice is computed the same way
        whichever worker runs it.
        """
        torch = _torch()
        n = int(x.shape[0])
        workers = self.workers.count(n)
        step = min(self.chunk_size(x), -(-n // workers))
        chunks = [x[i:i + step] for i in range(0, n, step)]
        return torch.cat(self.workers.map(lambda c: self._forward(c, self._workspace()), chunks, workers))

    def _workspace(self) -> _Workspace:
        """The calling thread's work buffers (each worker thread has its own)."""
        ws = getattr(self._local, "ws", None)
        if ws is None:
            ws = self._local.ws = _Workspace()
        return ws

    def _forward(self, x, ws: _Workspace):
        torch = _torch()
        F = torch.nn.functional
        cl = torch.channels_last
        f32 = torch.float32
        # Stem: ReflectionPad(3), Conv7x7, IN, ReLU in fp32. Activations are channels-last (NHWC
        # memory) from here on: oneDNN's fast layout, and GroupNorm's (2x faster than on NCHW). In bf16
        # a normalised activation that only feeds the next bf16 convolution stays bf16 (it would be
        # rounded to bf16 there anyway); the residual stream and the last layer's input are float32.
        x = F.pad(x.contiguous(), (3, 3, 3, 3), mode="reflect").contiguous(memory_format=cl)
        x = F.conv2d(x, self.stem_w)
        if self.down_w[0].dtype == f32:
            x = instance_norm(x, relu=True)
        else:  # ReLU fused into the cast to the first downsampling's bf16 input
            low = torch.empty(x.shape, dtype=self.down_w[0].dtype, memory_format=cl)
            norm_relu_into(x, low)
            x = low
        last = len(self.down_w) - 1
        for i, w in enumerate(self.down_w):  # Conv3x3 stride 2 pad 1, IN, ReLU
            x = F.conv2d(x.to(w.dtype, memory_format=cl), w, None, 2, 1)
            x = instance_norm(x.to(f32) if i == last else x, relu=True)
        h = x.contiguous(memory_format=cl).permute(0, 2, 3, 1)  # NHWC residual stream, updated in place
        if self.precision == "bf16":
            self._blocks_bf16(h, ws)
        else:
            self._blocks_winograd(h, ws)
        x = h.permute(0, 3, 1, 2)
        last = len(self.up_w) - 1
        for i, w in enumerate(self.up_w):  # ConvTranspose3x3 s2 p1 op1, IN, ReLU (channels-last: 2-3x faster)
            x = F.conv_transpose2d(x.to(w.dtype, memory_format=cl), w, None, 2, 1, 1)
            if i < last:
                x = instance_norm(x, relu=True)
        # Last IN + ReLU written straight into a reflection-padded (3) float32 buffer for the 7x7 conv.
        n, c, hh, ww = x.shape
        pad = torch.empty((n, hh + 6, ww + 6, c), dtype=f32)
        norm_relu_into(x.to(f32), pad[:, 3:-3, 3:-3].permute(0, 3, 1, 2))
        reflect_edges_(pad, 3)
        return torch.tanh(self._last_conv(pad.permute(0, 3, 1, 2)))

    def _last_conv(self, xp):
        """Conv2d(C, C_out, 7) of a padded channels-last tensor, as one GEMM and 49 shifted sums.

        oneDNN is slow for so few output channels.
        """
        torch = _torch()
        n, c, hp, wp = xp.shape
        h, w = hp - 6, wp - 6
        k = self.last_w.shape[0]
        z = torch.matmul(self.last_wk, xp.permute(0, 2, 3, 1).reshape(n, hp * wp, c).transpose(1, 2))
        z = z.view(n, k, 49, hp, wp)
        y = z[:, :, 0, 0:h, 0:w].clone()
        for t in range(1, 49):
            dy, dx = divmod(t, 7)
            y.add_(z[:, :, t, dy:dy + h, dx:dx + w])
        return y.add_(self.last_b.view(1, k, 1, 1))

    def _blocks_winograd(self, h, ws: _Workspace) -> None:
        n, hh, ww, c = h.shape
        t = ws.get("block_t", (n, hh, ww, c))
        u = ws.get("block_u", (n, hh, ww, c))
        for conv1, conv2 in self.blocks:
            conv1(h, t, ws)
            conv2(instance_norm(t.permute(0, 3, 1, 2), relu=True).permute(0, 2, 3, 1), u, ws)
            h.add_(instance_norm(u.permute(0, 3, 1, 2), relu=False).permute(0, 2, 3, 1))

    def _blocks_bf16(self, h, ws: _Workspace) -> None:
        """Residual blocks with bf16 convolutions (oneDNN, AMX where present) on a reused
        reflection-padded bf16 buffer; the residual stream and its update in float32."""
        torch = _torch()
        F = torch.nn.functional
        n, hh, ww, c = h.shape
        pad = ws.get("bf16_pad", (n, hh + 2, ww + 2, c), torch.bfloat16)
        inner = pad[:, 1:-1, 1:-1]
        for w1, w2 in self.blocks:
            inner.copy_(h)
            reflect_edges_(pad)
            # bf16 (feeds conv2 only); ReLU on the way into the padded buffer
            norm_relu_into(F.conv2d(pad.permute(0, 3, 1, 2), w1), inner.permute(0, 3, 1, 2))
            reflect_edges_(pad)
            t = instance_norm(F.conv2d(pad.permute(0, 3, 1, 2), w2).float(), relu=False)
            h.add_(t.permute(0, 2, 3, 1))


