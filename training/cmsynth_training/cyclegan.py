"""CycleGAN MRI <-> CT (unpaired), the reference's training step.

Domains follow ``direction``: "MR->CT" makes A = MRI (1-3 sequences) and B = CT; "CT->MR" the
reverse. ``G_A``: A -> B is the network a bundle exports, ``G_B``: B -> A; ``D_A`` judges B
(real vs ``G_A``'s fakes) and ``D_B`` judges A, as in the reference.

One step (reference order):

1. generators, discriminators frozen: ``fake_B = G_A(A)``, ``rec_A = G_B(fake_B)``,
   ``fake_A = G_B(B)``, ``rec_B = G_A(fake_A)``;
   ``L_G = GAN(D_A(fake_B), 1) + GAN(D_B(fake_A), 1) + l_A |rec_A - A| + l_B |rec_B - B|
   + l_idt (l_B |G_A(B) - B| + l_A |G_B(A) - A|)``; one Adam over G_A and G_B.
2. discriminators, with fakes from the pools of 50:
   ``L_D_A = 0.5 (GAN(D_A(B), 1) + GAN(D_A(pool_B(fake_B)), 0))``, ``L_D_B`` likewise; one Adam.

The identity term needs G_A to accept B images, so it is switched off (and the log says so)
when the two domains have different channel counts, e.g. T1 in + opposed phase -> CT.

Optional, not in the paper: ``train.lambda_paired > 0`` (phantom data, MR->CT) draws the A
(MRI) slices together with the same patient's CT on the MR grid, same crop and flip, and adds
``lambda_paired * |fake_B - CT|`` to ``L_G`` (the demo models use it; real unpaired data cannot).
"""

import itertools
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from CrossModalitySynthLib.networks import NetworkConfig, build_discriminator, build_generator, init_weights

from .data import CaseRef, UnpairedSlices, training_cases
from .distributed import wrap
from .validation import evaluate_cases, sct_mae_case, smr_mae_case
from .losses import GANLoss, l1
from .pool import ImagePool
from .task import Task, first_channel, set_requires_grad


