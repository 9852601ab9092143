"""io.atomic_folder, the one writer of every output folder (cmsynth run, evaluate, phantom,
reader-study create, training export): the old folder stays whole until the new one is complete,
an error leaves it as it was, and the overwrite rule holds up to the swap."""

import os

import pytest

from CrossModalitySynthLib.errors import OutputError
from CrossModalitySynthLib.io import atomic_folder

OURS = ("a.txt", "b.txt")


def _old(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    return out


def test_success_swaps_in_the_new_folder_and_keeps_the_old_until_then(tmp_path):
    out = _old(tmp_path)
    with atomic_folder(str(out), True, OURS, "cmd") as stage:
        assert os.path.dirname(stage) == str(tmp_path) and os.listdir(stage) == []
        with open(os.path.join(stage, "a.txt"), "w") as f:
            f.write("new")
        assert (out / "a.txt").read_text() == "old"  # still the old folder while writing
    assert (out / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old copy left


def test_error_leaves_the_old_folder_and_no_staging(tmp_path):
    out = _old(tmp_path)
    with pytest.raises(RuntimeError):
        with atomic_folder(str(out), True, OURS, "cmd") as stage:
            with open(os.path.join(stage, "a.txt"), "w") as f:
                f.write("half")
            raise RuntimeError("stop")
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refused_before_work_without_overwrite_or_with_foreign_files(tmp_path):
    out = _old(tmp_path)
    with pytest.raises(OutputError, match="already exists and is not empty"):
        with atomic_folder(str(out), False, OURS, "cmd"):
            pytest.fail("the block must not run")
    (out / "note.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"holds files that cmd does not write \(note.txt\)"):
        with atomic_folder(str(out), True, OURS, "cmd"):
            pytest.fail("the block must not run")
    assert (out / "note.txt").read_text() == "mine"


def test_a_file_put_there_while_writing_stops_the_swap(tmp_path):
    out = _old(tmp_path)
    with pytest.raises(OutputError, match="note.txt"):
        with atomic_folder(str(out), True, OURS, "cmd") as stage:
            (out / "note.txt").write_text("arrived meanwhile")
            with open(os.path.join(stage, "a.txt"), "w") as f:
                f.write("new")
    assert (out / "a.txt").read_text() == "old" and (out / "note.txt").read_text() == "arrived meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_unwritable_parent_is_one_sentence(tmp_path):
    if os.geteuid() == 0:
        # root writes anywhere: a parent that is a file is the unwritable case for everyone
        parent = tmp_path / "file"
        parent.write_text("x")
        target = parent / "out"
    else:
        parent = tmp_path / "ro"
        parent.mkdir()
        os.chmod(parent, 0o555)
        target = parent / "out"
    with pytest.raises(OutputError, match=r"^Cannot write in .*; choose a writable location\.$"):
        with atomic_folder(str(target), False, OURS, "cmd"):
            pytest.fail("the block must not run")
