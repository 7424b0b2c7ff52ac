"""Drives a lobstah router's Ollama API with the official `ollama` Python client.

Usage: ollama_client.py HOST MODEL
Prints one JSON object: the model list, a whole chat, a streamed chat, a tool call,
embeddings, and how many routed requests it made.
"""

import json
import sys

from ollama import Client

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def main() -> None:
    host, model = sys.argv[1], sys.argv[2]
    client = Client(host=host, timeout=30)
    messages = [{"role": "user", "content": "Say hello"}]

    listed = [m.model for m in client.list().models]
    whole = client.chat(model=model, messages=messages)
    pieces, last = [], None
    for part in client.chat(model=model, messages=messages, stream=True):
        pieces.append(part.message.content or "")
        last = part
    tooled = client.chat(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=TOOLS,
    )
    calls = tooled.message.tool_calls or []
    embedded = client.embed(model=model, input=["hello world", "hi"])
    generated = client.generate(model=model, prompt="Say hello")

    print(
        json.dumps(
            {
                "listed": listed,
                "whole": {"content": whole.message.content, "eval_count": whole.eval_count},
                "stream": {
                    "content": "".join(pieces),
                    "done": last.done if last else None,
                    "done_reason": last.done_reason if last else None,
                },
                "tool": {
                    "name": calls[0].function.name if calls else None,
                    "arguments": dict(calls[0].function.arguments) if calls else None,
                },
                "embed": [list(v) for v in embedded.embeddings],
                "generate": generated.response,
                "requests": 5,
            }
        )
    )


if __name__ == "__main__":
    main()
