"""LLM providers, token counting and context-window management."""
