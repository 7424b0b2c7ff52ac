"""Drives a router in a home network with the official OpenAI SDK, for the NAT test.

Usage: nat_client.py ROUTER_BASE MODEL MARKER
ROUTER_BASE is the router's address (http://127.0.0.1:PORT). Waits until the router has
reached its one peer over the link, asks a whole and a streamed answer with MARKER in
the prompt, then keeps asking small questions until /peers says the link went direct.
Prints one JSON object with what it saw.
"""

import json
import sys
import time
import urllib.request

from openai import OpenAI

DEADLINE_SECONDS = 40


def peer(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/peers", timeout=10) as response:
        peers = json.load(response)["peers"]
    return peers[0] if peers else {}


def main() -> None:
    base, model, marker = sys.argv[1], sys.argv[2], sys.argv[3]
    client = OpenAI(base_url=f"{base}/v1", api_key="unused-by-lobstah", max_retries=0, timeout=30)
    started = time.monotonic()
    first = {}
    while time.monotonic() - started < DEADLINE_SECONDS:
        first = peer(base)
        if first.get("state") == "ok":
            break
        time.sleep(0.25)
    reached = {"state": first.get("state"), "path": first.get("path"), "reason": first.get("unreachableReason")}

    messages = [{"role": "user", "content": f"Repeat after me: {marker}"}]
    whole = client.chat.completions.create(model=model, messages=messages, max_tokens=8)
    pieces = []
    for chunk in client.chat.completions.create(
        model=model, messages=messages, max_tokens=8, stream=True
    ):
        for choice in chunk.choices:
            if choice.delta and choice.delta.content:
                pieces.append(choice.delta.content)

    paths = [peer(base).get("path")]
    last = {}
    while time.monotonic() - started < DEADLINE_SECONDS and paths[-1] != "direct":
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "ping"}], max_tokens=2
        )
        time.sleep(0.2)
        last = peer(base)
        paths.append(last.get("path"))
    # One more answer once direct, so the direct path is shown carrying requests.
    after = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": marker}], max_tokens=4
    )
    last = peer(base)
    print(
        json.dumps(
            {
                "reached": reached,
                "whole": whole.choices[0].message.content,
                "whole_tokens": whole.usage.completion_tokens,
                "stream_pieces": len(pieces),
                "paths": paths,
                "after_direct": after.choices[0].message.content,
                "final_path": last.get("path"),
                "final_rtt_ms": last.get("rttMs"),
                "served": last.get("served"),
            }
        )
    )


if __name__ == "__main__":
    main()
