//! The fake's "model": what it answers to a request, read from the conversation so that real
//! clients can be driven through a tool-call turn offline.
//!
//! - The last turn is a tool result: answer `tool said: <result>`.
//! - The last user text holds `[[call:NAME {json args}]]`: call tool NAME with those args.
//! - The last user text holds `[[shell:COMMAND]]`: call whichever shell tool the request
//!   offers (Claude Code's `Bash`, Codex's `shell` / `shell_command` / `exec_command`, Gemini
//!   CLI's `run_shell_command`, opencode's `bash`) with
//!   COMMAND in the shape that tool takes.
//! - The last user text holds `[[say:WORDS]]`: answer WORDS (one stream event per word).
//! - Otherwise: `ok from LABEL`.

use serde_json::{json, Value};

use crate::Wire;

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Text(String),
    ToolCall {
        id: String,
        name: String,
        args: Value,
    },
}

enum Last {
    Text(String),
    ToolResult(String),
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|p| {
                p.get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| p.get("content").map(text_of))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(""),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn last_turn(wire: Wire, body: &Value) -> Option<Last> {
    match wire {
        Wire::Chat => {
            let m = body.get("messages")?.as_array()?.last()?;
            let c = m.get("content").map(text_of).unwrap_or_default();
            Some(if m.get("role")? == "tool" {
                Last::ToolResult(c)
            } else {
                Last::Text(c)
            })
        }
        Wire::Messages => {
            let m = body.get("messages")?.as_array()?.last()?;
            let content = m.get("content")?;
            if let Some(blocks) = content.as_array() {
                if let Some(r) = blocks
                    .iter()
                    .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                {
                    return Some(Last::ToolResult(
                        r.get("content").map(text_of).unwrap_or_default(),
                    ));
                }
            }
            Some(Last::Text(text_of(content)))
        }
        Wire::Responses => match body.get("input")? {
            Value::String(s) => Some(Last::Text(s.clone())),
            Value::Array(items) => {
                let it = items.last()?;
                match it.get("type").and_then(Value::as_str).unwrap_or("message") {
                    "function_call_output" | "custom_tool_call_output" => Some(Last::ToolResult(
                        it.get("output").map(text_of).unwrap_or_default(),
                    )),
                    _ => Some(Last::Text(
                        it.get("content").map(text_of).unwrap_or_default(),
                    )),
                }
            }
            _ => None,
        },
        Wire::Gemini => {
            let c = body.get("contents")?.as_array()?.last()?;
            let parts = c.get("parts")?.as_array()?;
            if let Some(fr) = parts.iter().find_map(|p| p.get("functionResponse")) {
                return Some(Last::ToolResult(
                    fr.get("response")
                        .map(|r| r.to_string())
                        .unwrap_or_default(),
                ));
            }
            Some(Last::Text(text_of(&Value::Array(parts.clone()))))
        }
        _ => None,
    }
}

fn tool_names(wire: Wire, body: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for t in body
        .get("tools")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let n = match wire {
            Wire::Chat => t.get("function").and_then(|f| f.get("name")),
            Wire::Gemini => {
                for d in t
                    .get("functionDeclarations")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                {
                    if let Some(n) = d.get("name").and_then(Value::as_str) {
                        names.push(n.to_string());
                    }
                }
                None
            }
            _ => t.get("name"),
        };
        if let Some(n) = n.and_then(Value::as_str) {
            names.push(n.to_string());
        }
    }
    names
}

fn marker<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let start = text.find(tag)? + tag.len();
    let end = text[start..].find("]]")? + start;
    Some(&text[start..end])
}

/// The answer to a request on `wire` from the key labelled `label`.
pub fn answer(wire: Wire, body: &Value, label: &str) -> Answer {
    let fallback = Answer::Text(format!("ok from {label}"));
    let Some(last) = last_turn(wire, body) else {
        return fallback;
    };
    let text = match last {
        Last::ToolResult(r) => {
            let r: String = r.chars().take(300).collect();
            return Answer::Text(format!("tool said: {r}"));
        }
        Last::Text(t) => t,
    };
    if let Some(words) = marker(&text, "[[say:") {
        return Answer::Text(words.to_string());
    }
    if let Some(spec) = marker(&text, "[[call:") {
        let (name, args) = spec.split_once(' ').unwrap_or((spec, "{}"));
        return Answer::ToolCall {
            id: "call_fake_1".into(),
            name: name.to_string(),
            args: serde_json::from_str(args).unwrap_or(json!({})),
        };
    }
    if let Some(cmd) = marker(&text, "[[shell:") {
        let names = tool_names(wire, body);
        let pick = |n: &str| names.iter().any(|x| x == n);
        let (name, args) = if pick("Bash") {
            (
                "Bash",
                json!({"command": cmd, "description": "Run the command"}),
            )
        } else if pick("shell_command") {
            ("shell_command", json!({"command": cmd}))
        } else if pick("exec_command") {
            ("exec_command", json!({"cmd": cmd}))
        } else if pick("shell") {
            ("shell", json!({"command": ["bash", "-lc", cmd]}))
        } else if pick("run_shell_command") {
            ("run_shell_command", json!({"command": cmd}))
        } else if pick("bash") {
            (
                "bash",
                json!({"command": cmd, "description": "Run the command"}),
            )
        } else {
            return Answer::Text(format!("no shell tool among {names:?}"));
        };
        return Answer::ToolCall {
            id: "call_fake_1".into(),
            name: name.into(),
            args,
        };
    }
    fallback
}
