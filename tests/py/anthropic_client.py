"""Drives a lobstah router's /v1/messages with the official Anthropic Python SDK.

Usage: anthropic_client.py BASE_URL MODEL
Prints one JSON object: a whole message, a streamed one (text and the final message the
SDK assembled), a tool call, and how many routed requests it made.
"""

import json
import sys

from anthropic import Anthropic

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def main() -> None:
    base_url, model = sys.argv[1], sys.argv[2]
    client = Anthropic(base_url=base_url, api_key="unused-by-lobstah", max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "Say hello"}]

    whole = client.messages.create(
        model=model, max_tokens=64, system="Be brief", messages=messages
    )
    with client.messages.stream(model=model, max_tokens=64, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    tooled = client.messages.create(
        model=model,
        max_tokens=64,
        tools=TOOLS,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    uses = [block for block in tooled.content if block.type == "tool_use"]

    print(
        json.dumps(
            {
                "whole": {
                    "text": "".join(b.text for b in whole.content if b.type == "text"),
                    "stop_reason": whole.stop_reason,
                    "output_tokens": whole.usage.output_tokens,
                },
                "stream": {
                    "text": text,
                    "final": "".join(b.text for b in final.content if b.type == "text"),
                    "stop_reason": final.stop_reason,
                    "output_tokens": final.usage.output_tokens,
                },
                "tool": {
                    "name": uses[0].name if uses else None,
                    "input": uses[0].input if uses else None,
                    "stop_reason": tooled.stop_reason,
                },
                "requests": 3,
            }
        )
    )


if __name__ == "__main__":
    main()
