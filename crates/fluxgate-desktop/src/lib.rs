//! The desktop shell's logic without a GUI toolkit, so it is tested like the rest of the
//! router: the tray's icon, title and menu lines from key health ([`tray`]), which events
//! become notifications ([`notes`]), sending them over D-Bus ([`Notifier`]), and whether the
//! session has a tray host and a notification daemon at all ([`hosts`]).

pub mod hosts;
pub mod notes;
pub mod tray;

use std::sync::atomic::{AtomicBool, Ordering};

pub use notes::{Note, NotePolicy};

/// Sends notes to the desktop's notification daemon (`org.freedesktop.Notifications`).
/// A missing daemon is logged once; the app runs on without notifications.
pub struct Notifier {
    app_name: String,
    missing_logged: AtomicBool,
}

impl Notifier {
    pub fn new(app_name: impl Into<String>) -> Self {
        Self {
            app_name: app_name.into(),
            missing_logged: AtomicBool::new(false),
        }
    }

    /// Shows `note`; blocking (a D-Bus round trip), so call it off the async runtime.
    /// Returns whether the daemon took it.
    pub fn show(&self, note: &Note) -> bool {
        let mut n = notify_rust::Notification::new();
        n.appname(&self.app_name)
            .summary(&note.summary)
            .body(&note.body)
            .timeout(notify_rust::Timeout::Default);
        #[cfg(all(unix, not(target_os = "macos")))]
        if note.critical {
            n.urgency(notify_rust::Urgency::Critical);
        }
        match n.show() {
            Ok(_) => true,
            Err(e) => {
                if !self.missing_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "desktop notifications are unavailable (no notification daemon?); key changes show in the tray and the console only");
                }
                false
            }
        }
    }
}
