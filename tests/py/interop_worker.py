#!/usr/bin/env python3
"""A lobstah worker written independently from the wire format in DESIGN.md, standing in
for the existing (TypeScript) Lobstah network's worker.

It answers /capacity, /pubkey and /v1/chat/completions with a fixed reply, signs a receipt
for every request with lobstah_ref's canonical JSON + Ed25519, and sends it the protocol's
way: the x-lobstah-receipt header (base64 of the signed receipt's JSON) for whole answers,
the SSE comment ":lobstah-receipt:<base64>" before "data: [DONE]" for streams. Its receipts
carry an extra field v1 does not define, as a newer peer's would.

Usage: interop_worker.py SEED_HEX MODEL
Prints "listening http://127.0.0.1:PORT" once ready; serves until killed.
"""

import base64
import json
import secrets
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import lobstah_ref

REPLY = ["Bonjour", " from", " the", " Python", " worker"]


def now_ms():
    return int(time.time() * 1000)


class Worker(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seed = ""
    pubkey = ""
    model = ""

    def log_message(self, *args):
        pass

    def _json(self, status, obj, headers=()):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/capacity":
            self._json(200, {"pubkey": self.pubkey, "models": [self.model], "queueDepth": 0,
                             "tier": "batch", "concurrency": 1})
        elif self.path == "/pubkey":
            self._json(200, {"pubkey": self.pubkey})
        else:
            self._json(404, {"error": {"type": "not_found", "message": self.path}})

    def _receipt(self, requester, input_tokens, output_tokens, started):
        body = {
            "version": 1,
            "jobId": str(uuid.uuid4()),
            "nonce": secrets.token_hex(16),
            "requesterPubkey": requester,
            "workerPubkey": self.pubkey,
            "model": self.model,
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "startedAt": started,
            "completedAt": now_ms(),
            "workerSoftware": "interop-worker.py \u00e9",
        }
        signature = lobstah_ref.sign(self.seed, lobstah_ref.canonical_bytes(body))
        text = json.dumps({"receipt": body, "signature": signature})
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    def do_POST(self):
        started = now_ms()
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        requester = self.headers.get("x-lobstah-requester", "")
        if self.path != "/v1/chat/completions" or not requester:
            self._json(400, {"error": {"type": "invalid_request_error", "message": "bad request"}})
            return
        prompt = " ".join(str(m.get("content", "")) for m in request.get("messages", []))
        input_tokens = max(1, len(prompt.split()))
        receipt = self._receipt(requester, input_tokens, len(REPLY), started)
        if not request.get("stream"):
            self._json(200, {
                "id": "chatcmpl-py", "object": "chat.completion", "created": started // 1000,
                "model": self.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "".join(REPLY)}}],
                "usage": {"prompt_tokens": input_tokens, "completion_tokens": len(REPLY),
                          "total_tokens": input_tokens + len(REPLY)},
            }, headers=[("x-lobstah-receipt", receipt)])
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        for i, word in enumerate(REPLY):
            delta = {"content": word}
            if i == 0:
                delta["role"] = "assistant"
            chunk = {"id": "chatcmpl-py", "object": "chat.completion.chunk",
                     "created": started // 1000, "model": self.model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self.wfile.write(("data: %s\n\n" % json.dumps(chunk)).encode("utf-8"))
            self.wfile.flush()
        final = {"id": "chatcmpl-py", "object": "chat.completion.chunk", "created": started // 1000,
                 "model": self.model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(("data: %s\n\n" % json.dumps(final)).encode("utf-8"))
        self.wfile.write((":lobstah-receipt:%s\n\n" % receipt).encode("ascii"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


def main():
    seed, model = sys.argv[1], sys.argv[2]
    Worker.seed = seed
    Worker.pubkey = lobstah_ref.pubkey_text(lobstah_ref.private_key(seed))
    Worker.model = model
    server = ThreadingHTTPServer(("127.0.0.1", 0), Worker)
    print("listening http://127.0.0.1:%d %s" % (server.server_address[1], Worker.pubkey), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
