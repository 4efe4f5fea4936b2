//! Editing a tool's JSON (or JSON-with-comments) settings file in place.
//!
//! A tool's settings file is the user's: an edit must change the members it means to and keep
//! every other byte (order, indentation, comments in JSONC files such as opencode's, unknown
//! keys). So the text is not parsed into a value and written back; it is scanned into the spans
//! of its objects, members and values, and an edit splices new text into those spans. Anything
//! that is not a JSON object at the top is refused with its line and column.

use std::ops::Range;

/// Why a file is not valid JSON(C), with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {what}")]
pub struct JsoncError {
    pub line: usize,
    pub column: usize,
    pub what: String,
}

/// A value's place in the text.
#[derive(Debug, Clone)]
enum Node {
    Object {
        span: Range<usize>,
        members: Vec<Member>,
    },
    Other {
        span: Range<usize>,
    },
}

#[derive(Debug, Clone)]
struct Member {
    key: String,
    /// From the key's opening quote to the end of the value.
    span: Range<usize>,
    value: Node,
}

impl Node {
    fn span(&self) -> Range<usize> {
        match self {
            Node::Object { span, .. } | Node::Other { span } => span.clone(),
        }
    }
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn error(&self, at: usize, what: impl Into<String>) -> JsoncError {
        let before = &self.text[..at.min(self.text.len())];
        JsoncError {
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            what: what.into(),
        }
    }

    /// Skips whitespace and `//` / `/* */` comments.
    fn skip(&mut self) -> Result<(), JsoncError> {
        loop {
            while self.at < self.b.len() && self.b[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            if self.b[self.at..].starts_with(b"//") {
                while self.at < self.b.len() && self.b[self.at] != b'\n' {
                    self.at += 1;
                }
            } else if self.b[self.at..].starts_with(b"/*") {
                let start = self.at;
                match self.text[self.at + 2..].find("*/") {
                    Some(end) => self.at += 2 + end + 2,
                    None => return Err(self.error(start, "a comment that never ends")),
                }
            } else {
                return Ok(());
            }
        }
    }

    fn string(&mut self) -> Result<String, JsoncError> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.b.get(self.at) {
                None => return Err(self.error(start, "a string that never ends")),
                Some(b'\\') => self.at += 2,
                Some(b'"') => {
                    self.at += 1;
                    let raw = &self.text[start..self.at];
                    return serde_json::from_str(raw)
                        .map_err(|e| self.error(start, format!("an invalid string ({e})")));
                }
                Some(b'\n') => return Err(self.error(start, "a line break inside a string")),
                Some(_) => self.at += 1,
            }
        }
    }

    fn value(&mut self) -> Result<Node, JsoncError> {
        self.skip()?;
        let start = self.at;
        match self.b.get(self.at) {
            None => Err(self.error(start, "the file ends where a value was expected")),
            Some(b'{') => self.object(),
            Some(b'[') => {
                self.at += 1;
                self.skip()?;
                if self.b.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Ok(Node::Other {
                        span: start..self.at,
                    });
                }
                loop {
                    self.value()?;
                    self.skip()?;
                    match self.b.get(self.at) {
                        Some(b',') => {
                            self.at += 1;
                            self.skip()?;
                            if self.b.get(self.at) == Some(&b']') {
                                self.at += 1;
                                break;
                            }
                        }
                        Some(b']') => {
                            self.at += 1;
                            break;
                        }
                        _ => return Err(self.error(self.at, "expected `,` or `]` in a list")),
                    }
                }
                Ok(Node::Other {
                    span: start..self.at,
                })
            }
            Some(b'"') => {
                self.string()?;
                Ok(Node::Other {
                    span: start..self.at,
                })
            }
            Some(_) => {
                while self.at < self.b.len()
                    && (self.b[self.at].is_ascii_alphanumeric()
                        || matches!(self.b[self.at], b'-' | b'+' | b'.'))
                {
                    self.at += 1;
                }
                let word = &self.text[start..self.at];
                let ok = matches!(word, "true" | "false" | "null")
                    || (!word.is_empty()
                        && serde_json::from_str::<serde_json::Number>(word).is_ok());
                if ok {
                    Ok(Node::Other {
                        span: start..self.at,
                    })
                } else {
                    Err(self.error(start, "expected a value"))
                }
            }
        }
    }

    fn object(&mut self) -> Result<Node, JsoncError> {
        let start = self.at;
        self.at += 1;
        let mut members = Vec::new();
        self.skip()?;
        if self.b.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Node::Object {
                span: start..self.at,
                members,
            });
        }
        loop {
            self.skip()?;
            if self.b.get(self.at) != Some(&b'"') {
                return Err(self.error(self.at, "expected a quoted key"));
            }
            let key_start = self.at;
            let key = self.string()?;
            self.skip()?;
            if self.b.get(self.at) != Some(&b':') {
                return Err(self.error(self.at, "expected `:` after a key"));
            }
            self.at += 1;
            let value = self.value()?;
            members.push(Member {
                key,
                span: key_start..value.span().end,
                value,
            });
            self.skip()?;
            match self.b.get(self.at) {
                Some(b',') => {
                    self.at += 1;
                    self.skip()?;
                    // JSONC allows a trailing comma.
                    if self.b.get(self.at) == Some(&b'}') {
                        self.at += 1;
                        break;
                    }
                }
                Some(b'}') => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.error(self.at, "expected `,` or `}` in an object")),
            }
        }
        Ok(Node::Object {
            span: start..self.at,
            members,
        })
    }
}

