//! The router's events, turned into notifications and tray redraws.

use crate::console_window::{reap_console, TITLE};
use crate::shell::Shell;
use fluxgate_core::events::Event;
use fluxgate_desktop::{NotePolicy, Notifier};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tauri::AppHandle;

/// Follows the router's events: notifications (deduplicated, rate-limited) and the tray.
pub(crate) fn spawn_event_loop(
    rt: &tokio::runtime::Runtime,
    app: AppHandle,
    shell: Arc<Shell>,
    mut events: tokio::sync::broadcast::Receiver<Event>,
) {
    rt.spawn(async move {
        let notifier = Arc::new(Notifier::new(TITLE));
        let mut policy = NotePolicy::default();
        policy.lang = fluxgate_core::i18n::Lang::current();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            let note = tokio::select! {
                e = events.recv() => match e {
                    Ok(e) => {
                        if matches!(e, Event::KeyStateChanged { .. } | Event::ProxyStateChanged { .. } | Event::ConfigReloaded { .. } | Event::RoutingPaused { .. }) {
                            shell.refresh(&app);
                        }
                        policy.on_event(&e, Instant::now(), fluxgate_core::clock::now_ms())
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the tray fell behind the router's events");
                        shell.refresh(&app);
                        None
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    // Cooldowns end without an event until the retest runs; keep the counts true.
                    shell.refresh(&app);
                    reap_console(&shell);
                    policy.flush(Instant::now())
                }
            };
            if let Some(note) = note {
                let n = notifier.clone();
                tracing::debug!(summary = %note.summary, "notification");
                tokio::task::spawn_blocking(move || {
                    let shown = n.show(&note);
                    tracing::debug!(shown, "notification sent");
                });
            }
        }
    });
}
