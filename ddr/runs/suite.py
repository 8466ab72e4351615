"""Suites: methods × datasets × IPCs × seeds × student architectures under one protocol.

A suite is a YAML file (``benchmarks/suites/*.yaml``)::

    suite: digits                  # its name (results DB column, output folder)
    description: ...
    methods: [random, herding, dm, dsa]    # or "all": every installed method
    exclude_methods: [d4m]         # with "all"
    datasets: [digits]
    ipcs: [1, 10]
    seeds: [0, 1]                  # distillation seeds (each also the evaluation seed)
    eval_archs: [convnet, mlp]     # optional: evaluate each distilled set on these students
    protocol: digits               # optional: the methods' own by default
    num_eval: 3                    # optional protocol overrides ...
    epochs: 50
    set: {train.batch_size: 128}   # ... and any other protocol key (metric.NAME.KEY: a metric's parameter)
    metrics: [robust_pgd]          # optional: metrics reported beyond the built-in scores
    per_method:                    # per-method parameters and protocol overrides
      dm: {params: {iterations: 200}, set: {...}}
    exclude: [{method: dc, ipc: 10}]   # combinations to leave out

:func:`load_suite` checks every key (did-you-mean), every name against the registries and
every method parameter against its schema before anything runs; :meth:`Suite.units` expands
it into :class:`SuiteUnit`\\ s, one per record, each with a stable id (the hash of what it asks
for), so a resumed suite finds the records it already wrote.

Never imports torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddr.errors import ConfigError, DdrError
from ddr.protocol.bounds import check_bound
from ddr.protocol.config import Problems, schema_problems
from ddr.protocol.yaml import load_yaml_with_includes
from ddr.store.hashing import sha256_json

SUITE_FORMAT_VERSION = 1
"""Bump when the meaning of a unit (and so of its id) changes."""

SUITE_SCHEMA: dict[str, Any] = {
    "suite": str, "description": str, "methods": (str, list), "exclude_methods": list,
    "datasets": (str, list), "ipcs": (int, list), "seeds": (int, list), "eval_archs": (str, list),
    "arch": str, "protocol": str, "label_strategy": str, "loss": (str, dict), "num_eval": int, "epochs": int,
    "set": dict, "per_method": dict, "exclude": list, "ars": bool, "executor": str, "device": str,
    "metrics": (str, list),
}
PER_METHOD_SCHEMA: dict[str, Any] = {"params": dict, "set": dict, "preset": str}
EXCLUDE_KEYS = ("method", "dataset", "ipc", "seed", "arch")


@dataclass(frozen=True)
class SuiteUnit:
    """One record of a suite: one distilled set evaluated on one student architecture.

    Attributes:
        method: the method reference (``dm`` or ``dm.paper``); params: its ``--set method.KEY``
            values; dataset, ipc, seed: what is distilled and evaluated.
        eval_arch: the student architecture (``None``: the protocol's).
        overrides: protocol overrides (dotted keys), num_eval and epochs included.
        uid: the unit's id: the hash of everything above and the suite's protocol settings.
    """

    suite: str
    method: str
    params: Mapping[str, Any]
    dataset: str
    ipc: int
    seed: int
    eval_arch: str | None
    protocol: str | None
    arch: str | None
    label_strategy: str | None
    loss: Any
    ars: bool | None
    overrides: Mapping[str, Any]
    metrics: tuple[str, ...] = ()
    uid: str = ""

    @property
    def group(self) -> tuple[Any, ...]:
        """Units of one group share one distillation (everything but the student architecture)."""
        return (self.method, sha256_json(dict(self.params)), self.dataset, self.ipc, self.seed)

    @property
    def label(self) -> str:
        text = f"{self.method}-{self.dataset}-ipc{self.ipc}-seed{self.seed}"
        if self.eval_arch:
            text += f"-{self.eval_arch}"
        return text.replace("/", "_").replace(":", "_")

    def folder(self, out: Path) -> Path:
        """Where this unit's record lives: ``out/<suite>/<label>-<uid[:10]>``."""
        return Path(out) / self.suite / f"{self.label}-{self.uid[:10]}"

    def identity(self) -> dict[str, Any]:
        return {"format": SUITE_FORMAT_VERSION, "suite": self.suite, "method": self.method,
                "params": dict(self.params), "dataset": self.dataset, "ipc": self.ipc, "seed": self.seed,
                "eval_arch": self.eval_arch, "protocol": self.protocol, "arch": self.arch,
                "label_strategy": self.label_strategy, "loss": self.loss, "ars": self.ars,
                "overrides": dict(self.overrides),
                **({"metrics": list(self.metrics)} if self.metrics else {})}  # older suites keep their ids


@dataclass
class Suite:
    """A validated suite file."""

    name: str
    path: str
    description: str
    methods: list[str]
    datasets: list[str]
    ipcs: list[int]
    seeds: list[int]
    eval_archs: list[str | None]
    protocol: str | None = None
    arch: str | None = None
    label_strategy: str | None = None
    loss: Any = None
    ars: bool | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)
    exclude: list[dict[str, Any]] = field(default_factory=list)
    executor: str | None = None
    device: str | None = None
    metrics: list[str] = field(default_factory=list)

    def units(self) -> list[SuiteUnit]:
        """Every record the suite asks for, grouped by distillation (datasets, IPCs, methods,
        seeds, then student architectures)."""
        out = []
        for dataset in self.datasets:
            for ipc in self.ipcs:
                for method in self.methods:
                    base = method.split(".")[0].split("/")[-1]
                    extra = self.per_method.get(base, {})
                    params = dict(extra.get("params") or {})
                    ref = f"{method}.{extra['preset']}" if extra.get("preset") else method
                    overrides = {**self.overrides, **dict(extra.get("set") or {})}
                    for seed in self.seeds:
                        for arch in self.eval_archs:
                            unit = SuiteUnit(suite=self.name, method=ref, params=params, dataset=dataset, ipc=ipc,
                                             seed=seed, eval_arch=arch, protocol=self.protocol, arch=self.arch,
                                             label_strategy=self.label_strategy, loss=self.loss, ars=self.ars,
                                             overrides=overrides, metrics=tuple(self.metrics))
                            if self._excluded(unit, base):
                                continue
                            out.append(SuiteUnit(**{**unit.__dict__, "uid": sha256_json(unit.identity())}))
        return out

    def _excluded(self, unit: SuiteUnit, base: str) -> bool:
        values = {"method": base, "dataset": unit.dataset, "ipc": unit.ipc, "seed": unit.seed, "arch": unit.eval_arch}
        return any(all(values[k] == v for k, v in rule.items()) for rule in self.exclude)

    def summary(self) -> str:
        units = self.units()
        groups = len({u.group for u in units})
        archs = ", ".join(a or "protocol's" for a in self.eval_archs)
        return (f"suite '{self.name}': {len(self.methods)} method(s) × {len(self.datasets)} dataset(s) × "
                f"{len(self.ipcs)} IPC(s) × {len(self.seeds)} seed(s) = {groups} distillation(s); "
                f"student architectures: {archs}; {len(units)} record(s)")


