"""DD-Ranking's evaluator classes, implemented on ddr's :class:`~ddr.runs.evaluate.Evaluator`.

``LabelRobustScoreHard``, ``LabelRobustScoreSoft`` and ``AugmentationRobustScore`` take DD-Ranking
0.2.0's constructor arguments (or ``config=Config.from_file(path)``), mapped by
:func:`ddr.compat.ddranking.config.map_config`, and offer ``compute_metrics(image_tensor=... |
image_path=..., hard_labels | soft_labels, syn_lr, lrs_lambda | ars_lambda)``, which returns
DD-Ranking's result keys (:mod:`ddr.compat.ddranking.results`) as FRACTIONS, or with
``percent=True`` DD-Ranking's percent numbers. The students train under the ``ddranking-hard`` /
``ddranking-soft`` protocols (docs/ddranking.md). ``HardLabelEvaluator`` and
``SoftLabelEvaluator`` are the names DD-Ranking's README uses.

Importing this module imports no torch; building an evaluator's data does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.compat.ddranking.config import CLASS_NAMES, KEYS, Config, MappedConfig, data_root, load_config, map_config
from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.method.distilled import DistilledSet
    from ddr.records.run import EvaluationResult
    from ddr.resources.session import Session

__all__ = ["AugmentationRobustScore", "GeneralEvaluator", "HardLabelEvaluator", "LabelRobustScoreHard",
           "LabelRobustScoreSoft", "SoftLabelEvaluator"]


class _DDRankingEvaluator:
    """What the three evaluators share; see the subclasses."""

    evaluator = "hard"

    def __init__(self, config: Config | Mapping[str, Any] | str | Path | None = None, *, seed: int = 0,
                 percent: bool = False, executor: str = "local", out: str | Path | None = None,
                 overrides: Mapping[str, Any] | None = None, session: "Session | None" = None,
                 **kwargs: Any) -> None:
        """
        Args:
            config: a :class:`Config`, a mapping or a config file path; then no DD-Ranking keyword
                may be given too (DD-Ranking would silently ignore them).
            seed: ddr's run seed (DD-Ranking 0.2.0 seeds from the clock; every ddr seed derives from this).
            percent: return DD-Ranking's percent numbers instead of fractions.
            executor: how ddr runs the student jobs (``local``, ``batched``, ``ray``).
            out: also write a ddr run record under this folder.
            overrides: ddr protocol overrides on top of the config, dotted (``{"lr_grid": [0.01]}``,
                like ``--set``).
            session: a ddr :class:`~ddr.resources.session.Session` (its log, plugins, loaded datasets).
            **kwargs: DD-Ranking's constructor arguments (``dataset``, ``ipc``, ``model_name``, ...).
        """
        name = CLASS_NAMES[self.evaluator]
        if config is not None and kwargs:
            raise ConfigError(f"{name}: give either config or keyword arguments, not both (DD-Ranking ignores "
                              f"the keywords {sorted(kwargs)} when a config is given); move them into the config")
        where = name
        if isinstance(config, (str, Path)):
            where, data = str(config), load_config(config)
        elif isinstance(config, Config):
            where, data = config.source, config.to_dict()
        elif config is not None:
            if not isinstance(config, Mapping):
                raise ConfigError(f"{name}: config must be a Config, a mapping or a file path, got "
                                  f"{type(config).__name__}")
            data = dict(config)
        else:
            data = dict(kwargs)
            unknown = [k for k in data if k not in KEYS]
            if unknown:
                import difflib

                close = difflib.get_close_matches(unknown[0], list(KEYS), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{name}() got an unexpected keyword argument {unknown[0]!r}{hint}")
        if not isinstance(percent, bool):
            raise ConfigError(f"{name}: percent must be true or false, got {percent!r}")
        from ddr.resources.session import Session

        self.session = session or Session()
        self.mapped: MappedConfig = map_config(data, evaluator=self.evaluator, where=where, system=self.session.system)
        for note in self.mapped.notes:
            self.session.log(f"{name}: note: {note}")
        self.seed, self.percent, self.executor, self.out = seed, percent, executor, out
        self.overrides = dict(overrides or {})
        self.last_result: "EvaluationResult | None" = None
        """ddr's full result of the last :meth:`compute_metrics` (accuracies, per-student records)."""

    # -- the distilled set ---------------------------------------------------------------------------
    def _distilled(self, image_tensor: "torch.Tensor | None", image_path: str | Path | None,
                   hard_labels: "torch.Tensor | None", soft_labels: "torch.Tensor | None",
                   syn_lr: Any, num_classes: int, ipc: int | None) -> "DistilledSet":
        import torch

        from ddr.method.distilled import DistilledSet
        from ddr.store.formats import load_any

        name = CLASS_NAMES[self.evaluator]
        if (image_tensor is None) == (image_path is None):
            raise ConfigError(f"{name}.compute_metrics: give exactly one of image_tensor (a [N, C, H, W] tensor, "
                              "class-major) and image_path (a class-folder image tree)")
        zca = bool(self.mapped.options.get("zca", False))
        if image_path is not None:
            loaded = load_any(Path(image_path), self.session.system, num_classes=num_classes, ipc=ipc,
                              pixel_space="zca" if zca else None)
            images, labels = loaded.images, loaded.labels
            space = loaded.pixel_space
        else:
            if not isinstance(image_tensor, torch.Tensor) or image_tensor.ndim != 4:
                raise ConfigError(f"{name}.compute_metrics: image_tensor must be a [N, C, H, W] tensor, got "
                                  f"{getattr(image_tensor, 'shape', type(image_tensor).__name__)}")
            images = image_tensor.detach().float().cpu()
            space = "zca" if zca else "normalized"
            count = images.shape[0]
            if ipc is None:
                if count % num_classes:
                    raise ConfigError(f"{name}.compute_metrics: {count} images are not ipc x {num_classes} classes; "
                                      "give ipc")
                ipc = count // num_classes
            labels = torch.arange(num_classes).repeat_interleave(ipc)  # DD-Ranking's class-major labels
            if labels.numel() != count:
                raise ConfigError(f"{name}.compute_metrics: {count} images but ipc {ipc} x {num_classes} classes = "
                                  f"{labels.numel()}; images are class-major, ipc per class")
        if hard_labels is not None:
            hard = torch.as_tensor(hard_labels).detach().cpu().long().reshape(-1)
            if hard.numel() != images.shape[0]:
                raise ConfigError(f"{name}.compute_metrics: hard_labels has {hard.numel()} entries for "
                                  f"{images.shape[0]} images")
            labels = hard
        soft = None
        if soft_labels is not None:
            soft = torch.as_tensor(soft_labels).detach().float().cpu()
            if soft.ndim != 2 or soft.shape != (images.shape[0], num_classes):
                raise ConfigError(f"{name}.compute_metrics: soft_labels must be [N, K] = [{images.shape[0]}, "
                                  f"{num_classes}] logits, got {tuple(soft.shape)}")
        lr = None
        if syn_lr is not None:
            try:
                lr = float(syn_lr.item() if hasattr(syn_lr, "item") else syn_lr)
            except (TypeError, ValueError, RuntimeError):
                raise ConfigError(f"{name}.compute_metrics: syn_lr must be a number or a 0-d tensor, got "
                                  f"{syn_lr!r}") from None
            if not lr > 0:
                raise ConfigError(f"{name}.compute_metrics: syn_lr must be a positive learning rate, got {lr}")
        return DistilledSet(images=images, labels=labels, soft_labels=soft, lr=lr, pixel_space=space,
                            meta={"source_format": "ddranking_api"})

    # -- the metrics ---------------------------------------------------------------------------------
    def _compute(self, *, image_tensor: Any, image_path: Any, hard_labels: Any, soft_labels: Any, syn_lr: Any,
                 weight_key: str, weight: float, percent: bool | None) -> dict[str, float]:
        from ddr.compat.ddranking.results import per_run, result_dict, write_csv
        from ddr.runs.evaluate import EvalOptions, Evaluator

        name = CLASS_NAMES[self.evaluator]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
            raise ConfigError(f"{name}.compute_metrics: the weight must be in [0, 1], got {weight!r}")
        use_percent = self.percent if percent is None else percent
        with data_root(self.mapped.data_root):
            options = self.mapped.eval_options(EvalOptions(seed=self.seed, executor=self.executor, ipc=None,
                                                           overrides=self.overrides))
            options = replace(options, overrides={**dict(options.overrides), weight_key: float(weight)})
            dataset = self.session.load_dataset(options.dataset, zca=bool(options.zca))
            distilled = self._distilled(image_tensor, image_path, hard_labels, soft_labels, syn_lr,
                                        dataset.num_classes, options.ipc)
            ipc = options.ipc or int(distilled.labels.bincount().max())
            evaluator = Evaluator(replace(options, ipc=ipc), session=self.session)
            result = evaluator.evaluate(distilled)
        if self.out is not None:
            from ddr.store.records import record_folder, write_records

            folder = record_folder(Path(self.out), f"ddranking-{self.evaluator}-{options.dataset}-ipc{ipc}-seed{self.seed}",
                                   {**result.run_spec, "distilled_sha256": result.distilled_sha256})
            result.record_dir = str(write_records(folder, result, self.session.system).resolve())
        self.last_result = result
        w = float(weight) if weight_key == "metrics.w" else 0.5
        lam = float(weight) if weight_key == "metrics.lambda" else 0.5
        values = per_run(result, self.evaluator, percent=use_percent, w=w, lam=lam)
        if self.mapped.save_path is not None:
            write_csv(self.mapped.save_path, self.evaluator, values)
        return result_dict(values)


