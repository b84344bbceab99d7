"""The twins trained here (ZF §3–4 at CPU scale): three variants, their committed checkpoints, and
loading them like zoo models.

* ``zf`` — ZF-style twin (7×7/2 first layer) with filter-RMS renormalisation (radius 0.1);
* ``alexnet`` — AlexNet-style twin (11×11/4 first layer), same recipe;
* ``zf_norenorm`` — the ZF twin trained *without* renormalisation (ZF Fig. 6a).

Each is trained on the first :data:`TRAIN_SUBSET` Fashion-MNIST training images for :data:`EPOCHS`
epochs (a third of the set and 10 epochs keep all three runs near 25 minutes on two cores).
:func:`export` writes only the conv stack, in float16, at the schedule's epochs (a few MB in all)
to ``data/twins/`` with a manifest of sha256 digests and the training history; :func:`load_twin`
verifies the digest before ``torch.load(weights_only=True)``. ``python -m zfhelpers train-twins``
regenerates everything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..data import fashion
from ..io import atomic_torch_save, atomic_write
from ..paths import build_dir, data_dir
from .layers import features_layers, vgg_layers
from .stack import FeatureStack
from .training import TrainConfig, train
from .twins import INPUT_SIZE, make_twin

EPOCHS = 10
SCHEDULE = (1, 2, 3, 5, 7, 10)
TRAIN_SUBSET = 20_000
VARIANTS: dict[str, TrainConfig] = {
    "zf": TrainConfig(arch="zf", epochs=EPOCHS, schedule=SCHEDULE, train_subset=TRAIN_SUBSET),
    "alexnet": TrainConfig(arch="alexnet", epochs=EPOCHS, schedule=SCHEDULE, train_subset=TRAIN_SUBSET),
    "zf_norenorm": TrainConfig(arch="zf", epochs=EPOCHS, schedule=SCHEDULE, train_subset=TRAIN_SUBSET,
                               renorm_radius=None),
    # the explanatory graph's network (notebook 13): critters vs background / scattered parts
    "parts_vgg": TrainConfig(arch="parts_vgg", epochs=6, schedule=(6,), batch_size=64),
}  # fmt: skip
CRITTERS_TRAIN, CRITTERS_TEST = 6000, 1000
#: The explanatory graph's layers on the parts net: 28, 28, 14, 14 units at 112 px (VGG16: conv4_2 … conv5_3)
GRAPH_LAYERS = ("relu3_1", "relu3_2", "relu4_1", "relu4_2")
#: The paper's node densities ρ for those layers (N = ⌈ρhw⌉: 40 nodes per filter at 28×28, 20 at 14×14)
GRAPH_DENSITIES = (0.05, 0.05, 0.1, 0.1)
DESCRIPTIONS = {
    "zf": "ZF-style twin (7x7/2 conv1), RMS renormalisation 0.1",
    "alexnet": "AlexNet-style twin (11x11/4 conv1), RMS renormalisation 0.1",
    "zf_norenorm": "ZF-style twin trained without RMS renormalisation",
    "parts_vgg": "small VGG-style net (2 convs per block) for the explanatory graph",
}
#: Which epochs :func:`export` keeps per variant (Fig. 4 needs the ZF twin's whole schedule).
EXPORTED_EPOCHS = {"zf": SCHEDULE, "alexnet": (EPOCHS,), "zf_norenorm": (EPOCHS,), "parts_vgg": (6,)}
CRITTER_MEAN, CRITTER_STD = 0.5, 0.25


def critter_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 critters → the parts net's input."""
    return (images.float() / 255 - CRITTER_MEAN) / CRITTER_STD


def _data(variant: str):
    if variant == "parts_vgg":
        from ..data import critters

        tr, te = critters.make(CRITTERS_TRAIN, seed=1), critters.make(CRITTERS_TEST, seed=2)
        return tr[:2], te[:2], critter_input
    return fashion.load("train"), fashion.load("test"), fashion.to_model_input


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown twin {variant!r}; valid: {', '.join(VARIANTS)}")
    return variant


def twins_dir() -> Path:
    return data_dir() / "twins"


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_variant(variant: str, work_dir: Path | None = None, *, progress: bool = True,
                  stop_after: int | None = None) -> dict:  # fmt: skip
    """Train (or resume) one variant under ``work_dir`` (default ``build/twins/<variant>``)."""
    cfg = VARIANTS[check_variant(variant)]
    work_dir = Path(work_dir) if work_dir else build_dir() / "twins" / variant
    train_data, test_data, prepare = _data(variant)
    return train(cfg, work_dir, train_data, test_data, progress=progress, stop_after=stop_after,
                 prepare=prepare)  # fmt: skip


