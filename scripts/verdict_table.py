"""Print the outcome of ``rtcheck check`` on every sample plan, for a set of clinical scenarios.

One row per scenario: the command's arguments, the verdict it printed, its exit code and the
status of each finding. Used to compare verdicts before and after a change (the closing notes
of the verdict work quote it)::

    python scripts/verdict_table.py            # markdown table on stdout
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S = "sample_plans"
C1 = f"{S}/reirradiation/course1-30Gy10"
C2 = f"{S}/reirradiation/course2-sbrt-27Gy3"

SCENARIOS: list[tuple[str, list[str]]] = [
    ("SBRT 27/3, oligometastatic, spine L1 (README)",
     [f"{S}/spine-sbrt-27Gy3", "--indication", "oligometastatic", "--site", "spine",
      "--vertebral-level", "L1"]),
    ("SBRT 27/3, oligometastatic, spine T4",
     [f"{S}/spine-sbrt-27Gy3", "--indication", "oligometastatic", "--site", "spine",
      "--vertebral-level", "T4"]),
    ("SBRT 27/3, no facts", [f"{S}/spine-sbrt-27Gy3"]),
    ("30 Gy/10, pain, spine T4",
     [f"{S}/spine-30Gy10", "--indication", "pain", "--site", "spine", "--vertebral-level", "T4"]),
    ("30 Gy/10, pain (no site)", [f"{S}/spine-30Gy10", "--indication", "pain"]),
    ("30 Gy/10, --site spine only", [f"{S}/spine-30Gy10", "--site", "spine"]),
    ("30 Gy/10, no facts", [f"{S}/spine-30Gy10"]),
    ("8 Gy/1, pain, spine T4",
     [f"{S}/single-8Gy1", "--indication", "pain", "--site", "spine", "--vertebral-level", "T4"]),
    ("8 Gy/1, cord-compression, spine T4",
     [f"{S}/single-8Gy1", "--indication", "cord-compression", "--site", "spine",
      "--vertebral-level", "T4"]),
    ("re-irradiation 27/3 after 30/10 (--prior)",
     [C2, "--prior", C1, "--indication", "reirradiation", "--site", "spine",
      "--vertebral-level", "T4"]),
    ("re-irradiation 27/3, --prior-summary with cord_dmax and date",
     [C2, "--prior-summary", "30Gy/10 cord_dmax=31Gy date=2025-03-01", "--indication",
      "reirradiation", "--site", "spine", "--vertebral-level", "T4"]),
    ("first course of the re-irradiation pair, 30/10 pain",
     [C1, "--indication", "pain", "--site", "spine", "--vertebral-level", "T4"]),
    ("30 Gy/10, pain, spine L2 (below C5-T10)",
     [f"{S}/spine-30Gy10", "--indication", "pain", "--site", "spine", "--vertebral-level", "L2"]),
    ("SBRT 27/3, --technique sbrt --site spine L1, no indication",
     [f"{S}/spine-sbrt-27Gy3", "--technique", "sbrt", "--site", "spine", "--vertebral-level",
      "L1"]),
    ("SBRT 27/3, oligometastatic, L4 (below the conus)",
     [f"{S}/spine-sbrt-27Gy3", "--indication", "oligometastatic", "--site", "spine",
      "--vertebral-level", "L4"]),
    ("conventional re-irradiation: plan A 20/5 after 30/10 (summary, end date)",
     [f"{S}/two-plans", "--plan", "PLAN_A_20GY5", "--indication", "reirradiation", "--site",
      "spine", "--vertebral-level", "L2", "--prior-summary",
      "30Gy/10 cord_dmax=31Gy end=2025-03-14"]),
    ("re-irradiation with a prior plan of another patient",
     [f"{S}/two-plans", "--plan", "PLAN_A_20GY5", "--indication", "reirradiation", "--site",
      "spine", "--vertebral-level", "L2", "--prior", C1]),
    ("two-plans, plan A 20/5, pain, spine T4",
     [f"{S}/two-plans", "--plan", "PLAN_A_20GY5", "--indication", "pain", "--site", "spine",
      "--vertebral-level", "T4"]),
    ("two-plans, plan B 8/1, post-operative, spine T4",
     [f"{S}/two-plans", "--plan", "PLAN_B_8GY1", "--indication", "post-operative", "--site",
      "spine", "--vertebral-level", "T4"]),
]


def run(args: list[str]) -> tuple[str, int, str]:
    proc = subprocess.run([sys.executable, "-m", "rtcheck", "check", *args, "--format", "json"],
                          cwd=ROOT, capture_output=True, text=True)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return "ERROR", proc.returncode, proc.stderr.strip().splitlines()[-1:][0] if proc.stderr else ""
    parts = []
    for f in doc["findings"]:
        where = f" {f['structure']}" if f.get("structure") else ""
        value = f.get("value")
        shown = f"={value:.2f}" if isinstance(value, (int, float)) else ""
        parts.append(f"{f['rule']}{where}{shown} {f['status']}")
    return doc["verdict"], proc.returncode, "; ".join(parts)


def main() -> None:
    print("| scenario | verdict | exit | findings |")
    print("|---|---|---|---|")
    for title, args in SCENARIOS:
        verdict, code, findings = run(args)
        print(f"| {title} | {verdict} | {code} | {findings} |")


if __name__ == "__main__":
    main()
