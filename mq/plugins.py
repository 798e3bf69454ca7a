"""Regenerate Twisted's dropin cache after installing mq, so ``twistd --help`` lists its services."""

from __future__ import annotations


def refresh_cache() -> None:
    """Load every plugin once: Twisted rewrites ``twisted/plugins/dropin.cache`` when it is stale."""
    from twisted.plugin import IPlugin, getPlugins

    names = sorted(getattr(p, "tapname", repr(p)) for p in getPlugins(IPlugin))
    print("twisted plugins:", " ".join(n for n in names if isinstance(n, str)))


if __name__ == "__main__":
    refresh_cache()
