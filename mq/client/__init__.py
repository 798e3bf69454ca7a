"""A minimal client for tests, benchmarks and tools: sends, pulls and admin calls on ``RemotingClient``.

The full client library (routes, rebalance, push consumers) is a later issue; this is the small, explicit
layer underneath it: each call names the broker address and returns a Deferred.
"""

from mq.client.simple import SimpleClient, new_unique_key

__all__ = ["SimpleClient", "new_unique_key"]
