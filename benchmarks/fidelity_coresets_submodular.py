"""Differential checks of ddr's gradient-based coreset selectors against DeepCore (PatrickZH/DeepCore).

Runs DeepCore's selectors end to end (``deepcore/methods/submodular.py``, ``craig.py``,
``gradmatch.py``: they train their own scoring network, then select class by class) on a tiny
fixed input, then runs ddr's plugins (``facility-location``, ``graph-cut``, ``craig``,
``gradmatch``) on the same images with DeepCore's trained network as the scoring network
(``selection_epochs=0``, the network handed to ddr through ``ctx.make_model``), and compares:

- per-sample last-layer gradients (DeepCore's ``calc_gradient`` against
  :func:`ddr_methods._coreset.gradients.last_layer_gradients`);
- the similarity matrices (``cossim_np``; CRAIG's shifted negative Euclidean distances);
- the facility-location / graph-cut gains of every candidate before each greedy step
  (``submodular_function.py``'s ``calc_gain`` against ddr's ``gains``);
- GradMatch's OMP on the same float64 gradients (``orthogonal_matching_pursuit_np``);
- the selected indices (and CRAIG's and GradMatch's weights) of the whole selector.

The input: 40 random 1×4×4 images, 4 classes of 10 in shuffled order, DeepCore's ``MLP``
(128-wide, seed 0), 3 scoring epochs (DeepCore's loop, SGD lr 0.1), 3 picks per class (DeepCore:
``fraction=0.3``). DeepCore runs with ``selection_batch=1``: its gradients are those of the batch-mean
loss, so a batch of one gives each sample's own gradient, which is what ddr computes; one more row
checks that with batches of 4 DeepCore's gradients are ddr's divided by the batch size.

DeepCore is not part of ddr: check it out anywhere and pass its folder::

    python benchmarks/fidelity_coresets_submodular.py --deepcore PATH/TO/DeepCore [--json out.json]

(or set ``DDR_DEEPCORE``; ``DDR_OFFICIAL_DEEPCORE``, which ``benchmarks/fidelity_coresets.py`` reads, is
used when it is unset). Exit status 1 when a value differs by more than ``--tol`` (relative to
the largest magnitude, default 1e-5) or any selection differs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

CLASSES, PER_CLASS, PICKS, EPOCHS, SEED = 4, 10, 3, 3, 0
FRACTION = PICKS / PER_CLASS


def _load_deepcore(folder: Path) -> tuple[ModuleType, ModuleType]:
    """DeepCore's ``deepcore.methods`` and ``deepcore.methods.methods_utils`` from a checkout."""
    if not (folder / "deepcore" / "methods" / "submodular.py").is_file():
        raise SystemExit(f"{folder} is not a DeepCore checkout (no deepcore/methods/submodular.py)")
    sys.path.insert(0, str(folder))
    try:
        methods = importlib.import_module("deepcore.methods")
        utils = importlib.import_module("deepcore.methods.methods_utils")
    finally:
        sys.path.remove(str(folder))
    return methods, utils


def _commit(folder: Path) -> str | None:
    out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def _rel(a: Any, b: Any) -> float:
    a, b = torch.as_tensor(np.asarray(a), dtype=torch.float64), torch.as_tensor(np.asarray(b), dtype=torch.float64)
    scale = max(float(a.abs().max()), float(b.abs().max()), 1e-12)
    return float((a - b).abs().max()) / scale


class _Pool(torch.utils.data.Dataset):
    """The map-style dataset DeepCore's selectors read: ``(image, label)``, ``targets``, ``classes``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels
        self.targets = labels.numpy()
        self.classes = list(range(CLASSES))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


class DeepCoreMLPView(nn.Module):
    """DeepCore's ``MLP`` seen through ddr's architecture interface: ``embed`` is its forward up to the
    embedding recorder (``relu(fc_2(relu(fc_1(x))))``), ``get_classifier`` its ``fc_3``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net: Any = net

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.net.fc_1(x.reshape(len(x), -1)))
        return torch.relu(self.net.fc_2(out))

    def get_classifier(self) -> nn.Module:
        return self.net.fc_3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.get_classifier()(self.embed(x))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    images = torch.randn(CLASSES * PER_CLASS, 1, 4, 4, generator=g)
    labels = torch.arange(CLASSES).repeat(PER_CLASS)[torch.randperm(CLASSES * PER_CLASS, generator=g)]
    return images, labels


def _args(batch: int = 1) -> SimpleNamespace:
    return SimpleNamespace(
        print_freq=10 ** 9, selection_batch=batch, workers=0, device="cpu", gpu=None, num_classes=CLASSES,
        model="MLP", channel=1, im_size=(4, 4), selection_optimizer="SGD", selection_lr=0.01,
        selection_momentum=0.9, selection_weight_decay=5e-4, selection_nesterov=True,
        selection_test_interval=0, selection_test_fraction=1.0)


