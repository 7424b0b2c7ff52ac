"""Drives a lobstah router's other OpenAI endpoints with the official OpenAI Python SDK.

Usage: openai_apis.py BASE_URL MODEL
Prints one JSON object: embeddings (the SDK's default base64 and floats), completions
(whole and streamed), responses (whole, streamed, and a tool call), and how many routed
requests it made, so the caller can count receipts.
"""

import json
import sys

from openai import OpenAI

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def main() -> None:
    base_url, model = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key="unused-by-lobstah", max_retries=0, timeout=30)

    packed = client.embeddings.create(model=model, input=["hello world", "hi"])
    floats = client.embeddings.create(model=model, input="hello world", encoding_format="float")

    whole = client.completions.create(model=model, prompt="Say hello", max_tokens=32)
    pieces, finish = [], None
    for chunk in client.completions.create(model=model, prompt="Say hello", stream=True):
        for choice in chunk.choices:
            pieces.append(choice.text)
            finish = choice.finish_reason or finish

    answer = client.responses.create(model=model, input="Say hello", instructions="Be brief")
    streamed, completed = [], None
    for event in client.responses.create(model=model, input="Say hello", stream=True):
        if event.type == "response.output_text.delta":
            streamed.append(event.delta)
        elif event.type == "response.completed":
            completed = event.response
    tooled = client.responses.create(
        model=model, input="What is the weather in Paris?", tools=TOOLS
    )
    calls = [item for item in tooled.output if item.type == "function_call"]

    print(
        json.dumps(
            {
                "embeddings": {
                    "base64": [d.embedding for d in packed.data],
                    "float": floats.data[0].embedding,
                    "prompt_tokens": packed.usage.prompt_tokens,
                },
                "completions": {
                    "whole": whole.choices[0].text,
                    "whole_tokens": whole.usage.completion_tokens if whole.usage else None,
                    "stream": "".join(pieces),
                    "finish_reason": finish,
                },
                "responses": {
                    "whole": answer.output_text,
                    "status": answer.status,
                    "output_tokens": answer.usage.output_tokens if answer.usage else None,
                    "stream": "".join(streamed),
                    "completed": completed.output_text if completed else None,
                    "tool": {
                        "name": calls[0].name if calls else None,
                        "arguments": json.loads(calls[0].arguments) if calls else None,
                    },
                },
                "requests": 7,
            }
        )
    )


if __name__ == "__main__":
    main()
