"""The cost a study's executor adds to each run: the local process pool against a Ray cluster.

    python benchmarks/executors.py --runs 24 --workers 1 --out docs/benchmarks/executors.json

One study of ``--runs`` tiny runs (poisson-sine d = 2, a 1×8 network, 20 L-BFGS iterations:
well under a second of training each) is run three times into fresh stores: by the local process
pool, by Ray started by the study itself (``ray.init()``, a local instance), and by a Ray
cluster started beforehand with ``ray start --head`` (what a cluster is, with its own raylet and
object store; this script starts it on a free port and stops it at the end). The overhead per
run is (workers × the study's wall time − the runs' own wall times, summed) / runs, the
worker-seconds not spent training: what the executor,
the spawn and warm-up of its workers, the transfer of the configs and of the solution files,
and the store's writes add. Medians over ``--repeats`` repetitions; the ratio Ray / local is
per repetition. Results go to ``--out`` (JSON) and are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pinnlab.studies import load, read_study, run_study

STUDY = {
    "name": "executor-overhead",
    "base": {
        "problem": {"id": "poisson-sine", "dim": 2},
        "net": {"width": 8, "depth": 1},
        "solver": {"n_interior": 64, "n_boundary": 16},
        "train": {"optimizer": "lbfgs", "steps": 20, "eval_every": 20, "checkpoint_every": 0},
        "device": "cpu",
    },
}


def measure(kind: str, runs: int, workers: int, address: str | None) -> dict:
    study = read_study({**STUDY, "grid": {"net.width": [8]}, "seeds": list(range(runs))})
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        run_study(
            study,
            Path(folder) / "store",
            executor="ray" if kind != "local" else "local",
            workers=workers,
            threads=1,
            address=address,
            progress=False,
        )
        total = time.perf_counter() - began
        df = load(Path(folder) / "store")
    inside = float(df["wall_time"].sum())
    return {
        "executor": kind,
        "runs": runs,
        "study_seconds": total,
        "run_seconds": inside,
        "overhead_per_run": (workers * total - inside) / runs,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/executors.json"))
    args = parser.parse_args()
    ray = Path(sys.executable).with_name("ray")
    results = []
    for _ in range(args.repeats):  # (ray.init() would join a running cluster: none yet)
        for kind in ("local", "ray-local"):
            results.append(measure(kind, args.runs, args.workers, None))
            print(json.dumps(results[-1]), flush=True)
    port = free_port()
    subprocess.run(
        [str(ray), "start", "--head", f"--port={port}", f"--num-cpus={args.workers}"],
        check=True,
        capture_output=True,
    )
    try:
        for _ in range(args.repeats):
            results.append(measure("ray-cluster", args.runs, args.workers, f"127.0.0.1:{port}"))
            print(json.dumps(results[-1]), flush=True)
    finally:
        subprocess.run([str(ray), "stop", "--force"], capture_output=True)
    summary = {}
    for kind in ("local", "ray-local", "ray-cluster"):
        mine = [r for r in results if r["executor"] == kind]
        summary[kind] = {
            "overhead_per_run_median": statistics.median(r["overhead_per_run"] for r in mine),
            "study_seconds_median": statistics.median(r["study_seconds"] for r in mine),
        }
    locals_ = [r for r in results if r["executor"] == "local"]
    for kind in ("ray-local", "ray-cluster"):
        mine = [r for r in results if r["executor"] == kind]
        summary[kind]["study_time_ratio_to_local_median"] = statistics.median(
            b["study_seconds"] / a["study_seconds"] for a, b in zip(locals_, mine, strict=True)
        )
    out = {
        "command": " ".join(["python", *sys.argv]),
        "machine": platform.processor() or platform.machine(),
        "workers": args.workers,
        "results": results,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print("| executor | overhead per run [s] (median) | study wall time [s] | ratio to local |")
    print("|---|---|---|---|")
    for kind, s in summary.items():
        ratio = s.get("study_time_ratio_to_local_median", 1.0)
        print(
            f"| {kind} | {s['overhead_per_run_median']:.3f} | {s['study_seconds_median']:.1f} "
            f"| {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