def export(variant: str, work_dir: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    """Copy the conv stacks of a finished run, float16, to ``data/twins`` and update the manifest."""
    cfg = VARIANTS[check_variant(variant)]
    work_dir = Path(work_dir) if work_dir else build_dir() / "twins" / variant
    out_dir = Path(out_dir) if out_dir else twins_dir()
    last = torch.load(work_dir / f"{cfg.arch}_last.pt", map_location="cpu", weights_only=True)
    if last["epoch"] < cfg.epochs:
        raise RuntimeError(f"{variant}: training stopped at epoch {last['epoch']} of {cfg.epochs}; resume it first")
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    written, files = [], {}
    for epoch in EXPORTED_EPOCHS[variant]:
        path = work_dir / f"{cfg.arch}_epoch{epoch:03d}.pt"
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != last.get("fingerprint"):  # left by an earlier run with other settings
            raise RuntimeError(f"{path} belongs to another training run than {cfg.arch}_last.pt; rerun "
                               f"`python -m zfhelpers train-twins {variant}` (it starts afresh)")  # fmt: skip
        features = {k: v.half() for k, v in state["model"].items() if k.startswith("features.")}
        path = atomic_torch_save(features, out_dir / f"{variant}_epoch{epoch:03d}.pt")
        files[str(epoch)] = {"file": path.name, "sha256": _sha256(path)}
        written.append(path)
    manifest[variant] = {
        "description": DESCRIPTIONS[variant],
        "config": json.loads(last["config"]),
        "history": json.loads(last["history"]),
        "epochs": files,
        "data": (
            f"procedural critters (zfhelpers.data.critters), {CRITTERS_TRAIN} training / {CRITTERS_TEST} test images"
            if variant == "parts_vgg"
            else f"Fashion-MNIST (Zalando, MIT), first {cfg.train_subset} training images; test: all 10 000"
        ),
    }
    atomic_write(manifest_path, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1) + "\n"))
    return written


def manifest() -> dict:
    path = twins_dir() / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `python -m zfhelpers train-twins` to regenerate the twins")
    return json.loads(path.read_text())


def epochs(variant: str) -> list[int]:
    """Epochs with a committed checkpoint."""
    return sorted(int(e) for e in manifest()[check_variant(variant)]["epochs"])


def history(variant: str) -> list[dict]:
    """Per-epoch training loss and test accuracy of the committed run."""
    return manifest()[check_variant(variant)]["history"]


def load_twin(variant: str = "zf", epoch: int | None = None):
    """A committed twin as a :class:`zfhelpers.models.zoo.LoadedModel` (conv stack only, float32).

    ``epoch=None`` is the final one. The file's sha256 is checked against the manifest."""
    from .zoo import LoadedModel, ModelSpec, Preprocess, Roles

    info = manifest()[check_variant(variant)]
    epoch = max(EXPORTED_EPOCHS[variant]) if epoch is None else int(epoch)
    if str(epoch) not in info["epochs"]:
        raise ValueError(f"no checkpoint of {variant} at epoch {epoch}; valid epochs: {', '.join(info['epochs'])}")
    entry = info["epochs"][str(epoch)]
    path = twins_dir() / entry["file"]
    digest = _sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(f"{path}: sha256 {digest} does not match the manifest ({entry['sha256']}); the file is "
                         f"corrupt or was changed: restore it (git checkout -- {path}) or regenerate the twins "
                         f"(python -m zfhelpers train-twins {variant})")  # fmt: skip
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = FeatureStack(make_twin(VARIANTS[variant].arch).features)  # conv stack only: all figures need
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.eval().requires_grad_(False)
    acc = next((h["test_accuracy"] for h in info["history"] if h["epoch"] == epoch), None)
    parts = variant == "parts_vgg"
    mean, std = ((CRITTER_MEAN,) * 3, (CRITTER_STD,) * 3) if parts else ((fashion.MEAN,) * 3, (fashion.STD,) * 3)
    spec = ModelSpec(
        name=f"twin_{variant}" if not parts else variant, profile="offline", weights=entry["file"],
        build=lambda: model, layer_table=vgg_layers if parts else features_layers,
        summary=f"{info['description']}, {'critters' if parts else 'Fashion-MNIST'}, epoch {epoch}"
        + (f", test acc {acc:.1%}" if acc is not None else ""),
        preprocess=Preprocess(resize=INPUT_SIZE, crop=INPUT_SIZE, mean=mean, std=std),
        classifier=False,
        roles=Roles(layer1="relu1_1", layer5="relu4_2", showcase=GRAPH_LAYERS) if parts else Roles(
            layer1="relu1", layer5="relu5", layer5_vector="pool5",
            showcase=("relu1", "relu2", "relu3", "relu4", "relu5")),
    )  # fmt: skip
    return LoadedModel(
        name=spec.name, model=model, layers=spec.layer_table(model), preprocess=spec.preprocess,
        categories=["background", "critter"] if parts else list(fashion.CLASSES), spec=spec,
        provenance={"weights": entry["file"], "file": str(path), "sha256": digest, "epoch": epoch,
                    "description": info["description"], "data": info["data"], "license": "trained here (MIT data)"},
    )  # fmt: skip
