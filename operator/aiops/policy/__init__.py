"""The policy gate: the only place that decides whether an action runs. Never the model."""
