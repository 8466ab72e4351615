"""Leaderboards: result rows grouped into boards per (dataset, IPC), one entry per evaluated recipe.

Input rows are dicts shaped like :meth:`ddr.store.results.ResultsDB.query` returns (``method``,
``dataset``, ``ipc``, ``metrics`` with the per-student ``values`` of ``hlr``, ``ior`` and the four
accuracies; optional ``run_spec``, ``arch``, ``method_params``, ``seed``, ``distilled_sha256``,
``image_bytes``, ``soft_label_bytes``, ``distill_seconds``, ``run_id``).

What is pooled, and what never is (docs/leaderboard.md):

- An **entry** is one (method, resolved method parameters, student architecture, protocol name,
  version and every setting of its resolved config, label strategy, loss, teacher, ZCA, LR
  override) combination: the run spec minus what only identifies a replicate (seeds, the number
  of students, the device, the executor, the suite). Rows that differ in any of these are never
  pooled; labels name what differs (``dm [train.epochs=40]``).
- A **distillation** is counted by its distilled set's SHA-256 (the run id when a record has
  none): two records of one distilled set are one distillation. A student is identified by its
  evaluation seed and index, so a record evaluated twice counts its students once.

Statistics (:mod:`ddr.report.statistics`, :mod:`ddr.report.ranking`): every number carries a
mean, sample std and 95 % interval; entries are compared pairwise and grouped. DDRS (named LRS by
DD-Ranking 0.2.0, same formula) is recomputed per student for any weight ``w``.

This module imports only the standard library, numpy, scipy (lazily) and ddr's report/store/protocol
helpers; never torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from ddr.errors import ArtifactError, DdrError
from ddr.protocol.metrics import ddrs
from ddr.report.columns import Column, column, extra_columns
from ddr.report.statistics import Estimate, estimate

ACCURACIES = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any")
FORMATS = ("md", "csv", "html", "latex")
LAYOUTS = ("board", "pivot")

REPLICATE_FIELDS = frozenset({
    "seed", "distill_seed", "distill_key", "suite", "suite_unit", "source", "device", "executor", "budget", "ars",
    "method", "dataset", "ipc", "protocol_overrides", "record_dir",
})
"""Run-spec fields that identify a replicate or where it ran, not what was evaluated: rows that
differ only in these are pooled into one entry (``protocol_overrides`` is redundant with the
resolved ``protocol_config``, which is compared instead)."""
REPLICATE_PROTOCOL_FIELDS = frozenset({"num_eval", "metrics"})
"""Settings of the resolved protocol that do not change a student: how many are trained, and the
score weights (recomputed here for any ``w``)."""

ORIGIN_MARKS = {"verified": " ✓", "unverified": " (unverified)"}
"""What follows the label of an entry with imported runs (docs/leaderboard.md, "Where a row comes from")."""
ORIGIN_NOTES = {
    "verified": "✓: imported from a result bundle and reproduced here by `ddr verify`",
    "unverified": "(unverified): imported from a result bundle, not reproduced here (`ddr verify BUNDLE`; "
                  "`ddr leaderboard --verified-only` leaves such rows out)",
}


def metric_name(name: str) -> str:
    """A metric name with its registered aliases resolved (``lrs`` → ``ddrs``)."""
    from ddr.report.columns import metric_specs

    key = str(name).strip().lower()
    for spec in metric_specs():
        if key in spec.aliases:
            return str(spec.name)
    return key


def score_column() -> Column:
    """The ranking score's column (DDRS, which DD-Ranking 0.2.0 calls LRS; label and formula from
    its metric spec)."""
    return column("ddrs")


def check_w(w: Any) -> float:
    try:
        value = float(w)
    except (TypeError, ValueError):
        raise DdrError(f"w must be a number in [0, 1], got {w!r}") from None
    if not (0.0 <= value <= 1.0):
        raise DdrError(f"w must be in [0, 1] (the weight of IOR against HLR), got {w!r}")
    return value


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1; 0.0 for one value) of ``n`` values."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Stat":
        values = [float(v) for v in values if v is not None]
        n = len(values)
        if n == 0:
            return cls(None, None, 0)
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        return cls(mean, std, n)


StudentKey = tuple[str, int]
"""A student: (evaluation seed as text, student index). Students with equal keys in two entries
of one board were trained from the same initial weights and data order (ddr derives student seeds
from the evaluation seed, role and index), and share the very same random-subset student."""


@dataclass
class Distillation:
    """One distilled set of an entry and its students."""

    key: str
    seeds: set[str] = field(default_factory=set)
    students: dict[StudentKey, dict[str, float]] = field(default_factory=dict)
    reference: dict[StudentKey, float] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> str | None:
        """The evaluation seed when there is exactly one (pairing across entries needs it)."""
        return next(iter(self.seeds)) if len(self.seeds) == 1 else None

    def keyed(self, metric: str, w: float) -> dict[StudentKey, float]:
        """``metric`` per student (DDRS recomputed at ``w``), by (evaluation seed, index)."""
        if metric == "ddrs":  # recomputed at any w, by the one formula (ddr.protocol.metrics.ddrs)
            return {k: ddrs(s["hlr"], s["ior"], w) for k, s in self.students.items()}
        return {k: s[metric] for k, s in self.students.items() if s.get(metric) is not None}

    def values(self, metric: str, w: float) -> list[float]:
        """``metric``'s values: the students', or the real-data references' when they are fewer."""
        if metric == "acc_real_hard" and self.reference:
            return list(self.reference.values())
        return list(self.keyed(metric, w).values())


