"""Evaluation campaigns: faults injected as Chaos into Subjects under agent variants, each
trial recorded (`records`, `store`) for reports."""
