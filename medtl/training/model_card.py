"""``model_card.md``: what a trained model is, what it was trained on, how well it did, and what it is for."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from medtl.training.run_folder import RunConfig, weight_provenance

if TYPE_CHECKING:
    from medtl.training.run_summary import RunSummary

INTENDED_USE = (
    "Research use only. This model is not a medical device and must not be used for diagnosis, "
    "treatment or any other clinical decision. Its figures hold for the validation data below; "
    "they say nothing about other scanners, sites or populations."
)

NOT_METRICS = ("epoch", "train_loss", "lr", "seconds", "elapsed_seconds", "confusion_matrix")


def _table(rows: dict[str, Any]) -> str:
    if not rows:
        return "_not recorded_\n"
    lines = ["| | |", "|---|---|"]
    for key, value in rows.items():
        shown = f"{value:.4g}" if isinstance(value, float) else value if isinstance(value, (str, int)) else json.dumps(value, ensure_ascii=False)
        lines.append(f"| {_cell(key)} | {_cell(shown)} |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    """``value`` as the text of one table cell: names (labels, classes, paths) are data, never markup, so a name holding
    ``|``, a line break, HTML or Markdown stays inside its cell and is shown as written."""
    text = " ".join(str(value).split())
    for character in "\\`[]<>|":  # escapes (\\), code, links and images, HTML, and the cell's own border
        text = text.replace(character, "\\" + character)
    return text


def render_model_card(config: RunConfig, summary: RunSummary, best_epoch_metrics: dict[str, Any]) -> str:
    """Markdown for ``model_card.md``; ``best_epoch_metrics`` is the metrics line of the best epoch (may be empty)."""
    source, licence = weight_provenance(config.model)
    licence = licence or config.weights_licence
    data = dict(config.data)
    split = data.pop("split", None)
    metrics = {key: value for key, value in best_epoch_metrics.items() if key not in NOT_METRICS}
    sections = [
        f"# Model card: {config.train.task} ({config.model.get('architecture', 'unnamed architecture')})\n",
        f"## Intended use\n\n{INTENDED_USE}\n",
        f"## Source weights\n\n- source: {source or 'none (trained from scratch)'}\n- licence: {licence or 'not recorded'}\n",
        f"## Model\n\n{_table(config.model)}",
        f"## Data\n\n{_table(data)}",
        f"## Split\n\n{_table(split if isinstance(split, dict) else ({'split': split} if split else {}))}",
        f"## Preprocessing\n\n{_table(config.preprocessing)}",
        "## Training\n\n"
        + _table({"epochs": summary.epochs, "seconds": summary.seconds, "stopped_because": summary.stopped_because, "lr": config.train.lr, "batch_size": config.train.batch_size, "seed": config.train.seed}),
        f"## Validation metrics (best epoch, selected by {summary.best_metric_name})\n\n{_table(metrics)}",
    ]
    if "confusion_matrix" in best_epoch_metrics:
        sections.append(f"Confusion matrix (rows: true class, columns: predicted): `{best_epoch_metrics['confusion_matrix']}`\n")
    return "\n".join(sections)
