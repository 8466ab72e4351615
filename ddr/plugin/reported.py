"""Published accuracies as data: a method package ships ``reported.yaml`` beside its code and its
spec reads it with :func:`load_reported` (``reported=load_reported(__name__)``).

Every number is a test accuracy as a **fraction** in [0, 1] (papers print percent: 48.9 % is
``0.489``) and carries where it is printed: the publication (``paper``), the table (``table``),
the architecture the students were evaluated with (``arch``) and what they trained on
(``label_type``: ``hard`` or ``soft``), plus a ``note`` where a reader needs one. A cell no table
gives is absent. A file reads::

    method: dm
    reported:
      - paper: Guo et al., ICLR 2024 (DATM)
        table: Table 1
        arch: ConvNet-3
        label_type: hard
        note: DM's numbers as DATM reprints them
        numbers:
          cifar10/ipc1: 0.260
          cifar10/ipc10: 0.489

The built-in methods' files are ``ddr_methods/<method>/reported.yaml``; a third-party plugin may
ship the same file (declared as package data) or give :class:`ddr.ReportedNumber` records to its
``MethodSpec(reported=...)`` directly. PyYAML is imported only when a file is read; never torch.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from typing import Any

from ddr.errors import InvalidSpecError
from ddr.plugin.specs import REPORTED_KEY_RE, ReportedNumber, reported_number

FILENAME = "reported.yaml"
GROUP_FIELDS = frozenset({"paper", "table", "arch", "label_type", "note", "numbers"})
REQUIRED_GROUP_FIELDS = ("paper", "table", "arch", "label_type", "numbers")


def parse_reported(data: Any, where: str, method: str | None = None) -> dict[str, ReportedNumber]:
    """The numbers of one parsed file, by ``"<dataset>/ipc<k>"``; an :class:`InvalidSpecError`
    naming ``where`` and what to fix for anything else (an unknown key, a missing source field, a
    number outside [0, 1], a cell given twice, another method's file when ``method`` is given)."""
    if not isinstance(data, Mapping) or set(data) != {"method", "reported"}:
        raise InvalidSpecError(f"{where}: a reported-numbers file is a mapping with exactly 'method' (the method "
                               f"name) and 'reported' (a list of groups)")
    name = data["method"]
    if not isinstance(name, str) or not name:
        raise InvalidSpecError(f"{where}: 'method' must be the method's name, got {name!r}")
    if method is not None and name != method:
        raise InvalidSpecError(f"{where}: the file is method '{name}''s, not '{method}''s")
    groups = data["reported"]
    if not isinstance(groups, list) or not groups:
        raise InvalidSpecError(f"{where}: 'reported' must be a non-empty list of groups "
                               f"(paper, table, arch, label_type, note, numbers)")
    out: dict[str, ReportedNumber] = {}
    for k, group in enumerate(groups):
        at = f"{where}: reported[{k}]"
        if not isinstance(group, Mapping):
            raise InvalidSpecError(f"{at} must be a mapping (paper, table, arch, label_type, note, numbers)")
        unknown = sorted(map(str, set(group) - GROUP_FIELDS))
        if unknown:
            raise InvalidSpecError(f"{at}: unknown key(s) {', '.join(unknown)}; "
                                   f"a group has {', '.join(sorted(GROUP_FIELDS))}")
        missing = [f for f in REQUIRED_GROUP_FIELDS if not group.get(f)]
        if missing:
            raise InvalidSpecError(f"{at}: give {', '.join(missing)} (every number says where it is printed)")
        numbers = group["numbers"]
        if not isinstance(numbers, Mapping):
            raise InvalidSpecError(f"{at}: 'numbers' must map 'cifar10/ipc10' to a fraction")
        fields = {f: group[f] for f in ("paper", "table", "arch", "label_type") if f in group}
        fields["note"] = str(group.get("note") or "")
        for key, value in numbers.items():
            if not isinstance(key, str) or not REPORTED_KEY_RE.match(key):
                raise InvalidSpecError(f"{at}: key {key!r} must look like 'cifar10/ipc10'")
            if key in out:
                raise InvalidSpecError(f"{at}: {key} is given twice; keep the one its source prints")
            out[key] = reported_number({**fields, "value": value}, f"{at}, {key}")
    return out


def load_reported(package: str, resource: str = FILENAME) -> dict[str, ReportedNumber]:
    """The numbers in ``resource`` (default ``reported.yaml``) of ``package`` (a method package's
    ``__name__``); the file's ``method`` must be the package's last name part. Errors name the file."""
    import yaml

    where = f"{package.replace('.', '/')}/{resource}"
    try:
        text = importlib.resources.files(package).joinpath(resource).read_text(encoding="utf-8")
    except (OSError, ModuleNotFoundError) as exc:
        raise InvalidSpecError(f"{where}: cannot read the reported numbers ({exc}); ship the file as package data "
                               f"([tool.setuptools.package-data] in pyproject.toml)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidSpecError(f"{where}: invalid YAML: {exc}") from None
    return parse_reported(data, where, package.rsplit(".", 1)[-1])