class LabelRobustScoreHard(_DDRankingEvaluator):
    """DD-Ranking's hard-label evaluator (HLR, IOR, LRS) under the ``ddranking-hard`` protocol."""

    evaluator = "hard"

    def compute_metrics(self, image_tensor: "torch.Tensor | None" = None, image_path: str | Path | None = None,
                        hard_labels: "torch.Tensor | None" = None, syn_lr: Any = None, lrs_lambda: float = 0.5,
                        *, percent: bool | None = None) -> dict[str, float]:
        """Train and score the distilled set.

        Args:
            image_tensor: ``[N, C, H, W]`` float images, class-major, normalised (or ZCA-whitened with
                ``use_zca``) like the dataset; or image_path: a class-folder image tree.
            hard_labels: ``[N]`` class indices (default: class-major ``[0]*ipc + [1]*ipc + ...``).
            syn_lr: the set's learned LR (float or 0-d tensor): used for the distilled set, not for
                the random baseline (which searches the LR grid).
            lrs_lambda: ``w``, the weight of IOR against HLR (a fraction).
            percent: ``None``: the constructor's choice.

        Returns:
            ``hard_label_recovery_mean/_std``, ``improvement_over_random_mean/_std``,
            ``label_robust_score_mean/_std``: fractions (scores in [0, 1]) unless percent.
        """
        return self._compute(image_tensor=image_tensor, image_path=image_path, hard_labels=hard_labels,
                             soft_labels=None, syn_lr=syn_lr, weight_key="metrics.w", weight=lrs_lambda,
                             percent=percent)


