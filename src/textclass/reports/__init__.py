"""Reports on finished runs, a plug-in: sweep summaries and aggregates over seeds (sweeps.py), and
the comparison of systems with its statistics (systems.py, stats.py, compare.py)."""
