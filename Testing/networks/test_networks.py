"""Tests of CrossModalitySynthLib.networks: exact parity with the CycleGAN reference
architecture (parameter counts, shapes, receptive field), the U-Net factory, EssNet wiring,
configuration round trips and ONNX export."""

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from CrossModalitySynthLib.errors import ConfigError
from CrossModalitySynthLib.networks import (
    EssNet,
    NetworkConfig,
    NetworkConfigError,
    PatchGANDiscriminator,
    ResnetGenerator,
    build_discriminator,
    build_generator,
    build_liver_unet,
    build_network,
    build_unet,
    export_onnx,
    init_weights,
    receptive_field,
)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- parity with the reference parameter counts (REFERENCE.md section 1) -------------------

@pytest.mark.parametrize(
    "in_ch, out_ch, expected",
    [(1, 1, 11_365_633), (2, 1, 11_368_769), (3, 3, 11_378_179)],  # "3 channels" = 3 in, 3 out
)
def test_generator_parameter_count_matches_reference(in_ch, out_ch, expected):
    assert n_params(ResnetGenerator(in_ch, out_ch, ngf=64, n_blocks=9)) == expected


def test_generator_three_to_one_is_not_the_table_column():
    # documents the interpretation: 3 -> 1 would be 11,371,905, so the table's column is 3 -> 3
    assert n_params(ResnetGenerator(3, 1)) == 11_371_905


@pytest.mark.parametrize("in_ch, expected", [(1, 2_762_689), (2, 2_763_713), (3, 2_764_737)])
def test_discriminator_parameter_count_matches_reference(in_ch, expected):
    assert n_params(PatchGANDiscriminator(in_ch, ndf=64, n_layers=3)) == expected


# --- generator ----------------------------------------------------------------------------

def test_generator_layer_list_matches_reference():
    g = ResnetGenerator(2, 1, ngf=64, n_blocks=9)
    layers = list(g.model)
    assert isinstance(layers[0], nn.ReflectionPad2d) and layers[0].padding == (3, 3, 3, 3)
    assert layers[1].kernel_size == (7, 7) and layers[1].in_channels == 2 and layers[1].out_channels == 64
    downs = [m for m in layers if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [(d.in_channels, d.out_channels, d.kernel_size, d.padding) for d in downs] == [
        (64, 128, (3, 3), (1, 1)),
        (128, 256, (3, 3), (1, 1)),
    ]
    ups = [m for m in layers if isinstance(m, nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels, u.stride, u.padding, u.output_padding) for u in ups] == [
        (256, 128, (2, 2), (1, 1), (1, 1)),
        (128, 64, (2, 2), (1, 1), (1, 1)),
    ]
    assert sum(1 for m in g.modules() if m.__class__.__name__ == "ResidualBlock") == 9
    assert isinstance(layers[-1], nn.Tanh) and layers[-2].kernel_size == (7, 7)
    assert isinstance(layers[-3], nn.ReflectionPad2d)
    assert all(m.bias is not None for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_instance_norm_has_no_affine_params_nor_running_stats():
    for net in (ResnetGenerator(1, 1, ngf=8, n_blocks=2), PatchGANDiscriminator(1, ndf=8)):
        norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
        assert norms
        for m in norms:
            assert not m.affine and not m.track_running_stats
            assert m.weight is None and m.bias is None and m.running_mean is None
        assert len(list(net.buffers())) == 0
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in PatchGANDiscriminator(1).modules()) == 3


def test_generator_shape_and_range():
    g = ResnetGenerator(2, 1, ngf=8, n_blocks=2)
    x = torch.rand(2, 2, 48, 64) * 2 - 1
    with torch.no_grad():
        y = g(x * 50)  # large inputs saturate the tanh but stay in range
        y2 = g(x)
    assert y.shape == (2, 1, 48, 64) and y2.shape == (2, 1, 48, 64)
    assert float(y.min()) >= -1.0 and float(y.max()) <= 1.0
    assert torch.isfinite(y2).all()


@pytest.mark.parametrize("hw", [(30, 32), (32, 34), (31, 31)])
def test_generator_rejects_sizes_not_multiple_of_4(hw):
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1)
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 1, *hw))


def test_generator_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="2 input channel"):
        ResnetGenerator(2, 1, ngf=4, n_blocks=1)(torch.zeros(1, 3, 32, 32))


def test_generator_eval_equals_train():
    # no running stats: train and eval mode compute the same function
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=1)
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        a = g.train()(x)
        b = g.eval()(x)
    assert torch.equal(a, b)


# --- discriminator ------------------------------------------------------------------------

