"""Benchmarks of the connector, each against a raw baseline measured in the same run.

Run them all with ``make bench`` (one after the other), or one with
``.venv/bin/python -m bench.<name> [--quick]`` from the repository root. Each prints its
figures and their ratio to the baseline and appends them to ``bench/results.md`` with
the machine (CPUs, CPU model, Python) and the date. ``harness.py`` holds what they share;
``simulator_process.py`` runs the fake Hubject in a process of its own, so that its work
does not count as the connector's.
"""
