"""``laser analyze EXPORT_DIR``: pictures of what a model's latents and codes look like,
from a ``laser export`` directory alone, as PNGs and a one-page ``report.html`` beside them.

Plots read at most ``MAX_SAMPLES`` samples (code usage counts read every batch). A plot that
does not apply (temporal change of an image export, code usage of codes without indices) is
listed in the report with the reason instead.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from laser_core.downstream import plots
from laser_core.downstream.export.store import PREVIEW, SYMBOLS, Export, open_export
from laser_core.files import atomic_write, atomic_write_text

MAX_SAMPLES = 2000
SYMBOL_BACKDROP = 5000  # latent vectors drawn behind the codebook

TITLES = {
    "distributions": "Latent values per dimension",
    "pca": "PCA of latents",
    "tsne": "t-SNE of latents",
    "code_usage": "Code usage",
    "temporal": "Change between frames",
    "symbols": "Codebook vectors / dictionary atoms",
    "reconstructions": "Reconstructions",
    "code_maps": "Codes per position",
}
"""Every plot, by file stem, in report order."""


@dataclass
class Analysis:
    folder: Path
    plots: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Plots that do not apply to this export, with the reason."""
    perplexities: list[float] = field(default_factory=list)


def analyze(root: Path, out: Path | None = None) -> Analysis:
    """Draw every plot that applies to the export in ``root`` into ``out`` (default
    ``root/analysis``) and write ``report.html`` there."""
    export = open_export(root)
    analysis = Analysis(out or root / "analysis")
    for name, figure in _figures(export, analysis):
        path = analysis.folder / f"{name}.png"
        atomic_write(path, lambda p, f=figure: f.savefig(p, format="png", dpi=100))
        analysis.plots[name] = path
    atomic_write_text(analysis.folder / "report.html", _report(export, analysis))
    return analysis


def _figures(export: Export, analysis: Analysis) -> list[tuple[str, Figure]]:
    names = ("continuous", "quantized", "indices", "values", "labels")
    data = export.load(names, MAX_SAMPLES)
    clips = export.clips
    spec = export.metadata["code_spec"]

    def per_image(x: torch.Tensor) -> torch.Tensor:
        """(samples, [frames,] ...) -> (images, ...): video frames are the images."""
        return x if clips is None else x.flatten(0, 1)

    latents = {form: data[form] for form in ("continuous", "quantized")}
    features = {form: per_image(x).flatten(1) for form, x in latents.items()}
    if "labels" in data:
        colours, legend = data["labels"].numpy(), "label"
    elif clips is not None:
        colours, legend = np.repeat(np.arange(len(data["continuous"])), clips.frames), "clip"
    else:
        colours, legend = None, ""
    figures = [
        ("distributions", plots.value_distributions(latents)),
        ("pca", plots.embeddings(features, colours, "PCA", legend)),
        ("tsne", plots.embeddings(features, colours, "t-SNE", legend)),
    ]
    counts = _usage_counts(export, spec["alphabet_sizes"])
    if counts:
        figure, analysis.perplexities = plots.code_usage(counts)
        figures.append(("code_usage", figure))
    else:
        analysis.skipped["code_usage"] = "the codes have no indices (continuous codes)"
    if clips is not None:
        figures.append(("temporal", plots.temporal_change(data["continuous"], data.get("indices"))))
    else:
        analysis.skipped["temporal"] = "an image export has no frames"
    symbols = export.tensors(SYMBOLS)
    if symbols:
        vectors = data["continuous"].reshape(-1, data["continuous"].shape[-1])
        backdrop = torch.randperm(len(vectors), generator=torch.Generator().manual_seed(0))
        figures.append(
            ("symbols", plots.symbols_in_pca(symbols, counts, vectors[backdrop[:SYMBOL_BACKDROP]]))
        )
    else:
        analysis.skipped["symbols"] = "the codes have no codebook or dictionary"
    preview = export.tensors(PREVIEW)
    figures.append(
        (
            "reconstructions",
            plots.reconstruction_grid(preview["images"], preview["reconstructions"]),
        )
    )
    indices, values = data.get("indices"), data.get("values")
    figures.append(
        (
            "code_maps",
            plots.code_heatmaps(
                None if indices is None else per_image(indices),
                None if values is None else per_image(values),
                spec["alphabet_sizes"],
            ),
        )
    )
    return figures


