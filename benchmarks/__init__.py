"""skvae benchmarks: this checkout next to skvae 0.1.0, the blog post's recipe and baselines.

Run ``python benchmarks/run.py [--quick]`` from the repository root; see ``benchmarks/README.md``.
"""