@dataclass
class Entry:
    """One evaluated recipe (method, parameters, architecture, protocol, labels) at one (dataset, IPC)."""

    method: str
    method_params: dict[str, Any]
    arch: str | None
    recipe: dict[str, Any] = field(default_factory=dict)
    protocol: str = ""
    budget_note: str = ""
    label: str = ""
    base_label: str = ""
    run_ids: list[str] = field(default_factory=list)
    distillations: dict[str, Distillation] = field(default_factory=dict)
    rank: int = 0
    rank_range: tuple[int, int] = (0, 0)
    group: str = ""
    ddrs: Estimate = Estimate(None, None, 0, 0, None)
    verdict: Any = None
    origins: set[str] = field(default_factory=set)
    """The origins of its runs (``local``, ``imported``, ``imported+verified``; :data:`ddr.store.results.ORIGINS`)."""
    _estimates: dict[tuple[str, float], Estimate] = field(default_factory=dict, repr=False)

    @property
    def verification(self) -> str:
        """``local`` (every run computed here), ``verified`` (imported runs among them, each reproduced
        here by ``ddr verify``) or ``unverified`` (an imported run not reproduced here)."""
        if "imported" in self.origins:
            return "unverified"
        return "verified" if "imported+verified" in self.origins else "local"

    def canonical_order(self) -> None:
        """Order distillations by (seeds, hash) and students by (seed, index), so every statistic
        — the bootstrap's draws and a mean's last bit — is the same whatever order rows came in."""
        def seed_key(seed: str) -> tuple[int, str]:
            return (0, f"{int(seed):020d}") if seed.isdigit() else (1, seed)

        def student_key(key: StudentKey) -> tuple:
            return (seed_key(key[0]), key[1])

        for d in self.distillations.values():
            d.students = dict(sorted(d.students.items(), key=lambda item: student_key(item[0])))
            d.reference = dict(sorted(d.reference.items(), key=lambda item: student_key(item[0])))
        self.distillations = dict(sorted(self.distillations.items(),
                                         key=lambda item: (sorted(seed_key(x) for x in item[1].seeds), item[0])))

    # -- counts ------------------------------------------------------------------------------
    @property
    def n_students(self) -> int:
        return sum(len(d.students) for d in self.distillations.values())

    @property
    def n_distillations(self) -> int:
        return len(self.distillations)

    # -- values ------------------------------------------------------------------------------
    def groups(self, metric: str, w: float = 0.5) -> list[list[float]]:
        """Values of ``metric`` per distillation (``groups[d]``: the students of distillation ``d``)."""
        metric = metric_name(metric)
        return [d.values(metric, w) for d in self.distillations.values()]

    def values(self, metric: str, w: float = 0.5) -> list[float]:
        return [v for g in self.groups(metric, w) for v in g]

    def estimate(self, metric: str, w: float = 0.5) -> Estimate:
        """Mean, std and 95 % interval of ``metric`` (hierarchical over distillations when several)."""
        metric = metric_name(metric)
        key = (metric, w if metric == "ddrs" else -1.0)
        if key not in self._estimates:
            self._estimates[key] = estimate(self.groups(metric, w))
        return self._estimates[key]

    @property
    def hlr(self) -> Estimate:
        return self.estimate("hlr")

    @property
    def ior(self) -> Estimate:
        return self.estimate("ior")

    def acc(self, name: str) -> Estimate:
        return self.estimate(name)

    @property
    def hlr_values(self) -> list[float]:
        return self.values("hlr")

    @property
    def ior_values(self) -> list[float]:
        return self.values("ior")

    @property
    def acc_values(self) -> dict[str, list[float]]:
        return {name: self.values(name) for name in ACCURACIES}

    def ddrs_at(self, w: float) -> Estimate:
        return self.estimate("ddrs", w)

    def metric_keys(self) -> set[str]:
        """The per-student quantities its students carry (accuracies, HLR, IOR, reported metrics)."""
        return {k for d in self.distillations.values() for s in d.students.values() for k in s}

    # -- cost ---------------------------------------------------------------------------------
    def cost(self, key: str) -> float | None:
        """Mean over distillations of one cost field (None when no distillation recorded it)."""
        values = [float(d.cost[key]) for d in self.distillations.values() if d.cost.get(key) is not None]
        return math.fsum(values) / len(values) if values else None

    @property
    def storage_bytes(self) -> int | None:
        values = [int(d.cost["storage_total"]) for d in self.distillations.values()
                  if d.cost.get("storage_total") is not None]
        return max(values) if values else None

    @property
    def distill_time(self) -> float | None:
        return self.cost("distill_wall_seconds")


