//! A chat completion stream → the Responses event sequence: `response.created` and
//! `response.in_progress`; per text run a `message` item (`output_item.added`,
//! `content_part.added`, `output_text.delta`…, `output_text.done`, `content_part.done`,
//! `output_item.done`); per tool call a `function_call` item (`output_item.added`,
//! `function_call_arguments.delta`…, `.done`, `output_item.done`); then
//! `response.completed` holding the whole response, usage included.
//!
//! One item is open at a time, as OpenAI streams them: a new one closes the one before,
//! so output indexes follow the order items close in. Every event carries a
//! `sequence_number` counting from 0, and its type both as `event:` and in `data`.

use axum::body::Bytes;
use serde_json::{Value, json};

use super::{Responses, function_call_item, item_id, message_item, output_text, usage};
use crate::core::router::dialects::sse;

#[derive(Default)]
pub(super) struct StreamState {
    sequence: u64,
    started: bool,
    /// After `response.completed` or an error nothing more is sent.
    ended: bool,
    /// Closed items, at their output index.
    output: Vec<Value>,
    open: Option<Open>,
    calls: Vec<Call>,
    finish: Option<String>,
    usage: Option<Value>,
}

enum Open {
    Text {
        id: String,
        text: String,
    },
    /// A position in `calls`.
    Call(usize),
}

/// A tool call as its fragments arrive, keyed by the chat stream's `index`.
struct Call {
    index: u64,
    call_id: String,
    name: String,
    arguments: String,
    item_id: String,
    output_index: Option<usize>,
    closed: bool,
}

impl StreamState {
    pub(super) fn chunk(&mut self, r: &Responses, chunk: &Value, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.start(r, out);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let text = choice.pointer("/delta/content").and_then(Value::as_str);
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            self.text(text, out);
        }
        if let Some(fragments) = choice
            .pointer("/delta/tool_calls")
            .and_then(Value::as_array)
        {
            for fragment in fragments {
                self.tool_fragment(fragment, out);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(reason.to_string());
            self.close_open(out);
        }
    }

    pub(super) fn finish(&mut self, r: &Responses, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.start(r, out);
        // Calls whose name never came are still owed their items.
        for pos in 0..self.calls.len() {
            if self.calls[pos].output_index.is_none() {
                self.open_call(pos, out);
            }
        }
        self.close_open(out);
        if self.output.is_empty() {
            // Nothing was said: an empty message, as a whole answer has.
            self.open_text(out);
            self.close_open(out);
        }
        let response = r.response_object(
            "completed",
            self.output.clone(),
            Some(usage(self.usage.as_ref())),
            self.finish.as_deref(),
        );
        self.emit(out, "response.completed", json!({ "response": response }));
        self.ended = true;
    }

