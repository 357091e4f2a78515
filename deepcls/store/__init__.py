"""The run store: results/runs/<run-id>/ folders written atomically, locks, run archives."""
