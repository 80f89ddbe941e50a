"""Widgets generated from configs and model cards: config forms, the simulator tab, the checkpoint card."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_ui.jobs import job_panel, running, start_job, take_result
from app_ui.state import frame, set_data
from core.config import Config, field_specs
from core.errors import GPSError


def config_form(cls: type[Config], key: str, values: dict | None = None, *, show_advanced: bool = False) -> dict:
    """Widgets for every field of ``cls`` (help texts, bounds); returns the values as a dict for ``from_dict``.

    Nested configs become expanders; tuple fields are comma-separated text; advanced fields are shown only when
    ``show_advanced``.
    """
    values = dict(values or {})
    out: dict[str, Any] = {}
    for f in field_specs(cls):
        default = values.get(f.name, f.default)
        k = f"{key}.{f.name}"
        if f.advanced and not show_advanced:
            continue
        if f.kind == "config":
            sub_cls = type(f.default) if isinstance(f.default, Config) else _hint(cls, f.name)
            dv = default.to_dict() if isinstance(default, Config) else dict(default or {})
            with st.expander(f"{f.name}: {f.help or sub_cls.__name__}"):
                out[f.name] = config_form(sub_cls, k, dv, show_advanced=show_advanced)
        elif f.kind == "choice":
            opts = list(f.choices)
            out[f.name] = st.selectbox(
                f.name, opts, index=opts.index(default) if default in opts else 0, help=f.help, key=k
            )
        elif f.kind == "bool":
            out[f.name] = st.checkbox(f.name, value=bool(default), help=f.help, key=k)
        elif f.kind in ("int", "float"):
            cast = int if f.kind == "int" else float
            lo = None if f.min is None else cast(f.min)
            hi = None if f.max is None else cast(f.max)
            step = cast(f.step) if f.step else (1 if f.kind == "int" else None)
            fmt = None if f.kind == "int" else "%g"
            out[f.name] = st.number_input(
                f.name, min_value=lo, max_value=hi, value=cast(default), step=step, help=f.help, key=k, format=fmt
            )
        elif f.kind == "tuple":
            text = st.text_input(
                f.name, value=", ".join(map(str, default or ())), help=(f.help + " (comma-separated)").strip(), key=k
            )
            out[f.name] = _parse_tuple(text, default)
        else:
            out[f.name] = st.text_input(f.name, value="" if default is None else str(default), help=f.help, key=k)
    for name, v in values.items():  # keep values of hidden (advanced) fields
        out.setdefault(name, v)
    return out


def _hint(cls: type, name: str):
    import sys
    import typing

    return typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]))[name]


def _parse_tuple(text: str, default) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    kind = type(default[0]) if default else str
    out = []
    for t in items:
        if kind in (int, float):
            try:
                out.append(kind(float(t)) if kind is int else float(t))
            except ValueError:
                raise GPSError("not a number in a list setting", expected="comma-separated numbers", found=t) from None
        else:
            out.append(t)
    return out


def simulate_tab(spec, prefix: str, n_label: str, default_n: int, max_n: int, step: int) -> None:
    """Simulator description, size, seed and settings form, and a Simulate button that runs in the background and
    makes the result the current data."""
    from core.data.simulators import SIMULATORS

    sim = SIMULATORS.get(spec.simulator)
    st.caption(sim.description)
    c1, c2 = st.columns(2)
    n = c1.number_input(n_label, 1, max_n, default_n, step=step, key=f"{prefix}_n")
    seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key=f"{prefix}_seed")
    adv = st.toggle("Show advanced simulator settings", key=f"{prefix}_adv")
    with st.expander("Simulator settings", expanded=False):
        values = config_form(sim.config_cls, prefix, show_advanced=adv)
    if st.button("Simulate", type="primary", key="simulate", disabled=running("simulate")):
        from core import api

        cfg = sim.config_cls.from_dict(values)
        start_job(
            "simulate",
            f"Simulating {int(n):,} galaxies",
            lambda j: api.simulate(spec.name, int(n), int(seed), cfg),
            cancel_on_leave=False,
        )
    if running("simulate"):
        job_panel("simulate", stoppable=False)
    done = take_result("simulate")
    if done is not None:
        if done.error:
            st.error(done.error)
        else:
            set_data(done.result, f"simulated ({int(n):,} galaxies, seed {int(seed)})")
            st.rerun()


def model_card(card: dict) -> None:
    """Render a checkpoint's metadata: what it is, the data it was trained on, its metrics and settings."""
    c1, c2, c3 = st.columns(3)
    c1.metric("model", str(card.get("model", "?")))
    c2.metric("task", str(card.get("task", "?")))
    c3.metric("created", str(card.get("created", "—"))[:10])
    st.write(
        "**Inputs:** " + ", ".join(card.get("features", [])) + " → **targets:** " + ", ".join(card.get("targets", []))
    )
    from core.inference.model_card import input_rows

    rows = input_rows(card)
    if any(r["definition"] or r["note"] for r in rows):
        st.caption("What each input means for this model (a file column with another definition is not the same input)")
        st.dataframe(
            frame({k: [r[k] for r in rows] for k in ("name", "unit", "definition", "note")}),
            hide_index=True,
            key=f"card-inputs-{card.get('weights_sha256', '')[:8]}",
        )
    prov = card.get("provenance") or {}
    if prov:
        src = prov.get("source", "?")
        extra = (
            f"simulator `{prov.get('simulator')}`, seed {prov.get('seed')}"
            if src == "simulator"
            else prov.get("file", prov.get("source_file", ""))
        )
        st.write(
            f"**Training data:** {src} — {extra}; {prov.get('n_objects', '?')} objects, "
            f"fingerprint `{prov.get('fingerprint', '—')}`"
        )
        if prov.get("note"):  # "fine-tuned from <checkpoint> (weights sha256 ...) on <file> (sha256 ...)"
            st.write(f"**Provenance:** {prov['note']}")
    metrics = card.get("test_metrics") or {}
    if metrics:
        st.write("**Test metrics**")
        flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        st.dataframe(frame({"metric": list(flat), "value": [str(v) for v in flat.values()]}), hide_index=True)
    if card.get("notes"):
        st.write("**Notes / reproduce:**")
        st.code(str(card["notes"]), language="bash")
    with st.expander("Full settings and history"):
        st.json(
            {
                k: card.get(k)
                for k in ("config", "units", "device", "versions", "package_version", "format_version")
                if k in card
            },
            expanded=False,
        )
        hist = card.get("history") or {}
        if isinstance(hist, dict) and hist.get("epochs"):
            from core.viz.training import loss_curves_figure

            st.plotly_chart(
                loss_curves_figure(hist["epochs"], best_epoch=hist.get("best_epoch")),
                key=f"card-loss-{card.get('weights_sha256', '')[:8]}",
            )
