"""Connection managers: databases, vector stores and external services."""
