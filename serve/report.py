"""`intima report`: per-model shares of groups and labels, overall and per prompt category, with bootstrap
95% confidence intervals, a two-model comparison, and report.md / self-contained report.html with PNG charts.
"""

from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serve.tabular import file_format, read_rows
from serve.taxonomy import (
    CATEGORIES,
    CODE_CATEGORY,
    GROUPS,
    LABELS,
    groups_of,
    normalise_category,
    normalise_code,
)

GROUP_TITLES = {
    "companionship_reinforcing": "Companionship-reinforcing",
    "boundary_maintaining": "Boundary-maintaining",
    "companionship_neutral": "Companionship-neutral",
}
OUTCOMES: tuple[str, ...] = GROUPS + LABELS


@dataclass
class Share:
    k: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": round(self.value, 4),
            "k": self.k,
            "n": self.n,
            "ci95": [round(self.low, 4), round(self.high, 4)],
        }


@dataclass
class Diff:
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        return {"difference": round(self.value, 4), "ci95": [round(self.low, 4), round(self.high, 4)]}


@dataclass
class Tally:
    """Counts of each outcome for one model (overall and per category)."""

    n: int = 0
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_category: dict[str, list[int]] = field(default_factory=dict)

    def add(self, present: set[str], category: str) -> None:
        outcome = set(present) | {g for g, on in groups_of(present).items() if on}
        self.n += 1
        for o in outcome:
            self.counts[o] += 1
        cat = self.by_category.setdefault(category, [0] * (len(OUTCOMES) + 1))
        cat[-1] += 1
        for i, o in enumerate(OUTCOMES):
            if o in outcome:
                cat[i] += 1


def bootstrap_share(k: int, n: int, rng: np.random.Generator, reps: int) -> Share:
    """Percentile bootstrap of a proportion (resampling n binary outcomes == Binomial(n, k/n) draws)."""
    if n == 0:
        return Share(0, 0, float("nan"), float("nan"))
    draws = rng.binomial(n, k / n, size=reps) / n
    return Share(k, n, float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)))


def bootstrap_diff(a: Share, b: Share, rng: np.random.Generator, reps: int) -> Diff:
    if not a.n or not b.n:
        return Diff(float("nan"), float("nan"), float("nan"))
    da = rng.binomial(a.n, a.k / a.n, size=reps) / a.n
    db = rng.binomial(b.n, b.k / b.n, size=reps) / b.n
    d = da - db
    return Diff(a.value - b.value, float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5)))


def _present(row: dict[str, Any]) -> set[str] | None:
    value = row.get("present")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [x for x in text.split(";") if x]
    return {str(x) for x in value if str(x) in LABELS}


def _category(row: dict[str, Any], category_field: str, code_field: str) -> str:
    raw = row.get(category_field)
    if raw:
        cat = normalise_category(str(raw))
        if cat:
            return cat
    code = row.get(code_field)
    if code:
        norm = normalise_code(str(code))
        if norm:
            return CODE_CATEGORY[norm]
    return "unknown"


def tally_file(
    path: Path, by: str, category_field: str = "prompt_category", code_field: str = "code", fmt: str | None = None
) -> tuple[dict[str, Tally], int]:
    """Stream a labelled file into per-model tallies; returns (tallies, rows skipped)."""
    tallies: dict[str, Tally] = {}
    skipped = 0
    for row in read_rows(path, file_format(path, fmt)):
        if row.get("error") or "__error__" in row:
            skipped += 1
            continue
        present = _present(row)
        if present is None:
            skipped += 1
            continue
        model = str(row.get(by) if row.get(by) not in (None, "") else "(unknown)")
        cat = _category(row, category_field, code_field if code_field in row else "prompt_code")
        tallies.setdefault(model, Tally()).add(present, cat)
    return tallies, skipped


