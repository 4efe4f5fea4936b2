//! The tray menu's actions.

use crate::action::MenuAction;
use crate::console_window::{open_console, TITLE};
use crate::shell::Shell;
use fluxgate_core::setup::{snippet, ClientKind};
use fluxgate_core::t;
use fluxgate_desktop::Notifier;
use std::sync::Arc;
use tauri::AppHandle;
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt;

pub(crate) fn copy(app: &AppHandle, text: String, what: &str) {
    match app.clipboard().write_text(text) {
        Ok(()) => tracing::info!("{what} copied to the clipboard"),
        Err(e) => tracing::warn!(error = %e, "cannot write to the clipboard"),
    }
}

pub(crate) fn on_menu(app: &AppHandle, shell: &Arc<Shell>, id: &str) {
    tracing::info!(item = id, "tray menu");
    let Some(action) = MenuAction::parse(id) else {
        return;
    };
    match action {
        MenuAction::OpenConsole => open_console(app, shell),
        MenuAction::Quit => app.exit(0),
        MenuAction::TogglePause => {
            let paused = shell
                .gateway
                .paused
                .load(std::sync::atomic::Ordering::Relaxed);
            shell.gateway.set_paused(!paused);
            shell.refresh(app);
        }
        MenuAction::CopyBaseUrl => copy(app, format!("http://{}", shell.addr), "the base URL"),
        MenuAction::ToggleAutostart => {
            let al = app.autolaunch();
            let on = al.is_enabled().unwrap_or(false);
            let r = if on { al.disable() } else { al.enable() };
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot change start at login");
            }
            *shell.shown.lock() = None;
            shell.refresh(app);
        }
        MenuAction::ToggleProvider(name) => toggle_provider(app, shell.clone(), name),
        MenuAction::CopySetup(kind) => copy_setup(app, shell, kind),
        MenuAction::SetUpTool(kind) => set_up_tool(shell.clone(), kind),
    }
}

/// Enables or disables a provider: written to the config file (comments kept), applied now.
pub(crate) fn toggle_provider(app: &AppHandle, shell: Arc<Shell>, name: String) {
    let app = app.clone();
    std::thread::spawn(move || {
        let config = shell.gateway.config();
        let Some(enabled) = config.provider(&name).map(|p| p.enabled) else {
            return;
        };
        // Serialised with the admin API's edits.
        let result = shell.gateway.set_provider_enabled_blocking(&name, !enabled);
        match result {
            Ok(()) => {
                tracing::info!(provider = %name, enabled = !enabled, "provider toggled from the tray");
            }
            Err(e) => tracing::error!(error = %e, "cannot change the provider"),
        }
        shell.refresh(&app);
    });
}

/// Writes a tool's own config so it uses this Fluxgate, and says how it went in a notification.
pub(crate) fn set_up_tool(shell: Arc<Shell>, kind: ClientKind) {
    std::thread::spawn(move || {
        let lang = fluxgate_core::i18n::Lang::current();
        let note = match fluxgate_core::setup::tools::Homes::from_env(|k| std::env::var(k).ok())
            .ok_or_else(|| "HOME is not set".to_string())
            .and_then(|homes| {
                let models: Vec<String> = shell.gateway.config().route_names();
                fluxgate_core::setup::tools::set_up(
                    kind,
                    &homes,
                    &shell.state.data_dir,
                    &shell.gateway.tokens,
                    shell
                        .gateway
                        .executor
                        .secrets()
                        .keychain()
                        .as_deref()
                        .map_err(|e| e.to_string()),
                    &format!("http://{}", shell.addr),
                    &models,
                    false,
                )
                .map_err(|e| e.to_string())
            }) {
            Ok(out) if !out.plan.changes() => fluxgate_desktop::Note {
                summary: t!(lang, "tray.setup.already", tool = kind.title()),
                body: t!(lang, "tray.setup.nothing"),
                critical: false,
            },
            Ok(out) => fluxgate_desktop::Note {
                summary: t!(lang, "tray.setup.done", tool = kind.title()),
                body: format!(
                    "{}{}",
                    t!(
                        lang,
                        "tray.setup.done_body",
                        files = out
                            .written
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        id = kind.id()
                    ),
                    kind.note().map(|n| format!(" {n}")).unwrap_or_default()
                ),
                critical: false,
            },
            Err(e) => fluxgate_desktop::Note {
                summary: t!(lang, "tray.setup.failed", tool = kind.title()),
                body: e,
                critical: true,
            },
        };
        tracing::info!(tool = kind.id(), summary = %note.summary, "tool setup from the tray");
        Notifier::new(TITLE).show(&note);
    });
}

/// Copies a tool's setup with a new client token named after it.
pub(crate) fn copy_setup(app: &AppHandle, shell: &Shell, kind: ClientKind) {
    match shell.gateway.tokens.create_numbered(kind.id()) {
        Ok((_, token)) => copy(
            app,
            snippet(kind, &format!("http://{}", shell.addr), &token),
            "the client setup",
        ),
        Err(e) => tracing::error!(error = %e, "cannot make a client token"),
    }
}