def is_suite_file(data: Mapping[str, Any]) -> bool:
    """Whether a parsed YAML file is a suite (it names itself with ``suite:``)."""
    return "suite" in data


def _listed(data: Mapping[str, Any], key: str, kind: type, where: str, default: list[Any]) -> list[Any]:
    if key not in data:
        return list(default)
    value = data[key]
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(f"{where}: '{key}' is empty; give at least one value")
    for item in items:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise ConfigError(f"{where}: every entry of '{key}' must be {kind.__name__}, got {item!r}")
    if len(set(map(str, items))) != len(items):
        raise ConfigError(f"{where}: '{key}' lists a value twice: {items}")
    return list(items)


def load_suite(path: str | Path, system: Any) -> Suite:
    """Read and validate a suite file; every error names the file (and the key).

    Every problem of the file is reported at once (one :class:`ConfigError` listing them), so a
    suite with several mistakes is fixed in one edit; a later check that needs a value an earlier
    one rejected is skipped rather than reported twice.
    """
    try:
        return _load_suite(path, system)
    except DdrError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise type(exc)(f"{path}: {exc}") from None


def _load_suite(path: str | Path, system: Any) -> Suite:
    where = str(path)
    data = load_yaml_with_includes(str(path))
    problems = Problems(where)
    well_typed = {}
    for key, value in data.items():
        key_problems = schema_problems({key: value}, SUITE_SCHEMA, where)
        for message in key_problems:
            problems.add(message)
        if not key_problems:  # the checks below read only well-typed keys (each problem reported once)
            well_typed[key] = value
    data = well_typed
    name = str(data.get("suite", "")).strip()
    if not name:
        problems.add(f"{where}: a suite file needs 'suite: NAME' (its name in the results database)")
    elif any(ch in name for ch in "/\\:") or name.startswith("."):
        problems.add(f"{where}: suite name {name!r} must be usable as a folder name (no / \\ : or leading .)")
    methods: list[str] = []
    with problems.guard():
        methods = _suite_methods(data, system, where)

    def listed(key: str, kind: type, default: list[Any]) -> list[Any]:
        with problems.guard():
            return _listed(data, key, kind, where, default)
        return list(default)

    datasets = listed("datasets", str, ["digits"])
    ipcs = listed("ipcs", int, [1])
    seeds = listed("seeds", int, [0])
    eval_archs: list[str | None] = list(listed("eval_archs", str, [])) or [None]
    metrics = listed("metrics", str, [])
    for ipc in ipcs:
        if ipc < 1:
            problems.add(f"{where}: ipcs must be >= 1, got {ipc}")
        with problems.guard():
            check_bound("ipc", ipc, what=f"{where}: ipcs")
    for key in ("num_eval", "epochs"):
        if key in data and data[key] < 1:
            problems.add(f"{where}: '{key}' must be >= 1, got {data[key]}")
        with problems.guard():
            check_bound(key, data.get(key), what=f"{where}: {key}")
    runs = len(datasets) * len(ipcs) * max(len(methods), 1) * len(seeds) * len(eval_archs)
    with problems.guard():
        check_bound("suite_runs", runs, what=f"{where}: datasets x ipcs x methods x seeds x eval_archs")
    overrides: dict[str, Any] = dict(data.get("set") or {})
    bad = [key for key in overrides if not isinstance(key, str) or not key]
    if bad:
        problems.add(f"{where}: 'set' maps dotted protocol keys (train.batch_size) to values, got the key "
                     f"{bad[0]!r}")
        overrides = {k: v for k, v in overrides.items() if k not in bad}
    if "num_eval" in data:
        overrides["num_eval"] = data["num_eval"]
    if "epochs" in data:
        overrides["train.epochs"] = data["epochs"]
    per_method = _per_method(data, methods, where, problems)
    exclude = []
    for i, rule in enumerate(data.get("exclude") or []):
        if not isinstance(rule, Mapping) or not rule:
            problems.add(f"{where}: exclude[{i}] must be a mapping like {{method: dc, ipc: 10}}")
            continue
        rule_problems = schema_problems(rule, {k: (str, int) for k in EXCLUDE_KEYS}, where, f"exclude[{i}].")
        for message in rule_problems:
            problems.add(message)
        if not rule_problems:
            exclude.append(dict(rule))
    suite = Suite(name=name, path=where, description=str(data.get("description", "")), methods=methods,
                  datasets=datasets, ipcs=ipcs, seeds=seeds, eval_archs=eval_archs, protocol=data.get("protocol"),
                  arch=data.get("arch"), label_strategy=data.get("label_strategy"), loss=data.get("loss"),
                  ars=data.get("ars"), overrides=overrides, per_method=per_method, exclude=exclude,
                  executor=data.get("executor"), device=data.get("device"), metrics=metrics)
    check_names(suite, system, where, problems)
    if methods and not problems and not suite.units():
        problems.add(f"{where}: the exclude rules leave no run in the suite")
    problems.raise_all(f"{where} (suite)")
    return suite