    /// An error mid-stream: an `error` event, then `response.failed` with what was
    /// already done, and nothing after (the SDKs stop at either).
    pub(super) fn error(&mut self, r: &Responses, error: &Value, out: &mut Vec<Bytes>) {
        if self.ended {
            return;
        }
        self.start(r, out);
        let message = crate::core::router::dialects::error_message(error);
        let code = error
            .pointer("/error/code")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| crate::core::router::dialects::error_kind(error));
        self.emit(
            out,
            "error",
            json!({ "code": code, "message": message, "param": null }),
        );
        let mut response = r.response_object("failed", self.output.clone(), None, None);
        response["error"] = json!({ "code": code, "message": message });
        self.emit(out, "response.failed", json!({ "response": response }));
        self.ended = true;
    }

    fn start(&mut self, r: &Responses, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = r.response_object("in_progress", Vec::new(), None, None);
        self.emit(out, "response.created", json!({ "response": response }));
        self.emit(out, "response.in_progress", json!({ "response": response }));
    }

    fn emit(&mut self, out: &mut Vec<Bytes>, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        out.push(sse(Some(kind), &data));
    }

    fn text(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Some(Open::Text { .. })) {
            self.open_text(out);
        }
        let index = self.output.len();
        let Some(Open::Text { id, text }) = &mut self.open else {
            return;
        };
        text.push_str(delta);
        let data = json!({
            "item_id": id, "output_index": index, "content_index": 0,
            "delta": delta, "logprobs": [],
        });
        self.emit(out, "response.output_text.delta", data);
    }

    fn open_text(&mut self, out: &mut Vec<Bytes>) {
        self.close_open(out);
        let id = item_id("msg");
        let index = self.output.len();
        let item = json!({
            "type": "message", "id": id, "status": "in_progress",
            "role": "assistant", "content": [],
        });
        self.emit(
            out,
            "response.output_item.added",
            json!({ "output_index": index, "item": item }),
        );
        let part = json!({
            "item_id": id, "output_index": index, "content_index": 0, "part": output_text(""),
        });
        self.emit(out, "response.content_part.added", part);
        self.open = Some(Open::Text {
            id,
            text: String::new(),
        });
    }

    fn tool_fragment(&mut self, fragment: &Value, out: &mut Vec<Bytes>) {
        let text_of = |p: &str| fragment.pointer(p).and_then(Value::as_str).unwrap_or("");
        let id = text_of("/id");
        let index = match fragment.get("index").and_then(Value::as_u64) {
            Some(index) => index,
            // No index (a loose engine): a new id is a new call, else the last one.
            None if !id.is_empty() && !self.calls.iter().any(|c| c.call_id == id) => {
                self.calls.len() as u64
            }
            None => self.calls.last().map_or(0, |c| c.index),
        };
        let pos = match self.calls.iter().position(|c| c.index == index) {
            Some(pos) => pos,
            None => {
                self.calls.push(Call {
                    index,
                    call_id: if id.is_empty() {
                        item_id("call")
                    } else {
                        id.to_string()
                    },
                    name: String::new(),
                    arguments: String::new(),
                    item_id: item_id("fc"),
                    output_index: None,
                    closed: false,
                });
                self.calls.len() - 1
            }
        };
        let name = text_of("/function/name");
        let arguments = text_of("/function/arguments");
        let call = &mut self.calls[pos];
        if call.name.is_empty() {
            call.name = name.to_string();
        }
        call.arguments.push_str(arguments);
        if call.closed {
            // A fragment after its item closed (calls interleaved): the item already
            // sent is stale, the closing response carries the whole arguments.
            if let Some(item) = call.output_index.and_then(|i| self.output.get_mut(i)) {
                item["arguments"] = json!(call.arguments);
            }
            return;
        }
        let is_open = matches!(self.open, Some(Open::Call(p)) if p == pos);
        if is_open {
            if !arguments.is_empty() {
                let (item_id, index) = (call.item_id.clone(), call.output_index);
                let data = json!({ "item_id": item_id, "output_index": index, "delta": arguments });
                self.emit(out, "response.function_call_arguments.delta", data);
            }
        } else if !call.name.is_empty() {
            self.open_call(pos, out);
        }
    }

    /// Opens call `pos`'s item, sending the arguments gathered so far as one delta.
    fn open_call(&mut self, pos: usize, out: &mut Vec<Bytes>) {
        self.close_open(out);
        let index = self.output.len();
        let call = &mut self.calls[pos];
        call.output_index = Some(index);
        let item = function_call_item(&call.item_id, &call.call_id, &call.name, "", "in_progress");
        let (item_id, arguments) = (call.item_id.clone(), call.arguments.clone());
        self.emit(
            out,
            "response.output_item.added",
            json!({ "output_index": index, "item": item }),
        );
        if !arguments.is_empty() {
            let data = json!({ "item_id": item_id, "output_index": index, "delta": arguments });
            self.emit(out, "response.function_call_arguments.delta", data);
        }
        self.open = Some(Open::Call(pos));
    }

    fn close_open(&mut self, out: &mut Vec<Bytes>) {
        let index = self.output.len();
        let item = match self.open.take() {
            None => return,
            Some(Open::Text { id, text }) => {
                let at = json!({ "item_id": id, "output_index": index, "content_index": 0 });
                let mut done = at.clone();
                done["text"] = json!(text);
                done["logprobs"] = json!([]);
                self.emit(out, "response.output_text.done", done);
                let mut part = at;
                part["part"] = output_text(&text);
                self.emit(out, "response.content_part.done", part);
                let status = match self.finish.as_deref() {
                    Some("length" | "content_filter") => "incomplete",
                    _ => "completed",
                };
                message_item(&id, &text, status)
            }
            Some(Open::Call(pos)) => {
                let call = &mut self.calls[pos];
                call.closed = true;
                let item = function_call_item(
                    &call.item_id,
                    &call.call_id,
                    &call.name,
                    &call.arguments,
                    "completed",
                );
                let data = json!({
                    "item_id": call.item_id, "output_index": index, "arguments": call.arguments,
                });
                self.emit(out, "response.function_call_arguments.done", data);
                item
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({ "output_index": index, "item": item }),
        );
        self.output.push(item);
    }
}
