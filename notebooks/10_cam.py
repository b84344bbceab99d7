# %% [markdown]
# # 10 · Class activation maps: CAM, Grad-CAM, Grad-CAM++, Guided Grad-CAM
#
# The third family of CNN visualisation in seed 002: *where in the image is the evidence for a
# class?* (`zfhelpers.methods.cam`, one call per method, batched, any target class, any conv layer.)
#
# * **CAM** (Zhou et al. 2016): needs global average pooling + one linear layer;
#   $M_c=\sum_k w_{ck}A_k$.
# * **Grad-CAM** (Selvaraju et al. 2017): channel weights are the spatially averaged gradients;
#   on a GAP + linear network it equals ReLU(CAM)/Z exactly (tested).
# * **Grad-CAM++** (Chattopadhyay et al. 2018): pixel-weighted gradients.
# * **Guided Grad-CAM**: guided backpropagation (notebook 09) × Grad-CAM, high resolution and
#   class-discriminative.
#
# Baselines shown beside them: the same method on a **randomly initialised** copy of the network and
# a **Sobel edge** map that ignores the model, plus the cascading-randomisation sanity check.
# Offline model: MobileNetV2 (ImageNet; its head ends in GAP + linear, so CAM applies). Paper: VGG16.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (VGG16)
model = ""  # zoo model; empty — mobilenet_v2 offline, vgg16 on the paper profile
images = ["chelsea", "coffee", "rocket"]  # photos (data/images or paths)
top_k = 3  # classes per photo
layer = ""  # conv layer for the maps; empty — the model's last spatial layer
pair = ["chelsea", "coffee"]  # two photos put side by side for the two-object test
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import zfhelpers
from zfhelpers.analysis.sanity import cascading_randomization
from zfhelpers.data.display import side_by_side
from zfhelpers.methods import cam
from zfhelpers.notebook import plots as viz
from zfhelpers.notebook import widgets

zfhelpers.notebook.setup(seed=0)
lm = zfhelpers.load_model(model, profile, task="cam")
layer = layer or cam.default_layer(lm)
batch, samples = zfhelpers.load_batch(images, lm.preprocess)
with torch.inference_mode():
    probs = lm.model(batch).softmax(1)
methods = list(cam.applicable(lm))
data_label = ", ".join(images) + " (data/images)"
print(f"{lm.name}, maps from layer {layer} {tuple(lm.shape(layer))}; methods: {', '.join(methods)}")

# %% [markdown]
# ## Top-3 classes of each photo, every method
# Heat maps are min–max scaled per map; Guided Grad-CAM is shown as |signal| (grey = none).

# %%
# NBVAL_CHECK_OUTPUT
rows = [(i, r) for i in range(len(samples)) for r in range(1, top_k + 1)]
fig, axes = plt.subplots(len(rows), len(methods) + 1, figsize=(2.35 * (len(methods) + 1), 2.05 * len(rows)), squeeze=False)
for rank in range(1, top_k + 1):
    results = {m: cam.run(m, lm, batch, target=f"top{rank}", layer=layer) for m in methods}
    for i, s in enumerate(samples):
        row = rows.index((i, rank))
        t = int(results[methods[0]].targets[i])
        axes[row, 0].imshow(s.display)
        axes[row, 0].set_title(f"#{rank} {lm.categories[t]} {probs[i, t]:.2f}", fontsize=7)
        axes[row, 0].axis("off")
        print(f"{s.name:9} #{rank} {lm.categories[t]}")
        for j, m in enumerate(methods, 1):
            res = results[m]
            if m == "guided_gradcam":
                g = res.guided[i].abs().sum(0)
                axes[row, j].imshow(g / max(float(torch.quantile(g.flatten(), 0.995)), 1e-12), cmap="gray", vmin=0, vmax=1)
                axes[row, j].axis("off")
            else:
                viz.plot_heat_overlay(axes[row, j], s.display, cam.normalize(res.upsampled)[i])
            if row == 0:
                axes[row, j].set_title(m, fontsize=8)
fig.suptitle(f"Class activation maps, {lm.name} layer {layer}", fontsize=10)
fig.tight_layout(rect=(0, 0, 1, 0.985))
zfhelpers.save_figure(fig, f"10_cam_methods_{lm.name}", dpi=dpi, model=lm.label, data=data_label)
plt.show()

# %% [markdown]
# ## Two objects, two classes
# Two photos side by side; for each photo's own top class, how much of the Grad-CAM mass falls on
# its half of the picture? A class-discriminative map puts it there.

# %%
left, right = (np.asarray(zfhelpers.load_image(p).resize((224, 224))) for p in pair)
pair_rgb = side_by_side(left, right)  # 224×448, uint8; fed whole (no crop)
disp2 = pair_rgb / 255.0
x2 = lm.preprocess.normalize(torch.from_numpy(pair_rgb).permute(2, 0, 1).float() / 255)[None]
with torch.inference_mode():
    p_single = lm.model(torch.cat([zfhelpers.prepare(p, lm.preprocess).tensor for p in pair])).softmax(1)
