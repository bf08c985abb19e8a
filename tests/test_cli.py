"""The main job, ``python -m skvae``: options checked before any work, plain-text help."""

import os
import subprocess
import sys

import pytest
from _helpers import ROOT

import skvae.__main__ as cli


@pytest.fixture
def no_work(monkeypatch):
    """Make any work (data generation, fitting) fail: options must be refused before it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(cli, "make_beta_curves", forbidden)
    monkeypatch.setattr(cli, "BetaCurveVAE", forbidden)


def refused(argv, capsys) -> str:
    """The one-line message of a command line refused with exit status 2."""
    with pytest.raises(SystemExit) as excinfo:
        cli.main(argv)
    assert excinfo.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: python -m skvae")
    assert err[-1].startswith("python -m skvae: error: argument ")
    return err[-1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-iter", "0"], "--max-iter: must be at least 1, got 0"),
        (["--max-iter", "-3"], "--max-iter: must be at least 1, got -3"),
        (["--max-iter", "1.5"], "--max-iter: expected an integer, got '1.5'"),
        (["--n-train", "0"], f"--n-train: must be between {cli.MIN_TRAIN} and"),
        (["--n-train", "1"], f"--n-train: must be between {cli.MIN_TRAIN} and"),
        (["--n-train", "x"], "--n-train: expected an integer, got 'x'"),
        (["--n-test", "0"], "--n-test: must be between 1 and 1000000000, got 0"),
        (["--n-train", "99999999999999999999"], "--n-train: must be between 10 and"),
        (["--n-test", "99999999999999999999"], "--n-test: must be between 1 and"),
        (["--random-state", "-1"], "--random-state: must be between 0 and 4294967294, got -1"),
        (["--random-state", str(2**32 - 1)], "--random-state: must be between 0 and"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, message, capsys, no_work, tmp_path):
    assert message in refused([*argv, "--figures", str(tmp_path / "figures")], capsys)
    assert not (tmp_path / "figures").exists()


def test_figures_naming_a_file_is_refused_before_the_fit(capsys, no_work, tmp_path):
    path = tmp_path / "figures.png"
    path.write_bytes(b"")
    line = refused(["--figures", str(path)], capsys)
    assert "--figures" in line and "is a file, not a folder" in line


def test_unwritable_figures_folder_is_refused_before_the_fit(capsys, no_work, tmp_path):
    (tmp_path / "file").write_bytes(b"")
    line = refused(["--figures", str(tmp_path / "file" / "figures")], capsys)
    assert "cannot write figures to" in line


def test_figures_folder_is_created_up_front(no_work, tmp_path):
    folder = tmp_path / "a" / "b"
    args = cli.parse_args(["--figures", str(folder), "--n-train", "10", "--max-iter", "1"])
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert (args.n_train, args.max_iter, args.random_state) == (10, 1, 0)
    assert cli.parse_args(["--figures", ""]).figures == ""


def test_smallest_accepted_run_works(capsys):
    argv = ["--n-train", str(cli.MIN_TRAIN), "--n-test", "1", "--max-iter", "1", "--figures", ""]
    results = cli.main(argv)
    assert set(results) >= {"fit_seconds", "vae_median_l2", "matcher_median_l2", "pca2_median_l2"}
    assert f"fit on {cli.MIN_TRAIN} curves" in capsys.readouterr().out


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m skvae") and "--figures FOLDER" in out
    for markup in (":class:", ":func:", "``", "`~", ".. ", "%("):
        assert markup not in out


def test_bad_option_exits_2_in_a_real_process():
    result = subprocess.run(
        [sys.executable, "-m", "skvae", "--max-iter", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "python -m skvae: error: argument --max-iter: must be at least 1, got 0"
    )


def test_warnings_point_at_skvae_main_in_a_real_process():
    """The ConvergenceWarning of ``python -m skvae`` names skvae's entry, not runpy."""
    argv = ["--n-train", "10", "--n-test", "2", "--max-iter", "1", "--figures", ""]
    result = subprocess.run(
        [sys.executable, "-W", "always", "-m", "skvae", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "ConvergenceWarning" in line]
    assert "runpy" not in line and "__main__.py" in line
