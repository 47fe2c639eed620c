"""Shared fixtures. Each fixture family lives in tests/fixtures/ and is loaded here."""

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.aiops_api",
    "tests.fixtures.ratelimiter",
    "tests.fixtures.prometheus",
    "tests.fixtures.scripted_anthropic",
]
