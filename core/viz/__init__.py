"""Pure plotly figure builders (no streamlit): corner, training, hmc, calibration, residuals, data, evaluation."""