def compute_report(
    tallies: dict[str, Tally], compare: tuple[str, str] | None, reps: int = 2000, seed: int = 0
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    models = sorted(tallies)
    out: dict[str, Any] = {"models": {}, "bootstrap_reps": reps, "seed": seed}
    shares: dict[str, dict[str, Share]] = {}
    cat_shares: dict[str, dict[str, dict[str, Share]]] = {}
    for m in models:
        t = tallies[m]
        shares[m] = {o: bootstrap_share(t.counts.get(o, 0), t.n, rng, reps) for o in OUTCOMES}
        cat_shares[m] = {}
        for cat, counts in sorted(t.by_category.items()):
            n = counts[-1]
            cat_shares[m][cat] = {o: bootstrap_share(counts[i], n, rng, reps) for i, o in enumerate(OUTCOMES)}
        out["models"][m] = {
            "n": t.n,
            "overall": {o: s.to_dict() for o, s in shares[m].items()},
            "by_category": {c: {o: s.to_dict() for o, s in v.items()} for c, v in cat_shares[m].items()},
        }
    if compare is None and len(models) >= 2:
        compare = (models[0], models[1])
    if compare:
        a, b = compare
        for name in compare:
            if name not in tallies:
                raise ValueError(f"model {name!r} not in the file (models: {', '.join(models)})")
        comp: dict[str, Any] = {"a": a, "b": b, "overall": {}, "by_category": {}}
        for o in OUTCOMES:
            comp["overall"][o] = bootstrap_diff(shares[a][o], shares[b][o], rng, reps).to_dict()
        for cat in sorted(set(cat_shares[a]) & set(cat_shares[b])):
            comp["by_category"][cat] = {
                o: bootstrap_diff(cat_shares[a][cat][o], cat_shares[b][cat][o], rng, reps).to_dict() for o in GROUPS
            }
        out["comparison"] = comp
    return out


# ----- charts ---------------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(ax: Any, names: list[str], models: list[str], get: Any, horizontal: bool = False) -> None:
    width = 0.8 / max(1, len(models))
    x = np.arange(len(names))
    for i, m in enumerate(models):
        vals = np.array([get(m, n)["share"] for n in names], dtype=float)
        lo = np.array([get(m, n)["ci95"][0] for n in names], dtype=float)
        hi = np.array([get(m, n)["ci95"][1] for n in names], dtype=float)
        err = np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)])
        pos = x + (i - (len(models) - 1) / 2) * width
        if horizontal:
            ax.barh(pos, vals * 100, height=width, xerr=err * 100, capsize=2, label=m)
        else:
            ax.bar(pos, vals * 100, width=width, yerr=err * 100, capsize=3, label=m)
    if horizontal:
        ax.set_yticks(x, names)
        ax.invert_yaxis()
        ax.set_xlabel("share of replies (%)")
    else:
        ax.set_xticks(x, names)
        ax.set_ylabel("share of replies (%)")
    ax.legend(title="model")
    ax.grid(axis="x" if horizontal else "y", alpha=0.3)


def make_charts(report: dict[str, Any], out_dir: Path) -> list[tuple[str, str]]:
    plt = _plt()
    models = list(report["models"])
    charts: list[tuple[str, str]] = []

    fig, ax = plt.subplots(figsize=(8, 4.5))
    _bars(ax, list(GROUPS), models, lambda m, g: report["models"][m]["overall"][g])
    ax.set_xticks(range(len(GROUPS)), [GROUP_TITLES[g] for g in GROUPS])
    ax.set_title("Share of replies in each behaviour group (95% bootstrap CI)")
    fig.tight_layout()
    fig.savefig(out_dir / "groups_by_model.png", dpi=110)
    plt.close(fig)
    charts.append(("groups_by_model.png", "Behaviour groups per model"))

    fig, ax = plt.subplots(figsize=(8, 6))
    _bars(ax, list(LABELS), models, lambda m, lab: report["models"][m]["overall"][lab], horizontal=True)
    ax.set_title("Share of replies with each label (95% bootstrap CI)")
    fig.tight_layout()
    fig.savefig(out_dir / "labels_by_model.png", dpi=110)
    plt.close(fig)
    charts.append(("labels_by_model.png", "Labels per model"))

    cats = [c for c in (*CATEGORIES, "none", "unknown") if any(c in report["models"][m]["by_category"] for m in models)]
    if cats:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
        empty = {"share": float("nan"), "ci95": [float("nan"), float("nan")]}
        for ax, group in zip(axes, ("companionship_reinforcing", "boundary_maintaining"), strict=True):
            _bars(ax, cats, models, lambda m, c, g=group: report["models"][m]["by_category"].get(c, {}).get(g, empty))
            ax.set_title(f"{GROUP_TITLES[group]} replies by prompt category")
            ax.tick_params(axis="x", rotation=20)
        fig.tight_layout()
        fig.savefig(out_dir / "groups_by_category.png", dpi=110)
        plt.close(fig)
        charts.append(("groups_by_category.png", "Groups per prompt category"))

    comp = report.get("comparison")
    if comp and comp["by_category"]:
        cats = list(comp["by_category"])
        fig, ax = plt.subplots(figsize=(9, 4.8))
        y = np.arange(len(cats))
        for i, group in enumerate(("boundary_maintaining", "companionship_reinforcing")):
            d = np.array([comp["by_category"][c][group]["difference"] for c in cats]) * 100
            lo = np.array([comp["by_category"][c][group]["ci95"][0] for c in cats]) * 100
            hi = np.array([comp["by_category"][c][group]["ci95"][1] for c in cats]) * 100
            ax.barh(
                y + (i - 0.5) * 0.38,
                d,
                height=0.38,
                xerr=np.vstack([d - lo, hi - d]),
                capsize=3,
                label=GROUP_TITLES[group],
            )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(y, cats)
        ax.invert_yaxis()
        ax.set_xlabel(f"difference in share, percentage points ({comp['a']} minus {comp['b']})")
        ax.set_title(f"{comp['a']} vs {comp['b']}: where does each set fewer boundaries? (95% CI)")
        ax.legend()
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / "comparison.png", dpi=110)
        plt.close(fig)
        charts.append(("comparison.png", f"{comp['a']} vs {comp['b']}"))
    return charts


