"""The FID InceptionV3: architecture size, output, weights loading and the missing-weights error."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from CrossModalitySynthLib.errors import CMSynthError, InputError  # noqa: E402
from CrossModalitySynthLib.metrics import InceptionExtractor  # noqa: E402
from CrossModalitySynthLib.metrics.inception import (  # noqa: E402
    FID_INCEPTION_NUM_PARAMETERS,
    FID_WEIGHTS_ENV,
    FID_WEIGHTS_FILENAME,
    build_fid_inception,
    count_parameters,
)


def test_missing_weights_error_is_clear(monkeypatch, tmp_path):
    monkeypatch.delenv(FID_WEIGHTS_ENV, raising=False)
    with pytest.raises(InputError) as info:
        InceptionExtractor()
    msg = str(info.value)
    assert FID_WEIGHTS_FILENAME in msg and FID_WEIGHTS_ENV in msg and "https://" in msg
    assert isinstance(info.value, CMSynthError)
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(InputError, match="was not found at"):
        build_fid_inception(str(missing))
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(tmp_path))  # a folder without the file
    with pytest.raises(InputError, match=FID_WEIGHTS_FILENAME):
        build_fid_inception()


def test_wrong_weights_file_is_rejected(tmp_path):
    bad = tmp_path / FID_WEIGHTS_FILENAME
    torch.save({"conv.weight": torch.zeros(3)}, str(bad))
    with pytest.warns(UserWarning, match="sha256"):
        with pytest.raises(InputError, match="is not the pytorch-fid InceptionV3 weights"):
            build_fid_inception(str(bad))


@pytest.fixture
def one_thread():
    """One intra-op thread: on the shared 2-core machines this is faster for one small forward."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_network_size_output_and_weight_loading(tmp_path, monkeypatch, one_thread):
    torch.manual_seed(0)
    net = build_fid_inception(load_weights=False)
    # torchvision inception_v3 (27,161,264) - aux classifier (3,326,696) - fc (2,049,000)
    assert count_parameters(net) == FID_INCEPTION_NUM_PARAMETERS == 21_785_568
    # make BatchNorm statistics non-trivial so that the loaded copy is really compared
    state = {k: (v + 0.01 * torch.rand_like(v) if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    net.load_state_dict(state, strict=False)
    state["fc.weight"] = torch.zeros(1008, 2048)  # the pytorch-fid file carries an unused classifier
    state["fc.bias"] = torch.zeros(1008)
    path = tmp_path / FID_WEIGHTS_FILENAME
    torch.save(state, str(path))
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(path))

    rng = np.random.default_rng(0)
    images = rng.random((2, 64, 80)).astype(np.float32)
    with pytest.warns(UserWarning, match="sha256"):  # our stand-in file is not the real one
        extractor = InceptionExtractor()
        feats = extractor(images)
    assert feats.shape == (2, 2048) and feats.dtype == np.float64
    assert np.isfinite(feats).all() and (feats >= 0).all()  # pool of ReLU outputs
    assert not np.allclose(feats[0], feats[1])
    # every backbone tensor came from the file (one forward only: the network costs ~1 s per pass)
    loaded = extractor._net.state_dict()
    for k, v in state.items():
        if not k.startswith("fc."):
            assert torch.equal(loaded[k], v), k


def _identity_pool_branch(block, in_channels):
    """Make the 1x1 conv + BN of a block's pool branch pass input channel 0 to its output 0."""
    conv, bn = block.branch_pool.conv, block.branch_pool.bn
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
    assert conv.in_channels == in_channels


def test_pool_branches_follow_tensorflow_fid_graph():
    """Average pools ignore padding (TF), and Mixed_7c's pool branch is a max pool."""
    net = build_fid_inception(load_weights=False)
    with torch.inference_mode():
        for name, cin, first_pool_channel in (("Mixed_5b", 192, 224), ("Mixed_6b", 768, 576), ("Mixed_7b", 1280, 1856)):
            block = getattr(net, name)
            _identity_pool_branch(block, cin)
            out = block(torch.ones(1, cin, 9, 9))
            # a corner sees 4 of 9 window positions inside the image: 1.0 without padding, 4/9 with
            assert float(out[0, first_pool_channel, 0, 0]) == pytest.approx(1.0, abs=1e-5), name
        block = net.Mixed_7c
        _identity_pool_branch(block, 2048)
        x = torch.zeros(1, 2048, 8, 8)
        x[0, 0, 4, 4] = 5.0
        out = block(x)
        assert float(out[0, 1856, 3, 3]) == pytest.approx(5.0, abs=1e-5)  # max pool spreads the spike
