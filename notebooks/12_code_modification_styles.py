# %% [markdown]
# # 12 · Random and purposeful code modification: style as texture primitives (Xia et al. 2016)
#
# If every filter stands for a texture (notebook 11), an image's *style* could be how its code's
# energy is shared among filters. Xia et al. test this two ways:
#
# * **RMCI** (random modification): keep each channel's spatial pattern and the layer's total
#   energy, but reallocate the energy across channels in random proportions,
#   ψ(Φ)_c = S · r_c · Φ_c / s_c with r = v / Σv and v_c ~ N(3, 1000²) as in their code. Inverting
#   such codes gives the content image "in a random style".
# * **PMCI** (purposeful modification): style transfer whose style term matches only the
#   **channel sums** Φ·1 of relu1_1 … relu4_1 (content relu2_2, α = 10, β = 1), set beside Gatys et
#   al.'s **Gram-matrix** loss with the same weights. If channel energies alone carry style, the two
#   should look alike — the paper's account of why Gram matrices capture style (the Gram diagonal
#   *is* the energy per channel, squared).
#
# **Model** as in notebook 11: offline the HED VGG16 conv stack (edge-fine-tuned) with average
# pooling; `profile = "paper"` torchvision's ImageNet VGG19. **Paintings**: Van Gogh, *The Starry
# Night* (1889) and Munch, *The Scream* (1893), both public domain, in the copies Debian ships
# (`data/paintings/`, see data/README.md).

# %% tags=["parameters"]
profile = "offline"  # "offline" (VGG16-HED conv stack) or "paper" (VGG19, ImageNet)
image = "chelsea"  # content photo (data/images)
paintings = ["starry_night"]  # styles, from data/paintings (the full preset adds scream)
size = 64  # image side offline (the full preset uses 96); the paper profile uses the authors' 512
rmci_layers = ["relu1_1", "relu3_1", "relu5_1"]  # the full preset runs relu1_1 ... relu5_1
draws = 2  # random modifications per layer
recipe = "modern"  # "modern" or "authors"
steps = 40  # optimisation steps for RMCI
style_steps = 60  # optimisation steps for PMCI and Gatys
seed = 0
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt
import torch

import zfhelpers
from zfhelpers import inversion
from zfhelpers.inversion.optimize import get_recipe
from zfhelpers.inversion.style import CONTENT_LAYER, STYLE_LAYERS
from zfhelpers.models.zoo import Preprocess
from zfhelpers.notebook import widgets
from zfhelpers.paths import data_dir

zfhelpers.notebook.setup(seed=seed)
lm = zfhelpers.load_model(None, profile, task="invert").avg_pooled()
size = 512 if profile == "paper" else size  # Xia et al. ran VGG19 at a 512 px long edge
pre = Preprocess(resize=size, crop=size, mean=lm.preprocess.mean, std=lm.preprocess.std)
content = zfhelpers.prepare(image, pre)
styles = {p: zfhelpers.prepare(data_dir() / "paintings" / f"{p}.jpg", pre) for p in paintings}
rec = get_recipe(recipe).with_(max_steps=steps)
stamp = dict(model=lm.label, data=f"{content.name} + {', '.join(paintings)} (public domain), {size}px, recipe {rec.name}")
print(lm.label, "|", stamp["data"])

# %% [markdown]
# ## RMCI: two random energy reallocations per layer
# One batch per layer: the `draws` modified codes are inverted together (seeded draws).

# %%
rmci = {}
for layer in rmci_layers:
    ck = zfhelpers.paths.build_dir() / "inversions" / f"rmci_{lm.name}_{content.name}_{size}_{layer}_{rec.tag}_{draws}.pt"
    rmci[layer] = inversion.invert_code(lm, content.tensor, layer=layer, mode="random", draws=draws, recipe=rec, seed=seed,
                                        checkpoint=ck)  # fmt: skip
