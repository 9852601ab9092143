"""Python dependencies of the module inside Slicer: checked when needed, installed with consent.

- PyTorch comes from the PyTorch extension (``PyTorchUtils``, a declared dependency of this
  extension): its ``installTorch`` picks the wheel matching the computer's GPU and CUDA driver.
  torch is never pip-installed here.
- The other packages the engine needs (:data:`REQUIREMENTS`) are installed with
  ``slicer.packaging.pip_ensure`` on Slicer 5.12 and later (``slicer.packaging`` is imported
  explicitly: Slicer does not import it), which asks the user itself and is told to skip torch and
  SimpleITK in the dependency tree. On older Slicer, after the user said yes, with
  ``slicer.util.pip_install``: monai with ``--no-deps`` (its ``torch`` requirement could otherwise
  pull a PyPI torch over the PyTorch extension's), the others as usual. torch and SimpleITK are
  never installed or upgraded here (Slicer ships SimpleITK).
- In Slicer's testing mode nothing is installed: a missing package is a clear error.
- Nothing is checked or installed at import time: the widget calls :func:`ensure_all` when the
  user presses Apply (or fetches a model).

The decisions are plain functions that take the ``slicer`` module (and a ``confirm`` callback for
the consent dialog) as arguments, so they are tested without the Slicer application.
"""

import importlib
import re
from typing import Callable, List, Optional, Sequence, Tuple

from ..errors import CMSynthError

TORCH_MINIMUM = "2.2"
# What `cmsynth run` imports besides torch (SimpleITK, numpy and scipy ship with Slicer; monai
# builds the liver U-Net; tqdm draws progress bars in the command line).
REQUIREMENTS = ("numpy>=1.24", "scipy>=1.10", "monai>=1.3", "tqdm>=4.60")
#: never installed or upgraded by this module (the PyTorch extension and Slicer own them)
NEVER_INSTALL = ("torch", "SimpleITK")
#: installed without their dependencies on Slicer < 5.12 (monai requires torch)
NO_DEPS = ("monai",)
PIP_ENSURE_SINCE = (5, 12)

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:>=\s*([0-9][0-9A-Za-z.+-]*))?\s*$")


class DependencyError(CMSynthError):
    """A dependency is missing and could not (or may not) be installed."""


# --------------------------------------------------------------------------- versions


def parse_version(text: str) -> Tuple[int, ...]:
    """Numeric release part of a version: ``"2.5.1+cu121"`` -> (2, 5, 1), ``"1.13.0rc1"`` -> (1, 13, 0)."""
    parts = []
    for piece in re.split(r"[.+-]", str(text).strip()):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
        if m.end() != len(piece):  # "0rc1": the release part ends here
            break
    return tuple(parts)


def version_at_least(installed: str, minimum: str) -> bool:
    a, b = parse_version(installed), parse_version(minimum)
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)) >= b + (0,) * (n - len(b))


def parse_requirement(text: str) -> Tuple[str, Optional[str]]:
    """``"monai>=1.3"`` -> ("monai", "1.3"); only ``name`` and ``name>=version`` are used here."""
    m = _REQ.match(text)
    if not m:
        raise ValueError(f"unsupported requirement {text!r} (use 'name' or 'name>=version')")
    return m.group(1), m.group(2)


def installed_version(distribution: str) -> Optional[str]:
    """Version of an installed distribution, None when it is not installed."""
    import importlib.metadata as metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def missing_requirements(requirements: Sequence[str] = REQUIREMENTS,
                         version_of: Callable[[str], Optional[str]] = installed_version) -> List[str]:
    """The requirements that are not installed, or installed in a too old version."""
    missing = []
    for req in requirements:
        name, minimum = parse_requirement(req)
        version = version_of(name)
        if version is None or (minimum and not version_at_least(version, minimum)):
            missing.append(req)
    return missing


def torch_status(minimum: str = TORCH_MINIMUM,
                 version_of: Callable[[str], Optional[str]] = installed_version) -> Tuple[str, Optional[str]]:
    """("ok" | "missing" | "too old", installed version or None)."""
    version = version_of("torch")
    if version is None:
        return "missing", None
    return ("ok" if version_at_least(version, minimum) else "too old"), version


# --------------------------------------------------------------------------- Slicer


def slicer_version(slicer) -> Tuple[int, int]:
    """(major, minor) of the running Slicer; (0, 0) when unknown (e.g. slicer-core without an app)."""
    app = getattr(slicer, "app", None)
    try:
        return int(app.majorVersion), int(app.minorVersion)
    except (AttributeError, TypeError, ValueError):
        return (0, 0)


def slicer_packaging(slicer, import_module: Callable[[str], object] = importlib.import_module):
    """``slicer.packaging`` on Slicer >= 5.12 (imported here: Slicer does not import it), else None."""
    if slicer_version(slicer) < PIP_ENSURE_SINCE:
        return None
    try:
        packaging = import_module("slicer.packaging")
    except ImportError:
        return None
    return packaging if hasattr(packaging, "pip_ensure") else None


