"""The built-in metrics: the four accuracies, HLR, IOR, DDRS (DD-Ranking's LRS) and ARS, computed
for every run, the improvement over the best coreset (``ioc``, computed by the leaderboard from
the runs of one cell), and the adversarial robustness of the trained students (``robust_fgsm``,
``robust_pgd``), reported when asked (``--metric``, a suite's ``metrics:``, a protocol's
``metrics.extra``).

Every number a board, ``ddr results``, ``ddr compare``, a plot or the JSON output shows takes its
label, direction and formula from these specs (``ddr list metrics``, ``ddr describe metric
NAME``). The formulas themselves live in :mod:`ddr.protocol.metrics` (accuracies and scores) and
:mod:`ddr.builtins.metrics.robustness` (attacks). Never imports torch.
"""

from __future__ import annotations

from ddr import MetricSpec, ParamSpec, hookimpl

_SCORES = "ddr.protocol.metrics"

ACCURACY_FORMULA = "fraction of the test split classified correctly, after the last epoch (or DD-Ranking's best)"

ATTACK_PARAMS = (
    ParamSpec("epsilon", 8 / 255, "L-infinity radius of the attack in 0..1 pixel units, at most 1 (8/255: the "
              "usual CIFAR budget; the attack runs in pixel space, through normalisation and ZCA)", minimum=0.0),
    ParamSpec("max_images", None, "attack only the first N test images (null: the whole test split)", type="int",
              minimum=1),
)
PGD_PARAMS = (
    ParamSpec("attack", "pgd", "the attack (fixed for this metric)", choices=("pgd",)),
    *ATTACK_PARAMS,
    ParamSpec("steps", 10, "PGD iterations (Madry et al. ICLR 2018)", minimum=1),
    ParamSpec("step_size", None, "PGD step in 0..1 pixel units (null: 2.5 * epsilon / steps, Madry et al.)",
              type="float", minimum=0.0),
)
FGSM_PARAMS = (
    ParamSpec("attack", "fgsm", "the attack (fixed for this metric)", choices=("fgsm",)),
    *ATTACK_PARAMS,
    ParamSpec("steps", 1, "FGSM is one step (fixed)", choices=(1,)),
    ParamSpec("step_size", None, "FGSM steps by epsilon (fixed)", type="float", choices=(None,)),
)


@hookimpl
def ddr_metrics() -> list[MetricSpec]:
    accuracies = [
        MetricSpec(name=name, target=f"{_SCORES}:fraction", label=label, unit="fraction", higher_is_better=True,
                   formula=formula, inputs=(name,), builtin_score=True, summary=summary)
        for name, label, summary, formula in (
            ("acc_real_hard", "acc real (hard)", "accuracy of the full-data reference (the real-data recipe)",
             f"acc_real_hard: {ACCURACY_FORMULA} of a student trained on the whole training pool"),
            ("acc_syn_hard", "acc syn (hard)", "accuracy of students trained on the distilled images with hard labels",
             f"acc_syn_hard: {ACCURACY_FORMULA} of a student trained on the distilled images, hard labels"),
            ("acc_syn_any", "acc syn (any)", "accuracy of students trained on the distilled set with its label strategy",
             f"acc_syn_any: {ACCURACY_FORMULA} of a student trained on the distilled set with its label strategy"),
            ("acc_rdm_any", "acc random (any)", "accuracy of students trained on a random real subset of the same size",
             f"acc_rdm_any: {ACCURACY_FORMULA} of a student trained on a class-balanced random subset, "
             "treated like acc_syn_any"),
        )
    ]
    return [
        *accuracies,
        MetricSpec(name="hlr", target=f"{_SCORES}:hlr", label="HLR", unit="difference", higher_is_better=False,
                   formula="HLR = acc_real_hard − acc_syn_hard", inputs=("acc_real_hard", "acc_syn_hard"),
                   builtin_score=True, summary="hard label recovery: what the images miss under hard labels"),
        MetricSpec(name="ior", target=f"{_SCORES}:ior", label="IOR", unit="difference", higher_is_better=True,
                   formula="IOR = acc_syn_any − acc_rdm_any", inputs=("acc_syn_any", "acc_rdm_any"),
                   builtin_score=True, summary="improvement over random: the distilled set against a random subset"),
        MetricSpec(name="ddrs", aliases=("lrs",), target=f"{_SCORES}:ddrs", label="DDRS (LRS)", unit="score",
                   higher_is_better=True, inputs=("hlr", "ior"), builtin_score=True,
                   params=(ParamSpec("w", 0.5, "weight of IOR against HLR (the protocol's metrics.w)", minimum=0.0),),
                   formula="α = w·IOR − (1−w)·HLR;  DDRS = (e^α − e^−1) / (e − e^−1)",
                   summary="DD-Ranking score (LRS in DD-Ranking 0.2): HLR and IOR in one number in [0, 1]"),
        MetricSpec(name="ars", target=f"{_SCORES}:ars", label="ARS", unit="score", higher_is_better=True,
                   inputs=("acc_syn_any", "acc_rdm_any", "acc_syn_noaug", "acc_rdm_noaug"), builtin_score=True,
                   params=(ParamSpec("lam", 0.5, "weight of the with-augmentation term (the protocol's "
                                     "metrics.lambda)", minimum=0.0),),
                   formula="β = λ·(syn_aug − rdm_aug) + (1−λ)·(syn_noaug − rdm_noaug);  ARS = (e^β − e^−1) / (e − e^−1)",
                   summary="augmentation robust score (with --ars): the distilled set's gain with and without "
                           "augmentation"),
        MetricSpec(name="ioc", target="ddr.report.coresets:ioc", label="IOC", unit="difference", higher_is_better=True,
                   needs="board",
                   formula="IOC = acc_syn_any(method) − max over the cell's selection methods s of acc_syn_any(s) "
                           "(same protocol and labels; paired or Welch t interval)",
                   summary="improvement over the best coreset: a distillation method against the best selection "
                           "method (random, herding, K-center, coreset selectors) of its leaderboard cell"),
        MetricSpec(name="robust_fgsm", target="ddr.builtins.metrics.robustness:measure", label="robust acc (FGSM)",
                   unit="fraction", higher_is_better=True, needs="student", outputs=("clean", "robust"),
                   roles=("syn_any", "rdm_any"), params=FGSM_PARAMS, presets={"mnist": {"epsilon": 0.1}},
                   formula="fraction of test images classified correctly both clean and at x' = clip(x + "
                           "ε·sign(∇x CE(f(x), y)), 0, 1), x in 0..1 pixels (FGSM, Goodfellow et al. ICLR 2015); "
                           "gap = syn − random",
                   summary="accuracy of the syn- and random-trained students under an FGSM attack (L∞, ε in pixels)"),
        MetricSpec(name="robust_pgd", target="ddr.builtins.metrics.robustness:measure", label="robust acc (PGD)",
                   unit="fraction", higher_is_better=True, needs="student", outputs=("clean", "robust"),
                   roles=("syn_any", "rdm_any"), params=PGD_PARAMS,
                   presets={"mnist": {"epsilon": 0.1}, "strong": {"steps": 50}},
                   formula="fraction of test images classified correctly both clean and at x', the last of "
                           "`steps` sign-gradient steps of CE projected onto the L∞ ball of radius ε around x (and "
                           "[0, 1]), from a random start, x in 0..1 pixels (PGD, Madry et al. ICLR 2018); "
                           "gap = syn − random",
                   summary="accuracy of the syn- and random-trained students under a PGD attack (L∞, ε in pixels)"),
    ]
