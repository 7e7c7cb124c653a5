"""Helpers shared by several test modules (issue 11: tests import neither the benchmarks
nor each other).

Importable as ``support`` because ``tests/`` is on ``sys.path`` (tests/conftest.py).

* :mod:`support.batch`: small synthetic archives for the ``rtcheck batch`` tests (built on
  :func:`support.synthetic.write_spine_plan`, shared with ``benchmarks/batch.py``), a facts
  file, and batch workers that fail on purpose.
* :mod:`support.protocols`: the TG-101 table the protocol and checker tests both assert.
"""
