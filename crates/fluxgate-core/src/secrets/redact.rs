//! Blanks a known secret out of text an upstream controls.
//!
//! An upstream may echo the key it was sent (in an error message, a header, a body), bare or
//! wrapped in brackets or quotes, whole or in part. A [`Redactor`] is built once per secret
//! (and cached with its [`super::SecretValue`]); it finds every run of 12 or more characters
//! of the secret, wherever it sits, in one pass over the text, and replaces the run with
//! `***`. Runs shorter than 12 characters are left alone: the last four characters are the
//! label the console shows anyway. Secrets shorter than 12 characters are blanked only whole.
//!
//! It does not decode anything: an upstream that escapes or encodes the key it echoes is
//! caught only where Fluxgate has decoded the text itself (error messages, translated bodies),
//! which is why the executor redacts both what it reads and what it derives.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// The shortest run of a secret that is blanked (the whole secret when it is shorter).
pub const MIN_RUN: usize = 12;
/// Secrets shorter than this are not searched for at all (they would blank ordinary words).
const MIN_SECRET: usize = 8;
/// What a blanked run becomes.
const MASK: &[u8] = b"***";

/// Finds and blanks one secret.
pub struct Redactor {
    secret: Vec<u8>,
    /// Every `MIN_RUN`-byte window of the secret (or the whole secret); pattern `i` starts at
    /// `offsets[i]` in the secret.
    finder: Option<AhoCorasick>,
    offsets: Vec<usize>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(***)")
    }
}

impl Redactor {
    pub fn new(secret: &str) -> Self {
        let s = secret.as_bytes();
        let (windows, offsets): (Vec<&[u8]>, Vec<usize>) = if s.len() < MIN_SECRET {
            (Vec::new(), Vec::new())
        } else if s.len() <= MIN_RUN {
            (vec![s], vec![0])
        } else {
            let mut seen = std::collections::HashSet::new();
            (0..=s.len() - MIN_RUN)
                .filter(|&o| seen.insert(&s[o..o + MIN_RUN]))
                .map(|o| (&s[o..o + MIN_RUN], o))
                .unzip()
        };
        let finder = if windows.is_empty() {
            None
        } else {
            // A contiguous NFA builds in microseconds (a DFA takes ~150 µs for a key's 40
            // windows) and, behind the SIMD prefilter, searches as fast for text without the key.
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(&windows)
                .ok()
        };
        Redactor {
            secret: s.to_vec(),
            finder,
            offsets,
        }
    }

    /// The byte ranges of `text` that hold runs of the secret, in order, not overlapping.
    fn runs(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let Some(finder) = &self.finder else {
            return Vec::new();
        };
        let s = &self.secret;
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for m in finder.find_iter(text) {
            if runs.last().is_some_and(|&(_, end)| m.start() < end) {
                continue;
            }
            let offset = self.offsets[m.pattern().as_usize()];
            // Grow the run both ways as long as the text goes on spelling the secret.
            let mut start = m.start();
            let mut at = offset;
            while start > 0 && at > 0 && text[start - 1] == s[at - 1] {
                start -= 1;
                at -= 1;
            }
            let mut end = m.end();
            let mut at = offset + (m.end() - m.start());
            while end < text.len() && at < s.len() && text[end] == s[at] {
                end += 1;
                at += 1;
            }
            match runs.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => runs.push((start, end)),
            }
        }
        runs
    }

    /// Whether `text` holds a run of the secret.
    pub fn finds(&self, text: &[u8]) -> bool {
        self.finder.as_ref().is_some_and(|f| f.find(text).is_some())
    }

    /// `text` with every run of the secret replaced by `***`; borrowed when there was none.
    pub fn bytes<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        let runs = self.runs(text);
        if runs.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = Vec::with_capacity(text.len());
        let mut from = 0;
        for (start, end) in runs {
            out.extend_from_slice(&text[from..start]);
            out.extend_from_slice(MASK);
            from = end;
        }
        out.extend_from_slice(&text[from..]);
        Cow::Owned(out)
    }

    /// [`Redactor::bytes`] for text.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // A run is made of the secret's bytes; the secret is UTF-8, but a run may start or
            // end inside one of its multi-byte characters, so convert lossily.
            Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
        }
    }

    /// [`Redactor::bytes`] for an owned buffer, without copying when there is nothing to do.
    pub fn owned(&self, body: bytes::Bytes) -> bytes::Bytes {
        match self.bytes(&body) {
            Cow::Borrowed(_) => body,
            Cow::Owned(v) => bytes::Bytes::from(v),
        }
    }
}

