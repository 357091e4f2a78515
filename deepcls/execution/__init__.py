"""Running many runs: local worker processes, several runs on one GPU, a Ray cluster."""