@dataclass
class Board:
    """The entries of one (dataset, IPC), ranked, with their comparisons (:mod:`ddr.report.ranking`)."""

    dataset: str
    ipc: int
    w: float
    entries: list[Entry]
    analysis: Any = None
    coresets: dict[str, Any] | None = None
    """IOC of each distillation entry against the cell's best coreset, by label
    (:func:`ddr.report.coresets.coreset_gaps`, over every entry, also those ``family`` hides)."""

    @property
    def title(self) -> str:
        return f"{self.dataset}, IPC {self.ipc}"

    @property
    def protocols(self) -> dict[str, list[str]]:
        """Each protocol (name, version and overrides) and the entries evaluated under it."""
        out: dict[str, list[str]] = {}
        for e in self.entries:
            out.setdefault(e.protocol, []).append(e.label)
        return out

    @property
    def mixed(self) -> bool:
        return len(self.protocols) > 1

    @property
    def note(self) -> str:
        """What the spread covers, and what the reader must know before comparing rows."""
        multi = [e for e in self.entries if e.n_distillations > 1]
        single = [e for e in self.entries if e.n_distillations <= 1]
        parts = []
        if multi:
            names = ", ".join(f"{e.label} ({e.n_distillations} distillations)" for e in multi)
            parts.append(f"± and intervals cover distillation seeds × students (hierarchical bootstrap) for {names}")
        if single:
            who = "every method" if not multi else ", ".join(e.label for e in single)
            parts.append(f"± and intervals cover students only (one distillation; distillation-seed variance not "
                         f"included) for {who}")
        archs = sorted({e.arch for e in self.entries if e.arch})
        if len(archs) > 1:
            parts.append(f"several student architectures ({', '.join(archs)}): an entry's scores use its own "
                         f"architecture's real-data and random-subset students")
        if self.mixed:
            listing = "; ".join(f"{p}: {', '.join(labels)}" for p, labels in self.protocols.items())
            parts.append(f"WARNING: mixed protocols ({listing}); scores across them are not comparable")
        reduced = [e for e in self.entries if e.budget_note]
        if reduced:
            parts.append("reduced budget: " + "; ".join(f"{e.label} ({e.budget_note})" for e in reduced))
        marked = sorted({e.verification for e in self.entries} - {"local"})
        if marked:
            parts.append("; ".join(ORIGIN_NOTES[m] for m in marked))
        return "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------
# rows → entries

def _summary_values(row: Mapping[str, Any], key: str, where: str) -> list[float]:
    metrics = row.get("metrics")
    if not isinstance(metrics, Mapping):
        raise ArtifactError(f"{where} has no 'metrics' object")
    summary = metrics.get(key)
    if not isinstance(summary, Mapping) or "values" not in summary:
        raise ArtifactError(f"{where}: metrics has no '{key}.values' (per-student values)")
    values = summary["values"]
    if not isinstance(values, list) or not values:
        raise ArtifactError(f"{where}: metrics '{key}.values' must be a non-empty list")
    return [float(v) for v in values]


