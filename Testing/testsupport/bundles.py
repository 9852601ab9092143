"""Tiny model bundles with random weights, for engine and CLI tests (no training needed)."""

import os

import torch

from CrossModalitySynthLib.networks import NetworkConfig, build_network, export_onnx
from CrossModalitySynthLib.preprocess import ModelGridSpec
from CrossModalitySynthLib.registry import load_bundle, write_bundle_spec

SEQUENCES = {"t1_in": "T1 in-phase", "t1_opp": "T1 opposed-phase", "t2": "T2", "ct": "CT"}


def make_test_bundle(folder, direction="MR->CT", inputs=("t1_in", "t1_opp"), spacing=(None, None, None),
                     seed=0, onnx=True, model_id=None, ngf=4, n_blocks=1, unet_channels=(4, 8, 16),
                     unet_strides=(2, 2), num_res_units=1, output_scale=1.0):
    """Write a bundle with a small random network; returns the verified Bundle.

    ``ngf``/``n_blocks`` size the ResNet generator (64 and 9 give the paper's network);
    ``unet_channels``/``unet_strides``/``num_res_units`` size the liver U-Net
    ((16, 32, 64, 128, 256), (2, 2, 2, 2), 2 give the library default).
    ``output_scale`` multiplies the last convolution's weights and bias: a ResNet generator with
    0.01 stays near 0 HU and its bf16 output within the bf16 quality gate (random weights at 1 fail it).
    """
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(seed)
    if direction == "MR->LIVER":
        cfg = NetworkConfig(kind="unet", in_channels=len(inputs), out_channels=2, channels=tuple(unet_channels),
                            strides=tuple(unet_strides), num_res_units=num_res_units)
        output = {"modality": "LABEL", "labels": {"1": "liver"}}
    else:
        cfg = NetworkConfig(kind="resnet_generator", in_channels=len(inputs), out_channels=1, ngf=ngf, n_blocks=n_blocks)
        output = ({"modality": "CT", "unit": "HU", "range": [-1024, 3071]} if direction == "MR->CT"
                  else {"modality": "MR", "unit": "a.u."})
    net = build_network(cfg, init=True)
    if output_scale != 1.0:
        last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.mul_(output_scale)
            if last.bias is not None:
                last.bias.mul_(output_scale)
    torch.save(net.state_dict(), os.path.join(folder, "weights.pt"))
    if onnx:
        export_onnx(net, os.path.join(folder, "model.onnx"), len(inputs), example_hw=(32, 32))
    grid = ModelGridSpec(spacing=spacing, inplane_multiple=cfg.input_multiple)
    write_bundle_spec(str(folder), {
        "id": model_id or f"test-{direction.replace('->', '-to-').lower()}", "version": "0.0.1",
        "direction": direction,
        "inputs": [{"name": n, "modality": "CT" if n == "ct" else "MR", "sequence": SEQUENCES[n]} for n in inputs],
        "output": output, "network": cfg.to_dict(), "preprocessing": grid.to_dict(),
        "licence": "Apache-2.0", "description": "random-weight test bundle",
    })
    return load_bundle(str(folder))


def bundles_and_case(root, extra=(("liver", "MR->LIVER", ("t1_in",)),), seed=8):
    """A two-channel MR->CT test bundle in ``root/m``, the ``extra`` bundles (name, direction, inputs)
    beside it, and one small phantom case; returns the case folder (``root/src/case_000``)."""
    from CrossModalitySynthLib.phantom import write_cases

    make_test_bundle(os.path.join(str(root), "m"), "MR->CT", ("t1_in", "t1_opp"))
    for name, direction, inputs in extra:
        make_test_bundle(os.path.join(str(root), name), direction, inputs)
    return write_cases(os.path.join(str(root), "src"), n_cases=1, seed=seed, size="small")[0]
