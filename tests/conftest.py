"""Shared test fixtures: where the validation data live, and what happens when they are absent.

The validation data (the Nelms 2015 phantoms, the breast export, the bone-metastases
referential text) are not in the repository: they sit beside it, in ``../shared`` (the
repository root's parent / ``shared``). This file is the one place that resolves that folder;
tests ask for it through the fixtures below, never through a path of their own.

* ``RTCHECK_SHARED``: an environment variable naming another folder to use instead of
  ``../shared``. It exists for checking the behaviour below (point it at a folder that does
  not exist) and for checkouts whose data live elsewhere.
* When a data set a test needs is missing: in CI (``CI=true``, as GitHub Actions and most CI
  services set it) the test FAILS, naming the path, so that a CI run without its data cannot
  pass by skipping; elsewhere it is skipped, with the path in the reason (``pytest -ra``
  lists it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The test-support package (tests/support: builders shared by several test modules) is
# imported as ``support``. pytest's default import mode already puts tests/ on sys.path (this
# folder has no __init__.py); inserting it here keeps that true under --import-mode=importlib.
# Test modules import shared helpers from ``support`` and fixtures from here, never from each
# other or from benchmarks/ (issue 11).
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

#: Environment variable overriding the location of the shared data folder.
SHARED_ENV = "RTCHECK_SHARED"


def shared_root() -> Path:
    """The shared data folder: ``$RTCHECK_SHARED`` if set, else ``<repository>/../shared``."""
    override = os.environ.get(SHARED_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(path: Path) -> None:
    """Fail (in CI) or skip (elsewhere) because the shared data at ``path`` are absent."""
    reason = (f"validation data not found: {path} (expected in ../shared beside the "
              f"repository, or in ${SHARED_ENV})")
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so a missing validation set is a failure",
                    pytrace=False)
    pytest.skip(reason)


class Shared:
    """The shared data folder; ``shared("validation/nelms-2015")`` is a path that exists."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, relative: str) -> Path:
        path = self.root / relative
        if not path.exists():
            missing(path)
        return path


@pytest.fixture(scope="session")
def shared() -> Shared:
    """The shared data folder (``../shared``); call it with a relative path to require it."""
    return Shared(shared_root())


@pytest.fixture(scope="session")
def nelms(shared: Shared) -> Path:
    """The Nelms 2015 analytical DVH data set (``validation/nelms-2015``)."""
    return shared("validation/nelms-2015")


@pytest.fixture(scope="session")
def breast(shared: Shared) -> Path:
    """The breast plan exported by a planning system (``validation/tps-breast-example``)."""
    return shared("validation/tps-breast-example")


@pytest.fixture(scope="session")
def referential(shared: Shared) -> Path:
    """The bone-metastases referential, as text (``reference/...-2026.txt``)."""
    return shared("reference/bone-metastases-referential-2026.txt")


# --------------------------------------------------------------------------------------
# Parameters read from the shared data at collection time
# --------------------------------------------------------------------------------------

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shared_params(argname, relative, make): parametrize argname with make(path), path "
        "being the shared data at `relative`; when they are missing, one placeholder "
        "parameter (None) whose test must request the fixture that fails or skips")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrization from shared data (``@pytest.mark.shared_params``).

    Collection cannot use fixtures, so this resolves the folder the same way (shared_root).
    Without the data, the test gets a single ``None`` parameter: it must also request the
    data set's fixture (``nelms``...), which then fails in CI or skips, instead of pytest
    silently skipping an empty parameter set.
    """
    marker = metafunc.definition.get_closest_marker("shared_params")
    if marker is None:
        return
    argname, relative, make = marker.args
    path = shared_root() / relative
    if path.exists():
        params = list(make(path))
        assert params, f"{path} gives no test parameters"
        metafunc.parametrize(argname, params, **marker.kwargs)
    else:
        metafunc.parametrize(argname, [pytest.param(None, id="missing-shared-data")])
