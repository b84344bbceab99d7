# %% [markdown]
# # 13 · The explanatory graph (Zhang et al., AAAI 2018)
#
# A filter in a mid-level conv layer fires on *several* parts of an object. The explanatory graph
# disentangles each filter into **nodes** (part patterns): every node is a place where the filter
# fires that keeps a stable spatial relation to nodes of the layer above. Learning is unsupervised
# (no part labels), top-down over four conv layers, by EM (`zfhelpers.graph.model`, rebuilt
# from the authors' MATLAB code, papers.md §4.2). The claim to test: *each node consistently
# represents the same object part across images* — measured by **location instability** (how much
# the distance from a node's inferred position to a landmark varies over its top images), nodes
# against raw filters.
#
# **What stands in for the paper's data.** CUB-200, Pascal VOC Part and ILSVRC part annotations
# cannot be had offline. We use a procedural category with exact landmarks, `zfhelpers.data.critters`
# (a body, head with an eye, tail and legs; random position, scale, facing and tilt on clutter),
# and a small VGG-style net trained here to tell critters from clutter and scattered parts
# (`parts_vgg`, 84.7 % test accuracy). Its layers relu3_1, relu3_2 (28×28) and relu4_1, relu4_2
# (14×14) mirror the paper's conv4_2, conv4_3, conv5_2, conv5_3, with the paper's node densities
# (N = 40 and 20 nodes per filter).
#
# **Your own category (the paper's setting).** Set `annotations` to a JSON file listing cropped
# object images, their landmarks and optional negative images (format in
# `zfhelpers.graph.evaluate.load_landmark_folder`); the notebook then runs VGG16 (paper profile; or any
# VGG of the zoo via `model`, e.g. the offline `vgg16_hed`) on relu4_2, relu4_3, relu5_2, relu5_3
# at 224 px, the paper's layers, learning on the first half of the images and testing on the rest.

# %% tags=["parameters"]
profile = "offline"  # "offline" or "paper" (the paper profile matters only with annotations)
annotations = ""  # empty means procedural critters, else a landmark JSON file (see above)
model = ""  # with annotations, empty means vgg16 on the paper profile and vgg16_hed offline
n_images = 60  # critter images the graph is learned on (the full preset uses 200)
n_test = 60  # new critter images for inference and evaluation
n_negatives = 200  # critter-free images for the per-unit normalisation
iterations = 5  # EM iterations per layer (the paper and the full preset use 20)
top_images = 20  # images per node in the instability metric (the paper's 20)
top_units = 50  # nodes (and filters, capped at the layer's filters) evaluated per layer
seed = 0
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import zfhelpers
from zfhelpers.data import critters
from zfhelpers.graph import evaluate as graph_eval
from zfhelpers.graph import model as eg
from zfhelpers.models import trained
from zfhelpers.notebook import widgets

zfhelpers.notebook.setup(seed=seed)
if not annotations:
    net = trained.load_twin("parts_vgg")
    layers, SIZE, landmark_names = list(trained.GRAPH_LAYERS), 112, list(critters.LANDMARKS)
    prepare = trained.critter_input
    x_train, _, marks_train = critters.make(n_images, positive_rate=1.0, seed=100 + seed)
    x_test, _, marks_test = critters.make(n_test, positive_rate=1.0, seed=200 + seed)
    x_neg, _, _ = critters.make(n_negatives, positive_rate=0.0, seed=300 + seed)
    data_label = f"procedural critters (zfhelpers.data.critters): {n_images} to learn, {n_test} to test"
else:
    net = zfhelpers.load_model(model, profile, task="graph")
    layers, SIZE = ["relu4_2", "relu4_3", "relu5_2", "relu5_3"], 224
    folder = graph_eval.load_landmark_folder(annotations, side=SIZE)
    landmark_names, half = folder["names"], len(folder["images"]) // 2
    x_train, marks_train = folder["images"][:half], folder["landmarks"][:half]
    x_test, marks_test = folder["images"][half:], folder["landmarks"][half:]
    x_neg = folder["negatives"] if folder["negatives"] is not None else torch.stack(
        [(torch.from_numpy(zfhelpers.prepare(n, net.preprocess).display).permute(2, 0, 1) * 255).to(torch.uint8)
         for n in zfhelpers.sample_images()])  # fmt: skip
    data_label = f"{annotations}: {half} to learn, {len(x_test)} to test"

    def prepare(b):
        return net.preprocess.normalize(b.float() / 255)


densities = dict(zip(layers, (0.05, 0.05, 0.1, 0.1)))
strides = {name: SIZE / net.shape(name)[-1] for name in layers}
maps = graph_eval.normalised_maps(net, layers, x_train, x_neg, prepare)
maps_test = graph_eval.normalised_maps(net, layers, x_test, x_neg, prepare)
DIAG = SIZE * math.sqrt(2)
stamp = dict(model=net.label, data=data_label)
print(net.label)

# %% [markdown]
# ## Learning, top-down (progress per layer; each finished layer is checkpointed)

