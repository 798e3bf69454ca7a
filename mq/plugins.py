"""Regenerate Twisted's dropin cache after installing mq, so ``twistd --help`` lists its services."""

from __future__ import annotations


def refresh_cache() -> None:
    """Load every plugin once: Twisted rewrites ``twisted/plugins/dropin.cache`` when it is stale."""
    from twisted.plugin import IPlugin, getPlugins

    names = sorted(name for name in (getattr(p, "tapname", None) for p in getPlugins(IPlugin)) if isinstance(name, str))
    print("twistd services:", " ".join(names))


if __name__ == "__main__":
    refresh_cache()
