"""Issue 18 item 1: the augmentation experiment refuses a setup in which a test patient was seen
in training (by the translator or by either U-Net arm), and the shipped configs hold the test
patients out.

Patients are compared by identity: the phantom seed in case.json (folder names are reused by
every phantom folder), CHAOS ``CT:<id>`` / ``MR:<id>`` (a CHAOS CT and an MR case with the same
number are different people)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from testsupport.training import PHANTOM_SEED, one_torch_thread, tiny_config, tiny_dict, training_cache, training_phantom  # noqa: F401

from CrossModalitySynthLib.errors import ConfigError
from cmsynth_training.augment import _cases, check_leakage, run_augment, translator_record
from cmsynth_training.config import load_config
from cmsynth_training.data import training_cases, training_record
from cmsynth_training.trainer import train
from testsupport.paths import REPO_DIR

REPO = REPO_DIR
CONFIGS = os.path.join(REPO, "training", "configs")
DEMO_ESSNET_BUNDLE = os.path.join(REPO, "CrossModalitySynth", "Resources", "Models", "demo-ct-to-t1in-essnet")
#: the CHAOS 2019 training ids (CT and MR patients are different people)
CHAOS_CT = ["1", "2", "5", "6", "8", "10", "14", "16", "18", "19", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30"]
CHAOS_MR = ["1", "2", "3", "5", "8", "10", "13", "15", "19", "20", "21", "22", "31", "32", "33", "34", "36", "37", "38", "39"]


@pytest.fixture(scope="module")
def translator(tmp_path_factory, training_phantom, training_cache):
    """A real (1-step) EssNet checkpoint trained on case_000 ... case_003 of the training phantom
    (MRI case_000, case_002; CT case_001, case_003)."""
    out = str(tmp_path_factory.mktemp("essnet_translator"))
    return train(tiny_config("essnet", training_phantom, training_cache, train={"max_steps": 1}), out, echo=False).checkpoint


def _augment_dict(root, cache, translator_path, mr, ct, test):
    return tiny_dict("augment", root, cache, data={"cases": list(mr)},
                     train={"epochs": 1, "epochs_decay": 0, "steps_per_epoch": 2, "batch_size": 2},
                     augment={"translator": translator_path, "ct_cases": list(ct), "test_cases": list(test),
                              "seeds": [0], "n_boot": 200})


def _check(cfg):
    mr, ct, test = _cases(cfg)
    record, what = translator_record(cfg.augment.translator)
    return check_leakage(cfg, record, what, mr, ct, test)


def test_checkpoint_records_its_training_patients(translator, training_phantom):
    record, _ = translator_record(translator)
    assert record["dataset"] == "phantom"
    assert record["mr_cases"] == ["case_000", "case_002"] and record["ct_cases"] == ["case_001", "case_003"]
    assert record["mr_phantom_seeds"] == [PHANTOM_SEED, PHANTOM_SEED + 2]  # write_cases: case i has seed + i
    assert record["ct_phantom_seeds"] == [PHANTOM_SEED + 1, PHANTOM_SEED + 3]


def test_cli_refuses_test_patients_the_translator_saw(tmp_path, translator, training_phantom, training_cache):
    """The real command: one sentence naming the patients and who saw them, exit 1, nothing written."""
    d = _augment_dict(training_phantom, training_cache, translator, mr=["case_000"], ct=["case_004"],
                      test=["case_002", "case_003", "case_005"])
    path = tmp_path / "aug.yaml"
    path.write_text(yaml.safe_dump(d))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "cmsynth_training", "augment", "--config", str(path), "--out", str(out)],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1, r.stderr
    assert r.stderr == (
        "error: Test patient(s) case_002 (seed:{}), case_003 (seed:{}) were seen in training by the translator's MRI "
        "training cases and the translator's CT training cases; hold them out of that training or choose other "
        "augment.test_cases.\n".format(PHANTOM_SEED + 2, PHANTOM_SEED + 3)
    )
    assert not out.exists()  # refused before anything is written


def test_refuses_test_patients_in_either_unet_arm(tmp_path, translator, training_phantom, training_cache):
    # real MRI arm: an explicit data.mr_cases list naming a test patient
    d = _augment_dict(training_phantom, training_cache, translator, mr=["case_000"], ct=["case_001"], test=["case_004", "case_005"])
    d["data"]["mr_cases"] = ["case_000", "case_004"]
    cfg = load_config(None, "augment", data=d)
    with pytest.raises(ConfigError, match=r"case_004 \(seed:{}\) were seen in training by the U-Net arms' real MRI".format(PHANTOM_SEED + 4)):
        _check(cfg)
    # synthetic arm: the CT of a test patient would bring that patient's liver labels into training
    cfg = load_config(None, "augment", data=_augment_dict(training_phantom, training_cache, translator, mr=["case_000"],
                                                          ct=["case_005"], test=["case_004", "case_005"]))
    with pytest.raises(ConfigError, match=r"case_005 \(seed:{}\) were seen in training by the synthetic MRI's CT cases".format(PHANTOM_SEED + 5)):
        run_augment(cfg, str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_a_leak_free_setup_passes(translator, training_phantom, training_cache):
    cfg = load_config(None, "augment", data=_augment_dict(training_phantom, training_cache, translator,
                                                          mr=["case_000", "case_001"], ct=["case_002", "case_003"],
                                                          test=["case_004", "case_005"]))
    counts = _check(cfg)
    assert list(counts.values()) == [2, 2, 2, 2]


def test_phantom_identity_is_the_seed_not_the_folder_name(tmp_path, training_phantom, training_cache):
    """A translator trained in another phantom folder: same folder names, other seeds = other
    patients (passes); a copy of a test patient under another name = the same patient (refused)."""
    other = tmp_path / "other_phantom"
    other.mkdir()
    for name, seed in (("case_004", 777), ("case_005", 778)):  # same names as the test cases, other patients
        (other / name).mkdir()
        (other / name / "case.json").write_text(json.dumps({"seed": seed}))
    shutil.copytree(os.path.join(training_phantom, "case_004"), str(other / "case_010"))  # test patient case_004, renamed
    cfg = load_config(None, "augment", data=_augment_dict(training_phantom, training_cache, str(other), mr=["case_000"],
                                                          ct=["case_001"], test=["case_004", "case_005"]), check_paths=False)
    mr, ct, test = _cases(cfg)
    ok = training_record("phantom", str(other), ["case_004"], ["case_005"])
    assert ok["mr_phantom_seeds"] == [777]
    check_leakage(cfg, ok, "the translator", mr, ct, test)
    leak = training_record("phantom", str(other), ["case_010"], ["case_005"])
    with pytest.raises(ConfigError, match=r"^Test patient\(s\) case_004 \(seed:{}\) were seen in training by the translator's MRI".format(PHANTOM_SEED + 4)):
        check_leakage(cfg, leak, "the translator", mr, ct, test)


def test_shipped_demo_bundle_records_patients_and_is_checked(tmp_path, training_cache):
    """The shipped demo EssNet bundle (trained on phantom seeds 1000-1023: the 24 cases of `demo
    data`, MRI the even and CT the odd ones) as translator: test patients with those seeds are
    refused, held-out seeds (9000...) pass."""
    from CrossModalitySynthLib.phantom import write_cases

    record, _ = translator_record(DEMO_ESSNET_BUNDLE)
    assert record["mr_phantom_seeds"] == list(range(1000, 1024, 2))
    assert record["ct_phantom_seeds"] == list(range(1001, 1024, 2))
    root = tmp_path / "p"
    write_cases(str(root / "a"), n_cases=2, seed=1000, size="small")  # the demo's training patients 1000, 1001
    write_cases(str(root / "b"), n_cases=2, seed=9000, size="small")
    for sub in ("a", "b"):
        cfg = load_config(None, "augment", data=_augment_dict(str(root / sub), training_cache, DEMO_ESSNET_BUNDLE,
                                                              mr=[], ct=["case_000"], test=["case_000", "case_001"]))
        test = ["case_000", "case_001"]
        if sub == "a":
            with pytest.raises(ConfigError, match=r"case_000 \(seed:1000\), case_001 \(seed:1001\) were seen in training by "
                                                  r"the translator's MRI training cases and the translator's CT training cases"):
                check_leakage(cfg, record, "the bundle", [], [], test)
        else:
            check_leakage(cfg, record, "the bundle", [], [], test)


# ---------------------------------------------------------------------------------- CHAOS


def _fake_chaos(root):
    """The CHAOS 2019 training layout (folders only: the leakage check reads no images)."""
    for case in CHAOS_CT:
        os.makedirs(os.path.join(root, "Train_Sets", "CT", case, "DICOM_anon"))
    for case in CHAOS_MR:
        os.makedirs(os.path.join(root, "Train_Sets", "MR", case, "T1DUAL"))
    return root


def _chaos_augment(root, translator_path, **data):
    d = {"task": "augment", "data": {"dataset": "chaos", "root": root, "mr_sequences": ["t1_in"], **data},
         "train": {"steps_per_epoch": 10},
         "augment": {"translator": translator_path, "test_cases": ["31", "32"]}}
    return load_config(None, "augment", data=d, check_paths=False)


def test_chaos_keeps_ct_and_mr_patients_apart(tmp_path):
    root = _fake_chaos(str(tmp_path / "CHAOS"))
    cfg = _chaos_augment(root, "t.pt", mr_cases=["1", "2", "3"])
    cfg.augment.ct_cases = ["1", "2", "5"]  # CT patients 1, 2 are not MR patients 1, 2
    mr, ct, test = _cases(cfg)
    assert mr == ["1", "2", "3"] and ct == ["1", "2", "5"]
    # a translator trained on every CT patient and the MR patients other than the test ones passes
    record = training_record("chaos", root, [m for m in CHAOS_MR if m not in ("31", "32")], CHAOS_CT)
    counts = check_leakage(cfg, record, "the translator", mr, ct, test)
    assert list(counts.values()) == [18, 20, 3, 3]
    # by default the CHAOS CT cases do not remove MR patients of the same number from cmsynth_training
    cfg = _chaos_augment(root, "t.pt")
    cfg.augment.ct_cases = ["1", "2"]
    mr, _, _ = _cases(cfg)
    assert "1" in mr and "2" in mr and "31" not in mr and len(mr) == 18


def test_chaos_explicit_mr_cases_are_checked(tmp_path):
    root = _fake_chaos(str(tmp_path / "CHAOS"))
    record = training_record("chaos", root, ["1", "2"], CHAOS_CT)
    cfg = _chaos_augment(root, "t.pt", mr_cases=["1", "31", "3"])
    mr, ct, test = _cases(cfg)
    with pytest.raises(ConfigError, match=r"^Test patient\(s\) 31 \(MR:31\) were seen in training by the U-Net arms' real MRI"):
        check_leakage(cfg, record, "the translator", mr, ct, test)
    # and the translator's MRI: the old chaos_essnet trained on every MR case
    cfg = _chaos_augment(root, "t.pt", mr_cases=["1", "2"])
    mr, ct, test = _cases(cfg)
    with pytest.raises(ConfigError, match=r"31 \(MR:31\), 32 \(MR:32\) were seen in training by the translator's MRI"):
        check_leakage(cfg, training_record("chaos", root, CHAOS_MR, CHAOS_CT), "the translator", mr, ct, test)


# ---------------------------------------------------------------------------- shipped configs


def _fake_phantom(root, n, seed):
    """Phantom case folders with only their case.json (what the case lists and the identities need)."""
    for i in range(n):
        os.makedirs(os.path.join(root, "case_{:03d}".format(i)))
        with open(os.path.join(root, "case_{:03d}".format(i), "case.json"), "w") as f:
            json.dump({"seed": seed + i, "size": "chaos"}, f)
    return root


def _shipped(name, task, root, val_root=None):
    sets = ["data.root={}".format(root)]
    with open(os.path.join(CONFIGS, name)) as f:
        raw = yaml.safe_load(f)
    if (raw.get("val") or {}).get("root"):
        sets.append("val.root={}".format(val_root or root))
    return load_config(os.path.join(CONFIGS, name), task, sets, check_paths=False)


def _translator_as_shipped(name, root, val_root=None, extra=()):
    cfg = _shipped(name, "essnet", root, val_root)
    for key, value in extra:
        setattr(getattr(cfg, key.split(".")[0]), key.split(".")[1], value)
    mr, ct = training_cases(cfg)
    return training_record(cfg.data.dataset, cfg.data.root, mr, ct)


@pytest.fixture(scope="module")
def fake_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("fake_data")
    return {
        # the commands in the configs' headers: cmsynth phantom --cases 40 --size chaos (seed 0);
        # python -m cmsynth_training.demo data (seeds 1000-1023, held-out 9000-9002)
        "phantom_chaos": _fake_phantom(str(base / "phantom_chaos"), 40, 0),
        "phantom_train": _fake_phantom(str(base / "phantom_train"), 24, 1000),
        "phantom_heldout": _fake_phantom(str(base / "phantom_heldout"), 3, 9000),
        # demo_augment.yaml's header: cmsynth phantom --cases 40 --seed 3000 --size chaos
        "phantom_augment": _fake_phantom(str(base / "phantom_augment"), 40, 3000),
        "CHAOS": _fake_chaos(str(base / "CHAOS")),
    }


@pytest.mark.parametrize("augment_cfg, translator_cfg, roots", [
    ("phantom_augment.yaml", "phantom_essnet_ct_to_t1in.yaml", ("phantom_chaos", "phantom_chaos")),
    ("phantom_augment.yaml", "demo_ct_to_t1in_essnet.yaml", ("phantom_chaos", "phantom_train")),
    ("demo_augment.yaml", "demo_ct_to_t1in_essnet.yaml", ("phantom_augment", "phantom_train")),
    ("chaos_augment.yaml", "chaos_essnet_ct_to_t1in.yaml", ("CHAOS", "CHAOS")),
])
def test_shipped_configs_hold_out_the_test_patients(fake_roots, augment_cfg, translator_cfg, roots):
    aug = _shipped(augment_cfg, "augment", fake_roots[roots[0]])
    record = _translator_as_shipped(translator_cfg, fake_roots[roots[1]],
                                    fake_roots["phantom_heldout"] if roots[1] == "phantom_train" else None)
    mr, ct, test = _cases(aug)
    counts = check_leakage(aug, record, translator_cfg, mr, ct, test)
    assert all(v > 0 for v in counts.values()), counts
    assert aug.train.steps_per_epoch is not None


def test_the_old_shipped_settings_would_be_refused(fake_roots):
    """Before issue 18, phantom_essnet trained on every case but its validation cases (so on the
    augmentation's test cases 030-035) and chaos_essnet on all 20 MR cases (test cases 31-39)."""
    aug = _shipped("phantom_augment.yaml", "augment", fake_roots["phantom_chaos"])
    mr, ct, test = _cases(aug)
    old = _shipped("phantom_essnet_ct_to_t1in.yaml", "essnet", fake_roots["phantom_chaos"])
    old.data.cases, old.val.cases = None, ["case_036", "case_037", "case_038", "case_039"]
    m, c = training_cases(old)
    with pytest.raises(ConfigError, match=r"case_030 \(seed:30\), case_031 \(seed:31\), case_032 \(seed:32\), "
                                          r"case_033 \(seed:33\), case_034 \(seed:34\), case_035 \(seed:35\) were seen"):
        check_leakage(aug, training_record("phantom", old.data.root, m, c), "old phantom_essnet", mr, ct, test)
    aug = _shipped("chaos_augment.yaml", "augment", fake_roots["CHAOS"])
    mr, ct, test = _cases(aug)
    old = _shipped("chaos_essnet_ct_to_t1in.yaml", "essnet", fake_roots["CHAOS"])
    old.data.mr_cases = None
    m, c = training_cases(old)
    with pytest.raises(ConfigError, match=r"31 \(MR:31\), 32 \(MR:32\), 33 \(MR:33\), 34 \(MR:34\), 36 \(MR:36\), "
                                          r"37 \(MR:37\), 38 \(MR:38\), 39 \(MR:39\) were seen in training by the translator's MRI"):
        check_leakage(aug, training_record("chaos", old.data.root, m, c), "old chaos_essnet", mr, ct, test)


def test_a_translator_without_a_record_is_refused(tmp_path, training_phantom, training_cache):
    """A translator that does not say whom it trained on cannot be shown to be leak-free; a
    phantom record whose seeds are neither recorded nor readable neither."""
    cfg = load_config(None, "augment", data=_augment_dict(training_phantom, training_cache, "x.pt", mr=["case_000"],
                                                          ct=["case_001"], test=["case_004", "case_005"]), check_paths=False)
    mr, ct, test = _cases(cfg)
    with pytest.raises(ConfigError, match="^The bundle B does not record its training patients"):
        check_leakage(cfg, {}, "the bundle B", mr, ct, test)
    record = {"dataset": "phantom", "root": str(tmp_path / "gone"), "mr_cases": ["case_000"], "ct_cases": []}
    with pytest.raises(ConfigError, match="^The phantom patients of the bundle B cannot be identified"):
        check_leakage(cfg, record, "the bundle B", mr, ct, test)
