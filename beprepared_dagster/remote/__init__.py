"""Remote captioning and LLM text nodes: one client for the OpenAI Chat Completions protocol, used against
OpenAI, Gemini's OpenAI-compatible endpoint, or any local server (vLLM, Ollama, LM Studio, llama.cpp,
`transformers serve`), one or several at once.

Dagster-free. `openai` is imported only when a stage actually sends requests.

- `settings`: servers (`base_url`, `OPENAI_BASE_URL`), API keys from environment variables, limits.
- `routing`: the servers of one stage: least-in-flight choice, a failing server rested for a while.
- `client`: one request with retries (backoff + jitter, `Retry-After`), timeout, refusal detection.
- `driver`: many requests at `parallel` concurrency on an event loop in a thread, results handed back in
  batches so the stage stores them as they arrive.
- `pricing`, `templates`, `images`: cost estimates, prompt templates over properties, image data URLs.
- `node`: `RemoteNode`, the base of `GPT4oCaption`, `OpenAICaption`, `LLMCaptionTransform`, ….
"""
