"""skvae benchmarks: the seed notebook's recipe side by side with skvae and linear baselines.

Run ``python benchmarks/run.py [--quick]`` from the repository root; see ``benchmarks/README.md``.
"""
