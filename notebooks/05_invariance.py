# %% [markdown]
# # 05 · Invariance to translation, scale and rotation (ZF §4.2, Fig. 5)
#
# Zeiler & Fergus transform five images and plot, against the amount of transformation, the
# Euclidean distance between the feature vectors of the original and the transformed image at
# **layer 1** and **layer 7**, and the **probability of the true class**. Their reading: small
# transformations change layer 1 dramatically but the top feature layer much less, which responds
# quasi-linearly to translation and scale; the output is stable to translation and scale but not to
# rotation, except for rotationally symmetric objects.
#
# Offline the network is MobileNetV2: "layer 1" is its first convolution block (`stem`) and
# "layer 7" its penultimate representation (the 1280-d average-pooled features entering the
# classifier). The photos are five committed images with an unambiguous ImageNet class, one of them
# an orange — rotationally symmetric, the role of the paper's entertainment center. Ranges follow the
# paper as recalled in papers.md (vertical shift ±60 px, zoom 1–1.8, rotation 0–350°); pixels
# uncovered by a transform are filled with the dataset mean.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (AlexNet — conv1 and fc7)
model = ""  # zoo model; empty — the profile's default
images = ["chelsea", "coffee", "squirrel", "orange", "camera"]  # need a class in data/images/labels.json
full_ranges = False  # True — the paper's step counts (13 / 9 / 36 steps); False — every other/third step
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt
import numpy as np

import zfhelpers
from zfhelpers.analysis import invariance
from zfhelpers.data.images import image_labels

zfhelpers.notebook.setup(seed=0)
lm = zfhelpers.load_model(model or None, profile)
labels = [image_labels()[name] for name in images]
batch, samples = zfhelpers.load_batch(images, lm.preprocess)
low = lm.role("layer1")
high = lm.role("layer7")  # the penultimate vector (MobileNetV2: the pooled 1280-d features)
ranges = {k: (v if full_ranges else v[:: 3 if k == "rotate" else 2]) for k, v in invariance.PAPER_RANGES.items()}
curves = {kind: invariance.invariance_curves(lm, batch, labels, kind, amounts, low=low, high=high)
          for kind, amounts in ranges.items()}
print(f"{lm.name}: low layer {low} ({int(np.prod(lm.shape(low)))}-d), high = input of {high}")

# %%
units = {"translate": "vertical shift (px)", "scale": "zoom factor", "rotate": "rotation (degrees)"}
examples = {"translate": 40, "scale": 1.6, "rotate": 90}
fig, axes = plt.subplots(3, 4, figsize=(15, 10))
colors = plt.cm.tab10(np.arange(len(images)))
for r, (kind, c) in enumerate(curves.items()):
    shown = invariance.transform(batch, kind, examples[kind])
    tiles = [lm.preprocess.denormalize(t).permute(1, 2, 0).numpy() for t in shown]
    axes[r, 0].imshow(np.concatenate(tiles, axis=1))
    axes[r, 0].set_title(f"{kind} by {examples[kind]}", fontsize=9)
    axes[r, 0].axis("off")
    for ax, values, title in [(axes[r, 1], c.d_low, f"‖Δ {low}‖ (layer-1 stand-in)"),
                              (axes[r, 2], c.d_high, "‖Δ penultimate‖ (layer-7 stand-in)"),
                              (axes[r, 3], c.p_true, "p(true class)")]:
        for i, name in enumerate(images):
            ax.plot(c.amounts, values[i], marker="o", ms=2.5, color=colors[i], label=name)
        ax.set_xlabel(units[kind], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[r, 3].set_ylim(-0.02, 1.02)
axes[0, 3].legend(fontsize=7)
fig.suptitle(f"Invariance (ZF Fig. 5), {lm.name}", fontsize=11)
fig.tight_layout()
zfhelpers.save_figure(fig, f"05_invariance_{lm.name}", dpi=dpi, model=lm.label, data=", ".join(images) + " (data/images)")
plt.show()

# %% [markdown]
# ## The paper's claims, measured
# * **"Small transformations change layer 1 dramatically"** — the distance at the smallest step as a
#   fraction of the largest distance (1 = saturated at once), low vs high layer.
# * **"Quasi-linear for translation and scaling"** at the top — R² of a straight line through
#   (|amount|, distance).
# * **"Output stable to translation and scale, not rotation (except symmetric objects)"** — the lowest
#   p(true class) over the range, per image.

# %%
rows = []
for kind, c in curves.items():
    frac_low = np.mean([invariance.first_step_fraction(c.amounts, d) for d in c.d_low])
    frac_high = np.mean([invariance.first_step_fraction(c.amounts, d) for d in c.d_high])
    r2_low = np.mean([invariance.linearity_r2(c.amounts, d) for d in c.d_low])
    r2_high = np.mean([invariance.linearity_r2(c.amounts, d) for d in c.d_high])
    pmin = {name: float(c.p_true[i].min()) for i, name in enumerate(images)}
    rows.append((kind, frac_low, frac_high, r2_low, r2_high, pmin))
print(f"{'transform':10} {'first-step fraction low/high':>30} {'linearity R² low/high':>24}   min p(true) per image")
for kind, fl, fh, rl, rh, pmin in rows:
    print(f"{kind:10} {fl:14.2f} / {fh:5.2f} {rl:16.2f} / {rh:5.2f}      " + ", ".join(f"{k} {v:.2f}" for k, v in pmin.items()))
