# %% [markdown]
# # 09 · Gradient, deconvnet and guided backpropagation (Springenberg et al. 2015, §3.4 and Fig. 1)
#
# All three methods send a signal from a unit (or a class score) back to the pixels; they differ only
# in what happens at each ReLU on the way down (`zfhelpers.methods.backprop`):
#
# | rule | backward through a ReLU with input $f$ |
# |---|---|
# | gradient (Simonyan et al. 2014) | $R_l = \mathbb 1[f_l>0]\,R_{l+1}$ |
# | deconvnet (Zeiler & Fergus 2014) | $R_l = \max(R_{l+1}, 0)$ |
# | guided backpropagation | $R_l = \mathbb 1[f_l>0]\,\max(R_{l+1},0)$ |
#
# Guided backprop combines the forward mask of the gradient with the backward rectification of the
# deconvnet. The last section runs the **model-randomisation sanity check** of Adebayo et al. (2018):
# re-initialise layers from the top down and measure how much each method's map changes.
#
# Offline: torchvision MobileNetV2 (ImageNet; ReLU6, no max-pool), plus the HED VGG16 conv stack for
# single units with real max-pool switches. Paper profile: torchvision VGG16.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (VGG16)
model = ""  # zoo model; empty — mobilenet_v2 offline, vgg16 on the paper profile
images = ["chelsea", "coffee", "rocket"]  # photos for the class-score maps (first one for units)
maxpool_model = "vgg16_hed"  # second model for the single-unit panel; "" to skip
border = 2  # skip units this close to a map's edge
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt
import torch

import zfhelpers
from zfhelpers.analysis.sanity import cascading_randomization
from zfhelpers.data.display import projection_rgb, support_box
from zfhelpers.methods.projection import class_projection, unit_projection
from zfhelpers.methods.rules import RULES
from zfhelpers.methods.targets import strongest_channels
from zfhelpers.models.capture import capture_detached as record_activations
from zfhelpers.notebook import widgets

zfhelpers.notebook.setup(seed=0)
lm = zfhelpers.load_model(model, profile, task="cam")
batch, samples = zfhelpers.load_batch(images, lm.preprocess)
data_label = ", ".join(images) + " (data/images)"
print(f"{lm.name}: {lm.spec.summary}")


def unit_panel(loaded, sample, layers):
    """Rows: the strongest unit of each layer; columns: patch, then the three rules (cropped)."""
    acts = {k: v[0] for k, v in record_activations(loaded, sample.tensor, layers).items()}
    fig, axes = plt.subplots(len(layers), 4, figsize=(8.4, 2.2 * len(layers)), squeeze=False)
    for r, layer in enumerate(layers):
        # under ReLU6 a unit clipped at 6 has zero gradient through itself: skip clipped units
        kw = dict(border=border, ceiling=loaded.spec.ceiling)
        ch = strongest_channels(acts[layer], 1, by="max", **kw)[0]
        maps = {rule: unit_projection(loaded, sample.tensor, layer=layer, channels=ch, rule=rule, **kw) for rule in RULES}
        y0, y1, x0, x1 = support_box(maps["deconvnet"].maps[0, 0])
        axes[r, 0].imshow(sample.display[y0:y1, x0:x1])
        axes[r, 0].set_title(f"{layer} ch{ch} patch", fontsize=8)
        for c, rule in enumerate(RULES, 1):
            axes[r, c].imshow(projection_rgb(maps[rule].maps[0, 0])[y0:y1, x0:x1])
            axes[r, c].set_title(rule, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"Single strongest units of {loaded.name} projected with each rule", fontsize=10)
    fig.tight_layout()
    return fig


# %% [markdown]
# ## Single high units
# For each of the upper showcase layers, the strongest unit on the first photo (on MobileNetV2 the
# strongest *unsaturated* one: a ReLU6 unit clipped at 6 passes no gradient through itself). Grey
# is zero. Without max-pooling, the deconvnet rule has no switches to localise the signal; its
# projections become regular grids that hardly depend on the image — the failure Springenberg
# et al. point out for all-convolutional nets. Guided backprop keeps the eye.

# %%
fig = unit_panel(lm, samples[0], list(lm.showcase[2:]))
zfhelpers.save_figure(fig, f"09_rules_units_{lm.name}", dpi=dpi, model=lm.label, data=f"{samples[0].name} (data/images)")
plt.show()

# %% [markdown]
# The same on a network **with max-pooling** (the HED VGG16 conv stack offline, edge-tuned). Here the
# deconvnet's switches exist; still, from relu4_3 up its projections lose the image, while guided
# backprop keeps it: the forward ReLU masks carry most of the image-specific information.

# %%
if maxpool_model:
    mp = zfhelpers.load_model(maxpool_model, profile)
    s_mp = zfhelpers.prepare(images[0], mp.preprocess)
    fig = unit_panel(mp, s_mp, list(mp.showcase[2:]))
    zfhelpers.save_figure(fig, f"09_rules_units_{mp.name}", dpi=dpi, model=mp.label, data=f"{s_mp.name} (data/images)")
    plt.show()

