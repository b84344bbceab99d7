# %% [markdown]
# # 11 · Feature Map Inversion: every filter's texture (Xia et al. 2016, arXiv 1608.04170)
#
# **Code inversion** (Mahendran & Vedaldi 2015) looks for an image whose code Φ_l(x) at a layer
# matches a target. Xia et al. change the target first: **FMI** keeps the image's code but moves
# all of it into **one filter k** — ψ(Φ)_k = Σ_c Φ_c, every other channel 0 — "enhance the assigned
# feature map and weaken the others". The image that best produces such a code shows what filter
# k responds to, spread over the whole picture: a texture. Their claim: *every filter extracts a
# specific texture, and textures from higher layers contain more colours and more intricate
# structures*. Below: the grid of their figure (layers relu1_2 … relu5_2 × filters 0–4), the plain
# inversion of each layer beside it, and the claim **measured**.
#
# **Model.** Offline: the **VGG16 conv stack of HED** (ImageNet-initialised, then fine-tuned for
# *edge detection*), with its max-pools replaced by average pools as the authors did on VGG19.
# Its upper layers are edge-tuned, so their textures are not ImageNet's. `profile = "paper"` uses
# torchvision's ImageNet VGG19 with average pooling at 512 px, as the authors ran it.
#
# **Optimiser.** `recipe = "modern"` (Adam, normalised code loss, TV prior, 1-px jitter; fits the
# CPU budget) or `"authors"` (their SGD schedule, up to 1000 steps, TV denoising afterwards).
# All filters of a layer — and the plain inversion — are one batch.

# %% tags=["parameters"]
profile = "offline"  # "offline" (VGG16-HED conv stack) or "paper" (VGG19, ImageNet)
image = "chelsea"  # content photo (data/images)
size = 64  # image side offline (the full preset uses 96); the paper profile uses the authors' 512
layers = ["relu1_2", "relu3_2", "relu5_2"]  # the full preset runs relu1_2 ... relu5_2
n_filters = 3  # the paper shows filters 0-4; dead filters are skipped (see below)
measure_filters = 0  # extra live filters per layer, inverted only for the measurement
recipe = "modern"  # "modern" or "authors"
steps = 40  # optimisation steps (the authors' recipe stops itself, at most 1000)
seed = 0
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import zfhelpers
from zfhelpers import inversion
from zfhelpers.analysis import texture
from zfhelpers.inversion.optimize import get_recipe
from zfhelpers.models.zoo import Preprocess
from zfhelpers.notebook import widgets

zfhelpers.notebook.setup(seed=seed)
lm = zfhelpers.load_model(None, profile, task="invert").avg_pooled()
size = 512 if profile == "paper" else size  # Xia et al. ran VGG19 at a 512 px long edge
pre = Preprocess(resize=size, crop=size, mean=lm.preprocess.mean, std=lm.preprocess.std)
sample = zfhelpers.prepare(image, pre)
rec = get_recipe(recipe).with_(max_steps=steps)
stamp = dict(model=lm.label, data=f"{sample.name} (data/images), {size}x{size} px, recipe {rec.name}, {steps} steps")
print(lm.label, "|", stamp["data"])

# %% [markdown]
# ## One batch per layer: the plain inversion and one FMI per filter
# The paper shows filters 0–4. Many filters of the edge-tuned HED stack never fire on this photo
# (the counts are printed below), and some fire at only a handful of positions; moving all energy
# into such a filter asks for a code no image produces, and the optimiser settles on the all-zero
# code (a flat grey image). So we invert the live filters in index order and show the first
# `n_filters` whose FMI did not collapse (pixel standard deviation above 0.06, where a flat grey
# start measures about 0.03), listing the others. FMI codes are never matched closely — no image
# puts a whole layer's energy into one filter — so the relative code error stays near 1 even for
# clear textures and cannot serve as the test.

# %%
results, shown, ks_all = {}, {}, {}
for layer in layers:
    with torch.no_grad():
        code = inversion.capture_codes(lm, sample.tensor, [layer])[layer]
    alive = (code[0].flatten(1).amax(1) > 0).nonzero().squeeze(1).tolist()
    ks = ks_all[layer] = alive[: n_filters + measure_filters]
    dead = [k for k in range(max(ks) + 1) if k not in alive]
    targets = torch.cat([code, inversion.feature_map(code.expand(len(ks), -1, -1, -1), torch.tensor(ks))])
    ck = zfhelpers.paths.build_dir() / "inversions" / f"fmi_{lm.name}_{sample.name}_{size}_{layer}_{rec.tag}_{'-'.join(map(str, ks))}.pt"
    results[layer] = inversion.invert(lm, {layer: targets}, rec, image_shape=(size, size), seed=seed,
                                      checkpoint=ck, desc=f"FMI {layer}")  # fmt: skip
    err = results[layer].error
    # collapsed = the optimiser settled on (nearly) the all-zero code: a flat grey image
    spread = results[layer].display[1:].flatten(1).std(1)
    ok = [i for i, v in enumerate(spread.tolist()) if v > 0.06]
    results[layer].ok = ok  # indices (into ks) of FMI images that did not collapse to the zero code
    shown[layer] = [ks[i] for i in ok[:n_filters]]
    print(f"{layer}: {len(alive)}/{code.shape[1]} filters alive on {sample.name}; dead: {dead or 'none'}; "
          f"collapsed FMI: {[ks[i] for i in range(len(ks)) if i not in ok] or 'none'}; shown: {shown[layer]}; "
          f"plain inversion rel. error {err[0]:.3f}")
