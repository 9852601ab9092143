"""EssNet: CT (A, with liver labels) -> MRI (B), CycleGAN plus segmentation of the synthetic MRI.

The networks are :class:`CrossModalitySynthLib.networks.EssNet` (``G_A`` CT -> MRI, ``G_B``
MRI -> CT, ``S`` the U-Net on ``G_A``'s output, ``D_A`` judges MRI, ``D_B`` judges CT). The step
is the CycleGAN step with one more generator term (REFERENCE section 2)::

    L_G = GAN(D_A(fake_B), 1) + GAN(D_B(fake_A), 1) + 10 |rec_A - A| + 10 |rec_B - B|
          + 1 x L_seg(S(G_A(A)), labels_A)

``L_seg`` (``train.seg_loss``) is by default SynSeg-Net's ``dice_loss_norm`` (``synseg``:
foreground only, squared denominators, pooled over the batch; see :mod:`.losses`);
``dice`` (MONAI's defaults), ``ce`` and ``dice_ce`` are options. Its gradient flows through S
into G_A, which keeps G_A from moving the anatomy. S (``model.segmenter``) is the library's
MONAI U-Net (``unet``, default) or SynSeg-Net's segmenter (``resnet9``: the ResNet generator
with 9 blocks of width ``ngf`` and 2 output channels, N(0, ``train.init_gain``) init). One
Adam optimises G_A, G_B and S together; D_A and D_B each have their own Adam. The identity term
is off by default (``train.lambda_identity`` > 0 turns it on when the channel counts agree).

Optional, not in the paper: ``train.lambda_paired > 0`` (phantom data) draws A from the CT
patients' CT on their own MR grid (``ct_on_mr``, with the liver label of that grid) together
with the same patients' MRI, cropped and flipped alike, and adds
``lambda_paired * |G_A(CT) - MRI|`` to ``L_G``; B stays the MRI of the other patients
(the demo EssNet uses it; real unpaired data cannot).
"""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from CrossModalitySynthLib.networks import EssNet, NetworkConfig, build_generator, init_weights

from .cyclegan import CycleSteps, Discriminators, Generators
from .data import CaseRef, UnpairedSlices, training_cases, training_record
from .distributed import wrap
from .validation import evaluate_cases, liver_case, sct_mae_case, smr_mae_case
from .losses import GANLoss, segmentation_loss
from .task import Task, first_channel, liver_unet_config


class EssGenerators(Generators):
    """G_A, G_B and S in one module for one DDP-wrapped generator step: the CycleGAN cycle of
    :class:`~cmsynth_training.cyclegan.Generators`, whose first call is :meth:`EssNet.segment_synthetic`
    (``fake_B`` and its segmentation; the EssNet is kept as a plain attribute, so only G_A, G_B
    and S are this module's parameters)."""

    def __init__(self, essnet: EssNet, identity: bool, batched: bool = False):
        super().__init__(essnet.G_A, essnet.G_B, identity, batched)
        self.S = essnet.S
        self.__dict__["essnet"] = essnet

    def first(self, real_A: torch.Tensor, real_B: torch.Tensor) -> Dict[str, torch.Tensor]:
        fake_B, seg = self.essnet.segment_synthetic(real_A)
        return {"fake_B": fake_B, "seg": seg}


