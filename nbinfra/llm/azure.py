"""Azure OpenAI on the official ``openai`` SDK (``AsyncAzureOpenAI``).

The model is the *deployment* name. Settings: ``endpoint`` (or ``base_url``),
``api_version``, ``api_key`` (``AZURE_OPENAI_API_KEY``).
"""

from __future__ import annotations

from typing import Any

from nbinfra.errors import ConfigError
from nbinfra.llm import LLMProvider, LLMRegistry
from nbinfra.llm._openai_compat import OpenAICompatibleProvider
from nbinfra.llm.settings import ProviderSettings

__all__ = ["AzureOpenAIProvider"]

DEFAULT_API_VERSION = "2024-10-21"


@LLMRegistry.register(LLMProvider.AZURE_OPENAI)
class AzureOpenAIProvider(OpenAICompatibleProvider):
    """Azure OpenAI chat completions; the first stream chunk may have no choices."""

    kind = "azure"
    env_key = "AZURE_OPENAI_API_KEY"
    default_rank = 50
    default_model = ""
    extra_settings = frozenset({"api_version", "endpoint"})
    default_embedding_model = ""

    @classmethod
    def has_credentials(cls, settings: ProviderSettings) -> bool:
        return bool(settings.api_key and (settings.extra.get("endpoint") or settings.base_url))

    @property
    def endpoint(self) -> str:
        return str(self.settings.extra.get("endpoint") or self.base_url or "")

    @property
    def api_version(self) -> str:
        return str(self.settings.extra.get("api_version") or DEFAULT_API_VERSION)

    def _create_client(self) -> Any:
        import openai

        if not self.endpoint:
            raise ConfigError(
                "No endpoint for azure: set AZURE_OPENAI_ENDPOINT or "
                "llm.providers.azure.endpoint in resources/application-llm.yaml."
            )
        return openai.AsyncAzureOpenAI(
            api_key=self.api_key(),
            azure_endpoint=self.endpoint,
            api_version=self.api_version,
            timeout=self._sdk_timeout(),
            max_retries=0,  # our RetryPolicy retries; the SDK's would multiply them
        )

    async def _check_model(self) -> int | None:
        # Deployments are not listed on the data plane; listing models proves the
        # endpoint answers and accepts the key.
        await self.client.models.list()
        return None
