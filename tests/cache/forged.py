"""A module a forged cache value names: importing it leaves a mark in the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ["NBINFRA_TEST_FORGED_IMPORTED"] = "1"


@dataclass
class Payload:
    command: str = ""
