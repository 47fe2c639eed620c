"""The rate limiter as local processes under supervisord: Redis, toxiproxy in front of it,
three nodes that reach Redis only through toxiproxy (so faults can be injected), Prometheus
scraping the nodes, and an optional load generator.

    stack = LocalStack(Path("/tmp/rl"), base_port=24000)
    urls = stack.up()          # idempotent; raises StackError with one line on failure
    ...                        # urls.nodes["rl-node-1"], urls.prometheus, stack.rpc()
    stack.down()               # stops everything; verifies no process is left
"""

from ratelimiter.localstack.ports import PORT_SPAN, StackPorts, find_free_base
from ratelimiter.localstack.stack import LocalStack, StackError, StackUrls

__all__ = ["PORT_SPAN", "LocalStack", "StackError", "StackPorts", "StackUrls", "find_free_base"]
