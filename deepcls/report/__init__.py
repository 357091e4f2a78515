"""Formatting, plots, the executed notebooks' HTML report and results/RESULTS.md."""
