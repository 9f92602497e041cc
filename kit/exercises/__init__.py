"""The questions of each exercise notebook, one module per notebook (see kit.checks)."""
