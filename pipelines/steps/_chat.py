"""OpenAI-compatible chat completions (NIM, judge models) and the test split they are scored on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.steps._common import StepError, env, load_jsonl_objects
from pipelines.steps._http import ServiceClient


@dataclass(frozen=True)
class Example:
    """A test conversation: what the model is asked, and the human-written answer."""

    messages: list[dict[str, str]]
    reference: str

    @property
    def question(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


def load_examples(path: Path, limit: int = 0) -> list[Example]:
    """Read chat-schema examples whose last message is the assistant's reference answer."""
    examples = []
    for number, record in enumerate(load_jsonl_objects(path), start=1):
        messages = record.get("messages")
        if not (isinstance(messages, list) and messages and messages[-1].get("role") == "assistant"):
            raise StepError(f"{path}: example {number} does not end with an assistant message")
        examples.append(Example(messages[:-1], str(messages[-1].get("content", ""))))
    if not examples:
        raise StepError(f"{path} holds no examples")
    return examples[:limit] if limit > 0 else examples


def client_for(base_url: str, api_key_env: str | None = None, timeout: float = 120.0) -> ServiceClient:
    """A client for an OpenAI-compatible endpoint: a NIM behind the platform gateway, or, when the named
    environment variable holds an API key, an endpoint outside the platform that takes that key."""
    api_key = env(api_key_env) if api_key_env else None
    if api_key:
        return ServiceClient(base_url, timeout=timeout, headers={"Authorization": f"Bearer {api_key}"}, gateway=False)
    return ServiceClient(base_url, timeout=timeout)


def served_models(client: ServiceClient) -> set[str]:
    listing = client.json("GET", "/v1/models")
    return {str(entry.get("id")) for entry in listing.get("data", [])}


def complete(
    client: ServiceClient,
    model: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    temperature: float = 0.0,
) -> str:
    body: dict[str, Any] = client.json(
        "POST",
        "/v1/chat/completions",
        json={"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature},
    )
    try:
        return str(body["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError) as exc:
        raise StepError(f"unexpected chat completion from {model}: {body}") from exc
