"""What every ``live`` command shares: its settings options, reading the settings once, logging.

A command's parser gets ``--config`` and ``--data`` from ``add_settings_options``; ``main``
reads the settings once (``LIVE_*`` over ``--config``, the command's options over both) and
sets up logging from them before the command runs. Commands get the settings with
``settings_of(args)``.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings

Overrides = Callable[[argparse.Namespace], dict[str, Any]]
"""A command's own options as settings (``--host`` -> ``host``), given to ``set_defaults``."""


def add_settings_options(
    parser: argparse.ArgumentParser, *, data_default: str | None = None, nested: bool = False
) -> None:
    """``--config`` and ``--data``. ``nested``: a subcommand of a parser that has them too
    (``live users --data D list`` and ``live users list --data D`` both work)."""
    default: Any = argparse.SUPPRESS if nested else None
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help="TOML settings file (LIVE_* variables override it)",
    )
    where = data_default or "LIVE_DATA_DIR or ./live-data"
    parser.add_argument(
        "--data",
        default=argparse.SUPPRESS if nested else data_default,
        metavar="DIR",
        help=f"data directory (default: {where})",
    )


def read_settings(args: argparse.Namespace) -> Settings:
    """The settings for this command line, read once."""
    config = Path(args.config) if getattr(args, "config", None) else None
    overrides: Overrides | None = getattr(args, "overrides", None)
    values = overrides(args) if overrides is not None else {}
    if getattr(args, "data", None):
        values.setdefault("data_dir", Path(args.data))
    settings = load_settings(os.environ, config, **values)
    args.settings = settings
    return settings


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings ``main`` read for this command (reading them if it did not)."""
    settings = getattr(args, "settings", None)
    return settings if isinstance(settings, Settings) else read_settings(args)


def configure_logging(args: argparse.Namespace, settings: Settings) -> None:
    """``--log-level``, else ``LIVE_LOG_LEVEL``, else the command's default (``INFO``; the
    audit tools ``WARNING``). Secrets and caller numbers are masked at every level."""
    level = str(args.log_level or settings.log_level or getattr(args, "log_default", "INFO"))
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..server.logs import install_redaction

    install_redaction()
    if logging.getLogger().level > logging.DEBUG:  # ICE chatter only when debugging
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
