"""Training configs: bad files give one clear sentence and a non-zero exit; overrides work."""

import os
import subprocess
import sys

import pytest
import yaml

from testsupport.training import one_torch_thread, tiny_dict, training_cache, training_phantom  # noqa: F401 (fixtures)

from CrossModalitySynthLib.errors import ConfigError
from cmsynth_training.__main__ import main
from cmsynth_training.config import config_from_dict, load_config, parse_overrides
from testsupport.paths import REPO_DIR


def _write(tmp_path, data, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return str(p)


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_key_is_named(tmp_path, capsys, training_phantom, training_cache):
    d = tiny_dict("cyclegan", training_phantom, training_cache)
    d["train"]["learning_rate"] = 0.1
    code, _, err = _run(capsys, "cyclegan", "--config", _write(tmp_path, d))
    assert code != 0
    assert "Unknown configuration key 'train.learning_rate'" in err
    assert "Traceback" not in err
    assert err.count("\n") == 1  # one sentence


def test_unknown_section_is_named(tmp_path, capsys, training_phantom, training_cache):
    d = tiny_dict("unet", training_phantom, training_cache)
    d["optimiser"] = {"lr": 1}
    code, _, err = _run(capsys, "unet", "--config", _write(tmp_path, d))
    assert code == 1 and "Unknown configuration key 'optimiser'" in err


@pytest.mark.parametrize(
    "data, model, message",
    [
        ({"mr_sequences": ["t1_in", "t1_opp", "t2", "t1_in"]}, {}, "lists 4 MRI channel(s); the networks take 1 to 3"),
        ({"mr_sequences": ["t1_in", "t1_opp"]}, {"mr_channels": 3}, "model.mr_channels is 3 but data.mr_sequences gives 2"),
        ({"mr_sequences": []}, {}, "lists 0 MRI channel(s)"),
        ({"mr_sequences": ["flair"]}, {}, "Unknown MRI sequence 'flair'"),
    ],
)
def test_wrong_channel_count(tmp_path, capsys, training_phantom, training_cache, data, model, message):
    d = tiny_dict("cyclegan", training_phantom, training_cache)
    d["data"].update(data)
    d["model"].update(model)
    code, _, err = _run(capsys, "cyclegan", "--config", _write(tmp_path, d))
    assert code == 1
    assert message in err


def test_missing_data_folder(tmp_path, capsys, training_cache):
    d = tiny_dict("essnet", str(tmp_path / "no_such_folder"), training_cache)
    code, _, err = _run(capsys, "essnet", "--config", _write(tmp_path, d))
    assert code == 1
    assert "Data folder" in err and "no_such_folder" in err and "does not exist" in err


def test_missing_config_file(tmp_path, capsys):
    code, _, err = _run(capsys, "unet", "--config", tmp_path / "nope.yaml")
    assert code == 1 and "not found" in err


def test_crop_must_suit_the_network(tmp_path, capsys, training_phantom, training_cache):
    d = tiny_dict("unet", training_phantom, training_cache)
    d["data"].update({"crop_size": 30, "load_size": 40})
    code, _, err = _run(capsys, "unet", "--config", _write(tmp_path, d))
    assert code == 1 and "data.crop_size 30 is not a multiple of 4" in err


def test_task_mismatch_and_type_errors(tmp_path, training_phantom, training_cache):
    d = tiny_dict("unet", training_phantom, training_cache)
    d["task"] = "essnet"
    with pytest.raises(ConfigError, match="is a 'essnet' configuration"):
        load_config(_write(tmp_path, d), "unet")
    d = tiny_dict("unet", training_phantom, training_cache)
    d["train"]["epochs"] = "ten"
    with pytest.raises(ConfigError, match="'train.epochs' must be int"):
        config_from_dict(d, "unet")


def test_missing_case_is_named(training_phantom, training_cache):
    d = tiny_dict("cyclegan", training_phantom, training_cache)
    d["data"]["cases"] = ["case_000", "case_077"]
    cfg = config_from_dict(d, "cyclegan")
    from cmsynth_training.data import training_cases

    with pytest.raises(ConfigError, match="case_077"):
        training_cases(cfg)


def test_overrides(training_phantom, training_cache):
    assert parse_overrides(["train.lr=0.001", "data.mr_sequences=[t1_in, t2]", "val.root=null"]) == [
        ("train.lr", 1e-3),
        ("data.mr_sequences", ["t1_in", "t2"]),
        ("val.root", None),
    ]
    cfg = config_from_dict(tiny_dict("cyclegan", training_phantom, training_cache), "cyclegan",
                           ["train.lr=1e-3", "data.mr_sequences=[t1_in,t1_opp]", "model.ngf=4"])  # 1e-3: a YAML string
    assert cfg.train.lr == 0.001 and cfg.data.mr_sequences == ["t1_in", "t1_opp"] and cfg.model.ngf == 4
    with pytest.raises(ConfigError, match="Unknown configuration key 'train.lrr'"):
        config_from_dict(tiny_dict("cyclegan", training_phantom, training_cache), "cyclegan", ["train.lrr=1"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["train.lr"])


def test_shipped_configs_parse():
    """Every shipped config is valid (paths are not checked: the data sets are not here)."""
    here = os.path.join(REPO_DIR, "training", "configs")
    names = sorted(n for n in os.listdir(here) if n.endswith(".yaml"))
    assert len(names) >= 9
    for n in names:
        with open(os.path.join(here, n)) as f:
            task = yaml.safe_load(f)["task"]
        load_config(os.path.join(here, n), task, check_paths=False)


def test_command_line_exit_status(tmp_path, training_phantom, training_cache):
    """The real entry point: a bad config exits 1 with one line on stderr and no traceback."""
    d = tiny_dict("unet", training_phantom, training_cache)
    d["data"]["mr_sequences"] = ["t1_in", "t1_opp", "t2", "t2"]
    path = _write(tmp_path, d)
    r = subprocess.run([sys.executable, "-m", "cmsynth_training", "unet", "--config", path], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.startswith("error: data.mr_sequences lists 4 MRI channel(s)")
    assert "Traceback" not in r.stderr
