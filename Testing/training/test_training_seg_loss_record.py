"""Which segmentation loss an EssNet run used is never lost: the exported spec records it (with
the segmenter), and a checkpoint written before ``synseg`` became the default (its config says
``seg_loss: null``, which meant MONAI's Dice) is not silently resumed with another loss."""

import json
import os

import pytest
import torch

from testsupport.training import one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401

from CrossModalitySynthLib.errors import ConfigError
from cmsynth_training.checkpoint import load_checkpoint, save_checkpoint
from cmsynth_training.export import export_checkpoint
from cmsynth_training.trainer import train


@pytest.fixture(scope="module")
def essnet_run(tmp_path_factory, training_phantom, training_cache):
    out = str(tmp_path_factory.mktemp("ess") / "run")
    return train(tiny_config("essnet", training_phantom, training_cache, train={"max_steps": 1}), out, echo=False)


def _old_style(ckpt_path, tmp_path):
    """The same checkpoint as an EssNet run of before the synseg default wrote it."""
    ckpt = load_checkpoint(ckpt_path)
    ckpt["config"]["train"]["seg_loss"] = None
    path = str(tmp_path / "old.pt")
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k != "format"})
    return path


def _spec(folder):
    with open(os.path.join(folder, "spec.json")) as f:
        return json.load(f)


def test_exported_essnet_spec_records_loss_and_segmenter(tmp_path, essnet_run):
    assert essnet_run.task.cfg.train.seg_loss == "synseg"
    spec = _spec(export_checkpoint(essnet_run.checkpoint, str(tmp_path / "b"), onnx=False))
    assert spec["training"]["seg_loss"] == "synseg"
    assert spec["training"]["segmenter"] == "unet" and spec["training"]["lambda_seg"] == 1.0
    old = _spec(export_checkpoint(_old_style(essnet_run.checkpoint, tmp_path), str(tmp_path / "o"), onnx=False))
    assert old["training"]["seg_loss"] == "dice"  # what null meant when that run trained


def test_old_checkpoint_is_not_resumed_with_another_loss(tmp_path, essnet_run, training_phantom, training_cache):
    old = _old_style(essnet_run.checkpoint, tmp_path)
    cfg = tiny_config("essnet", training_phantom, training_cache, train={"max_steps": 2})
    with pytest.raises(ConfigError) as err:
        train(cfg, str(tmp_path / "r1"), resume=old, echo=False)
    assert str(err.value) == ("{} was trained with train.seg_loss dice; resume it with the same loss (set "
                              "train.seg_loss: dice), not synseg.".format(old))
    cfg = tiny_config("essnet", training_phantom, training_cache, train={"max_steps": 2, "seg_loss": "dice"})
    r = train(cfg, str(tmp_path / "r2"), resume=old, echo=False)
    assert r.global_step == 2
