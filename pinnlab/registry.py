"""Registries: the problem catalogue, solvers, networks, wrappers, activations and metrics,
found on disk and in installed packages.

pinnlab never imports ``problems/`` by name. The catalogue folders are, in order:

1. the shipped catalogue: ``pinnlab/_shipped/problems`` inside an installed wheel, or the
   ``problems/`` folder beside the ``pinnlab`` package in a source checkout or editable install;
2. every folder in the environment variable ``PINNLAB_PROBLEMS`` (``os.pathsep``-separated);
3. folders passed explicitly (the command line's ``--problems DIR``).

Each ``*.py`` file in a folder is imported; every ``pinnlab.Problem`` subclass it defines
with a non-empty ``id`` is a catalogue entry, and every subclass with a non-empty ``name`` of
``pinnlab.Solver``, ``pinnlab.networks.Network`` (a body, ``net.kind``),
``pinnlab.networks.Wrapper`` (``net.wrap``), ``pinnlab.networks.Activation`` or
``pinnlab.metrics.Metric`` an entry of that registry. Installed packages add entries
through entry points: the groups ``pinnlab.problems``, ``pinnlab.solvers``,
``pinnlab.networks``, ``pinnlab.wrappers``, ``pinnlab.activations`` and ``pinnlab.metrics``
(name = the id or name, object = the class). Two entries with the same name are an error. Nothing is mutated: each registry is
built from these sources, and a study's workers, given the same folders, see the same entries.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import PinnlabError, unknown_name
from .problem import Problem
from .solvers import SOLVERS, Solver

ENV_VAR = "PINNLAB_PROBLEMS"
_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(kind: str) -> Path:
    """The shipped ``problems`` or ``configs`` folder (wheel or source checkout)."""
    for candidate in (_PACKAGE / "_shipped" / kind, _PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise PinnlabError(f"pinnlab's shipped '{kind}' folder was not found beside {_PACKAGE}.")


def catalogue_dirs(extra: Iterable[str | os.PathLike | type] = ()) -> tuple[Path, ...]:
    """The catalogue folders: shipped, then $PINNLAB_PROBLEMS, then ``extra`` (its Problem
    classes, see ``catalogue``, are not folders and are left out)."""
    env = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    folders = [p for p in extra if not isinstance(p, type)]
    dirs = [shipped_dir("problems"), *map(Path, env), *map(Path, folders)]
    for d in dirs:
        if not d.is_dir():
            raise PinnlabError(f"problem folder '{d}' does not exist or is not a folder.")
    return tuple(dict.fromkeys(d.resolve() for d in dirs))


def _import_file(path: Path):
    tag = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"pinnlab_catalogue_{tag}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise PinnlabError(f"could not import problem file {path}: {type(e).__name__}: {e}") from e
    return module


def _defined_in(module, base: type, key: str) -> list[type]:
    """The subclasses of ``base`` a catalogue file defines itself with a non-empty ``key``."""
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, base) and getattr(obj, key, "") and obj.__module__ == module.__name__
    ]


@functools.cache
def entry_points(group: str) -> tuple[tuple[str, Any], ...]:
    """(name, loaded object) of every installed entry point of ``group``."""
    from importlib.metadata import entry_points as installed

    out = []
    for ep in installed(group=group):
        try:
            out.append((ep.name, ep.load()))
        except Exception as e:
            raise PinnlabError(
                f"entry point '{ep.name} = {ep.value}' (group {group}) cannot be loaded: "
                f"{type(e).__name__}: {e}"
            ) from e
    return tuple(out)


class Registry(Mapping[str, Any]):
    """Name -> entry of one kind (``kind`` names it in errors), read-only."""

    def __init__(self, kind: str, entries: Iterable[tuple[str, Any, str]]):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        where: dict[str, str] = {}
        for name, obj, source in entries:
            if name in self._entries and self._entries[name] is not obj:
                raise PinnlabError(
                    f"{kind} '{name}' is defined twice: in {where[name]} and {source}."
                )
            self._entries[name], where[name] = obj, source

    def __getitem__(self, name: str):
        if name not in self._entries:
            raise unknown_name(self.kind, name, self._entries)
        return self._entries[name]

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


#: Each registry: (what its entries are called in messages, the base class, the entry-point
#: group, pinnlab's own entries). Entries are classes with a non-empty ``name``.
def _kinds() -> dict[str, tuple[str, type, str, Mapping[str, type]]]:
    from .metrics import Metric
    from .networks import ACTIVATIONS, NETWORKS, WRAPPERS, Activation, Network, Wrapper

    return {
        "solvers": ("method", Solver, "pinnlab.solvers", SOLVERS),
        "networks": ("network (net.kind)", Network, "pinnlab.networks", NETWORKS),
        "wrappers": ("wrapper (net.wrap)", Wrapper, "pinnlab.wrappers", WRAPPERS),
        "activations": (
            "activation (net.activation)",
            Activation,
            "pinnlab.activations",
            ACTIVATIONS,
        ),
        "metrics": ("metric", Metric, "pinnlab.metrics", {}),
    }


@functools.lru_cache(maxsize=32)
def _registry(kind: str, dirs: tuple[Path, ...]) -> Registry:
    label, base, group, builtin = _kinds()[kind]
    entries = [(name, cls, "pinnlab") for name, cls in builtin.items()]
    for name, cls in entry_points(group):
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PinnlabError(f"entry point '{name}' ({group}) is not a {base.__name__} class.")
        entries.append((name, cls, f"entry point {name}"))
    for folder in dirs:
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                entries += [
                    (c.name, c, str(path)) for c in _defined_in(_import_file(path), base, "name")
                ]
    return Registry(label, entries)


def solvers(extra_dirs: Iterable[str | os.PathLike] = ()) -> Registry:
    """Method name -> solver class: pinnlab's, installed packages' (entry points) and those
    defined in the catalogue folders (shipped, $PINNLAB_PROBLEMS, ``extra_dirs``)."""
    return _registry("solvers", catalogue_dirs(extra_dirs))


def networks(extra_dirs: Iterable[str | os.PathLike] = ()) -> Registry:
    """``net.kind`` -> body class (``pinnlab.networks.Network`` with a ``name``)."""
    return _registry("networks", catalogue_dirs(extra_dirs))


def wrappers(extra_dirs: Iterable[str | os.PathLike] = ()) -> Registry:
    """``net.wrap`` key -> wrapper class (``pinnlab.networks.Wrapper``)."""
    return _registry("wrappers", catalogue_dirs(extra_dirs))


def activations(extra_dirs: Iterable[str | os.PathLike] = ()) -> Registry:
    """``net.activation`` -> activation class (``pinnlab.networks.Activation``)."""
    return _registry("activations", catalogue_dirs(extra_dirs))


def metrics(extra_dirs: Iterable[str | os.PathLike] = ()) -> Registry:
    """Metric name -> ``pinnlab.metrics.Metric`` class: the metrics users add (pinnlab's
    own are computed together, ``pinnlab.metrics.METRICS``, and their names are taken)."""
    from .metrics import METRICS

    found = _registry("metrics", catalogue_dirs(extra_dirs))
    taken = sorted(set(found) & set(METRICS))
    if taken:
        raise PinnlabError(
            f"metric '{taken[0]}' is one of pinnlab's own ({', '.join(METRICS)}); name yours "
            "differently."
        )
    return found


class Catalogue(Mapping[str, type[Problem]]):
    """Problem id -> problem class, read from the catalogue folders and entry points."""

    def __init__(self, dirs: Iterable[Path], classes: Iterable[type[Problem]] = ()):
        self.dirs = tuple(dirs)
        self._entries: dict[str, type[Problem]] = {}
        for name, cls in entry_points("pinnlab.problems"):
            if not (isinstance(cls, type) and issubclass(cls, Problem)) or cls.id != name:
                raise PinnlabError(
                    f"entry point '{name}' (pinnlab.problems) must be a Problem class with id '{name}'."
                )
            self._entries[name] = cls
        for folder in self.dirs:
            for path in sorted(folder.glob("*.py")):
                if path.name.startswith("_"):
                    continue
                for _, obj in inspect.getmembers(_import_file(path), inspect.isclass):
                    if (
                        issubclass(obj, Problem)
                        and obj.id
                        and obj.__module__.startswith("pinnlab_catalogue_")
                    ):
                        self._add(obj, str(path))
        for cls in classes:
            if not (issubclass(cls, Problem) and cls.id):
                raise PinnlabError(f"{cls.__qualname__} is not a Problem class with an id.")
            self._add(cls, f"{cls.__module__}.{cls.__qualname__}")

    def _add(self, cls: type[Problem], where: str) -> None:
        params = vars(cls).get("__dataclass_params__")
        if params is None or not params.frozen:
            raise PinnlabError(
                f"problem '{cls.id}' in {where} must be decorated with "
                "@dataclass(frozen=True), so that its fields are its parameters."
            )
        if cls.id in self._entries and self._entries[cls.id] is not cls:
            raise PinnlabError(
                f"problem id '{cls.id}' is defined twice: in "
                f"{inspect.getfile(self._entries[cls.id])} and {where}."
            )
        self._entries[cls.id] = cls

    def __getitem__(self, problem_id: str) -> type[Problem]:
        if problem_id not in self._entries:
            raise unknown_name("problem", problem_id, self._entries)
        return self._entries[problem_id]

    def __iter__(self):
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def problem(self, problem_id: str, **params: Any) -> Problem:
        """Build the problem ``problem_id`` with ``params`` (validated by name and type)."""
        return self[problem_id].from_params(params)


@functools.lru_cache(maxsize=8)
def _cached(dirs: tuple[Path, ...], classes: tuple[type[Problem], ...] = ()) -> Catalogue:
    return Catalogue(dirs, classes)


def catalogue(extra_dirs: Iterable[str | os.PathLike | type[Problem]] = ()) -> Catalogue:
    """The catalogue of the shipped problems, $PINNLAB_PROBLEMS and ``extra_dirs``: folders
    of problem files, or Problem classes themselves (one defined in a script: ``pl.solve``
    of its instance adds it, ``pl.load(path, problems_dirs=[MyProblem])`` finds it again)."""
    extra = tuple(extra_dirs)
    classes = tuple(dict.fromkeys(c for c in extra if isinstance(c, type)))
    return _cached(catalogue_dirs(extra), classes)


def problem(problem_id: str, **params: Any) -> Problem:
    """Build a catalogue problem: ``pinnlab.problem("poisson-sine", dim=10)``."""
    if not isinstance(problem_id, str):
        raise TypeError(
            f"pinnlab.problem builds a catalogue problem from its id (a string), not from "
            f"{problem_id!r}; it is not a decorator. A problem of your own is a "
            "@dataclass(frozen=True) subclass of pinnlab.Problem: pass an instance to "
            "pinnlab.solve (docs/problems.md)."
        )
    return catalogue().problem(problem_id, **params)


def describe(entry: type[Problem]) -> dict[str, Any]:
    """What ``pinnlab problems`` shows of one entry: its parameters, dimensions, forms and
    truth, the first sentence of its docstring (``summary``) and the whole docstring
    (``doc``)."""
    doc = inspect.getdoc(entry) or ""
    return {
        "id": entry.id,
        "parameters": entry.parameters(),
        "dimensions": entry.dims,
        "forms": list(entry.forms()),
        "truth": entry.truth,
        "summary": first_sentence(doc),
        "doc": doc,
    }


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph (with the next one where it ends in
    ':', an equation), its lines joined: up to the first '.' followed by a space and a
    capital letter (or the end of the paragraph)."""
    paragraphs = doc.split("\n\n")
    paragraph = " ".join(paragraphs[0].split())
    if paragraph.endswith(":") and len(paragraphs) > 1:  # it introduces an equation
        paragraph += " " + " ".join(paragraphs[1].split())
    match = re.search(r"\.\s(?=[A-Z(])", paragraph)
    return paragraph[: match.start() + 1] if match else paragraph.rstrip(" ,;")