class Generators(nn.Module):
    """Both generators in one module, so one DDP wrapper sees one forward and one backward.

    ``batched`` (``train.batched_step``): the calls that do not depend on each other share one
    forward, ``G_A([real_A, real_B])`` (fake_B and, with identity, idt_A), then
    ``G_B([fake_B, real_B, real_A])`` (rec_A, fake_A, idt_B), then ``G_A(fake_A)`` (rec_B): three
    calls instead of six. The networks normalise per sample (InstanceNorm), so every output is
    the one a separate call gives; on the CPU the values are bit-identical except where oneDNN
    picks another convolution kernel for the larger batch (seen: batch 1 at crops below 128
    pixels, about 1e-6).
    """

    def __init__(self, G_A: nn.Module, G_B: nn.Module, identity: bool, batched: bool = False):
        super().__init__()
        self.G_A, self.G_B, self.identity, self.batched = G_A, G_B, identity, batched

    def first(self, real_A: torch.Tensor, real_B: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``fake_B = G_A(real_A)`` (batched with identity: and ``idt_A``, in the same call);
        EssNet's generators also segment ``fake_B`` here."""
        if self.batched and self.identity:
            fake_B, idt_A = self.G_A(torch.cat([real_A, real_B])).split(real_A.shape[0])
            return {"fake_B": fake_B, "idt_A": idt_A}
        return {"fake_B": self.G_A(real_A)}

    def forward(self, real_A: torch.Tensor, real_B: torch.Tensor) -> Dict[str, torch.Tensor]:
        out = self.first(real_A, real_B)
        if self.batched:
            parts = [out["fake_B"], real_B] + ([real_A] if self.identity else [])
            res = self.G_B(torch.cat(parts)).split(real_A.shape[0])
            out["rec_A"], out["fake_A"] = res[0], res[1]
            if self.identity:
                out["idt_B"] = res[2]
        else:
            out["rec_A"] = self.G_B(out["fake_B"])
            out["fake_A"] = self.G_B(real_B)
        out["rec_B"] = self.G_A(out["fake_A"])
        if self.identity and "idt_A" not in out:
            out["idt_A"] = self.G_A(real_B)
        if self.identity and "idt_B" not in out:
            out["idt_B"] = self.G_B(real_A)
        return out


class Discriminators(nn.Module):
    """D_A and D_B on real and (pooled) fake images, for one DDP-wrapped discriminator step;
    ``batched``: each discriminator sees ``[real, fake]`` in one call (per-sample maths)."""

    def __init__(self, D_A: nn.Module, D_B: nn.Module, batched: bool = False):
        super().__init__()
        self.D_A, self.D_B, self.batched = D_A, D_B, batched

    def forward(self, real_A, real_B, fake_A, fake_B) -> Tuple[torch.Tensor, ...]:
        if not self.batched:
            return self.D_A(real_B), self.D_A(fake_B), self.D_B(real_A), self.D_B(fake_A)
        p_real_B, p_fake_B = self.D_A(torch.cat([real_B, fake_B])).split([real_B.shape[0], fake_B.shape[0]])
        p_real_A, p_fake_A = self.D_B(torch.cat([real_A, fake_A])).split([real_A.shape[0], fake_A.shape[0]])
        return p_real_B, p_fake_B, p_real_A, p_fake_A


class CycleSteps:
    """The CycleGAN training step, shared by :class:`CycleGANTask` and EssNet's task.

    A task using it has ``gen`` (a :class:`Generators`-like module returning fake_B, rec_A,
    fake_A, rec_B and, with ``identity``, idt_A / idt_B), ``dis`` (:class:`Discriminators`),
    ``D_A``, ``D_B``, ``gan``, ``identity``, ``lambda_identity``, ``pool_A``, ``pool_B`` and the
    optimizers "G" and :attr:`d_optimizer_names`. Task-specific terms come from
    :meth:`extra_generator_losses`.
    """

    #: optimizers stepped together for the discriminators
    d_optimizer_names: Tuple[str, ...] = ("D",)

    def extra_generator_losses(self, batch: Dict[str, torch.Tensor], out: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {}

    def paired_loss(self, batch: Dict[str, torch.Tensor], out: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The optional paired L1 term (``train.lambda_paired``, phantom pairs only):
        ``lambda_paired * |fake_B - A_paired|``; empty when it is off."""
        t = self.cfg.train
        if t.lambda_paired <= 0:
            return {}
        if "A_paired" not in batch:
            raise ValueError("train.lambda_paired > 0 needs paired batches (A_paired); build the data with build_data")
        target = batch["A_paired"].to(self.device, non_blocking=True)
        return {"paired": l1(out["fake_B"], target) * t.lambda_paired}

    def train_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        t = self.cfg.train
        real_A = batch["A"].to(self.device, non_blocking=True)
        real_B = batch["B"].to(self.device, non_blocking=True)

        # 1. generators (discriminators frozen)
        set_requires_grad([self.D_A, self.D_B], False)
        with self.autocast():
            out = self.gen(real_A, real_B)
            pred_fake_B = self.D_A(out["fake_B"])
            pred_fake_A = self.D_B(out["fake_A"])
        losses = {
            "G_A": self.gan(pred_fake_B, True),
            "G_B": self.gan(pred_fake_A, True),
            "cycle_A": l1(out["rec_A"], real_A) * t.lambda_cycle_a,
            "cycle_B": l1(out["rec_B"], real_B) * t.lambda_cycle_b,
        }
        losses.update(self.extra_generator_losses(batch, out))
        if self.identity:
            losses["idt_A"] = l1(out["idt_A"], real_B) * t.lambda_cycle_b * self.lambda_identity
            losses["idt_B"] = l1(out["idt_B"], real_A) * t.lambda_cycle_a * self.lambda_identity
        loss_G = sum(losses.values())
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_G.backward()
        self.optimizers["G"].step()

        # 2. discriminators, fakes from the pools
        set_requires_grad([self.D_A, self.D_B], True)
        fake_B = self.pool_B.query(out["fake_B"].float())
        fake_A = self.pool_A.query(out["fake_A"].float())
        with self.autocast():
            p_real_B, p_fake_B, p_real_A, p_fake_A = self.dis(real_A, real_B, fake_A, fake_B)
        loss_D_A = 0.5 * (self.gan(p_real_B, True) + self.gan(p_fake_B, False))
        loss_D_B = 0.5 * (self.gan(p_real_A, True) + self.gan(p_fake_A, False))
        for name in self.d_optimizer_names:
            self.optimizers[name].zero_grad(set_to_none=True)
        (loss_D_A + loss_D_B).backward()
        for name in self.d_optimizer_names:
            self.optimizers[name].step()

        losses["G"] = loss_G
        losses["D_A"] = loss_D_A
        losses["D_B"] = loss_D_B
        return {k: v.detach() for k, v in losses.items()}

    # ---- state ----------------------------------------------------------------------------
    def make_pools(self) -> None:
        """The two fake-image pools (seeded per rank, so DDP replicas draw differently)."""
        seed = self.cfg.seed * 1000 + 2 * self.dist.rank
        self.pool_A = ImagePool(self.cfg.train.pool_size, seed)
        self.pool_B = ImagePool(self.cfg.train.pool_size, seed + 1)

    def extra_state(self) -> Dict[str, Any]:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        self.pool_A.load_state_dict(state["pool_A"], self.device)
        self.pool_B.load_state_dict(state["pool_B"], self.device)


class CycleGANTask(CycleSteps, Task):
    name = "cyclegan"

    def __init__(self, cfg, dist, log=None):
        super().__init__(cfg, dist, log)
        self.a_is_mr = cfg.direction == "MR->CT"
        mr, ct = len(self.mr_sequences), 1
        self.ch_a, self.ch_b = (mr, ct) if self.a_is_mr else (ct, mr)
        t = cfg.train
        self.lambda_identity = 0.5 if t.lambda_identity is None else t.lambda_identity
        self.identity = self.lambda_identity > 0 and self.ch_a == self.ch_b
        self.identity_note = ""
        if self.lambda_identity > 0 and not self.identity:
            self.identity_note = (
                "identity loss off: domain A has {} channel(s) and domain B {}, so G_A cannot take B images "
                "(lambda_identity {} ignored)".format(self.ch_a, self.ch_b, self.lambda_identity)
            )
        self.gan = GANLoss(t.gan_mode)
        self.build_networks()

    # ---- networks -------------------------------------------------------------------------
    def build_networks(self) -> None:
        m, t = self.cfg.model, self.cfg.train
        self.configs = {
            "G_A": NetworkConfig("resnet_generator", in_channels=self.ch_a, out_channels=self.ch_b, ngf=m.ngf, n_blocks=m.n_blocks),
            "G_B": NetworkConfig("resnet_generator", in_channels=self.ch_b, out_channels=self.ch_a, ngf=m.ngf, n_blocks=m.n_blocks),
            "D_A": NetworkConfig("patchgan", in_channels=self.ch_b, ndf=m.ndf, n_layers=m.n_layers),
            "D_B": NetworkConfig("patchgan", in_channels=self.ch_a, ndf=m.ndf, n_layers=m.n_layers),
        }
        for name, c in self.configs.items():
            builder = build_generator if name.startswith("G") else build_discriminator
            net = init_weights(builder(c, init=False), std=t.init_gain)
            self.nets[name] = net.to(self.device)
        self.G_A, self.G_B, self.D_A, self.D_B = (self.nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
        self.make_pools()

    def setup_training(self) -> None:
        if self.identity_note:
            self.log.info(self.identity_note)
        batched = self.cfg.train.batched_step
        self.gen = wrap(self.compiled(Generators(self.G_A, self.G_B, self.identity, batched)), self.dist)
        self.dis = wrap(self.compiled(Discriminators(self.D_A, self.D_B, batched)), self.dist)
        self.optimizers = {
            "G": self.adam(itertools.chain(self.G_A.parameters(), self.G_B.parameters())),
            "D": self.adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters())),
        }
        self.make_schedulers()

    # ---- data -----------------------------------------------------------------------------
    def build_data(self, cache_dir: str, length: Optional[int] = None):
        d = self.cfg.data
        mr_cases, ct_cases = training_cases(self.cfg)
        mr_refs = [CaseRef(d.dataset, d.root, c, "MR", self.mr_sequences) for c in mr_cases]
        if self.cfg.train.lambda_paired > 0:
            # the MRI patients' own CT on the MR grid, prepared (and cached) by the same code
            mr = self.paired_slice_set(cache_dir, mr_refs, [CaseRef(d.dataset, d.root, c, "CT_ON_MR") for c in mr_cases],
                                       False, "MRI + CT on MR (paired)")
        else:
            mr = self.slice_set(cache_dir, mr_refs, False, "MRI")
        ct = self.slice_set(cache_dir, [CaseRef(d.dataset, d.root, c, "CT") for c in ct_cases], False, "CT")
        a, b = (mr, ct) if self.a_is_mr else (ct, mr)
        self.dataset = UnpairedSlices(a, b, self.aug, self.cfg.seed, length=length)
        self._preview_sets = [(a, False)]
        self.data_summary = {
            "dataset": d.dataset,
            "root": d.root,
            "mr_cases": mr_cases,
            "ct_cases": ct_cases,
            "mr_sequences": list(self.mr_sequences),
            "mr_slices": len(mr),
            "ct_slices": len(ct),
            "unpaired": "MRI and CT from different patients",
        }
        if self.cfg.train.lambda_paired > 0:
            self.data_summary["paired"] = "lambda_paired {}: the MRI cases' own ct_on_mr, same crop and flip".format(
                self.cfg.train.lambda_paired
            )
        return self.dataset

    def extra_generator_losses(self, batch: Dict[str, torch.Tensor], out: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The optional paired L1 term (``train.lambda_paired``, phantom pairs only)."""
        return self.paired_loss(batch, out)

    # ---- epoch products -------------------------------------------------------------------
    @torch.no_grad()
    def preview(self) -> Tuple[List[List[np.ndarray]], List[str]]:
        rows = []
        for s in self.preview_inputs():
            x = s["image"][None].to(self.device)
            with self.autocast():
                fake = self.G_A(x)
                rec = self.G_B(fake)
            rows.append([first_channel(x[0]), first_channel(fake[0]), first_channel(rec[0])])
        a, b = ("MRI", "CT") if self.a_is_mr else ("CT", "MRI")
        return rows, ["real {}".format(a), "G_A: synthetic {}".format(b), "G_B(G_A): reconstructed"]

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        refs = self.val_refs("MR")
        if not refs:
            return {}
        if self.cfg.val.dataset != "phantom":
            return {}
        v, dev = self.cfg.val, self.device
        mr2ct, ct2mr = (self.G_A, self.G_B) if self.a_is_mr else (self.G_B, self.G_A)
        for n in (mr2ct, ct2mr):
            n.eval()
        try:
            sct = evaluate_cases(lambda r: sct_mae_case(mr2ct, r, self.spec, dev, v.batch_size, self.amp), refs)
            smr = evaluate_cases(lambda r: smr_mae_case(ct2mr, r, self.spec, dev, v.batch_size, self.amp), refs)
        finally:
            for n in (mr2ct, ct2mr):
                n.train()
        return {"sct_mae_hu": sct["sct_mae_hu"], "smr_mae": smr["smr_mae"], "n_cases": sct["n_cases"]}

    def export_target(self, which: str = "A") -> Dict[str, Any]:
        net, cfg = (self.G_A, self.configs["G_A"]) if which == "A" else (self.G_B, self.configs["G_B"])
        mr_to_ct = self.a_is_mr == (which == "A")
        return {
            "net": net,
            "config": cfg,
            "direction": "MR->CT" if mr_to_ct else "CT->MR",
            "inputs": self.mr_inputs() if mr_to_ct else self.ct_inputs(),
            "output": self.ct_output() if mr_to_ct else self.mr_output(),
        }
