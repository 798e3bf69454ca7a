"""The packaging: every package is installed, and the dropins are where Twisted looks for them."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_setup_cfg_lists_every_package():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "mq").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "packages missing from setup.cfg [options] packages"
    assert "twisted.plugins" in listed
    assert config["options"]["package_dir"].strip() == "twisted.plugins = twisted_plugins"


def test_dropins_name_importable_modules():
    import importlib
    import runpy

    dropin = runpy.run_path(str(REPO / "twisted_plugins" / "mq_services.py"))
    makers = {v.tapname: v for v in dropin.values() if hasattr(v, "tapname")}
    assert {"namesrv", "broker", "mq", "console"} <= set(makers)
    for maker in makers.values():
        module = importlib.import_module(maker.module)
        assert hasattr(module, "makeService") and hasattr(module, "Options"), maker.module


def test_the_console_front_end_is_package_data():
    """The console serves its page from the installed package: every file of its static folder is shipped."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    data = config["options.package_data"]
    assert data["mq.console"].strip() == "static/*"
    static = REPO / "mq" / "console" / "static"
    assert {p.name for p in static.iterdir()} >= {"index.html", "app.js", "app.css"}
    assert all(p.is_file() for p in static.iterdir())  # static/* takes no subfolder
