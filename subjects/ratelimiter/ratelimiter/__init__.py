"""A distributed rate limiter on Redis: sliding-window log per key, one atomic Lua script.

Modules: `config` (settings from RL_* env), `models` (the HTTP boundary), `limiter` (the Lua
script and its Python face), `registry` (node heartbeats), `metrics` (Prometheus), `app` and
`admin` (the Starlette service), `loadgen` (load generator), `localstack` (supervisord stack).
"""

__version__ = "0.1.0"
