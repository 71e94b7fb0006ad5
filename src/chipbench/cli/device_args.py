"""`--device NAME` and `--device-plugin MODULE`, shared by every command that runs or describes a device.

The parent process does not import torch: the name is checked where the device is resolved (the worker's
hello, or `env`/`describe` in this process), after the plugins are imported there. The plugins travel to
every worker and torchrun rank in $CHIPBENCH_DEVICE_PLUGINS.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from chipbench.platform.device import PLUGINS_ENV, plugin_modules


def add_device_args(s: Any, help: str | None = None) -> None:
    s.add_argument(
        "--device", default="auto", metavar="NAME",
        help=help or "auto (the accelerator torch reports, else cpu), cpu, cuda, rocm, mps, xpu, or any "
        "device type a backend registers with torch",
    )  # fmt: skip
    s.add_argument(
        "--device-plugin", action="append", metavar="MODULE",
        help=f"import this Python module first: a backend that registers its device (repeatable; also ${PLUGINS_ENV}, comma-separated)",
    )  # fmt: skip


def export_plugins(args: argparse.Namespace) -> None:
    """Put the `--device-plugin` modules in the environment, where the device layer and the workers read
    them."""
    extra = getattr(args, "device_plugin", None)
    if extra:
        os.environ[PLUGINS_ENV] = ",".join(plugin_modules(extra))
