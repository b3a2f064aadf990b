"""A study's store: one HDF5 solution file per run, an append-only index, the study's config.

Layout of a store directory (format ``pinnlab-study``, version 1):

    study.json       format, format_version, the study config and its key
    index.jsonl      one JSON record per finished run (done or failed), appended and fsynced
    runs/<id>.h5     the run's solution file (pinnlab-solution format), written atomically

Only the driver of a study writes the store. A study killed at any moment leaves every file
whole: solution files appear by an atomic rename, and a record cut short by the kill is the
last line of the index, which reading skips. A solution file without its record (killed
between the two writes) is recovered from the file on the next open. Finished runs are never
run again; failed runs are retried when the study runs again.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import PinnlabError, SolutionFileError
from ..files import atomic_write
from .design import StudyConfig, StudyRun, factor_keys, factor_label, level_label
from .target import costs

FORMAT = "pinnlab-study"
FORMAT_VERSION = 1
#: Environment entries copied into each index record (and the DataFrame).
RECORDED = (
    "steps",
    "samples",
    "wall_time",
    "peak_memory",
    "parameters",
    "stop_reason",
    "device",
    "device_name",
)


class StoreError(PinnlabError):
    """A store directory that cannot be used for this study."""


class Store:
    """The store of one study in ``root``; create or reopen with ``open``."""

    def __init__(self, root: Path, study: StudyConfig):
        self.root = root
        self.study = study
        self.records: dict[str, dict[str, Any]] = {}

    # --- opening ---------------------------------------------------------------------
    @classmethod
    def open(
        cls, root: str | os.PathLike, study: StudyConfig, runs: Iterable[StudyRun] = ()
    ) -> Store:
        """Open the store of ``study`` in ``root``, creating it when ``root`` has none.

        A store of the same study with another grid, base or seeds is updated to this one:
        runs it holds keep counting (a run's id is the hash of its config), the others are
        kept on disk but left out of ``load``. Refuses a directory that holds a study of
        another name, or a store of a newer format. Solution files of ``runs`` that have no
        record yet are recovered.
        """
        root, runs = Path(root), list(runs)
        header = read_header(root)
        store = cls(root, study)
        if header is None:
            if root.exists() and any(p for p in root.iterdir() if not p.name.startswith(".")):
                raise StoreError(
                    f"'{root}' is not empty and holds no study store; choose an empty or new "
                    "directory for --out."
                )
        elif header["name"] != study.name:
            raise StoreError(
                f"'{root}' holds the store of another study ('{header['name']}', created "
                f"{header.get('created', '?')}); use another --out directory for "
                f"'{study.name}'."
            )
        if header is None or header["key"] != study.key():
            with atomic_write(root / "study.json") as tmp:
                tmp.write_text(
                    json.dumps(
                        {
                            "format": FORMAT,
                            "format_version": FORMAT_VERSION,
                            "name": study.name,
                            "key": study.key(),
                            "created": header["created"] if header else _now(),
                            "updated": _now(),
                            "study": study.model_dump(),
                            "runs": [r.id for r in runs] or None,
                        },
                        indent=2,
                    )
                )
        _drop_partial_line(root / "index.jsonl")
        store.records = read_index(root)
        store._recover(runs)
        return store

    def _recover(self, runs: Iterable[StudyRun]) -> None:
        from ..solution import read

        for run in runs:
            path = self.run_file(run.id)
            if path.exists() and self.records.get(run.id, {}).get("status") != "done":
                try:
                    saved = read(path, arrays=self.study.target is not None)
                except SolutionFileError:
                    path.unlink()  # cannot happen with atomic writes; never trust a bad file
                    continue
                found = None
                if self.study.target is not None:
                    found = costs(saved.history, saved.environment, self.study.target.errors)
                self.record(
                    run,
                    "done",
                    metrics=saved.metrics,
                    environment=saved.environment,
                    costs=found,
                )

    # --- paths and records -----------------------------------------------------------
    def run_file(self, run_id: str) -> Path:
        return self.root / "runs" / f"{run_id}.h5"

    def done(self, run_id: str) -> bool:
        record = self.records.get(run_id)
        return record is not None and record["status"] == "done"

    def write_solution(self, run_id: str, data: bytes) -> Path:
        path = self.run_file(run_id)
        with atomic_write(path) as tmp:
            tmp.write_bytes(data)
        return path

    def record(
        self,
        run: StudyRun,
        status: str,
        *,
        metrics: dict[str, float] | None = None,
        environment: dict[str, Any] | None = None,
        error: str | None = None,
        costs: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Append the record of a finished run to the index (one line, flushed and fsynced);
        ``costs``: in target mode, {target: {reached, steps, samples, wall_time}}."""
        environment = environment or {}
        record = {
            "id": run.id,
            "status": status,
            "seed": run.seed,
            "point": run.point,
            "problem": run.config.problem.model_dump(),
            "method": run.config.method,
            "metric": run.config.metric,
            "metrics": metrics or {},
            "environment": {k: environment[k] for k in RECORDED if k in environment},
            "error": error,
            "costs": costs,
            "finished": _now(),
        }
        line = json.dumps(record, allow_nan=True) + "\n"
        with open(self.root / "index.jsonl", "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.records[run.id] = record
        return record


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read_header(root: Path) -> dict[str, Any] | None:
    """The store's study.json, or None when ``root`` has none; refuses newer formats."""
    path = root / "study.json"
    if not path.exists():
        return None
    try:
        header = json.loads(path.read_text())
        fmt, version = header["format"], int(header["format_version"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"'{path}' is not a pinnlab study header: {e}") from None
    if fmt != FORMAT:
        raise StoreError(f"'{path}' has format '{fmt}', not '{FORMAT}'.")
    if version > FORMAT_VERSION:
        raise StoreError(
            f"the store in '{root}' was written by a newer pinnlab (store format version "
            f"{version}; this pinnlab reads up to {FORMAT_VERSION}); upgrade pinnlab to read it."
        )
    return header


def read_index(root: Path) -> dict[str, dict[str, Any]]:
    """The latest record of each run; a line cut short by a kill (the last one) is skipped."""
    path = root / "index.jsonl"
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number >= len(lines) - 1:  # the unterminated last line of a killed write
                continue
            raise StoreError(f"'{path}' line {number} is damaged: {line[:80]!r}") from None
        records[record["id"]] = record
    return records


def _drop_partial_line(path: Path) -> None:
    """Cut a record left unterminated by a kill, so that the next record starts a new line."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        with atomic_write(path) as tmp:
            tmp.write_text(text[: text.rfind("\n") + 1], encoding="utf-8")


def load(root: str | os.PathLike):
    """A study store as a pandas DataFrame: one row per finished run of the study's current
    version.

    Columns: ``id``, ``status``, ``error``, ``seed``, one column per grid factor (and, for
    joined factors, one per key), ``problem.<param>`` and ``method``, the run's ``metric`` name and ``error_value`` (that metric),
    every metric, and the recorded environment (steps, samples, wall_time, parameters, ...).
    Attributes ``df.attrs["study"]`` (the study config) and ``df.attrs["factors"]``.
    """
    import pandas as pd

    root = Path(root)
    header = read_header(root)
    if header is None:
        raise StoreError(f"'{root}' holds no study store (no study.json).")
    study = StudyConfig.model_validate(header["study"])
    current = set(header.get("runs") or ())
    rows = []
    for record in read_index(root).values():
        if current and record["id"] not in current:
            continue  # a run of an earlier version of the study
        row: dict[str, Any] = {
            "id": record["id"],
            "status": record["status"],
            "error": record["error"],
            "seed": record["seed"],
        }
        for factor, level in record["point"].items():
            keys = factor_keys(factor)
            row[factor] = factor_label(factor, level)
            if len(keys) > 1:
                row.update(zip(keys, map(level_label, level), strict=True))
        for key, value in record["problem"].items():
            row.setdefault(f"problem.{key}", value)
        row.setdefault("method", record["method"])
        row.update(record["metrics"])
        row.update(record["environment"])
        for target, cost in (record.get("costs") or {}).items():
            row.update({f"cost.{target}.{k}": v for k, v in cost.items()})
        row["metric"] = _metric_name(record)
        row["error_value"] = record["metrics"].get(row["metric"], float("nan"))
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["study"] = study.model_dump()
    df.attrs["factors"] = [*study.grid, *(study.cross or {})]
    return df


def _metric_name(record: dict[str, Any]) -> str:
    from ..metrics import default_metric

    name = record.get("metric", "auto")
    if name != "auto" or not record["metrics"]:
        return name
    return default_metric(record["metrics"])
