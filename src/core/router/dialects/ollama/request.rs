//! What `/api/chat` and `/api/generate` requests share, translated to OpenAI chat
//! fields: `model`, `stream` (true when absent, as in Ollama), `options`, `format`, and
//! base64 `images` (as data URLs), plus the check that names an unknown field.

use serde_json::{Map, Value, json};

use crate::core::api_error::ApiError;

/// Refuses a field this API does not know, naming it: Ollama would ignore it, but a
/// request is passed on whole or not at all.
pub(super) fn check_fields(request: &Value, known: &[&str], api: &str) -> Result<(), ApiError> {
    let Some(fields) = request.as_object() else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    match fields.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(ApiError::bad_request(format!(
            "`{key}` is not supported by this router's {api}"
        ))),
        None => Ok(()),
    }
}

/// A field, with null taken as absent.
pub(super) fn get<'a>(request: &'a Value, key: &str) -> Option<&'a Value> {
    request.get(key).filter(|v| !v.is_null())
}

pub(super) fn model(request: &Value) -> Result<String, ApiError> {
    match get(request, "model") {
        Some(Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        Some(_) => Err(ApiError::bad_request("`model` must be a non-empty string")),
        None => Err(ApiError::bad_request("`model` is required")),
    }
}

/// Sets `stream` (and asks for usage when streaming, so the last line has its counts).
pub(super) fn stream(request: &Value, chat: &mut Map<String, Value>) -> Result<(), ApiError> {
    let stream = match get(request, "stream") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("`stream` must be a boolean")),
        None => true,
    };
    chat.insert("stream".into(), Value::Bool(stream));
    if stream {
        chat.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Ok(())
}

/// Refuses a field that would change the answer unless it is empty, false or 0.
pub(super) fn refuse_unless_empty(request: &Value, key: &str, why: &str) -> Result<(), ApiError> {
    let empty = match get(request, key) {
        None | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(v) => v.as_u64() == Some(0),
    };
    if empty {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("`{key}`: {why}")))
    }
}

/// `options` → sampling fields. Mapped: temperature, top_p, top_k (passed as `top_k`,
/// which Ollama's and llama.cpp's OpenAI endpoints and vLLM read), num_predict →
/// max_tokens (negative means unlimited), stop, seed, presence_penalty,
/// frequency_penalty. Ignored: what tunes the runtime rather than the text (num_ctx,
/// num_batch, num_gpu, main_gpu, num_thread, numa, low_vram, use_mmap, use_mlock, …) and
/// the sampler knobs OpenAI chat has no field for (repeat_penalty, repeat_last_n,
/// min_p, typical_p, tfs_z, mirostat*, penalize_newline, num_keep), which an engine
/// behind the network would not be told anyway.
pub(super) fn options(request: &Value, chat: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Some(options) = get(request, "options") else {
        return Ok(());
    };
    let Some(options) = options.as_object() else {
        return Err(ApiError::bad_request("`options` must be an object"));
    };
    let number = |key: &str| -> Result<Option<Value>, ApiError> {
        match options.get(key).filter(|v| !v.is_null()) {
            Some(v) if v.is_number() => Ok(Some(v.clone())),
            Some(_) => Err(ApiError::bad_request(format!(
                "`options.{key}` must be a number"
            ))),
            None => Ok(None),
        }
    };
    for (key, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
        ("seed", "seed"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
    ] {
        if let Some(v) = number(key)? {
            chat.insert(to.into(), v);
        }
    }
    if let Some(n) = number("num_predict")?.filter(|n| n.as_i64().is_some_and(|n| n > 0)) {
        chat.insert("max_tokens".into(), n);
    }
    match options.get("stop").filter(|v| !v.is_null()) {
        Some(Value::String(s)) => {
            chat.insert("stop".into(), json!([s]));
        }
        Some(Value::Array(stops)) if stops.is_empty() => {}
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            chat.insert("stop".into(), Value::Array(stops.clone()));
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "`options.stop` must be a list of strings",
            ));
        }
        None => {}
    }
    Ok(())
}

/// `format`: "json" → a JSON object answer, a schema → that schema, "" → free text.
pub(super) fn format(request: &Value, chat: &mut Map<String, Value>) -> Result<(), ApiError> {
    let format = match get(request, "format") {
        None => return Ok(()),
        Some(Value::String(s)) if s.is_empty() => return Ok(()),
        Some(Value::String(s)) if s == "json" => json!({ "type": "json_object" }),
        Some(schema @ Value::Object(_)) => json!({
            "type": "json_schema",
            "json_schema": { "name": "response", "schema": schema },
        }),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`format` must be \"json\" or a JSON schema object",
            ));
        }
    };
    chat.insert("response_format".into(), format);
    Ok(())
}

/// A user message's content: its text, then its images as data URLs. Ollama sends
/// images as bare base64, so the type is read from the data's first bytes.
pub(super) fn user_content(
    text: &str,
    images: Option<&Value>,
    at: &str,
) -> Result<Value, ApiError> {
    let Some(images) = images else {
        return Ok(Value::String(text.to_string()));
    };
    let Some(images) = images.as_array() else {
        return Err(ApiError::bad_request(format!(
            "`{at}images` must be an array"
        )));
    };
    if images.is_empty() {
        return Ok(Value::String(text.to_string()));
    }
    let mut parts = vec![json!({ "type": "text", "text": text })];
    for image in images {
        let Some(data) = image.as_str() else {
            return Err(ApiError::bad_request(format!(
                "`{at}images` must hold base64 strings"
            )));
        };
        let url = format!("data:{};base64,{data}", image_type(data));
        parts.push(json!({ "type": "image_url", "image_url": { "url": url } }));
    }
    Ok(Value::Array(parts))
}

/// The MIME type of base64 image data from its magic bytes; JPEG when unknown.
fn image_type(base64: &str) -> &'static str {
    if base64.starts_with("iVBORw0KGgo") {
        "image/png"
    } else if base64.starts_with("R0lGOD") {
        "image/gif"
    } else if base64.starts_with("UklGR") {
        "image/webp"
    } else {
        "image/jpeg"
    }
}
