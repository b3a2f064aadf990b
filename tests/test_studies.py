"""Studies: expansion and ids, designs, the store, executors, kill and resume, reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pinnlab.errors import ConfigError, PinnlabError, UnknownNameError
from pinnlab.studies import StoreError, expand, load, read_study, run_study
from pinnlab.studies.design import aliases, design_points, resolution, two_level_fraction
from pinnlab.studies.report import write_report
from pinnlab.studies.store import FORMAT_VERSION, Store

TINY = {
    "name": "tiny",
    "base": {
        "problem": {"id": "poisson-sine", "dim": 2},
        "method": "pinn",
        "net": {"width": 8, "depth": 2},
        "train": {"steps": 20, "eval_every": 20, "checkpoint_every": 0},
        "solver": {"n_interior": 32, "n_boundary": 16},
    },
    "grid": {"problem.dim": [1, 2, 3], "net.activation": ["tanh", "sin"]},
    "seeds": [0, 1],
}


def tiny(**changes) -> dict:
    return {**json.loads(json.dumps(TINY)), **changes}


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "tiny"
    run_study(read_study(TINY), out, workers=2, threads=1, progress=False)
    return out


# --- expansion ------------------------------------------------------------------------------
def test_expansion_and_ids_are_stable_across_processes(tmp_path):
    runs = expand(read_study(TINY))
    assert len(runs) == 3 * 2 * 2 and len({r.id for r in runs}) == len(runs)
    assert runs[0].config.net.width == 8 and runs[0].config.problem.params()["dim"] == 1
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    code = (
        "import json, sys; from pinnlab.studies import expand, read_study; "
        "print(json.dumps([r.id for r in expand(read_study(sys.argv[1]))]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout) == [r.id for r in runs]


def test_set_overrides_base_and_grid():
    study = read_study(TINY, sets=["base.train.steps=5", "grid.net.width=[4, 6]", "seeds=[3]"])
    runs = expand(study)
    assert {r.config.train.steps for r in runs} == {5}
    assert {r.config.net.width for r in runs} == {4, 6} and {r.seed for r in runs} == {3}
    assert len(runs) == 3 * 2 * 2


def test_designs():
    full = read_study(tiny(grid={"net.depth": [1, 2], "net.width": [4, 8, 16]}))
    assert len(design_points(full)) == 6
    oat = read_study(
        tiny(grid={"net.depth": [1, 2, 3], "net.width": [4, 8]}, design="one-at-a-time")
    )
    points = design_points(oat)
    assert points[0] == {"net.depth": 1, "net.width": 4} and len(points) == 1 + 2 + 1
    for k, runs, expected in [(10, 32, 4), (6, 16, 4), (5, 16, 5), (7, 8, 3)]:
        signs = np.array(two_level_fraction(k, runs))
        assert signs.shape == (runs, k) and resolution(signs.tolist()) == expected
        assert (signs.sum(axis=0) == 0).all()  # balanced
        assert len({tuple(r) for r in signs.tolist()}) == runs  # no repeated point
    grid = {
        f"net.{k}": v
        for k, v in [("depth", [1, 2]), ("width", [4, 8]), ("activation", ["tanh", "sin"])]
    }
    grid["train.lr"] = [1e-3, 2e-3]
    frac = read_study(tiny(grid=grid, design="fractional", runs=8))
    assert len(design_points(frac)) == 8
    assert ["net.depth × net.width", "net.activation × train.lr"] in aliases(frac)


def test_joined_factors_move_together():
    study = read_study(tiny(grid={"net.depth,net.width": [[2, 8], [3, 6]]}, seeds=[0]))
    assert [(r.config.net.depth, r.config.net.width) for r in expand(study)] == [(2, 8), (3, 6)]


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grid": {"net.widht": [4, 8]}}, "Did you mean 'net.width'"),
        ({"grid": {"problem.dimm": [2]}}, "dimm"),
        ({"grid": {}}, "grid is empty"),
        ({"grid": {"net.width": []}}, "empty list of levels"),
        ({"grid": {"net.depth,net.width": [[2, 8], [3]]}}, "list of 2 values"),
        ({"grid": {"net.width": [4, 4]}}, "repeats a level"),
        ({"grid": {"seed": [1, 2]}}, "same run config"),
        ({"seeds": []}, "seeds"),
        ({"design": "fractional"}, "needs 'runs'"),
        ({"grid": {"net.depth": [1, 2, 3]}, "design": "fractional", "runs": 4}, "exactly two"),
        (
            {"grid": {"net.depth": [1, 2], "net.width": [4, 8]}, "design": "fractional", "runs": 4},
            "full factorial",
        ),
        ({"grid": {"net.depth": [1, 2]}, "design": "fractional", "runs": 3}, "power of two"),
        ({"desing": "full"}, "desing"),
    ],
)
def test_bad_study_configs(changes, message):
    with pytest.raises(PinnlabError, match=message):
        expand(read_study(tiny(**changes)))


def test_unknown_study_name_and_executor(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'dimension-poisson'"):
        read_study("dimension-poison")
    with pytest.raises(UnknownNameError, match="executor"):
        run_study(read_study(tiny(seeds=[0])), tmp_path / "s", executor="dask", progress=False)


def test_stores_that_cannot_be_used(tmp_path, tiny_store):
    study = read_study(TINY)
    other = read_study(tiny(name="other"))
    with pytest.raises(StoreError, match="another study"):
        Store.open(tiny_store, other)
    newer = tmp_path / "newer"
    newer.mkdir()
    header = json.loads((tiny_store / "study.json").read_text())
    (newer / "study.json").write_text(json.dumps({**header, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(StoreError, match="newer pinnlab"):
        load(newer)
    with pytest.raises(StoreError, match="newer pinnlab"):
        Store.open(newer, study)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        Store.open(busy, study)
    with pytest.raises(ConfigError, match="no study store to resume"):
        run_study(study, tmp_path / "nothing", resume=True, progress=False)


def test_unreachable_ray_address_fails_fast(tmp_path, monkeypatch):
    """A clear error, from one TCP connection attempt bounded by a timeout (no hang)."""
    pytest.importorskip("ray")
    import socket

    import pinnlab.studies.executors as executors

    attempts = []
    connect = socket.create_connection

    def bounded(address, timeout=None, **kw):
        attempts.append(timeout)
        return connect(address, timeout=timeout, **kw)

    monkeypatch.setattr(executors.socket, "create_connection", bounded)
    with pytest.raises(ConfigError, match="cannot reach the Ray cluster"):
        run_study(
            read_study(tiny(seeds=[0])),
            tmp_path / "s",
            executor="ray",
            address="127.0.0.1:1",
            progress=False,
        )
    assert attempts == [executors.CONNECT_TIMEOUT] and 0 < executors.CONNECT_TIMEOUT <= 30


def test_gpu_shares_are_checked_before_any_run(tmp_path):
    """Ray hides GPUs from tasks that request none: runs on cuda ask for one each by default,
    and a cluster without enough GPUs is an error at once, not a study that hangs."""
    from pinnlab.studies.executors import make_executor

    with pytest.raises(ConfigError, match="--gpus is for --executor ray"):
        make_executor("local", gpus=1)
    with pytest.raises(ConfigError, match="--gpus must be a number ≥ 0"):
        make_executor("ray", gpus=-1)
    study = read_study(tiny(base={**TINY["base"], "device": "cuda"}, seeds=[0]))
    with pytest.raises(ConfigError, match="Ray hides the GPUs"):
        run_study(study, tmp_path / "zero", executor="ray", gpus=0, progress=False)
    pytest.importorskip("ray")
    if not torch.cuda.is_available():  # a local Ray instance then has no GPU to give
        with pytest.raises(ConfigError, match="asks for 1 GPU"):
            run_study(study, tmp_path / "none", executor="ray", workers=1, progress=False)


# --- running, the store ------------------------------------------------------------------------
def test_local_study_store_and_rerun(tiny_store, monkeypatch):
    df = load(tiny_store)
    assert len(df) == 12 and (df["status"] == "done").all()
    assert {"problem.dim", "net.activation", "seed", "rel_l2", "wall_time", "samples"} <= set(df)
    assert (df["metric"] == "rel_l2").all() and np.allclose(df["error_value"], df["rel_l2"])
    assert len(list((tiny_store / "runs").glob("*.h5"))) == 12
    # The run files are ordinary solution files.
    import pinnlab

    solution = pinnlab.load(next((tiny_store / "runs").glob("*.h5")))
    assert solution.config.train.steps == 20
    # Rerunning finds every run finished and executes nothing.
    import pinnlab.studies.runner as runner

    monkeypatch.setattr(runner, "make_executor", lambda *a, **k: pytest.fail("ran again"))
    run_study(read_study(TINY), tiny_store, progress=False)
    run_study(read_study(TINY), tiny_store, resume=True, progress=False)


def test_a_changed_study_reuses_its_finished_runs(tmp_path, tiny_store, monkeypatch):
    import shutil

    import pinnlab.studies.runner as runner

    copy = tmp_path / "copy"
    shutil.copytree(tiny_store, copy)
    # Fewer seeds and dimensions: every run is already in the store; nothing runs.
    smaller = read_study(TINY, sets=["seeds=[1]", "grid.problem.dim=[2, 3]"])
    monkeypatch.setattr(runner, "make_executor", lambda *a, **k: pytest.fail("ran again"))
    run_study(smaller, copy, progress=False)
    df = load(copy)
    assert len(df) == 4 and set(df["seed"]) == {1} and set(df["problem.dim"]) == {2, 3}
    assert len(list((copy / "runs").glob("*.h5"))) == 12  # the others stay on disk


def test_a_failing_run_is_recorded_and_the_study_goes_on(tmp_path):
    problems = tmp_path / "problems"
    problems.mkdir()
    (problems / "broken.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            import pinnlab as pl

            @dataclass(frozen=True)
            class Broken(pl.Problem):
                '''Fails inside the residual when it is asked to (fail=True).'''
                id = "broken"
                dim: int = 1
                fail: bool = True

                def exact(self, x):
                    return x.sum(dim=1)

                def strong_form(self):
                    def residual(d):
                        if self.fail:
                            raise RuntimeError("boom in the residual")
                        return d.laplacian
                    return pl.StrongForm(
                        domain=pl.Box(self.dim, 0.0, 1.0),
                        residual=residual,
                        conditions={"boundary": pl.Dirichlet(self.exact)},
                    )
            """
        )
    )
    study = read_study(
        tiny(
            base={**TINY["base"], "problem": {"id": "broken"}},
            grid={"problem.fail": [True, False]},
            seeds=[0],
        )
    )
    out = tmp_path / "s"
    run_study(study, out, workers=1, progress=False, problems_dirs=[problems])
    df = load(out).set_index("problem.fail")
    assert df.loc[True, "status"] == "failed" and "boom in the residual" in df.loc[True, "error"]
    assert df.loc[False, "status"] == "done"
    text = write_report(out, problems_dirs=[problems]).read_text()
    assert "**Levels at which every run failed:**" in text
    assert "- `problem.fail` = True: all 1 runs failed" in text


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_own_run(tmp_path, monkeypatch):
    """A worker killed by a signal (as by the out-of-memory killer) breaks the process pool;
    the runs caught with it are run again, and only the killer's run is recorded as failed."""
    problems = tmp_path / "problems"
    problems.mkdir()
    (problems / "killer.py").write_text(
        textwrap.dedent(
            """
            import os, signal
            from dataclasses import dataclass
            import pinnlab as pl

            @dataclass(frozen=True)
            class Killer(pl.Problem):
                "Its worker process is killed (SIGKILL) when dim = 3."
                id = "killer"
                dim: int = 1

                def exact(self, x):
                    return x.sum(dim=1)

                def strong_form(self):
                    def residual(d):
                        if self.dim == 3 and os.environ["DRIVER_PID"] != str(os.getpid()):
                            os.kill(os.getpid(), signal.SIGKILL)
                        return d.laplacian
                    return pl.StrongForm(
                        domain=pl.Box(self.dim, 0.0, 1.0),
                        residual=residual,
                        conditions={"boundary": pl.Dirichlet(self.exact)},
                    )
            """
        )
    )
    monkeypatch.setenv("DRIVER_PID", str(os.getpid()))
    study = read_study(
        tiny(
            base={**TINY["base"], "problem": {"id": "killer"}},
            grid={"problem.dim": [1, 2, 3, 4]},
            seeds=[0],
        )
    )
    out = tmp_path / "s"
    run_study(study, out, workers=2, threads=1, progress=False, problems_dirs=[problems])
    df = load(out).set_index("problem.dim")
    assert df.loc[3, "status"] == "failed" and "out-of-memory" in df.loc[3, "error"]
    assert (df.drop(index=3)["status"] == "done").all()


