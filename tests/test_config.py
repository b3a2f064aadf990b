"""Run configs: strict validation with helpful messages, layering, YAML files, fingerprints."""

from __future__ import annotations

import re

import pytest
from helpers import TINY, tiny_config

import pinnlab as pl
from pinnlab.config import parse_set, read_yaml
from pinnlab.registry import shipped_dir
from pinnlab.run import fingerprint, recipe


def make(*sets, **kw):
    return pl.make_config("poisson-sine", config=TINY, sets=sets, **kw)


def test_defaults_and_recorded_parameters():
    cfg = pl.make_config("poisson-ball", config={})
    assert cfg.method == "pinn" and cfg.seed == 0 and cfg.dtype == "float32"
    # Every parameter of the problem is recorded, defaults included.
    assert cfg.problem.params() == {"dim": 10, "coef_seed": 0}
    assert pl.RunConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_layers_later_ones_win():
    base = {**TINY, "problem": {"id": "poisson-ball", "dim": 3}, "seed": 1}
    cfg = pl.make_config(
        config=base,
        params={"dim": 4},
        overrides={"seed": 2, "train": {"steps": 7}},
        sets=["seed=3", "train.lr=0.5"],
    )
    assert cfg.problem.id == "poisson-ball" and cfg.problem.params()["dim"] == 4
    assert cfg.seed == 3 and cfg.train.steps == 7 and cfg.train.lr == 0.5
    assert cfg.net.width == TINY["net"]["width"]  # untouched keys survive the merge
    assert pl.make_config(config=cfg, sets=["seed=5"]) == cfg.model_copy(update={"seed": 5})


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("train.stepz=3", "unknown key 'train.stepz'. Did you mean 'train.steps'?"),
        ("trian.steps=3", "unknown key 'trian'. Did you mean 'train'?"),
        ("net.widht=3", "unknown key 'net.widht'. Did you mean 'net.width'?"),
        (
            "solver.n_interiour=3",
            "unknown key 'solver.n_interiour'. Did you mean 'solver.n_interior'?",
        ),
        ("train.steps=abc", "'train.steps': Input should be a valid integer"),
        ("train.lr=-1", "'train.lr': Input should be greater than 0; got -1"),
        ("train.gamma=2", "'train.gamma': Input should be less than or equal to 1"),
        (
            "train.optimizer=rmsprop",
            "'train.optimizer': Input should be 'adam', 'sgd', 'lbfgs', 'ssbfgs', 'ssbroyden', 'engd', 'engd-kfac' or 'adam+lbfgs'",
        ),
        ("solver.n_interior=0", "'solver.n_interior': Input should be greater than or equal to 1"),
        ("solver.sampling=halton", "'solver.sampling'"),
        ("device=gpu", "'device': String should match pattern"),
        ("dtype=float16", "'dtype'"),
        ("seed=-1", "'seed': Input should be greater than or equal to 0"),
    ],
)
def test_invalid_values_name_the_key_and_what_is_allowed(assignment, message):
    with pytest.raises(pl.ConfigError, match="invalid config") as info:
        make(assignment)
    assert message in str(info.value)
    if "unknown key" in message:
        assert "Allowed here:" in str(info.value)


def test_other_config_errors():
    with pytest.raises(pl.ConfigError, match="no problem given"):
        pl.make_config(config={})
    with pytest.raises(
        pl.UnknownNameError, match=re.escape("unknown method 'pnn'. Did you mean 'pinn'")
    ):
        pl.make_config("poisson-sine", method="pnn", config={})
    with pytest.raises(pl.UnknownNameError, match="unknown problem 'poison-sine'"):
        pl.make_config("poison-sine", config={})
    with pytest.raises(pl.ParameterError, match="Did you mean 'coef_seed'"):
        pl.make_config("poisson-ball", config={}, params={"coef_sed": 1})
    with pytest.raises(pl.ParameterError, match="dim must be even"):
        pl.make_config("poisson-harmonic", config={}, params={"dim": 3})
    with pytest.raises(pl.ParameterError, match="has no parameter 'foo'"):
        make("problem.foo=1")
    # Caught before training, not at the first evaluation.
    with pytest.raises(pl.UnknownNameError, match=re.escape("Did you mean 'rel_l2'?")):
        make("metric=rel_l3")
    assert make("metric=rel_h1_seminorm").metric == "rel_h1_seminorm"


