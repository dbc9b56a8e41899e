"""``%%llm --over df`` and ``%llm map``: one prompt per row of a DataFrame, from a notebook.

::

    %%llm --over df --col text -o out --concurrency 8 --max-cost 0.50
    Classify this support ticket as billing, bug or question: {text}

    %llm map --over df --col text -o out Classify: {text}

The cell (or, on a line, the text after the options) is the template; its ``{column}``
fields come from each row (then from your variables), with ``%%llm``'s safe interpolation
(lookups only, never calls). With ``--col`` and no template, the column's text is the
prompt. ``-o VAR`` stores the result frame (aligned to the DataFrame's index); without it
the frame is the cell's value. One line sums up what happened; an interrupt keeps the
answered rows (the frame in ``VAR`` is partial, the next run sends only the rest).
"""

from __future__ import annotations

from collections import ChainMap
from typing import Any

from IPython.core.error import UsageError

from nbinfra.notebook._args import check_output_name

__all__ = ["run_map"]


def run_map(magics: Any, args: Any, template: str) -> Any:
    """Run the map that ``args`` (the parsed ``%llm`` options) and ``template`` describe."""
    ns = magics.user_ns
    if not args.over:
        raise UsageError("%llm map needs --over VAR (a DataFrame, a Series or a list).")
    if args.chat or args.strategy or args.budget:
        raise UsageError("--chat, --strategy and --budget apply to chats, not to --over.")
    if args.output:
        check_output_name(args.output, getattr(magics.shell, "user_ns_hidden", ()))
    data = _variable(ns, args.over, "--over")
    if not template and not args.col:
        raise UsageError(
            "No template: put it in the cell (with {column} fields), or pass --col NAME to "
            "send that column's text as the prompt."
        )
    options = _map_options(magics, args, ns)
    from nbinfra.llm.sync import llm

    target = llm(args.provider or magics.default_provider or None, args.model or None)
    namespace = None if args.no_interpolate else ChainMap(ns)
    if args.no_interpolate and template:
        template = template.replace("{", "{{").replace("}", "}}")
    try:
        frame = target.map(data, template or None, column=args.col, namespace=namespace, **options)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    summary = frame.attrs.get("nbinfra_map")
    for row_response in _responses(frame, summary):
        magics.state.usage.record(row_response, magics.cell_number())
    if summary is not None:
        from nbinfra.notebook.display import show

        show({"text/plain": f"LLM map: {summary}"}, raw=True)
    ns["_llm_map"] = frame
    if args.output:
        ns[args.output] = frame
        return None
    return frame


def _map_options(magics: Any, args: Any, ns: Any) -> dict[str, Any]:
    from nbinfra.llm.calls import check_option

    options: dict[str, Any] = {"progress": True}
    if args.temperature is not None:
        options["temperature"] = check_option("temperature", args.temperature)
    if args.max_tokens is not None:
        options["max_tokens"] = check_option("max_tokens", args.max_tokens)
    if args.system:
        options["system"] = args.system
    if (args.format or "") == "json":
        options["response_format"] = "json"
    from nbinfra.notebook.llm_magic import _schema

    schema = _schema(args, ns)
    if schema is not None:
        options["schema"] = schema
    for name in ("concurrency", "rpm", "tpm"):
        value = getattr(args, name)
        if value is not None:
            if value <= 0:
                raise UsageError(f"--{name} must be positive, got {value}.")
            options[name] = value
    if args.max_cost is not None:
        if args.max_cost <= 0:
            raise UsageError(f"--max-cost must be a positive amount, got {args.max_cost}.")
        options["budget"] = args.max_cost
    if args.fallbacks:
        options["fallbacks"] = [s.strip() for s in args.fallbacks.split(",") if s.strip()]
    if args.no_cache:
        from nbinfra.llm.replay import ResponseStore

        options["store"] = ResponseStore("off")
    return options


def _variable(ns: Any, name: str, option: str) -> Any:
    if not name.isidentifier() or name not in ns:
        raise UsageError(f"{option} {name}: no variable of that name in the notebook.")
    return ns[name]


def _responses(frame: Any, summary: Any) -> list[Any]:
    """Answered rows as light response records for ``%llm usage``."""
    from nbinfra.llm.types import LLMResponse, Usage

    out: list[Any] = []
    if summary is None:
        return out
    answered = frame[frame["error"].isna()]
    for row in answered.itertuples(index=False):
        out.append(
            LLMResponse(
                content="",
                model=str(row.model),
                provider=str(row.provider),
                usage=Usage(int(row.prompt_tokens), int(row.completion_tokens)),
                latency=float(row.latency),
                cost=None if row.cost != row.cost else float(row.cost),  # NaN: no price
                cached=bool(row.cached),
            )
        )
    return out