def test_kill_minus_nine_then_resume_loses_nothing_finished(tmp_path):
    study = tiny(
        base={**TINY["base"], "train": {"steps": 150, "eval_every": 150, "checkpoint_every": 0}},
        seeds=[0, 1],
    )
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    out = tmp_path / "store"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pinnlab",
            "study",
            str(path),
            "--out",
            str(out),
            "--workers",
            "1",
            "--quiet",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    index = out / "index.jsonl"
    deadline = time.monotonic() + 600  # generous: a loaded machine is slow, the loop ends early
    while time.monotonic() < deadline:
        if index.exists() and index.read_text().count("\n") >= 3:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = load(out)
    assert 3 <= len(before) < 12 and (before["status"] == "done").all()
    finished = dict(zip(before["id"], [r["finished"] for r in _records(out)], strict=True))
    run_study(read_study(path), out, workers=2, progress=False)
    after = load(out)
    assert len(after) == 12 and (after["status"] == "done").all()
    records = {r["id"]: r for r in _records(out)}
    assert all(records[i]["finished"] == f for i, f in finished.items())  # not run again
    assert len(list((out / "runs").glob("*.h5"))) == 12
    assert not list((out / "runs").glob(".*"))  # no temporary files left behind


def _records(root: Path) -> list[dict]:
    from pinnlab.studies.store import read_index

    return list(read_index(root).values())


