"""HTML drift report: evidently's distribution comparison plus our detector results.

evidently (0.7.23) is imported inside :func:`write_html_report` only: the import
takes 4-7 s and pulls about 1 GB of dependencies, which the daemon must not pay
at start-up. Its usage telemetry is switched off first: evidently 0.7.23 reads
``DO_NOT_TRACK`` (``evidently/telemetry.py``; any value disables it) and its
legacy modules read ``EVIDENTLY_DISABLE_TELEMETRY=1`` (``evidently/legacy/_config.py``);
both are set in ``os.environ`` unless already set. (In 0.7.23 only the UI
service and the collector send events; building a report sends none.)

evidently embeds its 3.5 MB JavaScript bundle in every page. By default the
bundle is written once next to the reports, as ``js/evidently-<version>.js``,
and each page links to it (evidently's own "folder" save mode), which keeps a
page near 0.25 MB; ``self_contained=True`` keeps one 3.8 MB file to mail around.
"""

from __future__ import annotations

import html
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from detectors.base import DetectorResult, as_1d_finite
from monitor.reports.results_html import CSS, our_section

logger = logging.getLogger(__name__)

COLUMN = "confidence"


def write_html_report(
    reference: ArrayLike | Mapping[str, ArrayLike],
    current: ArrayLike | Mapping[str, ArrayLike],
    results: Sequence[DetectorResult],
    path: str | os.PathLike[str],
    title: str,
    *,
    self_contained: bool = False,
    extra_html: str = "",
    detector_section: bool = True,
) -> Path:
    """Write an HTML report comparing reference and current confidence distributions.

    The page starts with our own section (window sizes, detector results such as
    KL divergence and ECE, per-bin tables) followed by evidently's
    ``DataDriftPreset`` on the confidence column and its ``kl_div`` and ``psi``
    ``ValueDrift`` metrics as cross-checks (evidently bins both windows
    together, so its KL differs from ours by design).

    Parameters
    ----------
    reference : array-like of shape (n_reference,) or mapping of str -> array-like
        Reference-window confidences (probability), or several score columns by
        name (e.g. ``{"confidence": ..., "raw_logit": ...}``); the first is the
        one summarised in our table.
    current : array-like of shape (n_current,) or mapping of str -> array-like
        Current-window values, with the same column names as ``reference``.
    results : sequence of DetectorResult
        Detector results to show; may be empty.
    path : str or path-like
        Output file; parent directories are created.
    title : str
        Page title (HTML-escaped).
    self_contained : bool, default False
        Embed evidently's JavaScript bundle instead of linking ``js/evidently-<v>.js``.
    extra_html : str, default ""
        Trusted HTML inserted after our detector section (the weekly report's
        figures and tables).
    detector_section : bool, default True
        False leaves out our section of windows, results and bins (the weekly
        report shows its own story and per-subject sections in ``extra_html``).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        An empty, non-1-D or non-finite input array, or an empty title.
    TypeError
        An element of ``results`` is not a DetectorResult.
    """
    refs = _columns(reference, "reference")
    curs = _columns(current, "current")
    if list(refs) != list(curs):
        raise ValueError(f"reference columns {list(refs)} differ from current {list(curs)}")
    ref, cur = next(iter(refs.values())), next(iter(curs.values()))
    for r in results:
        if not isinstance(r, DetectorResult):
            raise TypeError(f"results must be DetectorResult objects, got {type(r).__name__}")
    if not title:
        raise ValueError("title must be a non-empty string")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)

    page = _evidently_html(refs, curs, title)
    page = page.replace("<head>", f"<head>\n<title>{html.escape(title)}</title>", 1)
    ours = (our_section(ref, cur, results, title) if detector_section else CSS) + extra_html
    if "<body>" in page:
        page = page.replace("<body>", "<body>\n" + ours, 1)
    else:  # layout changed upstream: still show our results
        page = ours + page
    if not self_contained:
        page = _link_bundle(page, out.parent)

    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    logger.info("wrote report %s (%.0f kB)", out, out.stat().st_size / 1e3)
    return out


def _columns(data: ArrayLike | Mapping[str, ArrayLike], name: str) -> dict[str, np.ndarray]:
    """One array or a mapping of them, validated: ``{column: ndarray of shape (n,)}``."""
    items = data.items() if isinstance(data, Mapping) else [(COLUMN, data)]
    out = {str(k): as_1d_finite(v, f"{name}[{k!r}]" if k != COLUMN else name) for k, v in items}
    if not out:
        raise ValueError(f"{name} has no columns")
    for key, arr in out.items():
        if arr.size == 0:
            label = name if key == COLUMN else f"{name}[{key!r}]"
            raise ValueError(f"{label} is empty: a report needs samples in both windows")
    return out


def _evidently_html(refs: Mapping[str, Any], curs: Mapping[str, Any], title: str) -> str:
    """Run evidently (imported here, telemetry off) and return its standalone HTML."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
    try:
        with warnings.catch_warnings():
            # evidently's UI modules import litestar, which warns about its own deprecations.
            warnings.simplefilter("ignore", DeprecationWarning)
            import pandas as pd
            from evidently import DataDefinition, Dataset, Report
            from evidently.metrics import ValueDrift
            from evidently.presets import DataDriftPreset
    except ImportError as exc:  # pragma: no cover - evidently is a declared dependency
        raise ImportError("HTML reports need evidently: pip install 'evidently==0.7.23'") from exc

    columns = list(refs)
    definition = DataDefinition(numerical_columns=columns)
    metrics: list[Any] = [DataDriftPreset(columns=columns)]
    for column in columns:
        metrics += [
            ValueDrift(column=column, method="kl_div"),
            ValueDrift(column=column, method="psi"),
        ]
    report = Report(metrics, metadata={"title": title})
    snapshot = report.run(
        Dataset.from_pandas(pd.DataFrame(dict(curs)), data_definition=definition),
        Dataset.from_pandas(pd.DataFrame(dict(refs)), data_definition=definition),
    )
    return snapshot.get_html_str(as_iframe=False)


def _link_bundle(page: str, directory: Path) -> str:
    """Replace evidently's inline JS bundle by a link to one shared copy in ``directory/js``."""
    import evidently

    source = Path(evidently.__file__).parent / "nbextension" / "static" / "index.js"
    try:
        bundle = source.read_text(encoding="utf-8")
    except OSError:
        logger.warning("evidently bundle %s not found: report stays self-contained", source)
        return page
    inline = f"<script>{bundle}</script>"
    if page.count(inline) != 1:
        logger.warning("evidently page layout not recognised: report stays self-contained")
        return page
    rel = f"js/evidently-{evidently.__version__}.js"
    target = directory / rel
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(bundle, encoding="utf-8")
        os.replace(tmp, target)
    return page.replace(inline, f'<script src="{rel}"></script>', 1)