/// Where a word ends for [`blank_secret_words`]: whitespace, quotes, brackets and the
/// punctuation that usually surrounds a value in a message (`key=…`, `(…)`, `<…>`).
fn word_break(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\''
                | '`'
                | ','
                | ';'
                | ':'
                | '='
                | '('
                | ')'
                | '['
                | ']'
                | '<'
                | '>'
                | '{'
                | '}'
        )
}

/// Whether a word looks like a credential: `sk-…`, `AIza…`, or 20+ letters, digits, `-`, `_`
/// and `.` mixing letters and digits.
pub fn looks_like_secret(word: &str) -> bool {
    word.starts_with("sk-")
        || word.starts_with("AIza")
        || word.len() >= 20
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && word.chars().any(|c| c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_alphabetic())
}

/// `text` with every word that [`looks_like_secret`] replaced by `***`, bare or wrapped in
/// quotes or brackets. The heuristic for text no known secret can be checked against.
pub fn blank_secret_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(word_break) {
        let core = word.trim_end_matches(word_break);
        if looks_like_secret(core) {
            out.push_str("***");
            out.push_str(&word[core.len()..]);
        } else {
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-canary-3f9a2c71d04e4b8e9c5a7f10b2d6e8a4";

    fn red(text: &str) -> String {
        Redactor::new(KEY).text(text).into_owned()
    }

    #[test]
    fn the_key_bare_and_wrapped_is_blanked() {
        for (open, close) in [
            ("", ""),
            ("(", ")"),
            ("[", "]"),
            ("<", ">"),
            ("\"", "\""),
            ("'", "'"),
            ("`", "`"),
            ("{", "}"),
            ("key=", ";"),
            ("Bearer ", ""),
            ("x", "y"),
        ] {
            let text = format!("Invalid API key {open}{KEY}{close} provided.");
            let out = red(&text);
            assert_eq!(
                out,
                format!("Invalid API key {open}***{close} provided."),
                "{open}{close}"
            );
        }
    }

    #[test]
    fn parts_of_twelve_characters_or_more_are_blanked_anywhere() {
        let prefix = &KEY[..12];
        let middle = &KEY[10..30];
        let suffix = &KEY[KEY.len() - 12..];
        for part in [prefix, middle, suffix] {
            let out = red(&format!("seen: {part}."));
            assert_eq!(out, "seen: ***.", "{part}");
        }
        // Eleven characters, and the last four (the console's own label), stay.
        let short = &KEY[..11];
        assert_eq!(red(&format!("seen: {short}")), format!("seen: {short}"));
        let tail = &KEY[KEY.len() - 4..];
        assert_eq!(red(&format!("key …{tail}")), format!("key …{tail}"));
    }

    #[test]
    fn several_and_adjacent_occurrences_are_all_blanked() {
        let text = format!("{KEY}{KEY} and {KEY}, again {}", &KEY[5..40]);
        assert_eq!(red(&text), "*** and ***, again ***");
        let json = format!("{{\"error\":{{\"message\":\"bad key {KEY}\",\"param\":\"{KEY}\"}}}}");
        assert_eq!(
            red(&json),
            "{\"error\":{\"message\":\"bad key ***\",\"param\":\"***\"}}"
        );
    }

    #[test]
    fn text_without_the_key_is_borrowed_unchanged() {
        let r = Redactor::new(KEY);
        let text = "sk-canary-000000000000 is another key; sk-canary- is a prefix";
        assert!(matches!(r.text(text), Cow::Borrowed(_)));
        assert!(!r.finds(text.as_bytes()));
        assert!(r.finds(KEY.as_bytes()));
    }

    #[test]
    fn short_secrets_are_blanked_whole_and_tiny_ones_not_at_all() {
        let r = Redactor::new("abcd1234xy");
        assert_eq!(r.text("k=abcd1234xy;"), "k=***;");
        assert_eq!(r.text("abcd1234"), "abcd1234");
        let tiny = Redactor::new("sk-1");
        assert_eq!(tiny.text("sk-1 sk-1"), "sk-1 sk-1");
    }

    #[test]
    fn multi_byte_secrets_stay_valid_text() {
        let r = Redactor::new("clé-secrète-très-longue-0123");
        let out = r.text("x clé-secrète-très-longue-0123 y");
        assert_eq!(out, "x *** y");
    }
}