def _suite_methods(data: Mapping[str, Any], system: Any, where: str) -> list[str]:
    """The suite's method references: its ``methods`` list, or every installed one for ``all``."""
    registry = system.methods()
    if data.get("methods", "all") == "all":
        methods = sorted(spec.name for spec in registry.list())
        excluded = _listed(data, "exclude_methods", str, where, [])
        for ref in excluded:
            registry.resolve(ref)
        methods = [m for m in methods if m not in excluded]
        if not methods:
            raise ConfigError(f"{where}: 'methods: all' with every installed method excluded leaves nothing to run")
        return methods
    if "exclude_methods" in data:
        raise ConfigError(f"{where}: 'exclude_methods' only applies to 'methods: all'")
    return _listed(data, "methods", str, where, [])


def _per_method(data: Mapping[str, Any], methods: list[str], where: str,
                problems: Problems) -> dict[str, dict[str, Any]]:
    """The ``per_method`` entries, each checked (problems collected, bad entries left out)."""
    per_method: dict[str, dict[str, Any]] = {}
    method_names = {m.split(".")[0].split("/")[-1] for m in methods}
    for method, extra in (data.get("per_method") or {}).items():
        if methods and method not in method_names:
            close = difflib.get_close_matches(str(method), sorted(method_names), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; the suite's methods: {', '.join(sorted(method_names))}"
            problems.add(f"{where}: per_method names '{method}', which the suite does not run{hint}")
            continue
        if not isinstance(extra, Mapping):
            problems.add(f"{where}: per_method.{method} must be a mapping with params/set/preset")
            continue
        entry_problems = schema_problems(extra, PER_METHOD_SCHEMA, where, f"per_method.{method}.")
        bad = [key for key in (extra.get("set") or {}) if not isinstance(key, str) or not key] \
            if isinstance(extra.get("set") or {}, Mapping) else []
        if bad:
            entry_problems.append(f"{where}: per_method.{method}.set maps dotted protocol keys to values, got the "
                                  f"key {bad[0]!r}")
        for message in entry_problems:
            problems.add(message)
        if not entry_problems:
            per_method[str(method)] = dict(extra)
    return per_method


def check_names(suite: Suite, system: Any, where: str, problems: Problems | None = None) -> None:
    """Every component the suite names exists, and every parameter fits its method's schema.

    With ``problems``, each failed check is collected there (the others still run); without,
    the first one is raised."""
    from ddr.protocol.config import default_protocol, resolve_protocol
    from ddr.protocol.yaml import dotted_to_nested
    from ddr.runs.evaluate import choose_metrics, metric_overrides

    collected = problems if problems is not None else Problems(where)

    def check(action: Any, *args: Any, context: str = "") -> Any:
        with collected.guard(context):
            return action(*args)
        return None

    for dataset in suite.datasets:
        check(system.datasets().resolve, dataset)
    for arch in [suite.arch, *suite.eval_archs]:
        if arch is not None:
            check(system.architectures().resolve, arch)
    if suite.label_strategy is not None and suite.label_strategy not in system.losses():
        check(system.label_strategies().resolve, suite.label_strategy)
    if suite.loss is not None:
        from ddr.engine.build import loss_spec

        check(lambda: loss_spec(suite.loss, system=system))
    if suite.executor is not None:
        check(system.executors().resolve, suite.executor)
    protocol_settings, metric_params = metric_overrides(dict(suite.overrides))
    check(choose_metrics, system, suite.metrics, metric_params, context="")
    for method in suite.methods:
        base = method.split(".")[0].split("/")[-1]
        extra = suite.per_method.get(base, {})
        ref = f"{method}.{extra['preset']}" if extra.get("preset") else method
        resolved = check(system.methods().resolve, ref)
        if resolved is None:
            continue
        spec = resolved.spec
        check(spec.check_params, dict(extra.get("params") or {}), context=f"per_method.{base}.params: ")
        overrides, _ = metric_overrides({**protocol_settings, **dict(extra.get("set") or {}),
                                         **dict(spec.protocol_overrides)})
        for dataset in suite.datasets:
            with collected.guard(f"{method} on {dataset}: "):
                resolve_protocol(suite.protocol or default_protocol(dataset, spec.protocol),
                                 dotted_to_nested(overrides), system, dataset=dataset)
    if problems is None:
        collected.raise_all(f"{where} (suite)")
