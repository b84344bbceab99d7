# %% [markdown]
# # 02 · The deconvnet: projecting single activations to pixels (ZF §2.1, Fig. 1)
#
# Zeiler & Fergus pick **one activation** in a layer, set every other activation of that layer to
# zero, and send it back down through an attached *deconvnet*: at each layer (i) **unpool** with the
# *switches* recorded in the forward pass, (ii) **rectify** the signal with a ReLU, (iii) **filter**
# with the transposed filters (no bias). Contrast normalisation is skipped on the way down.
#
# `zfhelpers.methods.backprop.project` does this with autograd hooks in one batched backward pass;
# `zfhelpers.methods.mirror.mirror_project` is the explicit layer-by-layer version for teaching. Both are
# shown and compared below.
#
# **Model.** Offline there are no ImageNet AlexNet/VGG weights. The offline model is the **VGG16 conv
# stack of HED** (13 conv + ReLU + real 2×2 max-pooling; ImageNet-initialised, then fine-tuned for
# *edge detection* on BSDS500; no classifier). Its low layers are ImageNet-like, and its upper layers
# are tuned towards contours, so upper-layer projections here show edges more than object parts.
# With `profile = "paper"` the notebook runs on torchvision's AlexNet (overlapping 3×3/2 pools, as ZF).

# %% tags=["parameters"]
profile = "offline"  # "offline" (VGG16 conv stack, HED weights) or "paper" (AlexNet)
model = ""  # zoo model; empty — vgg16_hed offline, alexnet on the paper profile
image = "chelsea"  # photo for the static figures
images = ["chelsea", "coffee", "astronaut", "rocket"]  # choices for the image slider
n_channels = 4  # channels per layer (the ones with the strongest single activation)
border = 2  # ignore activations this many cells from a map's edge (padding artefacts)
path_layer = ""  # layer for the Fig. 1 path; empty — the middle showcase layer
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt

import zfhelpers
from zfhelpers.data.display import projection_rgb
from zfhelpers.methods.mirror import mirror_project
from zfhelpers.methods.projection import unit_projection
from zfhelpers.methods.targets import strongest_channels
from zfhelpers.models.capture import capture_detached as record_activations
from zfhelpers.notebook import plots as viz
from zfhelpers.notebook import widgets

zfhelpers.notebook.setup(seed=0)
lm = zfhelpers.load_model(model, profile, task="project")
sample = zfhelpers.prepare(image, lm.preprocess)
layers = list(lm.showcase)
acts = {k: v[0] for k, v in record_activations(lm, sample.tensor, layers).items()}
stamp = dict(model=lm.label, data=f"{sample.name} (data/images)")
module_index = {int(p.split(".")[1]): n for n, p in lm.layers.items() if p.startswith("features.")}
print(f"{lm.name}: {lm.spec.summary}")

# %% [markdown]
# ## Fig. 1 on a real photo: the way down, step by step
# The strongest activation of the most active channel in the middle layer, followed through the
# explicit mirror. Each panel is the signal's norm over channels after an unpool or filter step;
# the red box on the input is where the final projection is non-zero. Activations within `border`
# cells of a map's edge are skipped: the HED stack fires strongly along the zero-padded border.

# %%
mid = path_layer or layers[len(layers) // 2]
channel = strongest_channels(acts[mid], 1, by="max", border=border)[0]
unit = unit_projection(lm, sample.tensor, layer=mid, channels=channel, border=border)
pos = tuple(unit.positions[0, 0].tolist())
trace = mirror_project(lm.model.features, sample.tensor, int(lm.layers[mid].split(".")[1]), channel, pos)
print(f"{mid} channel {channel} at {pos}: activation {unit.values.item():.2f}")
fig = viz.plot_deconv_path(sample.display, trace, layer_names=module_index)
zfhelpers.save_figure(fig, f"02_deconvnet_path_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Per-layer projections of the strongest activations
# For each layer, the channels whose single strongest activation on this image is largest: the
# feature map (red square: that activation), its projection to pixels (grey = 0), and the image
# patch under the projection. Lower layers respond to small oriented edges and colour; higher ones
# to larger, composite structures.
#
# What to notice on this offline model: from relu4_3 up, the *deconvnet* projections of the
# edge-tuned HED stack turn into high-frequency stripe textures spread over the receptive field,
# with little of the object visible. The deconvnet rule ignores the forward ReLU masks, so the
# signal is not confined to what was active for this image. Guided backpropagation, which keeps
# those masks, recovers the eyes for the same units (notebook 09 puts the three rules side by side).

# %%
rows = []
for name in layers:
    chans = strongest_channels(acts[name], n_channels, by="max", border=border)
    rows.append({"layer": name, "acts": acts[name], "projection": unit_projection(lm, sample.tensor, layer=name, channels=chans, border=border)})
fig = viz.plot_layer_projections(sample.display, rows,
                                 title=f"Deconvnet projections of single activations, {lm.name}, {sample.name}")
zfhelpers.save_figure(fig, f"02_projections_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Mirror vs engine
# The hook engine (autograd with the deconvnet ReLU rule) and the explicit mirror (MaxUnpool with
# the forward switches, summing collisions, + `conv_transpose2d` + ReLU) must give the same image.

# %%
# NBVAL_CHECK_OUTPUT
fig, axes = plt.subplots(3, len(layers), figsize=(2.3 * len(layers), 7))
for j, row in enumerate(rows):
    p = row["projection"]
    c, (y, x) = p.channels[0], p.positions[0, 0].tolist()
    mirror = mirror_project(lm.model.features, sample.tensor, int(lm.layers[row["layer"]].split(".")[1]), c, (y, x)).image[0]
    engine = p.maps[0, 0]
    rel = float((mirror - engine).abs().max() / engine.abs().max())
    print(f"{row['layer']:8} ch{c:<4} max |mirror - engine| / max |engine| < 1e-5: {rel < 1e-5}")
    for i, (img, label) in enumerate([(projection_rgb(engine), "engine (hooks)"),
                                      (projection_rgb(mirror), "mirror (explicit)"),
                                      ((mirror - engine).abs().sum(0).numpy(), f"|difference|, rel. max {rel:.1e}")]):
        axes[i, j].imshow(img, cmap="magma" if i == 2 else None)
        axes[i, j].set_title(f"{row['layer']} ch{c}: {label}" if i < 2 else label, fontsize=7)
        axes[i, j].axis("off")
fig.tight_layout()
zfhelpers.save_figure(fig, f"02_mirror_vs_engine_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Explore (interactive)
# Layer, channel and image: the strongest activation of that channel on that image, projected.

# %% tags=["nbval-ignore-output"]
from zfhelpers.notebook import explorers

# Opens on the channel whose strongest activation is largest; relu and pool layers (a conv unit projects
# like the ReLU unit above it). The forward pass per (image, layer) is cached: a channel move is one backward pass.
explorer = widgets.explore(interactive, lambda: explorers.projection_explorer(
    lm, images, image=image, layer=layers[2], border=border))
