"""Differential checks of ddr's coreset selectors against the reference code: DeepCore (Uncertainty,
Forgetting, GraNd), CCS (training-dynamics scores, EL2N, pruning + stratified sampling) and
Moderate-DS (median distance and the middle window).

Runs the reference implementation and ddr's on the same tiny fixed input on the CPU, one thread:
40 random 1x4x4 images of 4 classes (10 each; CCS: 100 images, 25 each), DeepCore's two-layer
``MLP`` (``deepcore/nets/mlp.py``, 128 hidden units) with the same seeded initial weights on both
sides, and prints, per selector, the largest absolute difference of the scores and whether the
chosen indices are equal:

- with ``--deepcore``: DeepCore's ``Uncertainty`` (least confidence, entropy, margin),
  ``Forgetting`` and ``GraNd`` (``deepcore/methods/*.py``, ``balance=True``) each run their own
  ``EarlyTrain`` (SGD 0.1, Nesterov momentum 0.9, weight decay 5e-4, batch 16, constant LR); the
  script records the initial weights and the batches DeepCore drew (numpy's permutations) and
  replays them through ddr's ``train_scoring_model`` (``ddr_methods._coreset.scoring``), then scores
  and selects with ddr's functions. GraNd's reference norms are multiplied back by the size of
  their scoring batch (DeepCore's loss is mean-reduced; see docs/fidelity.md). EL2N (DeepCore has
  none) is checked with ``--ccs``;
- with ``--ccs``: ``generate_importance_score.py``'s ``training_dynamics_metrics`` and ``EL2N``
  (loaded from the file without running it: it parses arguments and loads CIFAR at import) on the
  training log of a network trained by ddr's loop, logged as CCS's ``Trainer`` logs it, against
  ddr's ``TrainingDynamics``; EL2N of ``repeat`` networks (the reference: ``EL2N`` fed one log entry
  per network, divided by ``repeat``) against ddr's ``el2n_scores``; per class,
  ``CoresetSelection.mislabel_mask`` + ``stratified_sampling`` (``core/data/Coreset.py``) against
  ddr's ``ccs_select`` with the same global generator state;
- with ``--moderate``: ``selection.py``'s ``get_median``/``get_distance``/``get_prune_idx`` (loaded
  from the file: it imports the training code at module level) against ddr's ``median_distances``
  and ``moderate_window`` on the same features, class by class.

The reference code is not part of ddr: check it out anywhere and pass its folder (or set
``DDR_OFFICIAL_DEEPCORE``, ``DDR_OFFICIAL_CCS``, ``DDR_OFFICIAL_MODERATE``)::

    python benchmarks/fidelity_coresets.py --deepcore PATH/TO/DeepCore --ccs PATH/TO/Coverage-centric-coreset-selection \
        --moderate PATH/TO/Moderate-DS [--json out.json]

Exit status 1 when a counted score differs by more than ``--tol`` (absolute, default 1e-5) or counted
indices differ. Rows marked "deviation" are reported, not counted.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib
import io
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_CLASSES, PER_CLASS, SIDE = 4, 10, 4
SELECTION_BATCH = 16
ENV = {"deepcore": "DDR_OFFICIAL_DEEPCORE", "ccs": "DDR_OFFICIAL_CCS", "moderate": "DDR_OFFICIAL_MODERATE"}


def _quiet() -> contextlib.redirect_stdout[io.StringIO]:
    """The reference code prints progress on every batch; keep it off the report."""
    return contextlib.redirect_stdout(io.StringIO())


def _commit(folder: Path) -> str | None:
    out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def tiny_data(per_class: int = PER_CLASS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class * 4`` images ``[n, 1, 4, 4]`` (class means apart, noise) and int64 labels, class-interleaved."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_CLASSES).repeat(per_class)
    centres = torch.randn(N_CLASSES, 1, SIDE, SIDE, generator=g)
    images = centres[labels] + 1.5 * torch.randn(len(labels), 1, SIDE, SIDE, generator=g)
    return images, labels


class MLP(nn.Module):
    """DeepCore's ``MLP`` layout (``fc_1``, ``fc_2``, ``fc_3``; ReLU) with ddr's ``embed``/``get_classifier``."""

    def __init__(self, inputs: int = SIDE * SIDE, classes: int = N_CLASSES) -> None:
        super().__init__()
        self.fc_1, self.fc_2, self.fc_3 = nn.Linear(inputs, 128), nn.Linear(128, 128), nn.Linear(128, classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc_2(F.relu(self.fc_1(x.view(x.size(0), -1)))))

    def get_classifier(self) -> nn.Module:
        return self.fc_3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_3(self.embed(x))


def _row(rows: list[dict[str, Any]], selector: str, quantity: str, reference: Any, ours: Any, *,
         counted: bool = True, indices: bool | None = None) -> None:
    ref = torch.as_tensor(np.asarray(reference, dtype=np.float64))
    mine = torch.as_tensor(np.asarray(ours, dtype=np.float64))
    if ref.shape != mine.shape:
        diff = float("inf")
    else:
        finite = torch.isfinite(ref) & torch.isfinite(mine)
        same_inf = bool(torch.equal(ref[~finite], mine[~finite])) if bool((~finite).any()) else True
        diff = float((ref[finite] - mine[finite]).abs().max()) if bool(finite.any()) else 0.0
        if not same_inf:
            diff = float("inf")
    rows.append({"selector": selector, "quantity": quantity, "reference": float(ref.flatten()[0]),
                 "ddr": float(mine.flatten()[0]), "max_abs_diff": diff, "indices_equal": indices,
                 "counted": counted})


def _finish(name: str, folder: Path, rows: list[dict[str, Any]], tol: float) -> dict[str, Any]:
    counted = [r for r in rows if r["counted"]]
    worst = max((r["max_abs_diff"] for r in counted), default=0.0)
    indices_ok = all(r["indices_equal"] is not False for r in counted)
    return {"reference": name, "commit": _commit(folder), "rows": rows, "max_abs_diff": worst, "tolerance": tol,
            "agree": worst <= tol and indices_ok}


# -- DeepCore: Uncertainty, Forgetting, GraNd ------------------------------------------------------------------

class _Dataset(torch.utils.data.Dataset):
    """What DeepCore's selectors read of a torchvision dataset: ``classes``, tensor ``targets``, items."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.targets = images, labels
        self.classes = [str(c) for c in range(N_CLASSES)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.targets[i]


def _import_deepcore(folder: Path) -> Any:
    if not (folder / "deepcore" / "methods" / "earlytrain.py").is_file():
        raise SystemExit(f"{folder} is not a DeepCore checkout (no deepcore/methods/earlytrain.py)")
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("deepcore.methods")
    finally:
        sys.path.remove(str(folder))


def _deepcore_args(lr: float) -> argparse.Namespace:
    return argparse.Namespace(
        selection_batch=SELECTION_BATCH, workers=0, device="cpu", print_freq=10_000, model="MLP", channel=1,
        im_size=(SIDE, SIDE), num_classes=N_CLASSES, selection_optimizer="SGD", selection_lr=lr,
        selection_momentum=0.9, selection_weight_decay=5e-4, selection_nesterov=True, selection_test_interval=0,
        gpu=None)


class _Recorder:
    """Wraps a DeepCore selector: the initial weights of each run and the batches of each epoch."""

    def __init__(self, method: Any) -> None:
        self.inits: list[dict[str, torch.Tensor]] = []
        self.batches: list[dict[int, list[list[int]]]] = []
        before_run, after_loss = method.before_run, method.after_loss

        def recording_before_run() -> None:
            before_run()
            self.inits.append(copy.deepcopy(method.model.state_dict()))
            self.batches.append({})

        def recording_after_loss(outputs: Any, loss: Any, targets: Any, batch_inds: Any, epoch: int) -> None:
            self.batches[-1].setdefault(epoch, []).append([int(i) for i in batch_inds])
            after_loss(outputs, loss, targets, batch_inds, epoch)

        method.before_run, method.after_loss = recording_before_run, recording_after_loss

    def replay(self, run: int, images: torch.Tensor, labels: torch.Tensor, lr: float, epochs: int,
               on_batch: Any = None) -> MLP:
        """ddr's scoring loop from run ``run``'s initial weights over its recorded batches."""
        from ddr.method import Split
        from ddr_methods._coreset import ScoringRecipe
        from ddr_methods._coreset.scoring import train_scoring_model

        model = MLP()
        model.load_state_dict(self.inits[run], strict=True)
        batches = self.batches[run]

        def order(epoch: int) -> Iterator[torch.Tensor]:
            for b in batches[epoch]:
                yield torch.tensor(b)

        recipe = ScoringRecipe(epochs=epochs, lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True,
                               batch_size=SELECTION_BATCH)
        return train_scoring_model(model, Split(labels=labels, images=images), recipe, generator=torch.Generator(),
                                   on_batch=on_batch, order=order)


def _class_positions(labels: torch.Tensor) -> list[torch.Tensor]:
    return [torch.nonzero(labels == c).flatten() for c in range(N_CLASSES)]


def _same_up_to_ties(reference: np.ndarray, ours: np.ndarray, scores: np.ndarray) -> bool:
    """Both picks keep the same scores and the same samples above the last kept score."""
    if sorted(scores[reference].tolist()) != sorted(scores[ours].tolist()):
        return False
    edge = min(scores[reference].min(), scores[ours].min())
    return {int(i) for i in reference if scores[i] > edge} == {int(i) for i in ours if scores[i] > edge}


def compare_deepcore(folder: Path, tol: float) -> dict[str, Any]:
    from ddr.method import Split
    from ddr_methods._coreset.scoring import ForgettingTracker, class_balanced_picks, grand_scores, logits_over
    from ddr_methods.uncertainty.method import uncertainty_scores

    methods = _import_deepcore(folder)
    images, labels = tiny_data()
    data = _Dataset(images, labels)
    split = Split(labels=labels, images=images)
    pools = _class_positions(labels)
    fraction, seed = 0.3, 3
    budget = [round(fraction * len(p)) for p in pools]  # DeepCore's per-class budget
    rows: list[dict[str, Any]] = []

    # Uncertainty: DeepCore's score strings and ddr's
    for name, ours_name in (("LeastConfidence", "least_confidence"), ("Entropy", "entropy"), ("Margin", "margin")):
        lr, epochs = 0.1, 3
        method = methods.Uncertainty(data, _deepcore_args(lr), fraction, seed, epochs=epochs, selection_method=name,
                                     balance=True)
        recorder = _Recorder(method)
        with _quiet():
            result = method.select()
        model = recorder.replay(0, images, labels, lr, epochs)
        scores = uncertainty_scores(logits_over(model, split), ours_name)
        picks = class_balanced_picks(scores, pools, budget, largest=False)
        ref_scores = np.concatenate([np.asarray(s) for s in result["scores"]])
        ours_scores = torch.cat([scores[p] for p in pools]).numpy()
        ours_indices = np.concatenate([p.numpy() for p in picks])
        _row(rows, f"uncertainty ({ours_name})", f"scores of {len(labels)} images, class by class",
             ref_scores, ours_scores, indices=bool(np.array_equal(result["indices"], ours_indices)))

    # Forgetting: events on the training batches as trained (never learned: 0 in DeepCore)
    lr, epochs = 0.5, 8
    method = methods.Forgetting(data, _deepcore_args(lr), fraction, seed, epochs=epochs, balance=True)
    recorder = _Recorder(method)
    with _quiet():
        result = method.select()
    tracker = ForgettingTracker(len(labels))
    recorder.replay(0, images, labels, lr, epochs, on_batch=tracker)
    ours = tracker.scores("zero")
    ref = result["scores"].cpu().double().numpy()
    picks = class_balanced_picks(ours, pools, budget, largest=True)
    ours_indices = np.concatenate([p.numpy() for p in picks])
    exact = bool(np.array_equal(result["indices"], ours_indices))
    offsets = np.cumsum([0, *budget])
    ties = all(_same_up_to_ties(np.asarray(result["indices"])[offsets[c]:offsets[c + 1]], p.numpy(), ref)
               for c, p in enumerate(picks))
    _row(rows, "forgetting (never_learned zero)", f"events of {len(labels)} images (total {int(ref.sum())})",
         ref, ours.numpy(), indices=ties)
    _row(rows, "forgetting (never_learned zero)", "  indices in DeepCore's order among tied counts "
         "(a reversed, unstable numpy argsort; ddr: the lowest index first)", 0.0, 0.0, counted=False, indices=exact)
    never = int((~tracker.ever_correct).sum())
    _row(rows, "forgetting (never_learned most)", f"  {never} never-learned images scored +inf (DeepCore: 0)",
         ref, tracker.scores("most").numpy(), counted=False)

    # GraNd: repeat networks (seed, seed + 5, ...), last-layer gradient norms averaged
    lr, epochs, repeat = 0.1, 2, 3
    method = methods.GraNd(data, _deepcore_args(lr), fraction, seed, epochs=epochs, repeat=repeat, balance=True)
    recorder = _Recorder(method)
    with _quiet():
        result = method.select()
    norms = [grand_scores(recorder.replay(r, images, labels, lr, epochs), split) for r in range(repeat)]
    ours = torch.stack(norms).mean(dim=0)
    position = torch.arange(len(labels))
    batch_len = torch.clamp(len(labels) - (position // SELECTION_BATCH) * SELECTION_BATCH, max=SELECTION_BATCH)
    ref_raw = torch.as_tensor(result["scores"], dtype=torch.float32)
    ref = ref_raw * batch_len
    picks = class_balanced_picks(ours, pools, budget, largest=True)
    ours_indices = np.concatenate([p.numpy() for p in picks])
    rescaled_picks = np.concatenate([p.numpy() for p in class_balanced_picks(ref, pools, budget, largest=True)])
    _row(rows, "grand", f"mean norms over {repeat} networks x their scoring batch size (16, 16, 8)",
         ref.numpy(), ours.numpy(), indices=bool(np.array_equal(rescaled_picks, ours_indices)))
    _row(rows, "grand", "  DeepCore's own norms (divided by the batch size) and their picks", ref_raw.numpy(),
         ours.numpy(), counted=False, indices=bool(np.array_equal(result["indices"], ours_indices)))
    return _finish("PatrickZH/DeepCore", folder, rows, tol)


# -- CCS: training dynamics, EL2N, pruning + stratified sampling ---------------------------------------------------

def _ccs_functions(folder: Path, num_classes: int) -> dict[str, Any]:
    """``training_dynamics_metrics`` and ``EL2N`` from ``generate_importance_score.py``, without running the script."""
    path = folder / "generate_importance_score.py"
    if not path.is_file():
        raise SystemExit(f"{folder} is not a CCS checkout (no generate_importance_score.py)")
    tree = ast.parse(path.read_text(), filename=str(path))
    wanted = {"training_dynamics_metrics", "EL2N"}
    module = ast.Module(body=[n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted],
                        type_ignores=[])
    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "num_classes": num_classes}
    exec(compile(module, str(path), "exec"), namespace)  # noqa: S102 - the reference functions, as written
    return namespace


def _import_ccs_coreset(folder: Path) -> Any:
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("core.data.Coreset").CoresetSelection
    finally:
        sys.path.remove(str(folder))


class _IndexDataset:
    """CCS's ``IndexDataset`` view: ``dataset[i] == (i, (image, label))``."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[int, tuple[None, int]]:
        return i, (None, int(self.labels[i]))


def compare_ccs(folder: Path, tol: float) -> dict[str, Any]:
    from ddr.method import Split
    from ddr_methods._coreset import ScoringRecipe
    from ddr_methods._coreset.scoring import TrainingDynamics, el2n_scores, logits_over, train_scoring_model
    from ddr_methods.ccs.method import ccs_select

    functions = _ccs_functions(folder, N_CLASSES)
    coreset = _import_ccs_coreset(folder)
    images, labels = tiny_data(per_class=25, seed=1)
    split = Split(labels=labels, images=images)
    dataset = _IndexDataset(labels)
    rows: list[dict[str, Any]] = []

    # one training run, logged as CCS's Trainer logs it (log_softmax of the batch, before the update)
    log: list[dict[str, Any]] = []
    log_half: list[dict[str, Any]] = []
    dynamics = TrainingDynamics(len(labels), el2n_epochs=10)

    def on_batch(epoch: int, index: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        dynamics(epoch, index, logits, targets)
        out = F.log_softmax(logits, dim=1)
        log.append({"epoch": epoch, "iteration": len(log), "idx": index.clone(), "output": out.clone()})
        log_half.append({"epoch": epoch, "iteration": len(log), "idx": index.clone(), "output": out.half()})

    torch.manual_seed(4)
    model = MLP()
    recipe = ScoringRecipe(epochs=12, lr=0.3, batch_size=SELECTION_BATCH, schedule="cosine")
    train_scoring_model(model, split, recipe, generator=torch.Generator().manual_seed(5), on_batch=on_batch)
    reference: dict[str, Any] = {}
    half: dict[str, Any] = {}
    with _quiet():
        functions["training_dynamics_metrics"](log, dataset, reference)
        functions["EL2N"](log, dataset, reference, max_epoch=10)
        functions["training_dynamics_metrics"](log_half, dataset, half)
    for key in ("accumulated_margin", "forgetting", "el2n"):
        _row(rows, "ccs", f"{key} of {len(labels)} images (12 epochs)", reference[key], dynamics.scores(key))
    _row(rows, "ccs", "  accumulated_margin from CCS's float16 log (ddr: float32)", half["accumulated_margin"],
         dynamics.scores("accumulated_margin"), counted=False)

    # pruning + stratified sampling, class by class, with the same global generator state
    aum = dynamics.scores("accumulated_margin")
    for key, beta, k in (("accumulated_margin", 0.3, 5), ("forgetting", 0.2, 6), ("el2n", 0.3, 4)):
        importance = dynamics.scores(key)
        equal = True
        for c, pool in enumerate(_class_positions(labels)):
            score = {"accumulated_margin": aum[pool].clone(), key: importance[pool].clone(),
                     "targets": labels[pool].to(torch.int32)}
            torch.manual_seed(100 + c)
            with _quiet():
                score, easy = coreset.mislabel_mask(score, mis_key="accumulated_margin", mis_num=int(beta * len(pool)),
                                                    mis_descending=False, coreset_key=key)
                chosen, _ = coreset.stratified_sampling(data_score=score, coreset_key=key, coreset_num=k)
            ref_picks = easy[torch.tensor(chosen, dtype=torch.int64)]
            torch.manual_seed(100 + c)
            ours = ccs_select(importance[pool], aum[pool], k, beta=beta, strata=50, generator=torch.default_generator)
            equal = equal and torch.equal(ref_picks, ours)
        _row(rows, "ccs", f"  per-class picks, importance {key}, beta {beta}, {k} of 25", 0.0, 0.0, indices=equal)

    # EL2N (Paul et al.): repeat networks; the reference: CCS's EL2N fed one entry per network, / repeat
    repeat = 3
    logs, ours_scores = [], []
    for r in range(repeat):
        torch.manual_seed(10 + r)
        net = MLP()
        train_scoring_model(net, split, ScoringRecipe(epochs=2, lr=0.1, batch_size=SELECTION_BATCH),
                            generator=torch.Generator().manual_seed(20 + r))
        logits = logits_over(net, split)
        ours_scores.append(el2n_scores(logits, labels))
        logs.append({"epoch": 0, "iteration": r, "idx": torch.arange(len(labels)),
                     "output": F.log_softmax(logits, dim=1)})
    el2n_reference: dict[str, Any] = {}
    with _quiet():
        functions["EL2N"](logs, dataset, el2n_reference, max_epoch=10)
    ref = el2n_reference["el2n"] / repeat
    ours = torch.stack(ours_scores).mean(dim=0)
    pools = _class_positions(labels)
    ref_top = [p[torch.argsort(ref[p], descending=True, stable=True)[:5]] for p in pools]
    from ddr_methods._coreset.scoring import class_balanced_picks

    ours_top = class_balanced_picks(ours, pools, [5] * N_CLASSES, largest=True)
    _row(rows, "el2n", f"mean ||softmax - onehot|| over {repeat} networks", ref, ours,
         indices=all(torch.equal(a, b) for a, b in zip(ref_top, ours_top)))
    return _finish("haizhongzheng/Coverage-centric-coreset-selection", folder, rows, tol)


# -- Moderate-DS --------------------------------------------------------------------------------------------------

def _moderate_functions(folder: Path) -> dict[str, Any]:
    path = folder / "selection.py"
    if not path.is_file():
        raise SystemExit(f"{folder} is not a Moderate-DS checkout (no selection.py)")
    tree = ast.parse(path.read_text(), filename=str(path))
    wanted = {"get_median", "get_distance", "get_prune_idx"}
    module = ast.Module(body=[n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted],
                        type_ignores=[])
    namespace: dict[str, Any] = {"np": np}
    exec(compile(module, str(path), "exec"), namespace)  # noqa: S102
    return namespace


def compare_moderate(folder: Path, tol: float) -> dict[str, Any]:
    from ddr_methods._selection import embed_all
    from ddr_methods.moderate.method import median_distances, moderate_window

    functions = _moderate_functions(folder)
    images, labels = tiny_data(per_class=PER_CLASS, seed=2)
    torch.manual_seed(7)
    features = embed_all(MLP(), images)  # [40, 128] float32
    reference = functions["get_distance"](features.numpy(), labels.numpy())
    pools = _class_positions(labels)
    ours = torch.zeros(len(labels), dtype=torch.float64)
    for pool in pools:
        ours[pool] = median_distances(features[pool])
    rows: list[dict[str, Any]] = []
    for k, counted in ((4, True), (2, True), (3, False)):
        equal = True
        kept_sizes = []
        for pool in pools:
            distance = reference[pool.numpy()]
            pruned = functions["get_prune_idx"](argparse.Namespace(rate=k / len(pool)), distance)
            kept = sorted(set(range(len(pool))) - {int(i) for i in pruned})
            kept_sizes.append(len(kept))
            equal = equal and kept == sorted(moderate_window(ours[pool], k).tolist())
        note = "" if counted else f" (deviation: n - k odd, the official keeps {sorted(set(kept_sizes))} per class)"
        _row(rows, "moderate", f"distances to the class median ({len(labels)} x 128 features); {k} of 10 kept{note}",
             reference, ours, counted=counted, indices=equal)
    return _finish("tmllab/Moderate-DS", folder, rows, tol)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, repo in (("deepcore", "PatrickZH/DeepCore"), ("ccs", "haizhongzheng/Coverage-centric-coreset-selection"),
                      ("moderate", "tmllab/Moderate-DS")):
        default = os.environ.get(ENV[key])
        parser.add_argument(f"--{key}", type=Path, default=Path(default) if default else None,
                            help=f"a checkout of {repo} (default: ${ENV[key]})")
    parser.add_argument("--tol", type=float, default=1e-5, help="largest absolute score difference accepted")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if all(getattr(args, k) is None for k in ENV):
        parser.error("name at least one reference checkout (--deepcore, --ccs, --moderate)")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")  # DeepCore's loaders ask for it on the CPU
    results = []
    if args.deepcore is not None:
        results.append(compare_deepcore(args.deepcore, args.tol))
    if args.ccs is not None:
        results.append(compare_ccs(args.ccs, args.tol))
    if args.moderate is not None:
        results.append(compare_moderate(args.moderate, args.tol))
    for result in results:
        print(f"{result['reference']} @ {result['commit']}")
        width = max(len(f"{r['selector']}: {r['quantity']}") for r in result["rows"])
        print(f"{'selector: quantity':<{width}}  {'reference':>13}  {'ddr':>13}  max abs diff  indices equal")
        for r in result["rows"]:
            label = f"{r['selector']}: {r['quantity']}"
            same = {None: "-", True: "yes", False: "no"}[r["indices_equal"]]
            flag = "" if r["counted"] else "  (deviation, not counted)"
            print(f"{label:<{width}}  {r['reference']:>13.8g}  {r['ddr']:>13.8g}  {r['max_abs_diff']:>12.2e}  "
                  f"{same}{flag}")
        print(("agree" if result["agree"] else "DIFFER") + f" within {args.tol:g} (largest {result['max_abs_diff']:.2e})\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["agree"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