own = p_single.argmax(1)
fig, axes = plt.subplots(1, 3, figsize=(13, 2.9))
axes[0].imshow(disp2)
axes[0].set_title(f"{pair[0]} | {pair[1]} (side by side, 224×448)", fontsize=8)
axes[0].axis("off")
shares = []
for k, cls in enumerate(own.tolist()):
    res = cam.gradcam(lm, x2, target=cls, layer=layer)
    m = res.upsampled[0]
    half = m[:, :224] if k == 0 else m[:, 224:]
    share = float(half.sum() / m.sum())
    shares.append(share)
    viz.plot_heat_overlay(axes[k + 1], disp2, cam.normalize(res.upsampled)[0])
    axes[k + 1].set_title(f"Grad-CAM '{lm.categories[cls]}': {share:.0%} of the mass on the {['left', 'right'][k]}", fontsize=8)
fig.tight_layout()
zfhelpers.save_figure(fig, f"10_cam_two_objects_{lm.name}", dpi=dpi, model=lm.label, data=f"{pair[0]} | {pair[1]} side by side (data/images)")
plt.show()
print("share of Grad-CAM mass on the class's own half:", ", ".join(f"{lm.categories[c]} {s:.2f}" for c, s in zip(own.tolist(), shares)))

# %% [markdown]
# ## Baselines and the randomisation sanity check
# Left: the trained network's Grad-CAM, the same on a fully re-initialised network, and a Sobel
# edge map (no model at all). Right: cascading randomisation from the classifier down; the
# Spearman correlation of each method's map with the trained one (mean over the photos).

# %%
top1 = probs.argmax(1)
trained = cam.gradcam(lm, batch, target=top1, layer=layer)
randomized = cam.random_model_baseline(lm, batch, target=top1, layer=layer)
edges = cam.sobel_baseline([s.display for s in samples])
cascade_methods = [m for m in methods if m != "cam"]


def as_attr(method):
    def fn(net):
        res = cam.run(method, net, batch, target=top1, layer=layer)
        return (res.guided if method == "guided_gradcam" else res.upsampled[:, None])
    return fn


steps = {m: cascading_randomization(lm, as_attr(m)) for m in cascade_methods}
fig = plt.figure(figsize=(13, 2.4 * len(samples)))
gs = fig.add_gridspec(len(samples), 5)
for i, s in enumerate(samples):
    for j, (title, heat) in enumerate([("trained Grad-CAM", cam.normalize(trained.upsampled)[i]),
                                       ("random-weights Grad-CAM", cam.normalize(randomized.upsampled)[i]),
                                       ("Sobel edges (no model)", edges[i])]):
        ax = fig.add_subplot(gs[i, j])
        viz.plot_heat_overlay(ax, s.display, heat)
        if i == 0:
            ax.set_title(title, fontsize=8)
ax = fig.add_subplot(gs[:, 3:])
labels = [st.randomized_up_to for st in steps[cascade_methods[0]]]
for m in cascade_methods:
    ax.plot(range(len(labels)), [st.spearman for st in steps[m]], marker="o", ms=3, label=m)
ax.set_xticks(range(len(labels)))
ax.set_xticklabels(labels, rotation=90, fontsize=6)
ax.set_ylabel("Spearman ρ with the trained model's map", fontsize=8)
ax.set_xlabel("randomised from the top down to …", fontsize=8)
ax.axhline(0, color="0.6", lw=0.5)
ax.legend(fontsize=8)
fig.suptitle(f"Baselines and cascading randomisation, {lm.name}", fontsize=10)
fig.tight_layout()
zfhelpers.save_figure(fig, f"10_cam_baselines_{lm.name}", dpi=dpi, model=lm.label, data=data_label)
plt.show()
for m in cascade_methods:
    print(f"{m:15} ρ after randomising the classifier only: {steps[m][1].spearman:.2f}; after all layers: {steps[m][-1].spearman:.2f}")

# %% [markdown]
# ## Explore (interactive)
# Layer, class rank and photo.

# %% tags=["nbval-ignore-output"]
if interactive:
    import ipywidgets

    spatial = {n: lm.channels(n) for n in lm.layers if len(lm.shape(n)) == 3}

    def render(layer, channel, rank, image):
        # `channel` is unused here: the explorer's channel slider is hidden below
        i = images.index(image)
        fig, axes = plt.subplots(1, 3, figsize=(10, 3))
        for ax, m in zip(axes, ["gradcam", "gradcampp", "guided_gradcam"]):
            res = cam.run(m, lm, batch[i : i + 1], target=f"top{rank}", layer=layer)
            if m == "guided_gradcam":
                g = res.guided[0].abs().sum(0)
                ax.imshow(g / max(float(g.max()), 1e-12), cmap="gray")
                ax.axis("off")
            else:
                viz.plot_heat_overlay(ax, samples[i].display, cam.normalize(res.upsampled)[0])
            ax.set_title(f"{m}: {lm.categories[int(res.targets[0])]}", fontsize=8)
        return fig

    explorer = widgets.layer_channel_explorer(
        render, spatial, layer=layer,
        extra={"rank": ipywidgets.IntSlider(value=1, min=1, max=5, description="class rank"),
               "image": ipywidgets.Dropdown(options=images, value=images[0], description="image")})
    explorer.channel.layout.display = "none"
    display(explorer.ui)