def installer_for(slicer) -> str:
    """``"pip_ensure"`` (Slicer >= 5.12 with ``slicer.packaging``), ``"pip_install"`` (older
    Slicer), or ``"none"`` (no way to install: a plain Python without ``slicer.util.pip_install``)."""
    if slicer_packaging(slicer) is not None:
        return "pip_ensure"
    util = getattr(slicer, "util", None)
    if util is not None and hasattr(util, "pip_install"):
        return "pip_install"
    return "none"


def ensure_torch(slicer, confirm: Callable[[str], bool], minimum: str = TORCH_MINIMUM,
                 version_of: Callable[[str], Optional[str]] = installed_version,
                 import_module: Callable[[str], object] = importlib.import_module, testing: bool = False) -> str:
    """Make sure torch >= ``minimum`` is installed (through the PyTorch extension); returns its version.

    :param confirm: shows a question to the user, returns True for yes. It is only called when
        something has to be installed.
    :raises DependencyError: the user declined, the PyTorch extension is missing, or the install failed.
    """
    status, version = torch_status(minimum, version_of)
    if status == "ok":
        return version
    if testing:
        raise DependencyError(f"PyTorch {minimum} or newer is not installed, and Slicer's testing mode never installs "
                              "packages; install it with the PyTorch extension before running the tests.")
    try:
        pytorch_utils = import_module("PyTorchUtils")
    except ImportError:
        raise DependencyError(
            "PyTorch is needed and is installed by the PyTorch extension, which is missing; install 'PyTorch' "
            "from the Extensions Manager, restart Slicer and try again."
        ) from None
    what = "is not installed" if status == "missing" else f"is version {version}, older than {minimum}"
    if not confirm(f"CrossModalitySynth needs PyTorch {minimum} or newer; PyTorch {what}.\n\n"
                   "Install it now with the PyTorch extension? This downloads about 1-3 GB and can take "
                   "several minutes."):
        raise DependencyError(f"PyTorch {minimum} or newer is needed; it was not installed (declined).")
    torch = pytorch_utils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                          torchVersionRequirement=f">={minimum}")
    if torch is None:
        raise DependencyError("PyTorch could not be installed; install it from the PyTorch Utils module and try again.")
    return str(getattr(torch, "__version__", "installed"))


def ensure_packages(slicer, confirm: Callable[[str], bool], requirements: Sequence[str] = REQUIREMENTS,
                    version_of: Callable[[str], Optional[str]] = installed_version, testing: bool = False) -> List[str]:
    """Install the missing :data:`REQUIREMENTS`; returns what was missing (empty: nothing to do).

    Call :func:`ensure_torch` first: monai depends on torch, and pip must find it installed.
    """
    missing = missing_requirements(requirements, version_of)
    if not missing:
        return []
    if testing:
        raise DependencyError(f"Python packages {', '.join(missing)} are not installed, and Slicer's testing mode never "
                              "installs packages; install them before running the tests.")
    how = installer_for(slicer)
    if how == "pip_ensure":
        try:
            slicer_packaging(slicer).pip_ensure(_requirement_objects(missing), requester="CrossModalitySynth",
                                                skip_packages=list(NEVER_INSTALL), show_progress=False)
        except RuntimeError as exc:  # raised when the user declines
            raise DependencyError(f"Python packages {', '.join(missing)} are needed; they were not installed ({exc}).") from None
        return missing
    if how == "pip_install":
        if not confirm("CrossModalitySynth needs these Python packages:\n\n" + "\n".join(missing)
                       + "\n\nInstall them into Slicer's Python now?"):
            raise DependencyError(f"Python packages {', '.join(missing)} are needed; they were not installed (declined).")
        for command in pip_install_commands(missing):
            slicer.util.pip_install(command)
        return missing
    raise DependencyError(f"Python packages {', '.join(missing)} are needed; install them with pip.")


def _requirement_objects(requirements: Sequence[str]):
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip_ensure also accepts strings
        return list(requirements)
    return [Requirement(r) for r in requirements]


def pip_install_commands(missing: Sequence[str]) -> List[str]:
    """The ``slicer.util.pip_install`` arguments for Slicer < 5.12: :data:`NO_DEPS` packages with
    ``--no-deps`` first, then the rest; a requirement on a :data:`NEVER_INSTALL` package is refused."""
    names = [parse_requirement(r)[0] for r in missing]
    never = {n.lower() for n in NEVER_INSTALL}
    for name in names:
        if name.lower() in never:
            raise DependencyError(f"{name} is never installed by CrossModalitySynth; install it with Slicer's own tools.")
    no_deps = [r for r, n in zip(missing, names) if n in NO_DEPS]
    rest = [r for r, n in zip(missing, names) if n not in NO_DEPS]
    commands = []
    if no_deps:
        commands.append(" ".join(no_deps) + " --no-deps")
    if rest:
        commands.append(" ".join(rest))
    return commands


def ensure_all(slicer, confirm: Callable[[str], bool], testing: bool = False) -> None:
    """torch (PyTorch extension), then the other packages; raises DependencyError.

    :param testing: Slicer's testing mode: nothing is installed, a missing package is an error.
    """
    ensure_torch(slicer, confirm, testing=testing)
    ensure_packages(slicer, confirm, testing=testing)
