"""The GPU schedule of the batched Nelder-Mead engine (``sync_every``, ``dense``):
exactly the default schedule's results, scipy's under caps, few synchronisations; and a
run on a CUDA device agrees with the CPU one.
"""

import dataclasses

import pytest
import torch
from _nelder_mead_cases import (
    _assert_same_as_scipy,
    _default_simplex,
    _np,
    _problem,
    _quadratics,
    _run,
    _scipy_reference,
)
from numpy.testing import assert_array_equal

from skvae._matching.nelder_mead import NelderMeadResult, batched_nelder_mead

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


SCHEDULES = [
    {"sync_every": 1, "dense": True},
    {"sync_every": 3, "dense": False},
    {"sync_every": 5, "dense": True},
    {"sync_every": 16, "dense": True},
]


@pytest.mark.parametrize("name", ["rastrigin-3d", "plateaus-3d", "rosenbrock-2d"])
@pytest.mark.parametrize("schedule", SCHEDULES, ids=str)
def test_schedule_does_not_change_results(name, schedule):
    # The GPU schedule (dense second evaluations, deferred shrinks, rare compactions)
    # reaches exactly the default CPU schedule's results, which match scipy's.
    fun, x0, _, kwargs = _problem(name)
    reference = _run(fun, x0, **kwargs)
    res = _run(fun, x0, **kwargs, **schedule)
    for field in dataclasses.fields(NelderMeadResult):
        assert_array_equal(getattr(res, field.name), getattr(reference, field.name))


def test_schedule_with_caps_matches_scipy(monkeypatch):
    fun, x0, _, _ = _problem("rastrigin-3d")
    for caps in ({"max_fev": 8}, {"max_fev": 16}, {"max_iter": 7}):
        res = _run(fun, x0, sync_every=4, dense=True, **caps)
        options = {"maxiter": caps.get("max_iter"), "maxfev": caps.get("max_fev")}
        ref = _scipy_reference(monkeypatch, fun, _default_simplex(x0), **options)
        _assert_same_as_scipy(res, ref)


def test_dense_schedule_synchronises_rarely():
    # Between compactions the dense schedule evaluates the whole working set: calls have
    # sizes fixed over each stretch of sync_every iterations (no data-dependent shapes).
    fun, _, x0 = _quadratics(50, 2, seed=3)
    sizes = []
    res = _run(lambda X, idx: sizes.append(len(idx)) or fun(X, idx), x0, sync_every=8, dense=True)
    assert res.converged.all()
    assert sizes[0] == 50 * 3
    loop = sizes[1:]
    assert len(set(loop)) < len(loop) / 8


@CUDA
def test_cuda_agrees_with_cpu():
    fun_cpu, _, x0 = _quadratics(64, 3, seed=12)
    fun_gpu, _, _ = _quadratics(64, 3, seed=12)
    cuda = torch.device("cuda")

    def on_gpu(X, idx):
        assert X.device.type == "cuda" and idx.device.type == "cuda"
        return fun_gpu(X.cpu(), idx.cpu()).to(cuda)

    cpu = _run(fun_cpu, x0)
    gpu = batched_nelder_mead(on_gpu, torch.as_tensor(x0, device=cuda))
    assert gpu.x.device.type == "cuda"
    for field in dataclasses.fields(NelderMeadResult):
        assert_array_equal(getattr(_np(gpu), field.name), getattr(cpu, field.name))
