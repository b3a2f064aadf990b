"""Finding problems: the shipped catalogue, $PINNLAB_PROBLEMS, extra folders, clashes."""

from __future__ import annotations

import os

import pytest
from helpers import USER_PROBLEMS, write_problem_file

import pinnlab as pl
from pinnlab.registry import ENV_VAR, catalogue_dirs, shipped_dir

USER_IDS = {"test-heat", "test-pair"}


def test_shipped_catalogue_comes_first():
    dirs = catalogue_dirs()
    assert dirs == (shipped_dir("problems").resolve(),)
    assert (dirs[0] / "poisson.py").exists()
    assert not USER_IDS & set(pl.catalogue())


def test_user_problems_from_an_extra_folder(user_dir):
    cat = pl.catalogue([user_dir])
    assert USER_IDS <= set(cat)
    assert set(pl.catalogue()) < set(cat)  # the shipped problems are still there
    assert cat.problem("test-heat", dim=3).dim == 3


def test_user_problems_from_the_environment(user_dir, noform_dir, monkeypatch):
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(user_dir), str(noform_dir)]))
    cat = pl.catalogue()
    assert USER_IDS | {"test-energy-only"} <= set(cat)
    # pinnlab.problem() sees them too.
    assert pl.problem("test-pair", dim=4).dim == 4
    # The same folder twice (environment and argument) is read once.
    assert set(pl.catalogue([user_dir])) == set(cat)


def test_a_duplicate_id_is_an_error(user_dir, tmp_path):
    copy = write_problem_file(tmp_path / "copy", USER_PROBLEMS, name="again.py")
    with pytest.raises(pl.PinnlabError, match=r"problem id 'test-(heat|pair)' is defined twice"):
        pl.catalogue([user_dir, copy])


def test_a_user_problem_may_not_take_a_shipped_id(tmp_path):
    clash = USER_PROBLEMS.replace('id = "test-heat"', 'id = "poisson-sine"')
    folder = write_problem_file(tmp_path / "clash", clash)
    with pytest.raises(pl.PinnlabError, match="'poisson-sine' is defined twice"):
        pl.catalogue([folder])


def test_missing_folders_and_broken_files(tmp_path, monkeypatch):
    with pytest.raises(pl.PinnlabError, match="does not exist or is not a folder"):
        pl.catalogue([tmp_path / "nowhere"])
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(pl.PinnlabError, match="does not exist or is not a folder"):
        pl.catalogue()
    monkeypatch.delenv(ENV_VAR)
    broken = write_problem_file(tmp_path / "broken", "import nonexistent_module_xyz\n")
    with pytest.raises(
        pl.PinnlabError, match=r"could not import problem file .*ModuleNotFoundError"
    ):
        pl.catalogue([broken])


def test_private_files_and_classes_without_id_are_skipped(tmp_path):
    folder = write_problem_file(tmp_path / "f", USER_PROBLEMS, name="_private.py")
    assert set(pl.catalogue([folder])) == set(pl.catalogue())
    # The shipped catalogue's private base class (no id) is no entry.
    assert all(cls.id for cls in pl.catalogue().values())
