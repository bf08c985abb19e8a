"""What the benchmarks measure: data, baselines, the blog post's method, skvae's default fits.

``data`` (curve families and large tiled inputs), ``baselines`` (PCA, KernelPCA,
FactorAnalysis), ``blog_post`` (the blog post's training recipe and per-target scipy
matching loop) and ``fits`` (skvae's default fits, shared by several sections).
"""
