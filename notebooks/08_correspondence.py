# %% [markdown]
# # 08 · Correspondence analysis (ZF §4.3, Table 1, Fig. 8)
#
# Does a CNN establish correspondence between the same part in different images, without being
# told about parts? ZF occlude the **right eye, left eye or nose** in five frontal dog images (and
# random regions for comparison), take the change of the feature vector ε = x − x̃ at layer 5 and
# layer 7, and measure how consistently its **signs** agree across images (Δ, lower = more
# consistent; `zfhelpers.analysis.correspondence`, normalisation stated there).
#
# **What stands in here.** No licensed frontal dog photos with part annotations can be had offline.
# The five images are aligned **human faces** from *Labeled Faces in the Wild* as shipped inside
# scikit-image (`data.lfw_subset()`, 25×25 grayscale, upsampled to 224×224 — blurry), with eye and
# nose boxes committed in `data/faces/lfw_subset_parts.json`. ImageNet has no "person" class, so the
# network sees faces only as context; the question is still whether occluding *the same part*
# perturbs the features in the same direction. The network is MobileNetV2: its last conv block
# (`head`, 1280×7×7) stands in for layer 5 and the 1280-d pooled vector for layer 7. On the paper
# profile (AlexNet: pool5 9216-d, fc7 4096-d) a folder of five user images can replace the faces.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (AlexNet)
model = ""  # zoo model; empty — the profile's default
annotations = ""  # JSON of your own images + part boxes (see correspondence.load_annotated_folder); empty — LFW
random_draws = 5  # independent random occlusions per image
seed = 0  # seed of the random occlusions
dpi = 100  # resolution of saved figures
interactive = True  # unused — no sliders here (every notebook accepts it)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import zfhelpers
from zfhelpers.analysis import correspondence as corr
from zfhelpers.models.capture import capture_detached

zfhelpers.notebook.setup(seed=seed)
lm = zfhelpers.load_model(model or None, profile)
faces = corr.load_part_images(lm.preprocess.crop, Path(annotations) if annotations else None)
x = lm.preprocess.normalize(faces.images)
grey = 0.0  # occluder — the dataset mean in normalised units
late, top = lm.role("layer5_vector"), lm.role("layer7")


def features(batch):
    out = capture_detached(lm, batch, [late, top])
    return out[late].flatten(1), out[top].flatten(1)


base_late, base_top = features(x)
print(f"{lm.name}: 'layer 5' = {late} ({base_late.shape[1]}-d), 'layer 7' = {top} ({base_top.shape[1]}-d); "
      f"{len(x)} faces, occluder {faces.box_size[0]}×{faces.box_size[1]} px")

# %%
rng = np.random.default_rng(seed)
results, examples = {}, {}
for part, box in faces.parts.items():
    occ = corr.occlude(x, box, grey)
    f_late, f_top = features(occ)
    results[part] = (corr.consistency(base_late - f_late), corr.consistency(base_top - f_top))
    examples[part] = occ
draws_late, draws_top = [], []
for d in range(random_draws):
    boxes = corr.random_boxes(len(x), faces.box_size, faces.random_region, rng)
    occ = corr.occlude(x, boxes, grey)
    f_late, f_top = features(occ)
    draws_late.append(corr.consistency(base_late - f_late)[0])
    draws_top.append(corr.consistency(base_top - f_top)[0])
    if d == 0:
        examples["random"] = occ
results["random"] = ((float(np.mean(draws_late)), float(np.std(draws_late))),
                     (float(np.mean(draws_top)), float(np.std(draws_top))))

# %% [markdown]
# ## Table 1, beside the paper's values
# Parts: mean ± std over the 20 ordered image pairs. Random: mean ± std over the random draws.
# The absolute Δ depends on how sparse the compared features are (two dimensions that stay at zero
# agree), so compare the *ordering* — parts versus random — more than the magnitudes.

# %%
PAPER = {"right_eye": ("0.067 ± 0.007", "0.069 ± 0.015"), "left_eye": ("0.069 ± 0.007", "0.068 ± 0.013"),
         "nose": ("0.079 ± 0.017", "0.069 ± 0.011"), "random": ("0.107 ± 0.017", "0.073 ± 0.014")}
print(f"{'occlusion':10} {'Δ layer 5 (here)':>18} {'Δ layer 7 (here)':>18}   {'ZF layer 5':>14} {'ZF layer 7':>14}")
for part, ((m5, s5), (m7, s7)) in results.items():
    print(f"{part:10} {m5:11.3f} ± {s5:.3f} {m7:11.3f} ± {s7:.3f}   {PAPER[part][0]:>14} {PAPER[part][1]:>14}")
for k, name in enumerate(["layer 5", "layer 7"]):
    parts = {p: results[p][k][0] for p in faces.parts}
    below = all(v < results["random"][k][0] for v in parts.values())
    print(f"{name}: every part more consistent than random occlusion: {below} "
          f"(parts {min(parts.values()):.3f}–{max(parts.values()):.3f} vs random {results['random'][k][0]:.3f})")

# %%
cols = ["original", *examples]
fig = plt.figure(figsize=(2.0 * len(cols) + 4.5, 2.0 * len(x)))
gs = fig.add_gridspec(len(x), len(cols) + 2)
for i in range(len(x)):
    for j, name in enumerate(cols):
        ax = fig.add_subplot(gs[i, j])
        img = faces.images[i] if name == "original" else lm.preprocess.denormalize(examples[name][i])
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title(name.replace("_", " "), fontsize=9)
ax = fig.add_subplot(gs[:, len(cols):])
names = list(results)
pos = np.arange(len(names))
for k, (label, offset) in enumerate([("layer 5 (here)", -0.2), ("layer 7 (here)", 0.2)]):
    ax.bar(pos + offset, [results[n][k][0] for n in names], 0.38, yerr=[results[n][k][1] for n in names],
           capsize=3, label=label)
paper5 = [float(PAPER[n][0].split()[0]) for n in names]
paper7 = [float(PAPER[n][1].split()[0]) for n in names]
ax.plot(pos - 0.2, paper5, "k_", ms=18, mew=2, label="ZF layer 5")
ax.plot(pos + 0.2, paper7, "_", color="0.5", ms=18, mew=2, label="ZF layer 7")
ax.set_xticks(pos)
ax.set_xticklabels([n.replace("_", " ") for n in names], fontsize=8)
ax.set_ylabel("Δ (mean sign disagreement; lower = more consistent)", fontsize=8)
ax.legend(fontsize=7)
fig.suptitle(f"Correspondence (ZF §4.3, Fig. 8 / Table 1), {lm.name}, five LFW faces (stand-in for dogs)", fontsize=10)
fig.tight_layout(rect=(0, 0, 1, 0.96))
zfhelpers.save_figure(fig, f"08_correspondence_{lm.name}", dpi=dpi, model=lm.label, data=faces.source + " (scikit-image)",
                      params={"random_draws": random_draws, "seed": seed})
plt.show()
