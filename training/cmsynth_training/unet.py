"""Liver segmentation on MRI: the library's MONAI U-Net with MONAI's Dice + cross-entropy loss.

Samples are MRI slices (``data.mr_sequences`` as channels) with the binary liver mask (lesions
count as liver), from ``data.root`` and optionally ``data.extra_mr_root`` (e.g. the synthetic
MRI of the augmentation experiment). The head has 2 channels (background, liver), the loss is
``DiceCELoss(to_onehot_y=True, softmax=True)`` (``train.seg_loss`` may pick synseg, dice or ce), one
Adam. Validation: liver Dice / IoU / HD95 (mm) of whole held-out volumes through
prepare -> U-Net -> argmax -> restore.
"""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from CrossModalitySynthLib.networks import build_unet

from .data import CaseRef, LabelledSlices, list_phantom_cases, training_cases, training_record
from .distributed import wrap
from .validation import evaluate_cases, liver_case
from .losses import segmentation_loss
from .task import Task, first_channel, liver_unet_config


class UNetTask(Task):
    name = "unet"

    def __init__(self, cfg, dist, log=None):
        super().__init__(cfg, dist, log)
        self.seg_kind = cfg.train.seg_loss or "dice_ce"
        self.loss_fn = segmentation_loss(self.seg_kind)
        self.build_networks()

    def build_networks(self) -> None:
        m = self.cfg.model
        self.config = liver_unet_config(m, len(self.mr_sequences))
        self.net = build_unet(self.config).to(self.device)
        self.nets = {"unet": self.net}

    def setup_training(self) -> None:
        self.model = wrap(self.net, self.dist)
        self.optimizers = {"unet": self.adam(self.net.parameters())}
        self.make_schedulers()
        self.log.info("U-Net loss: {}".format(self.seg_kind))

    def build_data(self, cache_dir: str, length: Optional[int] = None):
        d = self.cfg.data
        mr_cases, _ = training_cases(self.cfg)
        sets = [self.slice_set(cache_dir, [CaseRef(d.dataset, d.root, c, "MR", self.mr_sequences) for c in mr_cases], True, "MRI")]
        extra: List[str] = []
        if d.extra_mr_root is not None:
            extra = list(d.extra_mr_cases) if d.extra_mr_cases is not None else list_phantom_cases(d.extra_mr_root)
            if extra:
                refs = [CaseRef("phantom", d.extra_mr_root, c, "MR", self.mr_sequences) for c in extra]
                sets.append(self.slice_set(cache_dir, refs, True, "extra MRI"))
        self.dataset = LabelledSlices(sets, self.aug, self.cfg.seed, length=length)
        self._preview_sets = [(sets[0], True)]
        self.data_summary = {
            **training_record(d.dataset, d.root, mr_cases, []),  # the training patients (phantom seeds)
            "mr_sequences": list(self.mr_sequences),
            "mr_slices": len(sets[0]),
        }
        if extra:
            self.data_summary.update({"extra_mr_root": d.extra_mr_root, "extra_mr_cases": extra, "extra_mr_slices": len(sets[1])})
        return self.dataset

    def train_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        x = batch["image"].to(self.device, non_blocking=True)
        y = batch["label"].to(self.device, non_blocking=True)
        with self.autocast():
            logits = self.model(x)
        loss = self.loss_fn(logits, y)
        opt = self.optimizers["unet"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def preview(self) -> Tuple[List[List[np.ndarray]], List[str]]:
        self.net.eval()
        rows = []
        try:
            for s in self.preview_inputs():
                x = s["image"][None].to(self.device)
                with self.autocast():
                    logits = self.net(x)
                pred = logits.float().argmax(1)[0].cpu().numpy().astype(np.float32)
                ref = s["label"][0].numpy().astype(np.float32)
                rows.append([first_channel(x[0]), 2 * pred - 1, 2 * ref - 1])
        finally:
            self.net.train()
        return rows, ["MRI", "predicted liver", "reference liver"]

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        refs = self.val_refs("MR")
        if not refs:
            return {}
        v = self.cfg.val
        self.net.eval()
        try:
            return evaluate_cases(lambda r: liver_case(self.net, r, self.spec, self.device, v.batch_size, self.amp), refs)
        finally:
            self.net.train()

    def export_target(self, which: str = "A") -> Dict[str, Any]:
        return {
            "net": self.net,
            "config": self.config,
            "direction": "MR->LIVER",
            "inputs": self.mr_inputs(),
            "output": {"modality": "LABEL", "labels": {"1": "liver"}},
        }