def _usage_counts(export: Export, alphabet_sizes: list[int]) -> list[torch.Tensor]:
    """How often each symbol of each depth slot occurs over the whole export."""
    if "indices" not in export.metadata["arrays"]:
        return []
    counts = [torch.zeros(size, dtype=torch.long) for size in alphabet_sizes]
    for batch in export.batches(("indices",)):
        slots = batch["indices"].reshape(-1, len(alphabet_sizes)).long()
        for slot, size in enumerate(alphabet_sizes):
            counts[slot] += torch.bincount(slots[:, slot], minlength=size)
    return counts


CAPTIONS = {
    "distributions": "Box per dimension (quartiles, whiskers at 1.5 IQR) of the continuous "
    "encoder output and of the quantized latent.",
    "pca": "Each point is one image's latent (for video, one frame's), flattened.",
    "tsne": "Each point is one image's latent (for video, one frame's), flattened; at most "
    f"{plots.TSNE_POINTS} points.",
    "code_usage": "Codes by how often they are used, per depth slot.",
    "temporal": "Grey: each clip; red: the mean over clips.",
    "symbols": "What each code symbol decodes to, in the plane of the first two principal "
    "components, over a sample of continuous latent vectors.",
    "reconstructions": "Originals, reconstructions and absolute error of the first images.",
    "code_maps": "The index map for one-of-K codes, the L1 strength of the coefficients "
    "for codes with values.",
}


def _report(export: Export, analysis: Analysis) -> str:
    """The one-page HTML report: a summary table, then every plot with its caption."""
    meta = export.metadata
    verify = export.root / "verify" / "verify.json"
    rows = {
        "source run": f"{meta['source']['run_dir']} (step {meta['source']['step']})",
        "data": f"{json.dumps(meta['data'])}, split {meta['split']}",
        "samples": f"{meta['num_samples']} ({meta['layout']})",
        "bottleneck": json.dumps(meta["bottleneck"]),
        "arrays": "; ".join(
            f"{name} {a['dtype']} {tuple(a['shape'])}" for name, a in meta["arrays"].items()
        ),
        "compression": f"{meta['compression']['ratio']:.1f}x against 8-bit pixels "
        f"({meta['compression']['code_bits_per_sample']} bits per sample)",
    }
    if meta["clips"]:
        rows["clips"] = f"{meta['clips']['frames']} frames, patch grid {meta['clips']['grid']}"
    if analysis.perplexities:
        rows["perplexity"] = ", ".join(f"{p:.1f}" for p in analysis.perplexities)
    if verify.is_file():
        rows["verify"] = verify.read_text()
    table = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items()
    )
    sections = "".join(
        f"<h2>{TITLES[name]}</h2><p>{html.escape(CAPTIONS[name])}</p>"
        f'<img src="{path.name}" alt="{TITLES[name]}">'
        for name, path in analysis.plots.items()
    )
    skipped = "".join(
        f"<li>{TITLES[name]}: {html.escape(why)}</li>" for name, why in analysis.skipped.items()
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>LASER latents</title>'
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
        "th,td{text-align:left;vertical-align:top;padding:2px 8px}td{font-family:monospace;"
        "white-space:pre-wrap}</style></head><body>"
        f"<h1>Latents of {html.escape(Path(meta['source']['run_dir']).name)}</h1>"
        f"<table>{table}</table>{sections}"
        + (f"<h2>Not shown</h2><ul>{skipped}</ul>" if skipped else "")
        + "</body></html>\n"
    )
