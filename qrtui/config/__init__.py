"""The configuration: nodes and profiles (nodes.py), read and checked from TOML with one line
per mistake (checks.py), and written back keeping the user's comments (writer.py). Keeping
layer: it imports nothing of qrtui above it.
"""

from __future__ import annotations

from qrtui.config.checks import (
    Check,
    check_aet,
    check_port,
    load_config,
    name_problem,
    parse_config,
    parse_overlap,
    parse_quiet_hours,
)
from qrtui.config.destinations import Destination
from qrtui.config.nodes import (
    APP_NAME,
    CONFIG_ENV,
    GROUP_NAMES,
    ClientConfig,
    Config,
    ConfigError,
    Profile,
    RemoteNode,
    StoreNode,
    default_config_path,
    resolve_config_path,
)
from qrtui.config.writer import (
    backup_path,
    comments_a_save_drops,
    config_to_dict,
    save_config,
    write_atomically,
)

__all__ = [
    "APP_NAME",
    "CONFIG_ENV",
    "GROUP_NAMES",
    "Check",
    "ClientConfig",
    "Config",
    "ConfigError",
    "Destination",
    "Profile",
    "RemoteNode",
    "StoreNode",
    "backup_path",
    "check_aet",
    "check_port",
    "comments_a_save_drops",
    "config_to_dict",
    "default_config_path",
    "load_config",
    "name_problem",
    "parse_config",
    "parse_overlap",
    "parse_quiet_hours",
    "resolve_config_path",
    "save_config",
    "write_atomically",
]