class EssNetTask(CycleSteps, Task):
    name = "essnet"
    d_optimizer_names = ("D_A", "D_B")

    def __init__(self, cfg, dist, log=None):
        super().__init__(cfg, dist, log)
        t = cfg.train
        self.ch_a, self.ch_b = 1, len(self.mr_sequences)
        self.lambda_identity = 0.0 if t.lambda_identity is None else t.lambda_identity
        self.identity = self.lambda_identity > 0 and self.ch_a == self.ch_b
        self.identity_note = ""
        if self.lambda_identity > 0 and not self.identity:
            self.identity_note = "identity loss off: the CT has 1 channel and the MRI {}".format(self.ch_b)
        self.gan = GANLoss(t.gan_mode)
        self.seg_kind = t.seg_loss or "synseg"
        self.seg_loss = segmentation_loss(self.seg_kind)
        self.build_networks()

    def build_networks(self) -> None:
        m, t = self.cfg.model, self.cfg.train
        seg = liver_unet_config(m, self.ch_b)
        self.essnet = EssNet(ct_channels=1, mri_channels=self.ch_b, ngf=m.ngf, n_blocks=m.n_blocks, ndf=m.ndf,
                             seg_config=seg, init=False)
        inits = ["G_A", "G_B", "D_A", "D_B"]
        if m.segmenter == "resnet9":
            # SynSeg-Net's S: define_G(..., 'resnet_9blocks') with 2 classes, Tanh output, N(0, 0.02)
            s_cfg = NetworkConfig("resnet_generator", in_channels=self.ch_b, out_channels=2, ngf=m.ngf, n_blocks=9)
            self.essnet.S = build_generator(s_cfg, init=False)
            self.essnet.configs["S"] = s_cfg
            self.essnet.input_multiple = max(self.essnet.configs["G_A"].input_multiple, s_cfg.input_multiple)
            inits.append("S")
        for name in inits:
            init_weights(getattr(self.essnet, name), std=t.init_gain)
        self.essnet.to(self.device)
        self.nets = {"essnet": self.essnet}
        self.G_A, self.G_B, self.S = self.essnet.G_A, self.essnet.G_B, self.essnet.S
        self.D_A, self.D_B = self.essnet.discriminators()
        self.make_pools()

    def setup_training(self) -> None:
        if self.identity_note:
            self.log.info(self.identity_note)
        self.log.info("EssNet segmentation loss: {} x {}; segmenter S: {}".format(
            self.cfg.train.lambda_seg, self.seg_kind, self.cfg.model.segmenter))
        batched = self.cfg.train.batched_step
        self.gen = wrap(EssGenerators(self.essnet, self.identity, batched), self.dist)
        self.dis = wrap(Discriminators(self.D_A, self.D_B, batched), self.dist)
        self.optimizers = {
            "G": self.adam(self.essnet.generator_parameters()),
            "D_A": self.adam(self.D_A.parameters()),
            "D_B": self.adam(self.D_B.parameters()),
        }
        self.make_schedulers()

    def build_data(self, cache_dir: str, length: Optional[int] = None):
        d = self.cfg.data
        mr_cases, ct_cases = training_cases(self.cfg)
        paired = self.cfg.train.lambda_paired > 0
        if paired:
            # the CT patients' CT on their own MR grid (liver label of that grid) with their MRI
            ct = self.paired_slice_set(cache_dir, [CaseRef(d.dataset, d.root, c, "CT_ON_MR") for c in ct_cases],
                                       [CaseRef(d.dataset, d.root, c, "MR", self.mr_sequences) for c in ct_cases],
                                       True, "CT on MR + MRI (paired)")
        else:
            ct = self.slice_set(cache_dir, [CaseRef(d.dataset, d.root, c, "CT") for c in ct_cases], True, "CT")
        mr = self.slice_set(cache_dir, [CaseRef(d.dataset, d.root, c, "MR", self.mr_sequences) for c in mr_cases], False, "MRI")
        self.dataset = UnpairedSlices(ct, mr, self.aug, self.cfg.seed, label_a=True, length=length)
        self._preview_sets = [(ct, True)]
        self.data_summary = {
            **training_record(d.dataset, d.root, mr_cases, ct_cases),  # the training patients (phantom seeds)
            "mr_sequences": list(self.mr_sequences),
            "ct_slices": len(ct),
            "mr_slices": len(mr),
            "unpaired": "CT (with liver labels) and MRI from different patients",
        }
        if paired:
            self.data_summary["paired"] = ("lambda_paired {}: the CT patients' ct_on_mr (liver label of the MR grid) "
                                           "with their own MRI, same crop and flip".format(self.cfg.train.lambda_paired))
        return self.dataset

    def extra_generator_losses(self, batch: Dict[str, torch.Tensor], out: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """EssNet's segmentation loss: S on the synthetic MRI against the CT's liver label; with
        ``train.lambda_paired`` also the paired L1 term (phantom pairs only)."""
        t = self.cfg.train
        label_A = batch["A_label"].to(self.device, non_blocking=True)
        return {"seg": self.seg_loss(out["seg"], label_A) * t.lambda_seg, **self.paired_loss(batch, out)}

    @torch.no_grad()
    def preview(self) -> Tuple[List[List[np.ndarray]], List[str]]:
        rows = []
        for s in self.preview_inputs():
            x = s["image"][None].to(self.device)
            with self.autocast():
                fake, seg = self.essnet.segment_synthetic(x)
                rec = self.G_B(fake)
            pred = seg.float().argmax(1)[0].cpu().numpy().astype(np.float32)
            ref = s["label"][0].numpy().astype(np.float32)
            rows.append([first_channel(x[0]), first_channel(fake[0]), first_channel(rec[0]), 2 * pred - 1, 2 * ref - 1])
        return rows, ["real CT", "G_A: synthetic MRI", "G_B(G_A): CT", "S(G_A): liver", "reference liver"]

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        v, dev = self.cfg.val, self.device
        if v.root is None:
            return {}
        self.essnet.eval()
        try:
            out: Dict[str, float] = {}
            ct_refs = self.val_refs("CT")
            if ct_refs:
                seg = evaluate_cases(
                    lambda r: liver_case(self.essnet, r, self.spec, dev, v.batch_size, self.amp, distances=False), ct_refs
                )
                out["seg_liver_dice"] = seg["liver_dice"]
            if v.dataset == "phantom":
                refs = self.val_refs("MR")
                out["smr_mae"] = evaluate_cases(lambda r: smr_mae_case(self.G_A, r, self.spec, dev, v.batch_size, self.amp), refs)["smr_mae"]
                out["sct_mae_hu"] = evaluate_cases(lambda r: sct_mae_case(self.G_B, r, self.spec, dev, v.batch_size, self.amp), refs)["sct_mae_hu"]
            out["n_cases"] = float(len(ct_refs))
            return out
        finally:
            self.essnet.train()

    def export_target(self, which: str = "A") -> Dict[str, Any]:
        if which == "A":
            return {"net": self.G_A, "config": self.essnet.configs["G_A"], "direction": "CT->MR",
                    "inputs": self.ct_inputs(), "output": self.mr_output()}
        return {"net": self.G_B, "config": self.essnet.configs["G_B"], "direction": "MR->CT",
                "inputs": self.mr_inputs(), "output": self.ct_output()}
