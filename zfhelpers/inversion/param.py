"""What is optimised: a batch of images in the model's input space (for the VGG stacks here,
mean-subtracted 0–255 RGB, as the authors' VGG-19)."""

from __future__ import annotations

import torch


def uniform_init(shape, generator: torch.Generator, scale: float = 0.1) -> torch.Tensor:
    """x₀ ~ U(−scale, scale) per pixel: the authors' start (about the mean grey image)."""
    return (torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1) * scale


def to_display(x: torch.Tensor, preprocess) -> torch.Tensor:
    """B×3×H×W model input → B×H×W×3 in [0, 1]."""
    return torch.stack([preprocess.denormalize(xi) for xi in x.detach().cpu()]).permute(0, 2, 3, 1)


def tv_denoise(images: torch.Tensor, weight: float = 0.2) -> torch.Tensor:
    """The authors' post-processing: Chambolle TV denoising (``weight`` on the [0, 1] scale)."""
    from skimage.restoration import denoise_tv_chambolle

    out = [denoise_tv_chambolle(im.numpy(), weight=weight, channel_axis=-1) for im in images.cpu()]
    return torch.from_numpy(__import__("numpy").stack(out)).float()
