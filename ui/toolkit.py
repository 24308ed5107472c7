"""The Tools section of a finished run's page (under its results): export the model, checked against PyTorch, and
download it; the run's earlier exports are listed again with their downloads. The work is core.toolkit's."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core.data.plan import format_bytes
from ui.i18n import N_, t, t_core
from ui.resources import show_error

FORMATS = {"onnx": N_("ONNX, checked with ONNX Runtime"), "torchscript": N_("torch.export program (.pt2)"),
           "safetensors": N_("safetensors weights with a model card"),
           "bundle": N_("zip: ONNX, model card and a predict.py that needs no lab")}
MIME = {".onnx": "application/octet-stream", ".pt2": "application/octet-stream", ".zip": "application/zip",
        ".safetensors": "application/octet-stream", ".json": "application/json", ".md": "text/markdown"}


def tools(run) -> None:
    """The Tools section: one tab per tool the run's family supports (core.toolkit.tools_for)."""
    from core.toolkit import tools_for
    available = [tool for tool in tools_for(run.task) if tool in PANELS]
    if not available:
        return
    st.subheader(t("Tools"), anchor=False)
    for tab, tool in zip(st.tabs([t(TAB_TITLES[tool]) for tool in available]), available):
        with tab:
            PANELS[tool](run)


TAB_TITLES = {"layers": N_("What the layers see"), "attack": N_("Attack"), "finetune": N_("Fine-tune"),
              "compress": N_("Compress"), "export": N_("Export")}


QUANTIZE = {"": N_("no quantisation"), "dynamic": N_("dynamic int8"), "static": N_("static int8 (calibrated)")}
PRUNE_KINDS = {"unstructured": N_("single weights"), "channel": N_("whole channels")}


def compress_panel(run) -> None:
    """Quantise and/or prune the run's best checkpoint; the table compares every variant made so far with the
    original: size on disk, CPU latency per image, the run's metric (core.toolkit.compress)."""
    from core.toolkit.compress import compress_run, compression_report
    st.caption(t("Smaller and faster models from this run: int8 quantisation and magnitude pruning, each measured on "
                 "the run's validation images. Latency is per image on one CPU thread."))
    c1, c2, c3 = st.columns(3)
    quantize = c1.selectbox(t("Quantise"), list(QUANTIZE), index=1, key=f"compress_quantize-{run.id}",
                            format_func=lambda key: t(QUANTIZE[key]))
    sparsity = c2.slider(t("Prune (share of weights set to zero)"), 0.0, 0.9, 0.0, 0.1, key=f"compress_prune-{run.id}")
    kind = c3.selectbox(t("Prune"), list(PRUNE_KINDS), key=f"compress_kind-{run.id}", disabled=not sparsity,
                        format_func=lambda key: t(PRUNE_KINDS[key]))
    if st.button(t("Compress"), key=f"compress-{run.id}", icon=":material/compress:",
                 disabled=not quantize and not sparsity):
        try:
            with st.spinner(t("Compressing and measuring…")):
                compress_run(run.id, quantize=quantize or None, prune=sparsity or None, prune_kind=kind)
        except Exception as exc:  # a LabError says why in the user's words; anything else in one short line
            show_error(exc)
    report = compression_report(run.id)
    if report is None:
        return
    rows = [{t("variant"): row["variant"], t("size"): format_bytes(row["size_bytes"]),
             t("size, zipped"): format_bytes(row["zipped_bytes"]), t("smaller"): f"{row['smaller']:.2f}×",
             t("ms per image (batch 1)"): round(row["latency_ms_b1"], 3),
             t("ms per image (batch 32)"): round(row["latency_ms_b32"], 3),
             report.metric: round(row["metric"], 4), t("change"): f"{row['change']:+.2f}"}
            for row in report.comparison()]
    st.dataframe(rows, hide_index=True)


def export_panel(run) -> None:
    from core.toolkit.export import TOLERANCE, export_formats, export_run, list_exports
    st.caption(t("Use the model outside the lab. Each export is run on the run's validation inputs and kept only if "
                 "it gives PyTorch's answers: outputs within {tolerance}, and for a model that scores classes the same "
                 "top class everywhere.", tolerance=f"{TOLERANCE:g}"))
    try:
        offered = export_formats(run.id)
    except Exception as exc:  # no checkpoint, or one that cannot be read: say so instead of a panel
        show_error(exc)
        return
    names = {fmt: t(label) for fmt, label in FORMATS.items() if fmt in offered}
    fmt = st.radio(t("Format"), list(names), format_func=names.get, key=f"export_format-{run.id}", horizontal=True)
    made = None
    if st.button(t("Export"), key=f"export-{run.id}", icon=":material/ios_share:", type="primary"):
        try:
            with st.spinner(t("Exporting the model and checking the export…")):
                made = export_run(run.id, fmt)
        except Exception as exc:  # a LabError says why in the user's words; anything else in one short line
            show_error(exc)
    if made is not None:
        st.success(t("Exported and checked: {file}", file=Path(made.path).name), icon=":material/check_circle:")
        _figures(made, names)
        _downloads(run.id, made, "new")
    earlier = [result for result in list_exports(run.id) if made is None or result.path != made.path]
    if earlier:
        st.markdown("**" + t("Earlier exports") + "**")
        for result in earlier:
            with st.container(border=True):
                _figures(result, names)
                _downloads(run.id, result, "earlier")


def _figures(result, names: dict[str, str]) -> None:
    date = time.strftime("%Y-%m-%d %H:%M", time.localtime(result.created_at))
    st.caption(t("{format} · {file} · {date} · checked with {tool}", format=names.get(result.format, result.format),
                 file=f"`{Path(result.path).name}`", date=date, tool=f"`{result.checked_with}`"))
    columns = st.columns(4)
    columns[0].metric(t("largest output difference"), f"{result.max_abs_diff:.1e}")
    agreement = result.top1_agreement
    columns[1].metric(t("top-1 agreement"), f"{agreement:.0%}" if agreement is not None else "–")
    columns[2].metric(t("inputs checked"), f"{result.images}")
    columns[3].metric(t("size"), format_bytes(result.size_bytes))
    if result.inputs != "validation":
        st.caption(t_core(result.note))  # why: the run's data could not be read, or the model takes noise


def _downloads(run_id: str, result, where: str) -> None:
    """A download button for the export's file, and for the files written beside it (a model card)."""
    paths = [Path(result.path)] + [Path(p) for p in result.files if Path(p).is_file()]
    bar = st.container(horizontal=True)
    for path in paths:
        bar.download_button(t("Download {file}", file=path.name), lambda path=path: path.read_bytes(),
                            file_name=f"{run_id}-{path.name}", mime=MIME.get(path.suffix, "application/octet-stream"),
                            icon=":material/download:", on_click="ignore", key=f"export_download-{where}-{path.name}")


def _attack(run) -> None:
    from ui.attack_panel import attack_panel
    attack_panel(run)


def _layers(run) -> None:
    from ui.explain_panel import layers_panel
    layers_panel(run)


def _finetune(run) -> None:
    from ui.finetune_panel import finetune_panel
    finetune_panel(run)


PANELS = {"layers": _layers, "attack": _attack, "finetune": _finetune, "compress": compress_panel,
          "export": export_panel}