# %%
ck = zfhelpers.paths.build_dir() / "graphs" / f"{net.name}_{len(x_train)}_{iterations}_{seed}"
graph = eg.learn_graph(maps, strides, densities, seed=seed, iterations=iterations, checkpoint_dir=ck)
print(f"{'layer':9} {'map':>6} {'filters':>8} {'nodes/filter':>13} {'nodes':>7}")
for name, layer in graph.items():
    c, n = layer.centers.shape[:2]
    print(f"{name:9} {layer.size[0]:>3}x{layer.size[1]:<2} {c:>8} {n:>13} {c * n:>7}")
print("total nodes:", sum(layer.centers.shape[0] * layer.centers.shape[1] for layer in graph.values()))
inferred = eg.infer(graph, maps_test)

# %% [markdown]
# ## Top patches of the best nodes
# Nodes ranked by the mean of their top-`top_images` ranking scores on the test images; for each,
# its five best test images cropped around the inferred position (30 / 40 px at the 28 / 14 layers,
# the paper's 60 / 80 px at 224). A node that stands for one part shows the same part five times.

# %%
def patches_figure(layer_names, n_nodes=6, per_node=5):
    cols = len(layer_names) * per_node
    fig, axes = plt.subplots(n_nodes, cols, figsize=(cols * 1.05 + 0.6, n_nodes * 1.1), squeeze=False)
    for li, name in enumerate(layer_names):
        inf, stride = inferred[name], strides[name]
        side = (30 if graph[name].size[0] == 28 else 40) * SIZE // 112
        scores = inf.ranking.flatten(1)  # I×U
        top = scores.topk(min(top_images, len(scores)), dim=0)
        best = top.values.mean(0).argsort(descending=True)[:n_nodes]
        pix = eg.unit_to_pixel(inf.positions.flatten(1, 2), stride)  # I×U×2 (y, x)
        padded = np.pad(x_test.permute(0, 2, 3, 1).numpy(), ((0, 0), (side, side), (side, side), (0, 0)), constant_values=127)
        for r, u in enumerate(best.tolist()):
            for j in range(per_node):
                i = int(top.indices[j, u])
                y, x = (pix[i, u] + side).round().long().tolist()
                ax = axes[r, li * per_node + j]
                ax.imshow(padded[i, y - side // 2 : y + side // 2, x - side // 2 : x + side // 2])
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    c, n = divmod(u, graph[name].nodes_per_filter)
                    ax.set_ylabel(f"{name}\nfilter {c} node {n}", fontsize=6)
    fig.suptitle("Top-5 test patches of the best nodes", fontsize=9)
    fig.tight_layout()
    return fig


fig = patches_figure([layers[1], layers[2]])
zfhelpers.save_figure(fig, f"13_node_patches_{net.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Heat maps: where the inferred nodes sit on one image
# Every node's inferred position as a Gaussian weighted by its score, per layer.

# %%
def heat(name, i):
    inf, stride = inferred[name], strides[name]
    pix = eg.unit_to_pixel(inf.positions[i].flatten(0, 1), stride)
    w = inf.scores[i].flatten()
    yy, xx = torch.meshgrid(torch.arange(float(SIZE)), torch.arange(float(SIZE)), indexing="ij")
    keep = w.argsort(descending=True)[:200]
    h = sum(w[k] * torch.exp(-((yy - pix[k, 0]) ** 2 + (xx - pix[k, 1]) ** 2) / (2 * (stride / 2) ** 2)) for k in keep)
    return h / h.max()


fig, axes = plt.subplots(3, 1 + len(layers), figsize=(2 * (1 + len(layers)), 6.2))
for r, i in enumerate(range(3)):
    axes[r, 0].imshow(x_test[i].permute(1, 2, 0))
    axes[r, 0].scatter(marks_test[i, :, 0], marks_test[i, :, 1], c=plt.cm.tab10(np.arange(len(landmark_names))), s=12)
    for j, name in enumerate(layers):
        axes[r, j + 1].imshow(x_test[i].permute(1, 2, 0))
        axes[r, j + 1].imshow(heat(name, i), cmap="jet", alpha=0.5)
        axes[0, j + 1].set_title(name, fontsize=8)
for ax in axes.flat:
    ax.axis("off")
axes[0, 0].set_title("image (landmarks:\n" + ", ".join(landmark_names) + ")", fontsize=7)
fig.tight_layout()
zfhelpers.save_figure(fig, f"13_heatmaps_{net.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Location instability: nodes vs raw filters (papers.md §4.3)
# For each unit (a node, or a raw filter's arg-max unit), its top-`top_images` test images by score;
# per landmark, the standard deviation of the distance from the unit to the landmark, divided by the
# image diagonal; mean over the three landmarks. Lower = the unit sits at the same place on the
# object. The best `top_units` nodes per layer are compared with the best filters.

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for name in layers:
    inf = inferred[name]
    node = graph_eval.instability_table(inf.positions.flatten(1, 2), inf.ranking.flatten(1), strides[name], marks_test,
                                        DIAG, top_images, top_units)  # fmt: skip
    raw_pos, raw_val = graph_eval.raw_filter_positions(maps_test[name])
    raw = graph_eval.instability_table(raw_pos, raw_val, strides[name], marks_test, DIAG, top_images,
                                       min(top_units, raw_val.shape[1]))  # fmt: skip
    rows.append((name, node, raw))
print(f"{'layer':9} {'graph nodes':>18} {'raw filters':>18}")
for name, node, raw in rows:
    print(f"{name:9} {node.mean():>10.3f} ± {node.std():.3f} {raw.mean():>10.3f} ± {raw.std():.3f}")
all_nodes = torch.cat([r[1] for r in rows])
all_raw = torch.cat([r[2] for r in rows])
print(f"{'mean':9} {all_nodes.mean():>10.3f} ± {all_nodes.std():.3f} {all_raw.mean():>10.3f} ± {all_raw.std():.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3))
pos = np.arange(len(layers))
ax.bar(pos - 0.2, [r[1].mean() for r in rows], 0.4, yerr=[r[1].std() for r in rows], label="graph nodes", capsize=3)
ax.bar(pos + 0.2, [r[2].mean() for r in rows], 0.4, yerr=[r[2].std() for r in rows], label="raw filters", capsize=3)
ax.set_xticks(pos, layers)
ax.set_ylabel("location instability")
ax.legend(fontsize=8)
ax.set_title("Lower is more consistent (mean ± std over evaluated units)", fontsize=9)
fig.tight_layout()
zfhelpers.save_figure(fig, f"13_instability_{net.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## 3-shot part localisation
# Three annotated training images pick, per landmark, the five units whose positions (plus a fixed
# offset) predict the landmark best; on the test images the landmark is predicted from those units,
# weighted by their scores. Error: distance / image diagonal. Nodes of all four layers vs raw filters.

# %%
# NBVAL_CHECK_OUTPUT
train_inf = {name: graph[name] for name in layers}
node_tr = torch.cat([eg.unit_to_pixel(train_inf[n].positions.flatten(1, 2), strides[n]) / strides[layers[0]] for n in layers], 1)
node_te = torch.cat([eg.unit_to_pixel(inferred[n].positions.flatten(1, 2), strides[n]) / strides[layers[0]] for n in layers], 1)
node_sc = torch.cat([inferred[n].scores.flatten(1) for n in layers], 1)
raw_tr, raw_te, raw_sc = [], [], []
for n in layers:
    p, _ = graph_eval.raw_filter_positions(maps[n])
    q, v = graph_eval.raw_filter_positions(maps_test[n])
    raw_tr.append(eg.unit_to_pixel(p, strides[n]) / strides[layers[0]])
    raw_te.append(eg.unit_to_pixel(q, strides[n]) / strides[layers[0]])
    raw_sc.append(v)
# positions were converted to the finest layer's units (centre convention applied), so use offset −0.5
to_units = lambda t: t - 0.5  # noqa: E731
results = {}
for label, (tr, te, sc) in {"graph nodes": (node_tr, node_te, node_sc),
                            "raw filters": (torch.cat(raw_tr, 1), torch.cat(raw_te, 1), torch.cat(raw_sc, 1))}.items():  # fmt: skip
    guess = graph_eval.few_shot_localisation(to_units(tr), marks_train, to_units(te), sc, strides[layers[0]], shots=3)
    results[label] = graph_eval.localisation_error(guess, marks_test, DIAG)
print(f"{'units':12}" + "".join(f"{k:>14}" for k in landmark_names) + f"{'mean':>10}")
for label, err in results.items():
    print(f"{label:12}" + "".join(f"{float(err[:, k].nanmean()):>14.3f}" for k in range(err.shape[1]))
          + f"{float(err.nanmean()):>10.3f}")  # images without a landmark are skipped

# %% [markdown]
# The README quotes these numbers and says how they compare with the paper's claim.
#
# ## Explore (interactive)
# Layer and node: the node's top test patches and where it sits.

# %% tags=["nbval-ignore-output"]
if interactive:

    def render(layer, channel):
        inf, stride = inferred[layer], strides[layer]
        n_per = graph[layer].nodes_per_filter
        u = min(channel, inf.ranking.shape[1] * n_per - 1)
        scores = inf.ranking.flatten(1)[:, u]
        top = scores.topk(6).indices
        pix = eg.unit_to_pixel(inf.positions.flatten(1, 2)[:, u], stride)
        fig, axes = plt.subplots(1, 6, figsize=(10, 2))
        for ax, i in zip(axes, top.tolist()):
            ax.imshow(x_test[i].permute(1, 2, 0))
            ax.scatter([pix[i, 1]], [pix[i, 0]], marker="x", c="white", s=60)
            ax.axis("off")
        c, n = divmod(u, n_per)
        fig.suptitle(f"{layer}: filter {c}, node {n}", fontsize=9)
        return fig

    counts = {name: graph[name].centers.shape[0] * graph[name].nodes_per_filter for name in layers}
    explorer = widgets.layer_channel_explorer(render, counts, layer=layers[1])
    explorer.channel.description = "node"
    display(explorer.ui)