fig, axes = plt.subplots(draws, len(rmci_layers) + 1, figsize=(2 * (len(rmci_layers) + 1), 2.05 * draws), squeeze=False)
for d in range(draws):
    axes[d, 0].imshow(content.display) if d == 0 else None
    axes[d, 0].axis("off")
    for j, layer in enumerate(rmci_layers):
        axes[d, j + 1].imshow(rmci[layer].display[d].numpy())
        axes[d, j + 1].set_xticks([])
        axes[d, j + 1].set_yticks([])
        if d == 0:
            axes[d, j + 1].set_title(layer, fontsize=9)
        if j == 0:
            axes[d, j + 1].set_ylabel(f"draw {d + 1}", fontsize=8)
axes[0, 0].set_title("content", fontsize=9)
fig.suptitle("Random modification of code, inverted (RMCI)", fontsize=10)
fig.tight_layout()
zfhelpers.save_figure(fig, f"12_rmci_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## PMCI vs Gatys
# Same content, same style images, same weights and optimiser; only the style statistic differs:
# channel sums (C numbers per layer) vs Gram matrices (C² numbers per layer).

# %%
srec = get_recipe(recipe).with_(max_steps=style_steps)
transfers = {}
for p, s in styles.items():
    for method in ("gatys", "pmci"):
        ck = zfhelpers.paths.build_dir() / "inversions" / f"style_{lm.name}_{content.name}_{p}_{size}_{method}_{srec.tag}.pt"
        transfers[p, method] = inversion.style_transfer(lm, content.tensor, s.tensor, method, recipe=srec, seed=seed,
                                                        checkpoint=ck)  # fmt: skip

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    for p, s in styles.items():
        s_codes = inversion.capture_codes(lm, s.tensor, list(STYLE_LAYERS))
        for method in ("gatys", "pmci"):
            out = inversion.capture_codes(lm, transfers[p, method].images, list(STYLE_LAYERS))
            sums = [float((o.flatten(2).sum(2) - c.flatten(2).sum(2)).norm() / c.flatten(2).sum(2).norm())
                    for o, c in zip(out.values(), s_codes.values())]  # fmt: skip
            grams = [float((inversion.objectives.gram(o) - inversion.objectives.gram(c)).norm()
                           / inversion.objectives.gram(c).norm()) for o, c in zip(out.values(), s_codes.values())]  # fmt: skip
            print(f"{p:13} {method:6} rel. error of channel sums {sum(sums) / len(sums):.2f}, "
                  f"of Gram matrices {sum(grams) / len(grams):.2f} (mean over {', '.join(STYLE_LAYERS)})")

# %%
fig, axes = plt.subplots(len(styles), 4, figsize=(8.4, 2.2 * len(styles)), squeeze=False)
for r, (p, s) in enumerate(styles.items()):
    for c, (img, title) in enumerate([(content.display, "content"), (s.display, f"style: {p}"),
                                      (transfers[p, "gatys"].display[0].numpy(), "Gatys (Gram)"),
                                      (transfers[p, "pmci"].display[0].numpy(), "PMCI (channel sums)")]):  # fmt: skip
        axes[r, c].imshow(img)
        axes[r, c].set_title(title, fontsize=8)
        axes[r, c].axis("off")
fig.suptitle(f"Style transfer, content {CONTENT_LAYER}, style {', '.join(STYLE_LAYERS)}, alpha 10, beta 1", fontsize=9)
fig.tight_layout()
zfhelpers.save_figure(fig, f"12_pmci_vs_gatys_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# What the numbers say: each method drives down its own statistic; the question is how much of the
# *other* statistic comes along. If Gatys' result also matches the channel sums, and PMCI's looks
# stylised, channel energies carry much of what a Gram matrix does.
#
# ## Explore (interactive)
# RMCI of any layer with one more seeded draw (the channel slider picks the draw's seed).

# %% tags=["nbval-ignore-output"]
if interactive:

    def render(layer, channel):
        res = inversion.invert_code(lm, content.tensor, layer=layer, mode="random", draws=1, recipe=rec, seed=channel,
                                    progress=False)  # fmt: skip
        fig, ax = plt.subplots(figsize=(3, 3))
        ax.imshow(res.display[0].numpy())
        ax.set_title(f"RMCI {layer}, draw seed {channel}", fontsize=8)
        ax.axis("off")
        return fig

    explorer = widgets.layer_channel_explorer(render, {n: 100 for n in lm.layers if n.startswith("relu")},
                                              layer=rmci_layers[0])  # fmt: skip
    display(explorer.ui)
