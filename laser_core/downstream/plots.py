"""The figures of ``laser analyze``, one function each, drawn with matplotlib's Agg backend
(no display needed). Every function takes CPU tensors and returns a Figure; the caller saves.

Latent arrays come channels last as exported: (samples, [frames,] h, w, dim).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

MAX_DIMS = 64  # box plots beyond this many latent dimensions are unreadable
MAX_PANELS = 4  # depth slots shown side by side
TSNE_POINTS = 300  # with TSNE_ITERATIONS, t-SNE takes seconds on one core
TSNE_ITERATIONS = 500  # 250 of them with early exaggeration
DISTRIBUTION_ROWS = 20_000  # latent vectors sampled for the distribution plots


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def value_distributions(latents: dict[str, torch.Tensor]) -> Figure:
    """A box per latent dimension for each form: its spread, outliers and dead dimensions."""
    figure = new_figure(max(6.0, 0.25 * min(next(iter(latents.values())).shape[-1], MAX_DIMS)), 6)
    axes = figure.subplots(len(latents), 1, squeeze=False)[:, 0]
    generator = torch.Generator().manual_seed(0)
    for ax, (form, x) in zip(axes, latents.items(), strict=True):
        rows = x.reshape(-1, x.shape[-1])[:, :MAX_DIMS]
        if len(rows) > DISTRIBUTION_ROWS:
            rows = rows[torch.randperm(len(rows), generator=generator)[:DISTRIBUTION_ROWS]]
        ax.boxplot(rows.numpy(), showfliers=False)
        ax.set_title(f"{form} latent values per dimension")
        ax.set_xlabel("dimension")
        ax.set_xticks(range(1, rows.shape[1] + 1), [str(d) for d in range(rows.shape[1])])
        ax.tick_params(axis="x", labelsize=6)
    return figure


def embeddings(
    features: dict[str, torch.Tensor], colours: np.ndarray | None, method: str, legend: str
) -> Figure:
    """2-D PCA or t-SNE of per-image feature vectors (points, features), one panel per form,
    coloured by ``colours`` (points,) (class labels or clip ids) when given."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    figure = new_figure(4.5 * len(features), 4.2)
    axes = figure.subplots(1, len(features), squeeze=False)[0]
    for ax, (form, x) in zip(axes, features.items(), strict=True):
        points = x.double().numpy()
        shown = colours
        if method == "t-SNE" and len(points) > TSNE_POINTS:
            keep = np.random.default_rng(0).choice(len(points), TSNE_POINTS, replace=False)
            points, shown = points[keep], None if colours is None else colours[keep]
        if method == "PCA":
            xy = _project(points, points)
        else:
            reduced = PCA(min(30, *points.shape)).fit_transform(points)
            tsne = TSNE(
                perplexity=min(30.0, (len(points) - 1) / 3),
                max_iter=TSNE_ITERATIONS,
                init="pca",
                random_state=0,
            )
            # One thread: on a busy machine OpenMP threads contend and t-SNE slows tenfold.
            with threadpool_limits(1):
                xy = tsne.fit_transform(reduced)
        if shown is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=6)
        else:
            few = int(colours.max()) < 10  # one tab10 colour per class or clip
            scatter = ax.scatter(
                xy[:, 0],
                xy[:, 1],
                c=shown,
                s=6,
                cmap="tab10" if few else "viridis",
                vmin=-0.5 if few else None,
                vmax=9.5 if few else None,
            )
            ticks = range(int(colours.max()) + 1) if few else None
            figure.colorbar(scatter, ax=ax, label=legend, ticks=ticks)
        ax.set_title(f"{method} of {form} latents ({len(points)} points)")
    return figure


def code_usage(counts: list[torch.Tensor]) -> tuple[Figure, list[float]]:
    """Each depth slot's code counts (alphabet_size,), most used first, and its perplexity:
    exp of the entropy of code frequencies (K when all K codes are used alike)."""
    shown = counts[:MAX_PANELS]
    figure = new_figure(4.5 * len(shown), 3.5)
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    perplexities = [perplexity(c) for c in counts]
    for slot, (ax, count) in enumerate(zip(axes, shown, strict=False)):
        ordered = count.sort(descending=True).values.numpy()
        ax.bar(np.arange(len(ordered)), ordered, width=1.0)
        ax.set_yscale("log")
        used = int((count > 0).sum())
        ax.set_title(
            f"slot {slot}: perplexity {perplexities[slot]:.1f}, {used}/{len(count)} used",
            fontsize=9,
        )
        ax.set_xlabel("code, by usage")
        ax.set_ylabel("count")
    return figure, perplexities


def perplexity(counts: torch.Tensor) -> float:
    p = counts.double() / counts.sum().clamp(min=1)
    return math.exp(torch.special.entr(p).sum().item())


