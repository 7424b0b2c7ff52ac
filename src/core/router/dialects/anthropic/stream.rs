//! OpenAI `chat.completion.chunk`s → Anthropic's stream events, in the order the SDKs'
//! accumulators require: `message_start`; per content block `content_block_start`, its
//! deltas and `content_block_stop`, one block open at a time, indexes counting up from 0;
//! then `message_delta` (stop reason, usage) and `message_stop`.
//!
//! OpenAI streams text and tool calls as deltas of one message; here text becomes a
//! `text` block and each tool call (keyed by its OpenAI `index`) a `tool_use` block
//! whose argument text is passed on as `input_json_delta`s.

use axum::body::Bytes;
use serde_json::{Value, json};

use super::{stop_reason, tool_id};
use crate::core::router::dialects::sse;

/// The state of one streamed answer.
#[derive(Default)]
pub(super) struct Events {
    started: bool,
    /// Set by an error or the end: nothing more is sent.
    over: bool,
    /// The block open now, if any.
    open: Option<Open>,
    /// The index the next block gets.
    next: usize,
    tools: Vec<Tool>,
    finish: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text(usize),
    Tool(usize),
}

/// One tool call. Its block starts once its name is known (OpenAI sends it first; the
/// argument text that came before is held until then).
struct Tool {
    key: u64,
    id: Option<String>,
    name: String,
    block: Option<usize>,
    pending: String,
}

impl Events {
    pub(super) fn chunk(&mut self, id: &str, model: &str, chunk: &Value, out: &mut Vec<Bytes>) {
        if self.over {
            return;
        }
        self.start(id, model, out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let tokens = |name| usage.get(name).and_then(Value::as_u64).unwrap_or(0);
            self.input_tokens = tokens("prompt_tokens");
            self.output_tokens = tokens("completion_tokens");
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta");
        if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str)
            && !text.is_empty()
        {
            self.text(text, out);
        }
        let calls = delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array);
        for (position, call) in calls.into_iter().flatten().enumerate() {
            self.tool_delta(position, call, out);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(reason.to_string());
        }
    }

    pub(super) fn finish(&mut self, id: &str, model: &str, out: &mut Vec<Bytes>) {
        if self.over {
            return;
        }
        self.start(id, model, out);
        // A call whose name never came still gets its block: its arguments are kept.
        for i in 0..self.tools.len() {
            if self.tools[i].block.is_none() {
                self.start_tool(i, out);
            }
        }
        self.close(out);
        let reason = stop_reason(self.finish.as_deref(), !self.tools.is_empty());
        out.push(event(
            "message_delta",
            json!({
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            }),
        ));
        out.push(event("message_stop", json!({})));
        self.over = true;
    }

    /// Marks the stream failed; true the first time, when the error event is to be sent.
    pub(super) fn fail(&mut self) -> bool {
        !std::mem::replace(&mut self.over, true)
    }

    fn start(&mut self, id: &str, model: &str, out: &mut Vec<Bytes>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        // The input tokens are only known from the last chunk; `message_delta` has them.
        out.push(event(
            "message_start",
            json!({"message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        ));
    }

    fn text(&mut self, text: &str, out: &mut Vec<Bytes>) {
        let index = match self.open {
            Some(Open::Text(index)) => index,
            _ => {
                let index = self.open_block(Open::Text, out);
                out.push(event(
                    "content_block_start",
                    json!({"index": index, "content_block": {"type": "text", "text": ""}}),
                ));
                index
            }
        };
        out.push(event(
            "content_block_delta",
            json!({"index": index, "delta": {"type": "text_delta", "text": text}}),
        ));
    }

    fn tool_delta(&mut self, position: usize, call: &Value, out: &mut Vec<Bytes>) {
        let key = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        let id = call.get("id").and_then(Value::as_str);
        // The latest call with this index, unless a new id says this is another call
        // (engines that send each call whole, without an index, all say 0).
        let known = self.tools.iter().rposition(|t| t.key == key);
        let same = |t: &Tool| match (id, &t.id) {
            (Some(new), Some(old)) => new == old,
            _ => true,
        };
        let i = match known.filter(|&i| same(&self.tools[i])) {
            Some(i) => i,
            None => {
                self.tools.push(Tool {
                    key,
                    id: None,
                    name: String::new(),
                    block: None,
                    pending: String::new(),
                });
                self.tools.len() - 1
            }
        };
        let tool = &mut self.tools[i];
        if let Some(id) = id
            && tool.id.is_none()
        {
            tool.id = Some(id.to_string());
        }
        let function = call.get("function");
        if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str)
            && tool.block.is_none()
        {
            tool.name.push_str(name);
        }
        match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(text)) => tool.pending.push_str(text),
            // Lenient engines send the arguments as an object, whole.
            Some(object @ Value::Object(_)) => tool.pending.push_str(&object.to_string()),
            _ => {}
        }
        if tool.block.is_none() && !tool.name.is_empty() {
            self.start_tool(i, out);
        } else {
            self.flush_arguments(i, out);
        }
    }

    fn start_tool(&mut self, i: usize, out: &mut Vec<Bytes>) {
        let index = self.open_block(Open::Tool, out);
        let tool = &mut self.tools[i];
        tool.block = Some(index);
        let id = tool.id.get_or_insert_with(tool_id).clone();
        out.push(event(
            "content_block_start",
            json!({"index": index, "content_block": {
                "type": "tool_use", "id": id, "name": tool.name, "input": {},
            }}),
        ));
        self.flush_arguments(i, out);
    }

    /// Sends a started call's held argument text. Engines send calls one after another;
    /// if one resumes after another began, its deltas still carry its own index.
    fn flush_arguments(&mut self, i: usize, out: &mut Vec<Bytes>) {
        let tool = &mut self.tools[i];
        let Some(index) = tool.block else {
            return;
        };
        if tool.pending.is_empty() {
            return;
        }
        let partial = std::mem::take(&mut tool.pending);
        out.push(event(
            "content_block_delta",
            json!({"index": index, "delta": {"type": "input_json_delta", "partial_json": partial}}),
        ));
    }

    /// Closes the open block and opens the next one.
    fn open_block(&mut self, kind: fn(usize) -> Open, out: &mut Vec<Bytes>) -> usize {
        self.close(out);
        let index = self.next;
        self.next += 1;
        self.open = Some(kind(index));
        index
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        if let Some(Open::Text(index) | Open::Tool(index)) = self.open.take() {
            out.push(event("content_block_stop", json!({"index": index})));
        }
    }
}

/// An Anthropic event: `event: <type>` and its data, which repeats the `type`.
fn event(kind: &str, mut data: Value) -> Bytes {
    data["type"] = Value::String(kind.to_string());
    sse(Some(kind), &data)
}