/// A JSON(C) document whose top level is an object, ready for edits.
#[derive(Debug, Clone)]
pub struct Doc {
    text: String,
}

impl Doc {
    /// Parses `text`; an empty or blank file is an empty object.
    pub fn parse(text: &str) -> Result<Doc, JsoncError> {
        let text = if text.trim().is_empty() {
            "{}\n".to_string()
        } else {
            text.to_string()
        };
        let doc = Doc { text };
        doc.root()?;
        Ok(doc)
    }

    fn root(&self) -> Result<Node, JsoncError> {
        let mut s = Scanner {
            text: &self.text,
            b: self.text.as_bytes(),
            at: 0,
        };
        s.skip()?;
        if s.b.get(s.at) != Some(&b'{') {
            return Err(s.error(s.at, "the settings must be a JSON object (`{ … }`)"));
        }
        let root = s.value()?;
        s.skip()?;
        if s.at < s.b.len() {
            return Err(s.error(s.at, "text after the end of the settings object"));
        }
        Ok(root)
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value at `path` as JSON (comments inside it stripped), if there is one.
    pub fn get(&self, path: &[&str]) -> Option<serde_json::Value> {
        let root = self.root().ok()?;
        let node = find(&root, path)?;
        // A value with comments inside it reads as absent.
        serde_json::from_str(&self.text[node.span()]).ok()
    }

    /// Sets `path` to `value`, creating the objects on the way; every other byte stays.
    pub fn set(&mut self, path: &[&str], value: &serde_json::Value) -> Result<(), JsoncError> {
        let root = self.root()?;
        // The deepest object on the path that exists, and what is left of the path below it.
        let mut node = &root;
        let mut depth = 0;
        while depth < path.len() {
            let Node::Object { members, .. } = node else {
                break;
            };
            match members.iter().rev().find(|m| m.key == path[depth]) {
                Some(m) => {
                    node = &m.value;
                    depth += 1;
                }
                None => break,
            }
        }
        if depth == path.len() {
            let span = node.span();
            let indent = indent_at(&self.text, span.start);
            let unit = indent_unit(&self.text);
            let new = render(value, &indent, &unit);
            self.text.replace_range(span, &new);
            return Ok(());
        }
        let Node::Object { span, members } = node else {
            let at = node.span().start;
            let s = Scanner {
                text: &self.text,
                b: self.text.as_bytes(),
                at,
            };
            return Err(s.error(
                at,
                format!("`{}` is not an object", path[..depth].join(".")),
            ));
        };
        // Build the missing part as nested objects, innermost value last.
        let mut v = value.clone();
        for key in path[depth + 1..].iter().rev() {
            let mut m = serde_json::Map::new();
            m.insert((*key).to_string(), v);
            v = serde_json::Value::Object(m);
        }
        let unit = indent_unit(&self.text);
        let key = serde_json::Value::String(path[depth].to_string()).to_string();
        match members.last() {
            Some(last) => {
                // After the last member, on its own line with that member's indentation.
                let indent = indent_at(&self.text, last.span.start);
                let text = format!(",\n{indent}{key}: {}", render(&v, &indent, &unit));
                self.text.insert_str(last.span.end, &text);
            }
            None => {
                let outer = indent_at(&self.text, span.start);
                let inner = format!("{outer}{unit}");
                let text = format!("{{\n{inner}{key}: {}\n{outer}}}", render(&v, &inner, &unit));
                self.text.replace_range(span.clone(), &text);
            }
        }
        Ok(())
    }

    /// Removes the member at `path` if it is there; `true` when something was removed.
    pub fn remove(&mut self, path: &[&str]) -> Result<bool, JsoncError> {
        let root = self.root()?;
        let Some((parent, last)) = path.split_last().map(|(l, p)| (p, l)) else {
            return Ok(false);
        };
        let Some(Node::Object { members, .. }) = find(&root, parent) else {
            return Ok(false);
        };
        let Some(i) = members.iter().position(|m| m.key == *last) else {
            return Ok(false);
        };
        let m = &members[i];
        // Take the member with the comma (and line) that separates it from a neighbour.
        let range = if i + 1 < members.len() {
            m.span.start..members[i + 1].span.start
        } else if i > 0 {
            members[i - 1].span.end..m.span.end
        } else {
            m.span.clone()
        };
        self.text.replace_range(range, "");
        Ok(true)
    }
}

fn find<'n>(root: &'n Node, path: &[&str]) -> Option<&'n Node> {
    let mut node = root;
    for key in path {
        let Node::Object { members, .. } = node else {
            return None;
        };
        node = &members.iter().rev().find(|m| m.key == *key)?.value;
    }
    Some(node)
}

