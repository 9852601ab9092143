"""The documentation site builds with ``mkdocs build --strict`` (what ``make docs`` runs): a
broken link, a missing anchor, a page outside the nav or a docstring mkdocstrings cannot read
fails the build, and so this test, in CI."""

import os
import subprocess
import sys
from testsupport.paths import REPO_DIR

REPO = REPO_DIR


def _build(config, site, cwd):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", config,
                           "--site-dir", site], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_docs_build_strictly(tmp_path):
    proc = _build(os.path.join(REPO, "mkdocs.yml"), str(tmp_path / "site"), REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = tmp_path / "site"
    for page in ("index.html", "getting-started/index.html", "cli/index.html", "api/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    # the API page is generated from the code's docstrings, not written by hand
    assert 'id="CrossModalitySynthLib.io.read_volume"' in api and 'id="CrossModalitySynthLib.io.atomic_folder"' in api
    assert (site / "assets" / "Screenshot.png").stat().st_size > 10000  # the README's screenshot, through the link


def test_a_broken_link_fails_the_strict_build(tmp_path):
    """The strictness is real: the same configuration with one dead link does not build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing page](missing.md#nowhere).\n")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\ndocs_dir: docs\nstrict: true\nvalidation:\n  links:\n    not_found: warn\n")
    proc = _build(str(tmp_path / "mkdocs.yml"), str(tmp_path / "site"), str(tmp_path))
    assert proc.returncode != 0
    assert "missing.md" in proc.stdout + proc.stderr
