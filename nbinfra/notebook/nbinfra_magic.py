"""``%nbinfra reload``: re-read the configuration now.

Settings already follow their files and variables on the next use (``nbinfra.session``);
this forces it, e.g. after editing a file more than once within a fraction of a second.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

__all__ = ["AdminMagics", "reload_message"]

USAGE = "Usage: %nbinfra reload  (re-read resources/*.yaml, .env and the environment now)"


def reload_message(closed: list[str]) -> str:
    """The line ``%nbinfra reload`` prints for the instances it closed."""
    if not closed:
        return "Configuration reloaded; no open cache, connection or LLM had changed settings."
    return "Configuration reloaded; closed (built again on next use): " + ", ".join(closed) + "."


@magics_class
class AdminMagics(Magics):
    """``%nbinfra``: the session itself (one sub-command: ``reload``)."""

    @no_var_expand
    @line_magic
    def nbinfra(self, line: str) -> Any:
        """Re-read the configuration: ``%nbinfra reload``.

        Instances whose settings changed are closed and built again on next use; the
        others stay as they are.
        """
        words = line.split()
        if words in ([], ["-h"], ["--help"]):
            print(USAGE)
            return None
        if words != ["reload"]:
            raise UsageError(f"%nbinfra: unknown command {line.strip()!r}. {USAGE}")
        from nbinfra.session import reload

        print(reload_message(reload()))
        return None