# ----- documents ------------------------------------------------------------------------------------
def _pct(d: dict[str, Any]) -> str:
    return f"{d['share'] * 100:.1f}% [{d['ci95'][0] * 100:.1f}, {d['ci95'][1] * 100:.1f}]"


def _dpct(d: dict[str, Any]) -> str:
    return f"{d['difference'] * 100:+.1f} pp [{d['ci95'][0] * 100:+.1f}, {d['ci95'][1] * 100:+.1f}]"


def markdown_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    models = list(report["models"])
    tables = []
    head = ["outcome"] + [f"{m} (n={report['models'][m]['n']})" for m in models]
    rows = [[o] + [_pct(report["models"][m]["overall"][o]) for m in models] for o in OUTCOMES]
    tables.append(("Overall shares (95% bootstrap CI)", head, rows))
    cats = sorted({c for m in models for c in report["models"][m]["by_category"]})
    head = ["category", "group"] + models
    rows = []
    for c in cats:
        for g in GROUPS:
            cells = []
            for m in models:
                d = report["models"][m]["by_category"].get(c, {}).get(g)
                cells.append(_pct(d) + f" (n={d['n']})" if d else "-")
            rows.append([c, GROUP_TITLES[g]] + cells)
    tables.append(("By prompt category", head, rows))
    comp = report.get("comparison")
    if comp:
        head = ["scope", "outcome", f"{comp['a']} - {comp['b']}"]
        rows = [["overall", o, _dpct(comp["overall"][o])] for o in OUTCOMES]
        for c, vals in comp["by_category"].items():
            rows += [[c, g, _dpct(vals[g])] for g in GROUPS]
        tables.append((f"Comparison: {comp['a']} vs {comp['b']} (difference, 95% bootstrap CI)", head, rows))
    return tables


def write_documents(report: dict[str, Any], charts: list[tuple[str, str]], out_dir: Path, source: str) -> None:
    tables = markdown_tables(report)
    md = [
        f"# INTIMA companionship-behaviour report\n\nSource: `{source}`. Shares of replies per model; "
        f"intervals are percentile bootstrap 95% CIs ({report['bootstrap_reps']} resamples). "
        "Groups follow the label contract: reinforcing = any of sycophancy, anthropomorphism, isolation, "
        "retention; boundary = any of the four boundary labels; neutral = neither.\n"
    ]
    if report.get("skipped"):
        md.append(f"Rows skipped (error or no labels): {report['skipped']}.\n")
    for file, title in charts:
        md.append(f"![{title}]({file})\n")
    for title, head, rows in tables:
        md.append(f"\n## {title}\n")
        md.append("| " + " | ".join(head) + " |")
        md.append("|" + "---|" * len(head))
        md += ["| " + " | ".join(r) + " |" for r in rows]
    (out_dir / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>INTIMA report</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}",
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px}",
        "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}</style></head><body>",
        "<h1>INTIMA companionship-behaviour report</h1>",
        f"<p>Source: <code>{html.escape(source)}</code>. Shares per model with percentile bootstrap 95% "
        f"confidence intervals ({report['bootstrap_reps']} resamples).</p>",
    ]
    for file, title in charts:
        data = base64.b64encode((out_dir / file).read_bytes()).decode()
        parts.append(
            f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
        )
    for title, head, rows in tables:
        parts.append(
            f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
        )
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    (out_dir / "report.html").write_text("\n".join(parts), encoding="utf-8")


def build_report(
    path: Path,
    out_dir: Path,
    by: str = "model",
    compare: tuple[str, str] | None = None,
    category_field: str = "prompt_category",
    code_field: str = "code",
    reps: int = 2000,
    seed: int = 0,
    fmt: str | None = None,
) -> dict[str, Any]:
    tallies, skipped = tally_file(path, by, category_field, code_field, fmt)
    if not tallies:
        raise ValueError(f"no labelled rows in {path} (need a 'present' column from `intima label`)")
    report = compute_report(tallies, compare, reps, seed)
    report["skipped"] = skipped
    report["by"] = by
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = make_charts(report, out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    write_documents(report, charts, out_dir, path.name)
    return report
