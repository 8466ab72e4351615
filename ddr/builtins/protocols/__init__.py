"""The shipped evaluation protocols (YAML files beside this module), see docs/protocol.md §3."""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import ProtocolSpec

_PACKAGE = "ddr.builtins.protocols"


@hookimpl
def ddr_protocols() -> list[ProtocolSpec]:
    return [
        ProtocolSpec(name="hard", path=f"{_PACKAGE}:hard.yaml", version="1",
                     summary="DC/DSA/DM/MTT standard: ConvNet-3 w128 instance norm, SGD 0.01, 1000 epochs, DSA"),
        ProtocolSpec(name="hard-dc", path=f"{_PACKAGE}:hard-dc.yaml", version="1",
                     summary="the DC paper's variant of 'hard': 300 epochs, no augmentation"),
        ProtocolSpec(name="soft", path=f"{_PACKAGE}:soft.yaml", version="1",
                     summary="teacher-based methods: AdamW 1e-3 cosine, 300 epochs, KL T=4, teacher relabels, RRC+flip+CutMix",
                     presets={"paper": {"loss": {"name": "kl", "temperature": 20.0}}}),
        ProtocolSpec(name="rded-paper", path=f"{_PACKAGE}:rded-paper.yaml", version="1",
                     summary="RDED's own student recipe: AdamW 1e-3 half-cosine, 300 epochs, KL T=20, rded aug + CutMix"),
        ProtocolSpec(name="sre2l-paper", path=f"{_PACKAGE}:sre2l-paper.yaml", version="1",
                     summary="SRe2L's own student recipe: AdamW 1e-3 cosine, 300 epochs, batch 1024, KL T=20, RRC+flip+CutMix"),
        ProtocolSpec(name="digits", path=f"{_PACKAGE}:digits.yaml", version="1",
                     summary="embedded quick protocol: digits 16 px, ConvNet-3 w64, 300 epochs, DSA"),
        ProtocolSpec(name="ddranking-hard", path=f"{_PACKAGE}:ddranking-hard.yaml", version="1",
                     summary="DD-Ranking 0.2.0's hard-label evaluator end to end (best test epoch, LR grid; "
                             "docs/ddranking.md)"),
        ProtocolSpec(name="ddranking-soft", path=f"{_PACKAGE}:ddranking-soft.yaml", version="1",
                     summary="DD-Ranking 0.2.0's soft-label evaluator (and ARS with --ars) end to end "
                             "(docs/ddranking.md)"),
        # DD-Ranking's per-method evaluation configs (its `eval` branch) on CIFAR, as cells by dataset and IPC
        ProtocolSpec(name="ddranking-sre2l", path=f"{_PACKAGE}:ddranking-sre2l.yaml", version="1",
                     summary="DD-Ranking's SRe2L CIFAR eval configs: torchvision ResNet-18, 400 epochs, crop+flip+"
                             "mixup 0.8, KL T=30, under ddranking-soft"),
        ProtocolSpec(name="ddranking-d4m", path=f"{_PACKAGE}:ddranking-d4m.yaml", version="1",
                     summary="DD-Ranking's D4M CIFAR eval configs: ConvNet-3, 500 epochs, batch 100, RRC+flip+"
                             "CutMix, KL T=20, under ddranking-soft"),
        ProtocolSpec(name="ddranking-rded", path=f"{_PACKAGE}:ddranking-rded.yaml", version="1",
                     summary="DD-Ranking's RDED CIFAR eval configs: ConvNet-3-BN, 300 epochs, CutMix, KL T=20, "
                             "batch by IPC, under ddranking-soft"),
        ProtocolSpec(name="ddranking-datm", path=f"{_PACKAGE}:ddranking-datm.yaml", version="1",
                     summary="DD-Ranking's DATM CIFAR eval configs: ConvNet-3, stored soft labels, SCE T=1, SGD "
                             "1000 epochs, DSA, under ddranking-soft (with --zca)"),
    ]
