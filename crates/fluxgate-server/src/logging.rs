//! The log subscriber for `fluxgate serve` and the desktop app.
//!
//! Text logs escape control characters in every field value ([`EscapingFields`]): a model
//! name, route or header a client chose (`"gpt-4o\n2026-… INFO forged line"`) must not be able
//! to end a log line and forge the next one, or move the cursor of a terminal reading the log.
//! JSON logs escape by construction.

use std::fmt::{self, Debug, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// Installs the subscriber: `FLUXGATE_LOG` (default `info`) to stderr, text or JSON.
pub fn init(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLUXGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.fmt_fields(EscapingFields).init();
    }
}

/// `text` with control characters written as escapes (`\n`, `\r`, `\t`, `\u{1b}`, …).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Formats fields like tracing-subscriber's default text format, with control characters in
/// values escaped.
pub struct EscapingFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapingFields {
    type Visitor = EscapingVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        EscapingVisitor {
            inner: DefaultVisitor::new(target, true),
            buf: String::new(),
        }
    }
}

pub struct EscapingVisitor<'a> {
    inner: DefaultVisitor<'a>,
    buf: String,
}

/// A value already formatted (and escaped), written as it is.
struct Verbatim<'s>(&'s str);

impl Debug for Verbatim<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.inner.record_str(field, &escape_controls(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.buf.clear();
        let _ = write!(self.buf, "{value:?}");
        if self.buf.chars().any(char::is_control) {
            let escaped = escape_controls(&self.buf).into_owned();
            self.inner.record_debug(field, &Verbatim(&escaped));
        } else {
            let text = std::mem::take(&mut self.buf);
            self.inner.record_debug(field, &Verbatim(&text));
            self.buf = text;
        }
    }
}

impl VisitOutput<fmt::Result> for EscapingVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.inner.finish()
    }
}

impl VisitFmt for EscapingVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.inner.writer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn client_chosen_values_cannot_forge_a_log_line() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .fmt_fields(EscapingFields)
            .finish();
        let forged = "gpt-4o\n2026-12-02T00:00:00Z  INFO fluxgate: admin signed in\r\u{1b}[2K";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", route = forged);
            let _e = span.enter();
            tracing::info!(model = %forged, header = ?forged, plain = forged, count = 3, "refused");
        });
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("gpt-4o\\n2026-12-02"), "{text}");
        assert!(
            text.contains("count=3") && text.contains("refused"),
            "{text}"
        );
    }

    #[test]
    fn text_without_controls_is_untouched() {
        assert!(matches!(
            escape_controls("plain é"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape_controls("a\tb\u{0}"), "a\\tb\\u{0}");
    }
}
