"""D4M's recipe table (``ddr_methods.d4m.d4m_recipes``) against its official sources, and D4M's
label files (``method.label_file``).

The table below is transcribed here, independently of the plugin, from suduo94/D4M @ da35d10
(da35d100fdd57896807165d2d0984960fa503762, the repository's newest commit): every cell of the
recipe ``ddr run --method d4m --dataset imagenet`` applies is checked against it, through the
method parameters and the protocol ddr resolves, not through the recipe's own dictionaries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ddr import ConfigError
from ddr.plugin.manager import PluginSystem
from ddr.runs.distill import resolve_method
from ddr.runs.evaluate import EvalOptions
from ddr.runs.run import describe_recipe, evaluation_options

COMMIT = "suduo94/D4M@da35d10"
IMAGENET_DISTILL = {
    "resolution": 512,        # gen_prototype.py --size default 512 (gen_prototype_imgnt.sh does not set it)
    "km_expand": 1,           # gen_prototype_imgnt.sh / gen_syn_image_imgnt.sh --km_expand 1
    "strength": 0.7,          # gen_syn_image_imgnt.sh --strength 0.7 (gen_syn_image.py's own default: 0.75)
    "guidance_scale": 8.0,    # gen_syn_image_imgnt.sh --guidance_scale 8
    "num_inference_steps": 50,  # gen_syn_image.py calls the pipeline without it: its default, 50
    "negative_prompt": "cartoon, anime, painting",  # gen_syn_image.py's pipe(...) call
    "mipc": None,             # prototype_kmeans feeds every training image of the class
}
IMAGENET_EVAL: dict[str, Any] = {  # validate/train_FKD.sh + train_FKD.py, matching/matching.sh + generate_soft_label.py
    "student": "torchvision:resnet18",   # train_FKD.sh --model resnet18; torchvision.models.__dict__[...](weights=None)
    "teacher": "torchvision:resnet18",   # matching.sh -a resnet18; models.__dict__[arch](weights='DEFAULT')
    "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.01,  # no --sgd: AdamW(adamw_lr 0.001, adamw_weight_decay 0.01)
    "schedule": "cosine", "epochs": 300,  # --cos: 0.5 * (1 + cos(pi * epoch / epochs)); --epochs default 300
    "batch_size": 1024,                   # --batch-size 1024 (2 accumulation steps of 512)
    "temperature": 20.0, "scale_by_t2": False,  # -T 20; KLDivLoss(batchmean) of log_softmax / softmax at T
    "augmentation": ("random_resized_crop", "flip", "cutmix"),  # RandomResizedCrop(224, (0.08, 1)), flip, --mix-type cutmix
    "cutmix_beta": 1.0,                   # generate_soft_label.py --cutmix default 1.0
}
NO_SCRIPTS = ("cifar10", "cifar100", "tinyimagenet")  # loaders and prompt files only: nothing to transcribe


@pytest.fixture(scope="module")
def system() -> PluginSystem:
    return PluginSystem()


def test_imagenet_cells_are_the_official_scripts(system: PluginSystem) -> None:
    from ddr.protocol.config import resolve_protocol

    for ipc in (1, 10, 50):  # the scripts run IPC 10; nothing in them depends on the IPC
        choice = resolve_method(system, "d4m", "imagenet", ipc=ipc)
        assert choice.recipe is not None and choice.recipe.name == "imagenet"
        assert {k: choice.params[k] for k in IMAGENET_DISTILL} == IMAGENET_DISTILL
        assert choice.params["prototypes"] == "minibatch" and choice.params["latents"] == "sample"
        o = evaluation_options(choice, EvalOptions(dataset="imagenet", ipc=ipc))
        assert o.method_protocol == "sre2l-paper" and o.zca is False
        protocol = resolve_protocol(o.method_protocol, dict(o.overrides), system=system, dataset="imagenet", ipc=ipc)
        e = IMAGENET_EVAL
        assert protocol.student.arch_for(224) == e["student"] and protocol.teacher.arch == e["teacher"]
        assert protocol.student.arch_for(64) == e["student"]  # arch_by_size pinned too, at any size
        t = protocol.train
        assert (t.optimizer, t.lr, t.weight_decay, t.schedule, t.epochs, t.batch_size) == (
            e["optimizer"], e["lr"], e["weight_decay"], e["schedule"], e["epochs"], e["batch_size"])
        assert protocol.loss["name"] == "kl" and protocol.loss["temperature"] == e["temperature"]
        assert protocol.loss["scale_by_t2"] is e["scale_by_t2"] and protocol.label_strategy == "teacher"
        names = tuple(a if isinstance(a, str) else a["name"] for a in protocol.augmentation)
        assert names == e["augmentation"]
        cutmix = next(a for a in protocol.augmentation if not isinstance(a, str) and a["name"] == "cutmix")
        assert cutmix["beta"] == e["cutmix_beta"]


def test_the_recipe_names_its_sources_and_covers_only_imagenet(system: PluginSystem) -> None:
    spec = system.methods().resolve("d4m").spec
    assert len(spec.recipes) == 1
    source = spec.recipes[0].source
    assert source.startswith(COMMIT)
    for cited in ("gen_prototype_imgnt.sh:6-8", "gen_prototype.py:45", "gen_syn_image_imgnt.sh:4-5",
                  "gen_syn_image.py:65 (negative_prompt", ":69 (images saved resized to 224x224)",
                  "matching/matching.sh:2-13", "generate_soft_label.py:132", "validate/train_FKD.sh:2-7",
                  "train_FKD.py:34"):
        assert cited in source, cited
    for dataset in NO_SCRIPTS:
        assert spec.recipe_for(dataset, 10) is None, dataset
    line = describe_recipe(resolve_method(system, "d4m", "imagenet", ipc=10), "imagenet", 10)
    assert line is not None and "km_expand=1" in line and "protocol sre2l-paper" in line
    assert resolve_method(system, "d4m", "imagenet", ipc=10, overrides={"strength": 0.5}).params["strength"] == 0.5


# -- label files (D4M's gen_label_list) -------------------------------------------------------------

def test_label_files_read_as_d4ms_gen_label_list(tmp_path: Path) -> None:
    from ddr_methods.d4m.method import read_label_file

    path = tmp_path / "labels.txt"
    path.write_text("tench, Tinca tinca\tn01440764\r\n  goldfish \n\n")  # tab field, CRLF, spaces, trailing blank
    assert read_label_file(path, 2) == ["tench, Tinca tinca", "goldfish"]
    with pytest.raises(ConfigError, match="has 2 lines but the dataset has 3 classes"):
        read_label_file(path, 3)
    with pytest.raises(ConfigError, match="cannot read label_file"):
        read_label_file(tmp_path / "absent.txt", 2)
    (tmp_path / "bytes.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="UTF-8"):
        read_label_file(tmp_path / "bytes.txt", 1)


class _Generator:
    """Latents are 4x-pooled images; generation upsamples them back. Records the prompts."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(images, 4)

    def generate(self, latents: torch.Tensor, prompts: list[str], **kw: Any) -> torch.Tensor:
        self.prompts.extend(prompts)
        return ((torch.nn.functional.interpolate(latents, scale_factor=4) + 1) / 2).clamp(0, 1)