n_cols = min(len(v) for v in shown.values())

# %% [markdown]
# ## The FMI grid
# Left: the content image and each layer's plain inversion (what the whole code keeps). Then one
# column per filter: the image whose code puts all of the layer's energy into that filter.
# FMI codes are not reachable exactly (no image makes one filter carry every channel's energy), so
# their relative code errors stay high; what matters is the texture the optimiser finds.

# %%
cols = 2 + n_cols
fig, axes = plt.subplots(len(layers), cols, figsize=(1.9 * cols, 1.95 * len(layers)), squeeze=False)
for r, layer in enumerate(layers):
    res = results[layer]
    panels = [(res.display[0].numpy(), "plain inversion")]
    panels += [(res.display[1 + i].numpy(), f"filter {ks_all[layer][i]}") for i in res.ok[:n_cols]]
    axes[r, 0].axis("off")
    for c, (img, title) in enumerate(panels, start=1):
        ax = axes[r, c]
        ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=7)
    axes[r, 1].set_ylabel(layer, fontsize=9)
axes[0, 0].imshow(sample.display)
axes[0, 0].set_title("content", fontsize=7)
fig.suptitle(f"Feature map inversion, {lm.name}", fontsize=10)
fig.tight_layout()
zfhelpers.save_figure(fig, f"11_fmi_grid_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## The claim, measured
# Over every FMI image of a layer: **colourfulness** (Hasler & Süsstrunk), **spectral entropy** of
# the luminance (broadband, "intricate" structure → high) and **structure-tensor coherence** (one
# orientation everywhere → 1). Mean ± standard deviation over the layer's filters, and each
# filter as a dot. "More colours" predicts colourfulness rising with depth; "more intricate
# structure" predicts entropy up and coherence down.

# %%
# NBVAL_CHECK_OUTPUT
# only FMI images that did not collapse to grey (see above)
metrics = {layer: texture.measure(results[layer].display[1:][results[layer].ok]) for layer in layers}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
x = np.arange(len(layers))
for ax, name in zip(axes, texture.METRICS):
    vals = [metrics[layer][name].numpy() for layer in layers]
    for i, v in enumerate(vals):
        ax.scatter(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, s=10, color="tab:blue", alpha=0.6)
    ax.errorbar(x, [v.mean() for v in vals], yerr=[v.std() for v in vals], color="black", capsize=4, marker="o")
    ax.set_xticks(x, layers, fontsize=8)
    ax.set_title(name, fontsize=9)
fig.suptitle(f"FMI textures per layer ({sum(len(v['coherence']) for v in metrics.values())} images)", fontsize=10)
fig.tight_layout()
zfhelpers.save_figure(fig, f"11_fmi_texture_metrics_{lm.name}", dpi=dpi, **stamp)
plt.show()
print(f"{'layer':8} {'n':>3}" + "".join(f"{name:>24}" for name in texture.METRICS))
for layer in layers:
    m = metrics[layer]
    print(f"{layer:8} {len(m['coherence']):>3}" + "".join(f"{float(v.mean()):>15.3f} ± {float(v.std()):<6.3f}" for v in m.values()))
first, last = metrics[layers[0]], metrics[layers[-1]]
print("first vs last layer:", ", ".join(f"{k} {float(first[k].mean()):.3f} -> {float(last[k].mean()):.3f}" for k in first))

# %% [markdown]
# The README reports these numbers for the full preset and says whether they bear the claim out on
# this (edge-tuned) network.
#
# ## Explore (interactive)
# Any layer and filter: its FMI image (computed on demand, same recipe and size).

# %% tags=["nbval-ignore-output"]
if interactive:

    def render(layer, channel):
        res = inversion.invert_code(lm, sample.tensor, layer=layer, mode="feature_map", channels=[channel], recipe=rec,
                                    seed=seed, progress=False)  # fmt: skip
        fig, axes = plt.subplots(1, 2, figsize=(6, 3))
        axes[0].imshow(sample.display)
        axes[1].imshow(res.display[0].numpy())
        axes[1].set_title(f"FMI {layer} filter {channel} (rel. error {float(res.error[0]):.2f})", fontsize=8)
        for ax in axes:
            ax.axis("off")
        return fig

    spatial = {n: lm.channels(n) for n in lm.layers if n.startswith("relu")}
    explorer = widgets.layer_channel_explorer(render, spatial, layer=layers[len(layers) // 2])
    display(explorer.ui)