def _where(row: Mapping[str, Any]) -> str:
    return f"run {row.get('run_id') or row.get('record_dir') or '?'}"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def recipe_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """What an entry is: the run spec without :data:`REPLICATE_FIELDS` (and the resolved protocol
    without :data:`REPLICATE_PROTOCOL_FIELDS`), plus method parameters, architecture and protocol."""
    spec = row.get("run_spec") if isinstance(row.get("run_spec"), Mapping) else {}
    recipe = {k: v for k, v in dict(spec or {}).items() if k not in REPLICATE_FIELDS}
    config = recipe.get("protocol_config")
    if isinstance(config, Mapping):
        recipe["protocol_config"] = {k: v for k, v in config.items() if k not in REPLICATE_PROTOCOL_FIELDS}
    recipe["method_params"] = row.get("method_params") or recipe.get("method_params") or {}
    recipe["arch"] = row.get("eval_arch") or row.get("arch") or recipe.get("arch")
    recipe["protocol"] = row.get("protocol") or recipe.get("protocol")
    recipe["protocol_version"] = None if (row.get("protocol_version") or recipe.get("protocol_version")) is None \
        else str(row.get("protocol_version") or recipe.get("protocol_version"))
    return recipe


def _overrides(row: Mapping[str, Any]) -> dict[str, Any]:
    spec = row.get("run_spec") if isinstance(row.get("run_spec"), Mapping) else {}
    overrides = dict((spec or {}).get("protocol_overrides") or {})
    return {k: v for k, v in overrides.items() if k.split(".")[0] not in REPLICATE_PROTOCOL_FIELDS}


def protocol_label(row: Mapping[str, Any]) -> str:
    """``digits v1`` or ``digits v1 + train.epochs=100`` (every override but the student count)."""
    text = f"{row.get('protocol') or '?'} v{row.get('protocol_version') or '?'}"
    overrides = _overrides(row)
    if overrides:
        text += " + " + ", ".join(f"{k}={_json(v)}" for k, v in sorted(overrides.items()))
    return text


@lru_cache(maxsize=64)
def _protocol_epochs(name: str) -> int | None:
    """The student epochs of protocol ``name`` as shipped (None when it cannot be resolved here)."""
    try:
        from ddr.protocol.config import resolve_protocol

        epochs = resolve_protocol(name).train.epochs
        return None if epochs is None else int(epochs)
    except Exception:  # noqa: BLE001 - a protocol that cannot be resolved here only loses the comparison
        return None


def budget_note(row: Mapping[str, Any]) -> str:
    """``train.epochs 100 < 300`` when the run trained students for fewer epochs than its protocol
    says; ``train.epochs=100 (override)`` when the protocol's own value is unknown here."""
    overrides = _overrides(row)
    value = overrides.get("train.epochs", overrides.get("epochs"))
    if value is None:
        return ""
    base = _protocol_epochs(str(row.get("protocol"))) if row.get("protocol") else None
    if base is None:
        return f"train.epochs={value} (override)"
    return f"train.epochs {value} < {base}" if int(value) < base else ""


def _cost(row: Mapping[str, Any]) -> dict[str, Any]:
    """A run's cost fields (metrics.json ``cost``, or the older top-level fields)."""
    metrics = row.get("metrics") if isinstance(row.get("metrics"), Mapping) else {}
    cost = dict((metrics or {}).get("cost") or {})
    out = {k: v for k, v in cost.items() if not isinstance(v, Mapping)}
    storage = cost.get("storage_bytes")
    if isinstance(storage, Mapping) and storage.get("total") is not None:
        out["storage_total"] = storage["total"]
        for key, value in storage.items():
            out[f"storage_{key}"] = value
    out.setdefault("distill_wall_seconds", row.get("distill_seconds"))
    out.setdefault("eval_wall_seconds", row.get("eval_seconds"))
    out.setdefault("distill_peak_memory_bytes", (metrics or {}).get("distill_peak_memory_bytes"))
    if out.get("storage_total") is None and row.get("image_bytes") is not None:
        out["storage_total"] = int(row["image_bytes"]) + int(row.get("soft_label_bytes") or 0)
    return out


