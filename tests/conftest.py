"""Shared fixtures: the real services live in nbinfra.testing."""

pytest_plugins = ["nbinfra.testing"]
