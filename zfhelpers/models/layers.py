"""Friendly layer names for the zoo's architectures (``conv1`` … ``fc8`` for AlexNet, ``relu3_2``
for VGG, ``block1`` … for MobileNetV2), mapped to module paths."""

from __future__ import annotations

from torch import nn


def sequential_table(features: nn.Sequential, prefix: str, vgg_style: bool) -> dict[str, str]:
    """Name the conv/relu/pool modules of a plain conv stack.

    AlexNet style numbers convolutions 1..5 and names each pool after the conv before it (pool1,
    pool2, pool5). VGG style numbers blocks split by pools (conv3_2, relu3_2, pool3)."""
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
        elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
            table[f"pool{block if vgg_style else conv_count}"] = path
            block, conv_in_block = block + 1, 0
    return table


def classifier_table(classifier: nn.Sequential, prefix: str, first: int = 6) -> dict[str, str]:
    """``fc6``, ``relu6``, ``fc7``, ``relu7``, ``fc8`` of a torchvision classifier head."""
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
    return sequential_table(model.features, "features", vgg_style=False) | classifier_table(
        model.classifier, "classifier"
    )


def vgg_layers(model: nn.Module) -> dict[str, str]:
    table = sequential_table(model.features, "features", vgg_style=True)
    if hasattr(model, "classifier"):
        table |= classifier_table(model.classifier, "classifier")
    return table


def features_layers(model: nn.Module) -> dict[str, str]:
    """AlexNet-style names for a bare ``features`` conv stack (the twins)."""
    return sequential_table(model.features, "features", vgg_style=False)


def mobilenet_v2_layers(model: nn.Module) -> dict[str, str]:
    """``stem`` (3×3/2 conv), ``block1``..``block17`` (inverted residuals; their outputs are the
    linear bottlenecks, not rectified), ``head`` (1×1 conv to 1280, ReLU6), ``pooled`` (the
    average-pooled 1280-d vector: the output of the classifier's dropout, an identity in eval
    mode) and ``fc``."""
    n = len(model.features)
    table = {"stem": "features.0"}
    table |= {f"block{i}": f"features.{i}" for i in range(1, n - 1)}
    table["head"] = f"features.{n - 1}"
    table["pooled"] = "classifier.0"
    table["fc"] = "classifier.1"
    return table
