"""dicompyler-core in its own virtualenv, for side-by-side DVH benchmarks.

dicompyler-core 0.5.6 does not run with pydicom 3 (rtcheck's requirement), so it lives in a
separate virtualenv, ``benchmarks/.venv-dicompyler`` (gitignored), created on demand from PyPI
with the pinned versions below. The benchmarks talk to it through a subprocess running
``benchmarks/_dicompyler_worker.py``: JSON jobs on stdin, one JSON line per result on stdout.

When the virtualenv cannot be created (no network, no wheel for this Python...), the benchmarks
print the reason and carry on with rtcheck alone.

Run ``python benchmarks/dicompyler_env.py`` to create (or check) the virtualenv and print the
installed versions; ``--recreate`` rebuilds it from scratch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR / ".venv-dicompyler"
WORKER = BENCH_DIR / "_dicompyler_worker.py"

#: Exactly what the published figures were measured with. dicompyler-core 0.5.6 declares
#: ``pydicom>=0.9.9`` but breaks on pydicom 3 (``pydicom.dicomio.read_file`` is gone); numpy 1.x
#: keeps pydicom 2.4 on its tested ground. scikit-image is dicompyler-core's optional
#: ``dvhinterpolation`` extra, needed only for its interpolated ("supersampled") mode.
REQUIREMENTS = (
    "dicompyler-core==0.5.6",
    "pydicom==2.4.5",
    "numpy==1.26.4",
    "matplotlib==3.9.4",
    "six==1.17.0",
    "scikit-image==0.26.0",
)
_VERSIONS_SCRIPT = (
    "import json, importlib.metadata as m; "
    "print(json.dumps({p: m.version(p) for p in "
    "('dicompyler-core', 'pydicom', 'numpy', 'matplotlib', 'scikit-image')}))"
)


class DicompylerUnavailable(RuntimeError):
    """dicompyler-core could not be installed or run; the message says why."""


@dataclass(frozen=True)
class DicompylerEnv:
    """A ready virtualenv: its interpreter and the versions installed in it."""

    python: Path
    versions: dict[str, str]

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.versions.items())


def _venv_python() -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV_DIR / sub


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _installed_versions(python: Path) -> dict[str, str]:
    out = _run([str(python), "-c", _VERSIONS_SCRIPT], timeout=120)
    if out.returncode != 0:
        raise DicompylerUnavailable(f"the virtualenv's Python fails: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)


def _marker() -> Path:
    """Records what the virtualenv was built with; a change of REQUIREMENTS rebuilds it."""
    return VENV_DIR / "rtcheck-requirements.txt"


def _is_ready() -> bool:
    return (_venv_python().exists() and _marker().exists()
            and _marker().read_text().split() == list(REQUIREMENTS))


def _create(log) -> None:
    log(f"dicompyler-core: creating {VENV_DIR} "
        "(one-off, about a minute)...")
    try:
        venv.EnvBuilder(clear=True, with_pip=True).create(VENV_DIR)
    except Exception as exc:  # venv/ensurepip missing, disk full...
        raise DicompylerUnavailable(f"cannot create the virtualenv: {exc}") from exc
    # A short network timeout: an offline machine should fail in seconds, not minutes.
    cmd = [str(_venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--timeout", "30", "--retries", "1", *REQUIREMENTS]
    try:
        out = _run(cmd, timeout=1200)
    except subprocess.TimeoutExpired as exc:
        raise DicompylerUnavailable("pip install timed out after 20 minutes") from exc
    if out.returncode != 0:
        tail = [ln for ln in out.stderr.strip().splitlines() if "is ignored" not in ln][-3:]
        raise DicompylerUnavailable("pip install failed: " + " | ".join(tail))
    _marker().write_text("\n".join(REQUIREMENTS) + "\n")


def ensure_env(recreate: bool = False, log=print) -> DicompylerEnv:
    """The dicompyler-core virtualenv, created first if needed.

    Raises
    ------
    DicompylerUnavailable
        With the reason, when it cannot be created or does not import.
    """
    if recreate or not _is_ready():
        _create(log)
    versions = _installed_versions(_venv_python())
    return DicompylerEnv(_venv_python(), versions)


def try_env(log=print) -> DicompylerEnv | None:
    """:func:`ensure_env`, or None after printing why dicompyler-core is left out."""
    try:
        env = ensure_env(log=log)
    except DicompylerUnavailable as exc:
        log(f"dicompyler-core unavailable, continuing with rtcheck alone: {exc}")
        return None
    log(f"dicompyler-core: {env.describe()} ({VENV_DIR.name})")
    return env


def _run_chunk(env: DicompylerEnv, jobs: list[dict]) -> list[dict]:
    """Run one worker subprocess over ``jobs``; a crash turns into per-job errors."""
    proc = subprocess.run([str(env.python), str(WORKER)], input=json.dumps(jobs),
                          capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"})
    results = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    done = {r["id"] for r in results}
    if proc.returncode != 0 or len(done) < len(jobs):
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        results += [{"id": j["id"], "error": f"worker exited {proc.returncode}: {reason}"}
                    for j in jobs if j["id"] not in done]
    return results


def run_jobs(env: DicompylerEnv, jobs: list[dict], parallel: int = 1) -> dict[str, dict]:
    """Run DVH jobs in dicompyler-core; results keyed by job id.

    Parameters
    ----------
    env : DicompylerEnv
    jobs : list of dict
        See ``_dicompyler_worker.py`` for the job and result format. Each needs a unique ``id``.
    parallel : int
        Number of worker processes; jobs are dealt round-robin between them.
    """
    if not jobs:
        return {}
    parallel = max(1, min(parallel, len(jobs)))
    chunks = [jobs[i::parallel] for i in range(parallel)]
    with ThreadPoolExecutor(parallel) as pool:
        parts = list(pool.map(lambda c: _run_chunk(env, c), chunks))
    return {r["id"]: r for part in parts for r in part}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        env = ensure_env(recreate="--recreate" in args)
    except DicompylerUnavailable as exc:
        print(f"dicompyler-core unavailable: {exc}")
        return 1
    print(f"{env.python}\n{env.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