def _add_row(entry: Entry, row: Mapping[str, Any], where: str) -> None:
    hlrs = _summary_values(row, "hlr", where)
    iors = _summary_values(row, "ior", where)
    if len(hlrs) != len(iors):
        raise ArtifactError(f"{where}: {len(hlrs)} HLR values but {len(iors)} IOR values (one per student)")
    accs = {name: _summary_values(row, name, where) for name in ACCURACIES}
    run_id = str(row.get("run_id") or "")
    key = str(row.get("distilled_sha256") or run_id or f"row{len(entry.distillations)}")
    dist = entry.distillations.setdefault(key, Distillation(key))
    seed = str(row.get("seed"))
    dist.seeds.add(seed)
    entry.run_ids.append(run_id)
    entry.origins.add(str(row.get("origin") or "local"))
    metrics = row.get("metrics") if isinstance(row.get("metrics"), Mapping) else {}
    extras = {c.key: _summary_values(row, c.key, where) for c in extra_columns(metrics or {})}
    for index, (h, i) in enumerate(zip(hlrs, iors)):
        student = dist.students.setdefault((seed, index), {"hlr": h, "ior": i})
        for name, values in (*accs.items(), *extras.items()):
            if len(values) == len(hlrs):
                student.setdefault(name, values[index])
    real = accs["acc_real_hard"]
    if len(real) != len(hlrs):
        for index, value in enumerate(real):
            dist.reference.setdefault((seed, index), value)
    if not dist.cost:
        dist.cost = _cost(row)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k in sorted(value):
            out.update(_flat(value[k], f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _display_key(key: str) -> str:
    for prefix, short in (("method_params.", ""), ("protocol_config.", "")):
        if key.startswith(prefix):
            return short + key[len(prefix):]
    return key


def _labels(entries: list[Entry]) -> None:
    """``method``, or ``method [k=v ...]`` naming the recipe settings that differ between entries of
    the same method; `` @arch`` when one method appears with several architectures (over all boards)."""
    by_method: dict[str, list[Entry]] = {}
    for entry in entries:
        by_method.setdefault(entry.method, []).append(entry)
    for method, group in by_method.items():
        archs = {e.arch for e in group}
        flats = [_flat({k: v for k, v in e.recipe.items() if k != "arch"}) for e in group]
        # the architecture is named by `@arch`; its parameters follow from it
        skip = ("arch_params", "protocol_config.student") if len(archs) > 1 else ()
        keys = sorted({k for f in flats for k in f if not (skip and k.startswith(skip))})
        differing = [k for k in keys if len({_json(f.get(k)) for f in flats}) > 1]
        for entry, flat in zip(group, flats):
            label = method
            if differing:
                label += " [" + ", ".join(f"{_display_key(k)}={_json(flat.get(k))}" for k in differing) + "]"
            entry.base_label = label
            if len(archs) > 1:
                label += f" @{entry.arch}"
            entry.label = label


def rank_entries(entries: list[Entry], w: float) -> list[Entry]:
    """Sort by mean DDRS(w) (desc), then HLR mean (asc), then label; equal means share a rank.
    The statistical rank range and tie group come from :func:`ddr.report.ranking.analyse`."""
    for entry in entries:
        entry.ddrs = entry.ddrs_at(w)

    def key(e: Entry) -> tuple:
        d = e.ddrs.mean if e.ddrs.mean is not None else -math.inf
        h = e.hlr.mean if e.hlr.mean is not None else math.inf
        return (-d, h, e.label)

    entries.sort(key=key)
    previous, rank = None, 0
    for position, entry in enumerate(entries, start=1):
        if entry.ddrs.mean != previous:
            rank, previous = position, entry.ddrs.mean
        entry.rank = rank
    return entries


def build_leaderboard(rows: Iterable[Mapping[str, Any]], w: float = 0.5, *, analyse: bool = True,
                      family: str = "all") -> list[Board]:
    """Group ``rows`` per (dataset, IPC) and recipe (never pooling what differs), rank by DDRS(w),
    and (``analyse``) compare the entries of each board (:func:`ddr.report.ranking.analyse`) and
    each distillation entry with the cell's best coreset (:mod:`ddr.report.coresets`).

    ``family``: ``all``, or only the ``distillation`` or ``selection`` methods' entries (ranked
    among themselves; IOC still uses the cell's selection entries)."""
    from ddr.report.coresets import FAMILIES, coreset_gaps, keep_family

    if family not in FAMILIES:
        raise DdrError(f"unknown method family '{family}'; choose one of {', '.join(FAMILIES)}")
    w = check_w(w)
    groups: dict[tuple[str, int], dict[str, Entry]] = {}
    for row in rows:
        where = _where(row)
        for key in ("method", "dataset", "ipc"):
            if row.get(key) is None:
                raise ArtifactError(f"{where} has no '{key}'")
        recipe = recipe_of(row)
        board = groups.setdefault((str(row["dataset"]), int(row["ipc"])), {})
        entry_key = _json([row["method"], recipe])
        if entry_key not in board:
            board[entry_key] = Entry(method=str(row["method"]), method_params=dict(recipe["method_params"]),
                                     arch=recipe["arch"], recipe=recipe, protocol=protocol_label(row),
                                     budget_note=budget_note(row))
        _add_row(board[entry_key], row, where)
    for entries in groups.values():
        for entry in entries.values():
            entry.canonical_order()
    # one labelling over every board, so a method variant has the same name at every (dataset, IPC)
    _labels([e for entries in groups.values() for e in entries.values()])
    for entries in groups.values():  # imported rows carry their verification in their label, in every format
        for entry in entries.values():
            entry.label += ORIGIN_MARKS.get(entry.verification, "")
    boards = []
    for (dataset, ipc), entries in sorted(groups.items()):
        gaps = coreset_gaps(list(entries.values()), w) if analyse else None
        shown = keep_family(entries.values(), family)
        if shown:
            boards.append(Board(dataset, ipc, w, rank_entries(shown, w), coresets=gaps))
    if analyse:
        from ddr.report.ranking import analyse as analyse_board

        for made in boards:
            made.analysis = analyse_board(made)
    return boards


def check_protocols(boards: Sequence[Board], mixed: bool) -> None:
    """Refuse boards that rank entries of different protocol names or versions, unless ``mixed``."""
    if mixed:
        return
    for board in boards:
        names = {p.split(" + ")[0] for p in board.protocols}
        if len(names) > 1:
            listing = "; ".join(f"{p}: {', '.join(labels)}" for p, labels in board.protocols.items())
            raise DdrError(f"{board.title} mixes protocols ({listing}); their scores are not comparable. "
                           f"Select one with --where protocol=NAME, or pass --mixed to rank them anyway "
                           f"(the board then says so)")


def provenance(generated: str | None = None) -> str:
    """``ddr 0.1.0 · generated 2026-12-07`` (UTC date)."""
    from ddr import __version__

    when = generated or datetime.now(timezone.utc).date().isoformat()
    return f"ddr {__version__} · generated {when}"


def render(rows: Iterable[Mapping[str, Any]], fmt: str = "md", w: float = 0.5, *, mixed: bool = False,
           generated: str | None = None, layout: str = "board", metric: str = "ddrs", uncertainty: str = "pm",
           standalone: bool = False, reported: bool = False, family: str = "all") -> str:
    """The leaderboard of ``rows`` in ``fmt`` (``md``, ``csv``, ``html`` or ``latex``).

    ``reported``: each board also sets the methods' published accuracies beside ddr's measurement
    of the same cell, with measured − reported in points (:mod:`ddr.report.reported`); they are
    never ranked. Boards only: with ``layout="pivot"`` it is a :class:`DdrError`.

    ``layout="pivot"``: one table of ``metric`` (methods × (dataset, IPC); :mod:`ddr.report.pivot`)
    instead of one board per (dataset, IPC). ``uncertainty`` (``pm``: mean ± std, ``ci``: mean [95 %
    interval]) and ``standalone`` (a complete LaTeX document) apply to the LaTeX and pivot tables.

    ``family``: ``all`` boards, or only the ``distillation`` or the ``selection`` (coreset) methods;
    distillation entries are compared with the cell's best coreset either way (IOC)."""
    if fmt not in FORMATS:
        raise DdrError(f"unknown leaderboard format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if layout not in LAYOUTS:
        raise DdrError(f"unknown leaderboard layout '{layout}'; choose one of {', '.join(LAYOUTS)}")
    from ddr.report.leaderboard_latex import check_uncertainty

    check_uncertainty(uncertainty)
    if reported and layout != "board":
        raise DdrError("--reported sets published numbers beside each board's entries; use it with --layout board "
                       "(the default), not --layout pivot")
    boards = build_leaderboard(rows, w, analyse=layout == "board", family=family)
    check_protocols(boards, mixed)
    if layout == "pivot":
        from ddr.report.pivot import render_pivot

        return render_pivot(boards, fmt, metric, uncertainty, generated, standalone=standalone)
    if fmt == "latex":
        from ddr.report.leaderboard_latex import to_latex

        return to_latex(boards, uncertainty, generated, standalone=standalone, reported=reported)
    if fmt == "html":
        from ddr.report.leaderboard_html import to_html

        return to_html(boards, generated=generated, reported=reported)
    from ddr.report.leaderboard_text import to_csv, to_markdown

    return (to_markdown if fmt == "md" else to_csv)(boards, generated=generated, reported=reported)