def temporal_change(continuous: torch.Tensor, indices: torch.Tensor | None) -> Figure:
    """Between consecutive frames of each clip (clips, frames, h, w, dim): the mean absolute
    change of the continuous latent, and the share of positions whose code changes."""
    panels = 1 if indices is None else 2
    figure = new_figure(5 * panels, 3.5)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    steps = np.arange(1, continuous.shape[1])
    change = (continuous[:, 1:] - continuous[:, :-1]).abs().mean(dim=(2, 3, 4))
    series = [("mean |Δ latent|", change)]
    if indices is not None:
        flips = (indices[:, 1:] != indices[:, :-1]).any(-1).float().mean(dim=(2, 3))
        series.append(("share of positions whose code changes", flips))
    for ax, (title, values) in zip(axes, series, strict=True):
        for clip in values[:20]:
            ax.plot(steps, clip.numpy(), color="0.7", linewidth=0.8)
        ax.plot(steps, values.mean(0).numpy(), color="C3", linewidth=2, label="mean over clips")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("frame t (against t - 1)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    return figure


def symbols_in_pca(
    symbols: dict[str, torch.Tensor], counts: list[torch.Tensor], latents: torch.Tensor
) -> Figure:
    """Codebook vectors or dictionary atoms (alphabet_size, width) in the plane of their first
    two principal components, coloured by how often each is used, over a sample of the
    continuous latent vectors (points, dim) in grey where they have the same width (codes of
    single positions)."""
    shown = list(symbols.items())[:MAX_PANELS]
    figure = new_figure(4.8 * len(shown), 4.2)
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    for ax, (slot, vectors) in zip(axes, shown, strict=True):
        basis = vectors.double().numpy()
        if latents.shape[1] == basis.shape[1]:
            xy = _project(latents.double().numpy(), basis)
            ax.scatter(xy[:, 0], xy[:, 1], s=2, color="0.8", label="latents")
            ax.legend(fontsize=8, loc="upper right")
        usage = counts[int(slot.removeprefix("slot"))].numpy()
        codes = _project(basis, basis)
        scatter = ax.scatter(codes[:, 0], codes[:, 1], c=np.log1p(usage), s=14, cmap="viridis")
        figure.colorbar(scatter, ax=ax, label="log(1 + uses)")
        ax.set_title(f"{slot}: {len(basis)} vectors in PCA space", fontsize=10)
    return figure


def _project(points: np.ndarray, basis_of: np.ndarray) -> np.ndarray:
    """``points`` (n, dim) on the first two principal axes of ``basis_of`` (m, dim); a
    missing second axis (dim 1, or one vector) is drawn as 0."""
    from sklearn.decomposition import PCA

    components = min(2, *basis_of.shape)
    xy = PCA(components).fit(basis_of).transform(points)
    return np.pad(xy, ((0, 0), (0, 2 - components)))


def reconstruction_grid(images: torch.Tensor, reconstructions: torch.Tensor) -> Figure:
    """Originals, reconstructions and the absolute error (mean over channels) of up to eight
    images (n, C, H, W) in [-1, 1]."""
    count = min(8, len(images))
    originals = images[:count].add(1).div(2).clamp(0, 1)
    decoded = reconstructions[:count].add(1).div(2).clamp(0, 1)
    error = (originals - decoded).abs().mean(1)
    figure = new_figure(1.4 * count, 4.6)
    axes = figure.subplots(3, count, squeeze=False)
    for column in range(count):
        for row, picture in enumerate((originals[column], decoded[column])):
            grey = picture.shape[0] == 1
            shown = picture[0] if grey else picture.permute(1, 2, 0)
            axes[row, column].imshow(shown.numpy(), cmap="gray" if grey else None, vmin=0, vmax=1)
        axes[2, column].imshow(error[column].numpy(), cmap="magma", vmin=0, vmax=error.max())
    for row, name in enumerate(("original", "reconstruction", "|error|")):
        axes[row, 0].set_ylabel(name)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return figure


def code_heatmaps(
    indices: torch.Tensor | None, values: torch.Tensor | None, alphabet_sizes: list[int]
) -> Figure:
    """Per-position code maps of up to four images, codes (images, h, w, depth): the L1
    strength of the values (sparse coefficients, gaussian means) when codes carry values,
    else the index map of each depth slot."""
    count = 4
    if values is not None:
        strength = values[:count].abs().sum(-1)
        maps = [("L1 of coefficients", strength, "magma", strength.max().item())]
    elif indices is not None:
        maps = [
            (f"slot {slot} index", indices[:count, ..., slot], "nipy_spectral", size - 1)
            for slot, size in enumerate(alphabet_sizes[:MAX_PANELS])
        ]
    else:
        raise ValueError("codes carry indices, values or both")
    count = min(count, len(maps[0][1]))
    figure = new_figure(2.2 * count + 1, 2.1 * len(maps))
    axes = figure.subplots(len(maps), count, squeeze=False)
    for row, (name, planes, cmap, top) in enumerate(maps):
        for column in range(count):
            image = axes[row, column].imshow(
                planes[column].float().numpy(), cmap=cmap, vmin=0, vmax=top
            )
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=9)
        figure.colorbar(image, ax=list(axes[row]))
    return figure