def test_truncated_index_line_and_orphan_solution_are_handled(tmp_path, tiny_store):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_store, copy)
    lines = (copy / "index.jsonl").read_text().splitlines(keepends=True)
    # Killed while writing the last record: half a line; its solution file is already there.
    (copy / "index.jsonl").write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    assert len(load(copy)) == 11
    store = Store.open(copy, read_study(TINY), expand(read_study(TINY)))
    assert sum(store.done(r.id) for r in expand(read_study(TINY))) == 12
    assert len(load(copy)) == 12


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_ray_executor_gives_the_same_store(tmp_path, tiny_store):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    run_study(read_study(TINY), out, executor="ray", workers=2, progress=False)
    local, remote = (load(p).set_index("id").sort_index() for p in (tiny_store, out))
    assert list(local.index) == list(remote.index)
    for column in ("rel_l2", "rel_h1_seminorm", "steps", "samples", "parameters"):
        np.testing.assert_array_equal(local[column].to_numpy(), remote[column].to_numpy())


# --- reports ----------------------------------------------------------------------------------
def test_dimension_report_renders(tiny_store, capsys):
    from pinnlab.cli import main

    assert main(["report", str(tiny_store)]) == 0
    assert "report.md" in capsys.readouterr().out
    text = (tiny_store / "report.md").read_text()
    assert "## Error and cost versus dimension" in text and "### net.activation=tanh" in text
    assert "best affine" in text and "Finite differences" in text and "d^" in text
    for name in ("error-net-activation-tanh", "cost-net-activation-sin"):
        assert (tiny_store / "figures" / f"{name}.png").stat().st_size > 1000
        assert (tiny_store / "figures" / f"{name}.pdf").exists()