/// The whitespace that starts the line `at` is on.
fn indent_at(text: &str, at: usize) -> String {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// The file's indentation step: the first indented line's, else two spaces.
fn indent_unit(text: &str) -> String {
    text.lines()
        .map(|l| {
            l.chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect::<String>()
        })
        .find(|i| !i.is_empty())
        .unwrap_or_else(|| "  ".to_string())
}

/// `value` as JSON text, objects laid out one member a line below `indent`.
fn render(value: &serde_json::Value, indent: &str, unit: &str) -> String {
    match value {
        serde_json::Value::Object(m) if !m.is_empty() => {
            let inner = format!("{indent}{unit}");
            let members: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{inner}{}: {}",
                        serde_json::Value::String(k.clone()),
                        render(v, &inner, unit)
                    )
                })
                .collect();
            format!("{{\n{}\n{indent}}}", members.join(",\n"))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn setting_keeps_every_other_byte() {
        let text = "{\n    // my settings\n    \"theme\": \"dark\",\n    \"env\": {\n        \"FOO\": \"1\" /* keep */\n    },\n    \"zz\": [1, 2,],\n}\n";
        let mut d = Doc::parse(text).expect("jsonc");
        d.set(
            &["env", "ANTHROPIC_BASE_URL"],
            &json!("http://127.0.0.1:8414"),
        )
        .expect("set");
        d.set(&["theme"], &json!("light")).expect("replace");
        assert_eq!(
            d.text(),
            "{\n    // my settings\n    \"theme\": \"light\",\n    \"env\": {\n        \"FOO\": \"1\",\n        \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8414\" /* keep */\n    },\n    \"zz\": [1, 2,],\n}\n"
        );
        assert_eq!(d.get(&["env", "FOO"]), Some(json!("1")));
    }

    #[test]
    fn missing_objects_are_created_with_the_file_s_indentation() {
        let mut d = Doc::parse("{\n  \"a\": 1\n}\n").expect("json");
        d.set(
            &["provider", "fluxgate", "options"],
            &json!({"baseURL": "u", "apiKey": "k"}),
        )
        .expect("set");
        assert_eq!(
            d.text(),
            "{\n  \"a\": 1,\n  \"provider\": {\n    \"fluxgate\": {\n      \"options\": {\n        \"baseURL\": \"u\",\n        \"apiKey\": \"k\"\n      }\n    }\n  }\n}\n"
        );
        let mut e = Doc::parse("").expect("empty");
        e.set(&["env", "X"], &json!("y")).expect("set");
        assert_eq!(e.text(), "{\n  \"env\": {\n    \"X\": \"y\"\n  }\n}\n");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(e.text()).expect("valid"),
            json!({"env": {"X": "y"}})
        );
    }

    #[test]
    fn removing_takes_the_separating_comma() {
        for (text, want) in [
            ("{\"a\": 1, \"b\": 2, \"c\": 3}", "{\"a\": 1, \"c\": 3}"),
            ("{\"a\": 1, \"b\": 2}", "{\"a\": 1}"),
            ("{\"b\": 2}", "{}"),
        ] {
            let mut d = Doc::parse(text).expect("json");
            assert!(d.remove(&["b"]).expect("remove"));
            assert_eq!(d.text(), want);
            assert!(!d.remove(&["b"]).expect("gone"));
        }
    }

    #[test]
    fn malformed_files_are_refused_with_the_place() {
        for (text, line, column) in [
            ("{\n  \"a\": 1,\n  \"b\" 2\n}", 3, 7),
            ("{\n  \"a\": tru\n}", 2, 8),
            ("[1, 2]", 1, 1),
            ("{\"a\": 1} x", 1, 10),
            ("{\"a\": \"unterminated\n}", 1, 7),
            ("{\n /* open", 2, 2),
        ] {
            let e = Doc::parse(text).expect_err(text);
            assert_eq!((e.line, e.column), (line, column), "{text}: {e}");
        }
    }
}
