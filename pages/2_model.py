"""Model: bundled checkpoints, training with live loss curves and Stop, checkpoint upload (model card), download."""

import streamlit as st

import app_ui as ui
from app_ui import model_panel

st.title("Model")
with ui.guard("Model"):
    spec = ui.task()
    from core.device import available_devices, device_description, resolve_device

    c1, c2 = st.columns([1, 3])
    dev = c1.selectbox(
        "Device", available_devices(), key="device", help="auto: CUDA GPU if present, else MPS, else CPU"
    )
    c2.metric("Device in use", device_description(resolve_device(dev)))

    bundled_tab, train_tab, upload_tab = st.tabs(["Bundled checkpoints", "Train a model", "Upload a checkpoint"])
    with bundled_tab:
        model_panel.bundled_tab(spec)
    with train_tab:
        model_panel.train_tab(spec, dev)
    with upload_tab:
        model_panel.upload_tab(spec)
    model_panel.current_model(spec)