# %% [markdown]
# ## Class scores
# The top-1 class logit of each photo sent back with each rule. The gradient is noisy, the
# deconvnet (no switches in this network) returns the same checkerboard for every photo, and
# guided backprop draws the object's edges.

# %%
# NBVAL_CHECK_OUTPUT
with torch.inference_mode():
    probs = lm.model(batch).softmax(1)
top1 = probs.argmax(1)
class_maps = {rule: class_projection(lm, batch, target=top1, rule=rule) for rule in RULES}
fig, axes = plt.subplots(len(samples), 4, figsize=(8.4, 2.3 * len(samples)), squeeze=False)
for r, s in enumerate(samples):
    name = lm.categories[int(top1[r])]
    print(f"{s.name:10} top-1 {name} ({probs[r, top1[r]]:.2f})")
    axes[r, 0].imshow(s.display)
    axes[r, 0].set_title(f"{name} {probs[r, top1[r]]:.2f}", fontsize=8)
    for c, rule in enumerate(RULES, 1):
        axes[r, c].imshow(projection_rgb(class_maps[rule][r]))
        axes[r, c].set_title(rule, fontsize=8)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"Top-1 class score backpropagated to the pixels, {lm.name}", fontsize=10)
fig.tight_layout()
zfhelpers.save_figure(fig, f"09_rules_class_{lm.name}", dpi=dpi, model=lm.label, data=data_label)
plt.show()

# %% [markdown]
# ## Sanity check: cascading randomisation (Adebayo et al. 2018)
# Layers are re-initialised one more at a time from the top (classifier) down. A map that still
# looks like the original after the weights are gone reflects the image more than the model.
# Similarity to the original map: Spearman rank correlation of |map| and SSIM, averaged over photos.

# %%
steps = {rule: cascading_randomization(lm, lambda m, rule=rule: class_projection(m, batch, target=top1, rule=rule))
         for rule in RULES}
labels = [s.randomized_up_to for s in steps["gradient"]]
show = sorted({0, 1, 2, len(labels) // 4, len(labels) // 2, (3 * len(labels)) // 4, len(labels) - 1})
fig = plt.figure(figsize=(2 * len(show) + 4, 6.5))
gs = fig.add_gridspec(len(RULES), len(show) + 2)
for r, rule in enumerate(RULES):
    for c, i in enumerate(show):
        ax = fig.add_subplot(gs[r, c])
        m = steps[rule][i].maps[0]
        ax.imshow(m / max(float(torch.quantile(m.flatten(), 0.995)), 1e-12), cmap="gray", vmin=0, vmax=1)
        ax.set_title(("original" if i == 0 else f"↓ {labels[i]}") + f"\nρ={steps[rule][i].spearman:.2f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        if c == 0:
            ax.set_ylabel(rule, fontsize=9)
ax = fig.add_subplot(gs[:, len(show):])
for rule, color in zip(RULES, ["tab:blue", "tab:green", "tab:purple"]):
    ax.plot(range(len(labels)), [s.spearman for s in steps[rule]], marker="o", ms=3, color=color, label=f"{rule} (Spearman)")
    ax.plot(range(len(labels)), [s.ssim for s in steps[rule]], ls="--", lw=1, color=color, label=f"{rule} (SSIM)")
ax.set_xticks(range(len(labels)))
ax.set_xticklabels(labels, rotation=90, fontsize=6)
ax.set_xlabel("randomised from the top down to …", fontsize=8)
ax.set_ylabel(f"similarity to the trained model's map (mean of {len(samples)} photos)", fontsize=8)
ax.axhline(0, color="0.6", lw=0.5)
ax.legend(fontsize=7)
fig.suptitle(f"Cascading randomisation of {lm.name}: class-score maps of '{samples[0].name}'", fontsize=10)
fig.tight_layout()
zfhelpers.save_figure(fig, f"09_sanity_{lm.name}", dpi=dpi, model=lm.label, data=data_label)
plt.show()
for rule in RULES:
    half = steps[rule][len(labels) // 2]
    print(f"{rule:10} after randomising down to {half.randomized_up_to}: Spearman {half.spearman:.2f}, SSIM {half.ssim:.2f}")

# %% [markdown]
# ## Explore (interactive)
# Any layer and channel of the first photo, all three rules.

# %% tags=["nbval-ignore-output"]
if interactive:
    spatial = {n: lm.channels(n) for n in lm.layers if len(lm.shape(n)) == 3}

    def render(layer, channel):
        s = samples[0]
        maps = {rule: unit_projection(lm, s.tensor, layer=layer, channels=channel, rule=rule, border=border) for rule in RULES}
        fig, axes = plt.subplots(1, 4, figsize=(11, 3))
        axes[0].imshow(s.display)
        for ax, rule in zip(axes[1:], RULES):
            ax.imshow(projection_rgb(maps[rule].maps[0, 0]))
            ax.set_title(f"{rule}, activation {maps[rule].values.item():.2f}", fontsize=8)
        for ax in axes:
            ax.axis("off")
        return fig

    explorer = widgets.layer_channel_explorer(render, spatial, layer=lm.showcase[2])
    display(explorer.ui)
