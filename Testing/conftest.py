"""Shared pytest fixtures. Tests make their own data (phantom, random volumes) in tmp_path.

The helpers the tests share live in the package :mod:`testsupport` (``Testing/`` is on the
import path through the pytest settings in pyproject.toml); the tests are in folders that mirror
the library's packages.
"""

import pytest

from testsupport.images import make_image

pytest_plugins = ["testsupport.mrml"]


@pytest.fixture
def image_factory():
    return make_image


@pytest.fixture
def cli(capsys):
    """Run ``cmsynth`` in-process: returns (exit_code, stdout, stderr)."""
    from CrossModalitySynthLib.cli.main import main

    def _run(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run
