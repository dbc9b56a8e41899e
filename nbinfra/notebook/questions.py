"""Keep a trailing ``?`` in a magic line: ``%llm what is Redis?`` is a prompt, not help.

IPython reads any line that ends in ``?`` as a help request (``%pinfo``) before a magic
sees it, so ``%llm what is pi?`` would show the help of ``pi`` and send nothing. This
cleanup transformer runs first and turns such a line of nbinfra's line magics into the
explicit ``run_line_magic`` call, with the text as written. ``%llm?`` and ``%llm??`` (no
text after the name) still show the magic's help.
"""

from __future__ import annotations

from typing import Any

NAMES = ("llm", "cache", "conn")


def keep_question_marks(lines: list[str]) -> list[str]:
    """Rewrite each ``%NAME text?`` line (NAME one of nbinfra's line magics)."""
    out = []
    for line in lines:
        body = line.rstrip("\r\n")
        if body.endswith("?") and body.startswith("%") and not body.startswith("%%"):
            name, _, rest = body[1:].partition(" ")
            if name in NAMES and rest.strip():
                ending = line[len(body) :]
                line = f"get_ipython().run_line_magic({name!r}, {rest!r}){ending}"
        out.append(line)
    return out


def register(ipython: Any) -> None:
    cleanup = ipython.input_transformers_cleanup
    if keep_question_marks not in cleanup:
        cleanup.append(keep_question_marks)


def unregister(ipython: Any) -> None:
    cleanup = ipython.input_transformers_cleanup
    while keep_question_marks in cleanup:
        cleanup.remove(keep_question_marks)
