"""Regenerate Twisted's dropin cache after installing mq, so ``twistd --help`` lists its services."""

from __future__ import annotations


def refresh_cache() -> None:
    """Load every plugin once: Twisted rewrites ``twisted/plugins/dropin.cache`` when it is stale."""
    import argparse

    from twisted.plugin import IPlugin, getPlugins

    from mq.common.cli import version_text

    parser = argparse.ArgumentParser(prog="mq-plugins-refresh", description=__doc__)
    parser.add_argument("--version", action="version", version=version_text("mq-plugins-refresh"))
    parser.parse_args()

    names = sorted(name for name in (getattr(p, "tapname", None) for p in getPlugins(IPlugin)) if isinstance(name, str))
    print("twistd services:", " ".join(names))


if __name__ == "__main__":
    refresh_cache()
