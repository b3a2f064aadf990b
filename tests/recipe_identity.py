"""Every shipped recipe trained for 20 steps on the CPU: a digest of its trained weights.

The refactors of the library must leave what a recipe computes unchanged bit for bit;
``tests/test_recipe_identity.py`` compares these digests with the ones recorded in
``tests/data/recipe_digests.json``. Regenerate that file (only where a change alters results
on purpose, and say which and why in the commit) with

    .venv/bin/python tests/recipe_identity.py --write [names]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

import pinnlab as pl

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "configs" / "runs"
DIGESTS = Path(__file__).resolve().parent / "data" / "recipe_digests.json"
#: Large sample sizes shrunk so that a 20-step run of every recipe fits in CI; the code
#: paths (samplers, losses, optimizer phases, refits) are those of the full recipe.
CAPS = {
    "n_interior": 64,
    "n_boundary": 32,
    "n_samples": 64,
    "n_paths": 64,
    "walkers": 64,
    "burn_in": 10,
    "eval_measurements": 16,
    "refit": 2,
}


def recipe_config(path: Path) -> pl.RunConfig:
    """The recipe at ``path`` shortened to 20 optimizer steps (10 Adam + 10 L-BFGS where it
    uses both; 10 per phase of the first two of ``train.phases``), with capped sample sizes,
    no checkpoints and one evaluation."""
    from pinnlab.config import read_yaml

    data = read_yaml(path)
    solver = dict(data.get("solver", {}))
    for key, cap in CAPS.items():
        if isinstance(solver.get(key), int) and solver[key] > cap:
            solver[key] = cap
    train = dict(data.get("train", {}))
    if train.get("phases"):
        train["phases"] = [{**p, "steps": 10} for p in train["phases"][:2]]
    else:
        both = train.get("optimizer") == "adam+lbfgs"
        train.update(steps=10 if both else 20, lbfgs_steps=10 if both else 0)
    train.update(
        eval_every=10_000,
        checkpoint_every=0,
        time_budget=None,
        target_error=None,
    )
    data.update(solver=solver, train=train, device="cpu")
    return pl.make_config(config=data)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over the sorted digests of the parameters' bytes: names and order do not enter
    (modules may move), the values do, bit for bit."""
    parts = sorted(
        hashlib.sha256(p.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
        for p in model.parameters()
    )
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:32]


def digest(path: Path) -> str:
    """The weights' digest of the shortened recipe, trained on one CPU thread (the result of a
    reduction can depend on how many threads share it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        return weights_digest(pl.run(recipe_config(path)).model)
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="record the digests")
    parser.add_argument("names", nargs="*", help="recipe stems (default: all)")
    args = parser.parse_args()
    import time

    paths = sorted(RECIPES.glob("*.yaml"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names]
    out = {}
    for path in paths:
        began = time.perf_counter()
        out[path.stem] = digest(path)
        print(f"{path.stem:45s} {out[path.stem]}  {time.perf_counter() - began:6.1f} s", flush=True)
    recorded = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    if args.write:  # the named recipes' digests replace theirs; the others' stay
        recorded = {k: v for k, v in recorded.items() if (RECIPES / f"{k}.yaml").exists()}
        DIGESTS.write_text(json.dumps(recorded | out, indent=1, sort_keys=True) + "\n")
    else:
        bad = [k for k, v in out.items() if recorded.get(k) != v]
        print("differ:", bad or "none")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