def test_factor_report_renders(tmp_path):
    grid = {
        "net.depth": [1, 2],
        "net.width": [4, 8],
        "net.activation": ["tanh", "sin"],
        "train.lr": [1e-3, 3e-3],
    }
    study = read_study(tiny(grid=grid, design="fractional", runs=8, seeds=[0, 1]))
    out = tmp_path / "arch"
    run_study(study, out, workers=2, threads=1, progress=False)
    text = write_report(out).read_text()
    assert "## Which factors matter" in text and "ANOVA" in text and "Aliases" in text
    # An aliased pair is one estimate, reported once under both its names.
    assert "| net.depth × net.width = net.activation × train.lr | interaction |" in text
    assert "| net.activation × train.lr |" not in text
    assert (out / "figures" / "effects-error.png").exists()
    assert (out / "figures" / "interactions.png").exists()


def test_ablation_report_compares_with_the_baseline_point(tmp_path):
    grid = {"net.activation": ["tanh", "sin", "softplus"], "net.width": [8, 4]}
    study = read_study(tiny(grid=grid, design="one-at-a-time", seeds=[0, 1]))
    out = tmp_path / "ablation"
    run_study(study, out, workers=2, threads=1, progress=False)
    df = load(out)
    assert len(df) == 4 * 2
    text = write_report(out).read_text()
    log = np.log10(df["rel_l2"])
    base = log[(df["net.activation"] == "tanh") & (df["net.width"] == 8)].mean()
    sin = log[df["net.activation"] == "sin"].mean() - base
    assert f"| net.activation | sin vs tanh | {sin:.3g} |" in text
    narrow = log[df["net.width"] == 4].mean() - base
    assert f"| net.width | 4 vs 8 | {narrow:.3g} |" in text
    assert "interaction" not in text.split("## Which factors matter")[1]