def _distill(params: dict[str, Any], class_names: tuple[str, ...]) -> tuple[Any, _Generator, list[str]]:
    """D4M.distill on 2 classes x 4 random 16 px images, ipc 2, with a recording generator."""
    import ddr_methods.d4m
    from ddr_methods.d4m.method import D4M

    fake = _Generator()
    ddr_methods.d4m.register_generator("label-file-test", lambda device: fake)
    spec = ddr_methods.d4m.ddr_methods()[0]
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    logged: list[str] = []

    class Ctx:
        class dataset:  # noqa: N801 - the context's attribute
            image_size, channels, pixel_space = (16, 16), 3, "pixel01"
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

        class train:  # noqa: N801
            @staticmethod
            def take(index: torch.Tensor) -> torch.Tensor:
                return images[index]

        device, ipc, num_classes = torch.device("cpu"), 2, 2
        generator = torch.Generator().manual_seed(0)

        @staticmethod
        def class_indices() -> list[torch.Tensor]:
            return [torch.arange(4), torch.arange(4, 8)]

        @staticmethod
        def progress(items: Any, total: int, desc: str) -> Any:
            return items

        log = staticmethod(logged.append)

    Ctx.dataset.class_names = class_names  # type: ignore[attr-defined]
    ctx = Ctx()
    ctx.params = spec.check_params({**spec.defaults, "generator": "label-file-test", "resolution": 16,  # type: ignore[attr-defined]
                                    "num_inference_steps": 10, "km_expand": 1, **params})
    return D4M().distill(ctx), fake, logged  # type: ignore[arg-type]


def test_label_file_gives_the_prompts(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("tench, Tinca tinca\ngoldfish, Carassius auratus\n")
    distilled, fake, logged = _distill({"label_file": str(labels), "prompt": "a photo of {name}"}, ())
    assert fake.prompts == ["a photo of tench, Tinca tinca"] * 2 + ["a photo of goldfish, Carassius auratus"] * 2
    assert distilled.meta["label_file"] == str(labels) and distilled.meta["prompts"][1].endswith("auratus")
    assert not logged
    _, fake, logged = _distill({}, ())  # no class names, no label file: class indices, and it says so
    assert fake.prompts == ["0", "0", "1", "1"] and "method.label_file" in logged[0]
    _, fake, logged = _distill({}, ("cat", "dog"))
    assert fake.prompts == ["cat", "cat", "dog", "dog"] and not logged
    (tmp_path / "one.txt").write_text("tench\n")
    with pytest.raises(ConfigError, match="has 1 lines but the dataset has 2 classes"):
        _distill({"label_file": str(tmp_path / "one.txt")}, ())
