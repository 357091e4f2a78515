"""Training one run: fit, optimizers and schedules, CUDA graphs, process settings, run summaries."""