class LabelRobustScoreSoft(_DDRankingEvaluator):
    """DD-Ranking's soft-label evaluator (HLR, IOR, LRS) under the ``ddranking-soft`` protocol."""

    evaluator = "soft"

    def compute_metrics(self, image_tensor: "torch.Tensor | None" = None, image_path: str | Path | None = None,
                        soft_labels: "torch.Tensor | None" = None, syn_lr: Any = None, lrs_lambda: float = 0.5,
                        *, percent: bool | None = None) -> dict[str, float]:
        """Train and score the distilled set.

        Args:
            image_tensor / image_path: as :meth:`LabelRobustScoreHard.compute_metrics`.
            soft_labels: ``[N, K]`` logits, used with ``soft_label_mode: S`` (mode M: the teacher
                relabels every batch).
            syn_lr: the learned LR of the soft-label run of the distilled set (its hard-label run
                and the random baseline search the LR grid, as in DD-Ranking).
            lrs_lambda: ``w``, the weight of IOR against HLR (a fraction).

        Returns:
            the same keys as :meth:`LabelRobustScoreHard.compute_metrics`.
        """
        return self._compute(image_tensor=image_tensor, image_path=image_path, hard_labels=None,
                             soft_labels=soft_labels, syn_lr=syn_lr, weight_key="metrics.w", weight=lrs_lambda,
                             percent=percent)


class AugmentationRobustScore(_DDRankingEvaluator):
    """DD-Ranking's augmentation robust score (ARS) under ``ddranking-soft`` with ARS."""

    evaluator = "ars"

    def compute_metrics(self, image_tensor: "torch.Tensor | None" = None, image_path: str | Path | None = None,
                        soft_labels: "torch.Tensor | None" = None, syn_lr: Any = None, ars_lambda: float = 0.5,
                        *, percent: bool | None = None) -> dict[str, float]:
        """Train and score the distilled set with and without augmentation.

        Args: as :meth:`LabelRobustScoreSoft.compute_metrics`; ``ars_lambda`` weighs the
        with-augmentation term (a fraction).

        Returns:
            ``with_aug_scores_mean/_std``, ``without_aug_scores_mean/_std``,
            ``augmentation_robust_score_mean/_std``: fractions (ARS in [0, 1]) unless percent.
        """
        return self._compute(image_tensor=image_tensor, image_path=image_path, hard_labels=None,
                             soft_labels=soft_labels, syn_lr=syn_lr, weight_key="metrics.lambda",
                             weight=ars_lambda, percent=percent)


HardLabelEvaluator = LabelRobustScoreHard
SoftLabelEvaluator = LabelRobustScoreSoft


class GeneralEvaluator:
    """DD-Ranking's GeneralEvaluator fails at construction in 0.2.0 and has no ddr equivalent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigError("GeneralEvaluator fails at construction in DD-Ranking 0.2.0 (NameError) and has no ddr "
                          "equivalent; use LabelRobustScoreHard or LabelRobustScoreSoft (ddr's acc_syn_any in "
                          "evaluator.last_result is the plain accuracy), or ddr.evaluate(...)")