def test_a_method_the_problem_cannot_take(noform_dir):
    with pytest.raises(
        pl.FormError, match=r"needs the strong form \(strong_form\(\)\).*it offers energy"
    ):
        pl.make_config("test-energy-only", config={}, problems_dirs=[noform_dir])


def test_parse_set():
    assert parse_set("train.steps=20") == {"train": {"steps": 20}}
    assert parse_set("train.lr=2.0e-3") == {"train": {"lr": 2.0e-3}}
    assert parse_set("solver.weights={boundary: 2}") == {"solver": {"weights": {"boundary": 2}}}
    assert parse_set("net.activation=sin") == {"net": {"activation": "sin"}}
    assert parse_set("train.target_error=null") == {"train": {"target_error": None}}
    assert parse_set("a=b=c") == {"a": "b=c"}
    with pytest.raises(pl.ConfigError, match="KEY=VALUE"):
        parse_set("train.steps")
    with pytest.raises(pl.ConfigError, match="empty part"):
        parse_set("train..steps=3")


def test_yaml_files_and_inheritance(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "problem: {id: poisson-ball, dim: 3}\nnet: {width: 8, depth: 2}\ntrain: {steps: 7, lr: 0.01}\n"
    )
    (tmp_path / "child.yaml").write_text("base: base.yaml\ntrain: {steps: 9}\nseed: 4\n")
    cfg = pl.make_config(config=tmp_path / "child.yaml")
    assert cfg.problem.id == "poisson-ball" and cfg.problem.params()["dim"] == 3
    assert cfg.train.steps == 9 and cfg.train.lr == 0.01 and cfg.net.width == 8 and cfg.seed == 4
    assert read_yaml(tmp_path / "child.yaml")["train"] == {"steps": 9, "lr": 0.01}

    with pytest.raises(pl.ConfigError, match="does not exist"):
        pl.make_config(config=tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n")
    with pytest.raises(pl.ConfigError, match="not valid YAML"):
        pl.make_config(config=tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(pl.ConfigError, match="must hold a mapping"):
        pl.make_config(config=tmp_path / "list.yaml")
    (tmp_path / "typo.yaml").write_text("problem: {id: poisson-sine}\ntrain: {stpes: 3}\n")
    with pytest.raises(pl.ConfigError, match=re.escape("Did you mean 'train.steps'")):
        pl.make_config(config=tmp_path / "typo.yaml")


def test_the_shipped_recipe_is_the_default_layer():
    for path in sorted(shipped_dir("configs").glob("runs/*.yaml")):
        data = read_yaml(path)
        problem_id, method = data["problem"]["id"], data.get("method", "pinn")
        if path.stem != f"{problem_id}-{method}":
            continue  # a variant for another dimension, chosen by --dim (tests/test_recipes.py)
        assert recipe(problem_id, method) == path
        cfg = pl.make_config(problem_id, method=method)
        assert cfg == pl.make_config(config=path)
    # Without a recipe the defaults apply; an explicit config replaces the recipe.
    assert recipe("poisson-sine", "no-such-method") is None
    assert (
        pl.make_config("poisson-sine", config={}).train
        == pl.RunConfig.model_fields["train"].default_factory()
    )


def test_fingerprint_ignores_values_at_their_defaults():
    """A setting added in a later version, at a default that keeps the old behaviour, leaves
    the ids of runs made before it (and so a study's finished runs) unchanged."""
    cfg = tiny_config()
    older = cfg.model_copy(
        update={"solver": {k: v for k, v in cfg.solver.items() if k != "probes"}}
    )
    assert fingerprint(older) == fingerprint(cfg)
    assert fingerprint(tiny_config(train={"ema": 0.0})) == fingerprint(cfg)
    assert fingerprint(tiny_config(train={"ema": 0.5})) != fingerprint(cfg)
    assert fingerprint(tiny_config(solver={"probes": 3})) != fingerprint(cfg)


def test_fingerprint_identifies_a_run():
    cfg = tiny_config()
    same = tiny_config(train={"time_budget": 100.0, "checkpoint_every": 7})
    assert fingerprint(cfg) == fingerprint(same)
    for other in (
        tiny_config(seed=1),
        tiny_config(train={"steps": 5}),
        tiny_config(dim=3),
        tiny_config(net={"width": 9}),
        tiny_config(solver={"n_interior": 33}),
    ):
        assert fingerprint(other) != fingerprint(cfg)
