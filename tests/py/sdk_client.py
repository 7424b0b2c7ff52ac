"""Drives a lobstah router with the official OpenAI Python SDK, as a user's program would.

Usage: sdk_client.py BASE_URL MODEL
Prints one JSON object with what the SDK saw: a whole answer, a streamed answer, a
tools request (the fake engine answers it with a tool call), the model list, the model
retrieved by id, and what retrieving a model nobody serves raised.
"""

import json
import sys

from openai import NotFoundError, OpenAI

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
    base_url, model = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key="unused-by-lobstah", max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "Say hello"}]

    whole = client.chat.completions.with_raw_response.create(model=model, messages=messages)
    parsed = whole.parse()

    stream = client.chat.completions.create(model=model, messages=messages, stream=True)
    pieces = []
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta and choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason

    tooled = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=TOOLS,
        tool_choice="auto",
        seed=7,
        extra_body={"x_lobstah_test": {"passes": ["through", 1]}},
    )
    call = tooled.choices[0].message.tool_calls[0]

    listed = [m.id for m in client.models.list()]
    retrieved = client.models.retrieve(model)
    try:
        client.models.retrieve("no-such-model")
        missing = None
    except NotFoundError as e:
        missing = {"status": e.status_code, "code": (e.body or {}).get("type")}

    print(
        json.dumps(
            {
                "whole": {
                    "content": parsed.choices[0].message.content,
                    "served_by": whole.headers.get("x-lobstah-served-by"),
                    "prompt_tokens": parsed.usage.prompt_tokens if parsed.usage else None,
                    "completion_tokens": parsed.usage.completion_tokens if parsed.usage else None,
                },
                "stream": {"content": "".join(pieces), "finish_reason": finish},
                "tools": {
                    "name": call.function.name,
                    "arguments": json.loads(call.function.arguments),
                    "finish_reason": tooled.choices[0].finish_reason,
                },
                "tools_sent": TOOLS,
                "models": {
                    "listed": listed,
                    "retrieved": {
                        "id": retrieved.id,
                        "owned_by": retrieved.owned_by,
                        "peers": (retrieved.model_extra or {}).get("peers"),
                        "capabilities": (retrieved.model_extra or {}).get("capabilities"),
                    },
                    "missing": missing,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