def test_discriminator_output_shape_256():
    d = PatchGANDiscriminator(1)
    with torch.no_grad():
        out = d(torch.randn(1, 1, 256, 256))
    assert out.shape == (1, 1, 30, 30)
    assert not isinstance(list(d.model)[-1], nn.Sigmoid)


def test_discriminator_layer_list_matches_reference():
    convs = [m for m in PatchGANDiscriminator(1).modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [
        (1, 64, 4, 2, 1),
        (64, 128, 4, 2, 1),
        (128, 256, 4, 2, 1),
        (256, 512, 4, 1, 1),
        (512, 1, 4, 1, 1),
    ]
    acts = [m for m in PatchGANDiscriminator(1).modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)


def test_discriminator_receptive_field_is_70():
    # analytically from the layer list ...
    assert receptive_field(PatchGANDiscriminator(1)) == 70
    # ... and empirically: gradient of one central output pixel w.r.t. the input. InstanceNorm
    # couples all pixels through its statistics, so it is replaced by identity for this check.
    d = copy.deepcopy(PatchGANDiscriminator(1, ndf=4)).double()
    for i, m in enumerate(d.model):
        if isinstance(m, nn.InstanceNorm2d):
            d.model[i] = nn.Identity()
    x = torch.randn(1, 1, 128, 128, dtype=torch.float64, requires_grad=True)
    out = d(x)
    assert out.shape[-2:] == (14, 14)
    out[0, 0, 7, 7].backward()
    nz = (x.grad[0, 0].abs() > 0).nonzero()
    rows = int(nz[:, 0].max() - nz[:, 0].min() + 1)
    cols = int(nz[:, 1].max() - nz[:, 1].min() + 1)
    assert (rows, cols) == (70, 70)
    assert int((x.grad[0, 0].abs() > 0).sum()) == 70 * 70


# --- init ---------------------------------------------------------------------------------

def test_init_weights_normal_002():
    g = init_weights(ResnetGenerator(1, 1, ngf=16, n_blocks=2))
    w = torch.cat([m.weight.detach().flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(float(w.std()) - 0.02) < 0.001
    assert abs(float(w.mean())) < 0.001
    biases = [m.bias for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(float(b.detach().abs().max()) == 0.0 for b in biases)
    d = build_discriminator(NetworkConfig(kind="patchgan", ndf=16))
    wd = torch.cat([m.weight.detach().flatten() for m in d.modules() if isinstance(m, nn.Conv2d)])
    assert abs(float(wd.std()) - 0.02) < 0.001


# --- U-Net --------------------------------------------------------------------------------

@pytest.mark.parametrize("in_ch", [1, 2, 3])
def test_unet_forward_on_1_to_3_channels(in_ch):
    net, multiple = build_liver_unet(in_ch, channels=(4, 8, 16, 32, 64))
    assert multiple == 16
    with torch.no_grad():
        out = net(torch.randn(2, in_ch, 32, 48))
    assert out.shape == (2, 2, 32, 48)


def test_unet_parameter_count_depends_on_channels():
    small, _ = build_liver_unet(1, channels=(4, 8, 16, 32, 64))
    default, m = build_liver_unet(1)
    assert m == 16
    assert 0 < n_params(small) < n_params(default)
    one, _ = build_liver_unet(1, out_channels=1, channels=(4, 8, 16, 32, 64))
    assert n_params(one) != n_params(small)


def test_unet_rejects_bad_settings():
    with pytest.raises(ValueError):
        build_liver_unet(4)
    with pytest.raises(ValueError):
        build_liver_unet(1, out_channels=3)
    with pytest.raises(ValueError):
        build_liver_unet(1, channels=(4, 8, 16), strides=(2, 2, 2))


# --- factory ------------------------------------------------------------------------------

def test_config_round_trip_and_build():
    cfgs = [
        NetworkConfig(kind="resnet_generator", in_channels=2, out_channels=1),
        NetworkConfig(kind="patchgan", in_channels=3),
        NetworkConfig(kind="unet", in_channels=3, channels=(8, 16, 32), strides=(2, 2)),
    ]
    for cfg in cfgs:
        d = json.loads(json.dumps(cfg.to_dict()))
        assert NetworkConfig.from_dict(d) == cfg
    assert cfgs[0].to_dict() == {"kind": "resnet_generator", "in_channels": 2, "out_channels": 1, "ngf": 64, "n_blocks": 9}
    assert cfgs[1].to_dict() == {"kind": "patchgan", "in_channels": 3, "ndf": 64, "n_layers": 3}
    assert cfgs[2].out_channels == 2 and cfgs[2].input_multiple == 4
    assert cfgs[0].input_multiple == 4
    assert n_params(build_generator(cfgs[0], init=False)) == 11_368_769
    assert n_params(build_network(cfgs[1].to_dict())) == 2_764_737
    unet = build_unet(cfgs[2])
    assert unet(torch.randn(1, 3, 16, 16)).shape == (1, 2, 16, 16)


def test_config_unknown_key_is_a_clear_value_error():
    with pytest.raises(ValueError, match="'n_blockz'") as exc:
        NetworkConfig.from_dict({"kind": "resnet_generator", "in_channels": 1, "n_blockz": 9})
    assert isinstance(exc.value, ConfigError) and isinstance(exc.value, NetworkConfigError)
    with pytest.raises(ValueError, match="'ndf'"):
        NetworkConfig.from_dict({"kind": "resnet_generator", "ndf": 64})
    with pytest.raises(ValueError, match="kind"):
        NetworkConfig.from_dict({"in_channels": 1})
    with pytest.raises(ValueError, match="'vit'"):
        NetworkConfig.from_dict({"kind": "vit"})
    with pytest.raises(ValueError, match="in_channels"):
        NetworkConfig(kind="patchgan", in_channels=0)
    with pytest.raises(ValueError, match="'ngf'"):
        NetworkConfig(kind="patchgan", ngf=32)
    with pytest.raises(ValueError, match="got 'patchgan'"):
        build_generator(NetworkConfig(kind="patchgan"))


# --- EssNet -------------------------------------------------------------------------------

def _small_essnet(mri_channels=2):
    seg = NetworkConfig(kind="unet", in_channels=mri_channels, channels=(4, 8, 16), strides=(2, 2))
    return EssNet(ct_channels=1, mri_channels=mri_channels, ngf=4, n_blocks=1, ndf=4, seg_config=seg)


def test_essnet_wiring_and_shapes():
    net = _small_essnet(mri_channels=2)
    assert (net.G_A.in_channels, net.G_A.out_channels) == (1, 2)  # CT -> MRI
    assert (net.G_B.in_channels, net.G_B.out_channels) == (2, 1)  # MRI -> CT
    assert net.D_A.in_channels == 2 and net.D_B.in_channels == 1
    assert net.input_multiple == 4
    real_A = torch.randn(2, 1, 32, 32)
    fake_B, seg = net.segment_synthetic(real_A)
    assert fake_B.shape == (2, 2, 32, 32) and seg.shape == (2, 2, 32, 32)
    assert net.D_A(fake_B).shape[1] == 1
    assert net(real_A).shape == (2, 2, 32, 32)
    gen_ids = {id(p) for p in net.generator_parameters()}
    assert all(id(p) in gen_ids for p in net.S.parameters())
    assert not any(id(p) in gen_ids for d in net.discriminators() for p in d.parameters())
    assert set(net.config_dict()) == {"G_A", "G_B", "S", "D_A", "D_B"}
    with pytest.raises(ValueError, match="multiples of 4"):
        net.segment_synthetic(torch.randn(1, 1, 30, 32))


def test_essnet_seg_loss_reaches_G_A():
    net = _small_essnet(mri_channels=1)
    real_A = torch.randn(1, 1, 32, 32)
    labels = (torch.rand(1, 32, 32) > 0.5).long()
    _, seg = net.segment_synthetic(real_A)
    nn.functional.cross_entropy(seg, labels).backward()
    first_conv = net.G_A.model[1]
    assert first_conv.weight.grad is not None and float(first_conv.weight.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.G_B.parameters())
    assert all(p.grad is None for p in net.D_A.parameters())


def test_essnet_rejects_mismatched_seg_channels():
    with pytest.raises(ValueError, match="mri_channels"):
        EssNet(ct_channels=1, mri_channels=2, ngf=4, n_blocks=1, ndf=4, seg_config=NetworkConfig(kind="unet", in_channels=1))


# --- ONNX ---------------------------------------------------------------------------------

def test_onnx_export_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    g = init_weights(ResnetGenerator(2, 1, ngf=8, n_blocks=2)).eval()
    path = export_onnx(g, str(tmp_path / "g.onnx"), in_channels=2, example_hw=(64, 64))
    assert list(tmp_path.iterdir()) == [tmp_path / "g.onnx"]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.name == "image"
    # dynamic batch, H and W: run at a size other than the trace size
    x = (torch.rand(3, 2, 48, 80) * 2 - 1).float()
    (y_ort,) = sess.run(None, {"image": x.numpy()})
    with torch.no_grad():
        y_torch = g(x).numpy()
    assert y_ort.shape == (3, 1, 48, 80)
    assert float(np.max(np.abs(y_ort - y_torch))) < 1e-4
