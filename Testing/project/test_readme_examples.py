"""Every shell example in the README and the documentation runs as printed.

The fenced ``bash`` blocks of README.md and of the docs pages (in the order of the site's
navigation, mkdocs.yml) are examples: this test extracts them and runs them, in that order, in a
temporary copy of the checkout (what a user has after cloning), with the checkout's ``.venv`` on
PATH, as a user who followed the set-up does. A command block that is not ``bash`` must be a
synopsis, with placeholders (``DIR``, ``ID``, ``[--option]``), so that no runnable-looking example
escapes the test. What a command printed is shown in ``output`` blocks.

``make test`` is the one line not run here: it is what CI runs, and this test is part of it.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest
from testsupport.paths import REPO_DIR

REPO = REPO_DIR
README = os.path.join(REPO, "README.md")


def doc_pages():
    """README.md, then the docs pages in the order of mkdocs.yml's nav."""
    import yaml

    with open(os.path.join(REPO, "mkdocs.yml"), encoding="utf-8") as f:
        nav = yaml.safe_load(f)["nav"]
    pages = []

    def walk(item):
        if isinstance(item, str):
            pages.append(item)
        elif isinstance(item, list):
            for x in item:
                walk(x)
        elif isinstance(item, dict):
            for x in item.values():
                walk(x)

    walk(nav)
    return [README] + [os.path.join(REPO, "docs", p) for p in pages]

FENCE = re.compile(r"^```([A-Za-z]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
COMMANDS = ("cmsynth ", "python ", "python3 ", "make ", "torchrun ", ".venv/bin/", "source ")
# A synopsis names what the user fills in: an upper-case word (DIR, ID, FILE.zip, STUDY), an
# optional part in brackets, or "...".
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z0-9_]+\b|\[[^\]]+\]|\.\.\.")
NOT_HERE = {"make test"}  # CI's own command: this test runs inside it


def readme_blocks(path=README):
    """(language, text, first line number) of every fenced block of a Markdown file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for m in FENCE.finditer(text):
        yield m.group(1).lower(), m.group(2), text.count("\n", 0, m.start()) + 1


def command_lines(block):
    """The shell commands of a block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        cmd = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if cmd:
            out.append(cmd)
    return out


def test_the_extractor_reads_blocks_and_commands(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("a\n```bash\ncmsynth run --out A \\\n    b c   # note\n# only a comment\n```\n"
                  "```\ncmsynth phantom --out DIR\n```\n")
    blocks = list(readme_blocks(str(md)))
    assert [(lang, line) for lang, _, line in blocks] == [("bash", 2), ("", 7)]
    assert command_lines(blocks[0][1]) == ["cmsynth run --out A      b c"]


def all_blocks():
    for page in doc_pages():
        for lang, block, line in readme_blocks(page):
            yield os.path.relpath(page, REPO), lang, block, line


def test_every_docs_page_is_in_the_nav_and_read_here():
    listed = {os.path.relpath(p, os.path.join(REPO, "docs")) for p in doc_pages()[1:]}
    on_disk = {f for f in os.listdir(os.path.join(REPO, "docs")) if f.endswith(".md")}
    assert on_disk == listed


def test_every_command_block_is_an_example_or_a_synopsis():
    offenders = []
    for page, lang, block, line in all_blocks():
        if lang in ("bash", "python", "json", "output"):  # output: what a command printed
            continue
        for cmd in command_lines(block):
            if cmd.startswith(COMMANDS) and not PLACEHOLDER.search(cmd):
                offenders.append("{} line {}: {}".format(page, line, cmd))
    assert not offenders, ("these commands look runnable but sit outside a ```bash block, so no "
                           "test runs them; fence them as bash or write placeholders:\n"
                           + "\n".join(offenders))


def _checkout_copy(dest):
    """The tracked files of the checkout (timestamps kept, so make sees .venv as up to date)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    for rel in files.stdout.decode().split("\0"):
        if not rel or not os.path.isfile(os.path.join(REPO, rel)):
            continue
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(REPO, rel), target)
    os.symlink(os.path.join(REPO, ".venv"), os.path.join(dest, ".venv"))


def test_every_bash_example_runs_as_printed_in_order(tmp_path):
    venv_bin = os.path.dirname(sys.executable)
    if not os.path.isfile(os.path.join(REPO, ".venv", ".installed")) or shutil.which("git") is None:
        pytest.fail("this test needs the checkout's .venv (make install) and git")
    work = tmp_path / "checkout"
    work.mkdir()
    _checkout_copy(str(work))
    # The copy's Makefile must see the linked .venv as installed; otherwise `make demo` would
    # reinstall the real .venv from the copy.
    q = subprocess.run(["make", "-q", ".venv/.installed"], cwd=str(work))
    assert q.returncode == 0, ("make sees .venv as older than pyproject.toml or constraints.txt (edited since "
                               "the last install): run make install, then this test")

    env = dict(os.environ)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)
    examples = [(page, line, block) for page, lang, block, line in all_blocks() if lang == "bash"]
    assert len(examples) >= 4
    ran = 0
    for page, line, block in examples:
        script = "\n".join(c for c in command_lines(block) if c not in NOT_HERE)
        if not script:
            continue
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=str(work), env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, "{} example at line {} failed (exit {}):\n{}\n{}{}".format(
            page, line, proc.returncode, script, proc.stdout[-3000:], proc.stderr[-3000:])
        ran += 1
    assert ran >= 4, "only {} examples ran".format(ran)