def _run_deepcore(cls: Any, pool: _Pool, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    method = cls(pool, _args(), FRACTION, SEED, epochs=EPOCHS, balance=True, **kwargs)
    with contextlib.redirect_stdout(io.StringIO()):
        result = method.select()
    return method, result


def _deepcore_gradients(method: Any, index: np.ndarray, batch: int = 1) -> np.ndarray:
    """DeepCore's ``calc_gradient`` (``Submodular``'s: the gradient matrix) under its recorder."""
    method.args.selection_batch = batch
    model = method.model
    model.no_grad = True
    try:
        with model.embedding_recorder, contextlib.redirect_stdout(io.StringIO()):
            return np.asarray(method.calc_gradient(index=index))
    finally:
        model.no_grad = False
        method.args.selection_batch = 1


def _ddr_select(name: str, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                **params: Any) -> Any:
    """ddr's plugin ``name`` on the same pool, scoring with ``model`` (selection_epochs 0)."""
    from ddr.engine.data import Split
    from ddr.method.context import DistillContext
    from ddr.plugin.manager import PluginSystem

    spec = PluginSystem().methods().get(name)
    module, attr = str(spec.target).split(":")
    method = getattr(importlib.import_module(module), attr)()

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the differential check scores with DeepCore's network only")

    ctx = DistillContext(
        dataset=SimpleNamespace(pixel_space="normalized"),  # type: ignore[arg-type]
        train=Split(labels=labels, images=images), ipc=PICKS,
        num_classes=CLASSES, generator=torch.Generator().manual_seed(SEED), seed=SEED, device=torch.device("cpu"),
        params={**dict(spec.defaults), "selection_epochs": 0, "score_batch_size": 7, **params},
        arch="deepcore-mlp", make_model=lambda arch=None: DeepCoreMLPView(model), train_model=unavailable,
        augmentation=unavailable, teacher=unavailable)
    return method.distill(ctx)


def _cossim_kernel(utils: ModuleType, g: np.ndarray) -> Any:
    """``submodular.py``'s kernel: ``lambda a, b: cossim_np(gradients[a], gradients[b])``."""
    return lambda a, b: utils.cossim_np(g[a], g[b])


def _row(rows: list[dict[str, Any]], what: str, official: Any, ours: Any, *, counted: bool = True) -> None:
    a, b = np.asarray(official, dtype=np.float64), np.asarray(ours, dtype=np.float64)
    rows.append({"quantity": what, "official": float(a.flatten()[0]), "ddr": float(b.flatten()[0]),
                 "max_rel_diff": _rel(a, b), "counted": counted})


def _same(rows: list[dict[str, Any]], what: str, official: Any, ours: Any, *, counted: bool = True) -> None:
    a, b = [int(v) for v in np.asarray(official).tolist()], [int(v) for v in np.asarray(ours).tolist()]
    rows.append({"quantity": what, "official": a, "ddr": b, "equal": a == b, "counted": counted})


def compare(repo: Path, tol: float) -> dict[str, Any]:
    from ddr_methods._coreset import submodular as ours
    from ddr_methods._coreset.gradients import last_layer_gradients
    from ddr_methods._coreset.gradmatch import orthogonal_matching_pursuit

    methods, utils = _load_deepcore(repo)
    images, labels = _data()
    pool = _Pool(images, labels)
    class_index = [np.arange(len(labels))[pool.targets == c] for c in range(CLASSES)]
    rows: list[dict[str, Any]] = []
    picks: list[dict[str, Any]] = []

    def global_sorted(distilled: Any) -> list[int]:
        return [i for per_class in distilled.meta["selected_indices"] for i in sorted(per_class)]

    # -- facility location and graph cut (submodular.py), both greedy optimisers --------------------
    for function, name in (("FacilityLocation", "facility-location"), ("GraphCut", "graph-cut")):
        for greedy, greedy_name in (("LazyGreedy", "lazy"), ("NaiveGreedy", "naive")):
            method, result = _run_deepcore(methods.Submodular, pool, function=function, greedy=greedy)
            view = DeepCoreMLPView(method.model)
            distilled = _ddr_select(name, method.model, images, labels, greedy=greedy_name)
            _same(picks, f"{name} ({greedy}) indices", result["indices"], global_sorted(distilled))
            if greedy != "LazyGreedy":
                continue
            official_g = np.concatenate([_deepcore_gradients(method, idx) for idx in class_index])
            ddr_g = torch.cat([last_layer_gradients(view, images[idx], labels[idx]) for idx in class_index])
            if function == "FacilityLocation":
                _row(rows, "last-layer gradients (40x516), selection_batch 1", official_g, ddr_g)
                batched = np.concatenate([_deepcore_gradients(method, idx, batch=4) for idx in class_index])
                sizes = np.concatenate([np.repeat(np.diff(np.r_[np.arange(0, len(idx), 4), len(idx)]),
                                                  np.diff(np.r_[np.arange(0, len(idx), 4), len(idx)]))
                                        for idx in class_index])
                _row(rows, "  selection_batch 4: DeepCore x batch size", batched * sizes[:, None], ddr_g)
            worst_gain, first = 0.0, None
            sims: list[tuple[np.ndarray, np.ndarray]] = []
            for c, idx in enumerate(class_index):
                g = _deepcore_gradients(method, idx)
                sim_official = utils.cossim_np(g, g)
                sim_ddr = ours.cosine_similarity(torch.from_numpy(ddr_g[c * PER_CLASS:(c + 1) * PER_CLASS].numpy()))
                sims.append((sim_official, sim_ddr.numpy()))
                official_fn = getattr(utils, function)(index=idx, similarity_kernel=_cossim_kernel(utils, g))
                ddr_fn = ours.FacilityLocation(sim_ddr) if function == "FacilityLocation" else ours.GraphCut(sim_ddr)
                selected = np.zeros(len(idx), dtype=bool)
                ddr_picks = distilled.meta["selected_indices"][c]
                for step in range(PICKS):
                    gains_official = official_fn.calc_gain(~selected, selected)
                    gains_ddr = ddr_fn.gains(torch.arange(len(idx))[torch.from_numpy(~selected)],
                                             torch.from_numpy(selected))
                    worst_gain = max(worst_gain, _rel(gains_official, gains_ddr))
                    if first is None:
                        first = (gains_official, gains_ddr)
                    pick = int(np.nonzero(idx == ddr_picks[step])[0][0])
                    selected[pick] = True
                    official_fn.update_state(np.array([pick]), selected)
                    ddr_fn.add(pick)
            _row(rows, f"{name}: similarity 0.5+0.5cos (4 classes, 10x10)",
                 np.stack([a for a, _ in sims]), np.stack([b for _, b in sims]))
            assert first is not None
            _row(rows, f"{name}: gains of every candidate, each of 3 steps", first[0], first[1])
            rows[-1]["max_rel_diff"] = max(rows[-1]["max_rel_diff"], worst_gain)

    # -- CRAIG (craig.py) ------------------------------------------------------------------------------
    # CRAIG's facility location has exact ties: when a candidate pair covers only each other, both
    # gains are s_jj + s_ij (equal self-similarities). DeepCore computes the distances in float32 as
    # sqrt(|x|^2 + |y|^2 - 2xy), so its diagonal is rounding noise up to ~3e-3 instead of 1e-6 and
    # breaks such ties at random; ddr's float64 distances leave them exact and take the lowest index.
    # Counted: ddr's optimiser and weights on DeepCore's own similarity matrices; reported: the
    # selections of the two whole pipelines.
    for greedy, greedy_name in (("LazyGreedy", "lazy"), ("NaiveGreedy", "naive")):
        method, result = _run_deepcore(methods.Craig, pool, greedy=greedy)
        distilled = _ddr_select("craig", method.model, images, labels, greedy=greedy_name)
        _same(picks, f"craig ({greedy}) indices, whole pipelines", result["indices"], global_sorted(distilled),
              counted=False)
        view = DeepCoreMLPView(method.model)
        on_official, weights_official, sims_official, sims_ddr, sims_formula = [], [], [], [], []
        for idx in class_index:
            model = method.model
            model.no_grad = True
            with model.embedding_recorder, contextlib.redirect_stdout(io.StringIO()):
                matrix = -1.0 * method.calc_gradient(idx)
            model.no_grad = False
            matrix -= np.min(matrix) - 1e-3
            chosen = ours.greedy_maximize(ours.FacilityLocation(torch.from_numpy(matrix)), PICKS, greedy=greedy_name)
            weights = ours.craig_weights(torch.from_numpy(matrix), chosen)
            order = torch.argsort(chosen)
            on_official += idx[chosen[order].numpy()].tolist()
            weights_official += weights[order].tolist()
            ddr_g = last_layer_gradients(view, images[idx], labels[idx]).to(torch.float64)
            sims_official.append(matrix)
            sims_ddr.append(ours.craig_similarity(ddr_g).numpy())
            formula = -1.0 * utils.euclidean_dist_pair_np(ddr_g.numpy())
            sims_formula.append(formula - (np.min(formula) - 1e-3))
        _same(picks, f"craig ({greedy}) indices, ddr's greedy on DeepCore's similarity", result["indices"], on_official)
        _row(rows if greedy == "LazyGreedy" else [], "craig weights (12), ddr's on DeepCore's similarity",
             result["weights"], weights_official)
        if greedy == "LazyGreedy":
            off_diagonal = ~np.eye(PER_CLASS, dtype=bool)
            _row(rows, "craig similarity, DeepCore's formula on the same float64 gradients",
                 np.stack(sims_formula), np.stack(sims_ddr))
            _row(rows, "craig similarity off the diagonal, DeepCore's float32 run",
                 np.stack([s[off_diagonal] for s in sims_official]), np.stack([s[off_diagonal] for s in sims_ddr]))
            _row(rows, "  its diagonal (float32 cancellation in sqrt(|x|^2+|y|^2-2xy))",
                 np.stack([np.diag(s) for s in sims_official]), np.stack([np.diag(s) for s in sims_ddr]),
                 counted=False)

    # -- GradMatch (gradmatch.py) ----------------------------------------------------------------------
    method, result = _run_deepcore(methods.GradMatch, pool)
    distilled = _ddr_select("gradmatch", method.model, images, labels)
    kept = [[i for i, w in zip(per_class, weights) if w != 0]
            for per_class, weights in zip(distilled.meta["selected_indices"], distilled.meta["gradmatch_weights"])]
    _same(picks, "gradmatch indices (non-zero weights, as DeepCore keeps)", result["indices"],
          [i for per_class in kept for i in sorted(per_class)])
    ddr_weights = [w for per_class, weights in zip(distilled.meta["selected_indices"], distilled.meta["gradmatch_weights"])
                   for _, w in sorted(zip(per_class, weights)) if w != 0]
    _row(rows, "gradmatch NNLS weights (DeepCore float32 run)", result["weights"], ddr_weights)
    view = DeepCoreMLPView(method.model)
    worst, first_omp = 0.0, None
    for idx in class_index:
        grads = last_layer_gradients(view, images[idx], labels[idx]).to(torch.float64)
        A, b = grads.T.contiguous(), grads.mean(0)
        with contextlib.redirect_stdout(io.StringIO()):
            official_x = method.orthogonal_matching_pursuit_np(A.numpy(), b.numpy(), budget=PICKS)
        ddr_picks, ddr_w = orthogonal_matching_pursuit(A, b, PICKS)
        ddr_x = np.zeros(len(idx))
        ddr_x[ddr_picks.numpy()] = ddr_w.numpy()
        worst = max(worst, _rel(official_x, ddr_x))
        first_omp = first_omp or (official_x, ddr_x)
        _same(picks, f"OMP support, class {int(labels[idx[0]])} (float64 inputs)", np.nonzero(official_x)[0],
              np.sort(ddr_picks.numpy()[ddr_w.numpy() != 0]))
    assert first_omp is not None
    _row(rows, "OMP weight vectors, same float64 gradients (4 classes)", first_omp[0], first_omp[1])
    rows[-1]["max_rel_diff"] = max(rows[-1]["max_rel_diff"], worst)

    counted = [r["max_rel_diff"] for r in rows if r.get("counted", True)]
    worst_all = max(counted)
    agree = worst_all <= tol and all(p["equal"] for p in picks if p["counted"])
    return {"official": "PatrickZH/DeepCore", "commit": _commit(repo), "rows": rows, "picks": picks,
            "max_rel_diff": worst_all, "agree": agree}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DDR_DEEPCORE") or os.environ.get("DDR_OFFICIAL_DEEPCORE") or None
    parser.add_argument("--deepcore", type=Path, default=default,
                        help="a checkout of PatrickZH/DeepCore (default: $DDR_DEEPCORE, else $DDR_OFFICIAL_DEEPCORE)")
    parser.add_argument("--tol", type=float, default=1e-5, help="largest relative difference accepted")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.deepcore is None:
        parser.error("name a DeepCore checkout: --deepcore PATH or DDR_DEEPCORE=PATH")
    torch.set_num_threads(1)
    result = compare(Path(args.deepcore), args.tol)
    width = max(len(r["quantity"]) for r in result["rows"])
    print(f"{result['official']} @ {result['commit']}")
    print(f"{'quantity':<{width}}  {'official':>14}  {'ddr':>14}  max rel diff")
    for r in result["rows"]:
        note = "" if r.get("counted", True) else "  (reported, not counted)"
        print(f"{r['quantity']:<{width}}  {r['official']:>14.8g}  {r['ddr']:>14.8g}  {r['max_rel_diff']:.2e}{note}")
    for p in result["picks"]:
        print(f"{p['quantity']}: {'equal' if p['equal'] else 'DIFFER'} {p['ddr']}"
              + ("" if p["equal"] else f" (DeepCore {p['official']})")
              + ("" if p["counted"] else "  (reported, not counted)"))
    print(("agree" if result["agree"] else "DIFFER") + f" within {args.tol:g} (largest {result['max_rel_diff']:.2e})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
