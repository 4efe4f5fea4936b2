//! The shell's shared state: the running gateway, the tray and what it last showed, the
//! console window's process.

use crate::action::MenuAction;
use fluxgate_core::gateway::Gateway;
use fluxgate_core::i18n::Lang;
use fluxgate_core::setup::ClientKind;
use fluxgate_core::t;
use fluxgate_desktop::tray::{self, TrayIcon};
use std::net::SocketAddr;
use std::sync::Arc;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIcon as Tray;
use tauri::AppHandle;
use tauri_plugin_autostart::ManagerExt as _;

/// What the menu handlers and the event loop share.
pub(crate) struct Shell {
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) addr: SocketAddr,
    /// Set once Tauri's setup has built the tray.
    pub(crate) tray: std::sync::OnceLock<Tray>,
    /// What the tray last showed, to redraw only on change.
    pub(crate) shown: parking_lot::Mutex<Option<tray::TrayView>>,
    /// The server's state (the console's login codes).
    pub(crate) state: Arc<fluxgate_server::AppState>,
    /// The console window's process and its stdin, while it runs.
    pub(crate) console: parking_lot::Mutex<Option<(std::process::Child, std::process::ChildStdin)>>,
}

/// The tray icon for a state (PNGs in `icons/`, drawn by `scripts/make_icons.py`).
pub(crate) fn icon(kind: TrayIcon) -> tauri::Result<Image<'static>> {
    let bytes: &'static [u8] = match kind {
        TrayIcon::Healthy => include_bytes!("../../icons/tray-healthy.png"),
        TrayIcon::Degraded => include_bytes!("../../icons/tray-degraded.png"),
        TrayIcon::Down => include_bytes!("../../icons/tray-down.png"),
        TrayIcon::Paused => include_bytes!("../../icons/tray-paused.png"),
    };
    Image::from_bytes(bytes)
}

impl Shell {
    pub(crate) fn view(&self) -> tray::TrayView {
        let config = self.gateway.config();
        let keys = self.gateway.health.list(&config);
        let providers: Vec<(String, bool)> = config
            .providers
            .iter()
            .map(|p| (p.name.clone(), p.enabled))
            .collect();
        let paused = self
            .gateway
            .paused
            .load(std::sync::atomic::Ordering::Relaxed);
        tray::view(&keys, &providers, paused, Lang::current())
    }

    pub(crate) fn menu(
        &self,
        app: &AppHandle,
        v: &tray::TrayView,
    ) -> tauri::Result<Menu<tauri::Wry>> {
        let lang = Lang::current();
        let menu = Menu::new(app)?;
        menu.append(&MenuItem::with_id(
            app,
            "status",
            &v.status,
            false,
            None::<&str>,
        )?)?;
        menu.append(&PredefinedMenuItem::separator(app)?)?;
        for p in &v.providers {
            menu.append(&CheckMenuItem::with_id(
                app,
                MenuAction::ToggleProvider(p.name.clone()).id(),
                &p.label,
                true,
                p.enabled,
                None::<&str>,
            )?)?;
        }
        if !v.providers.is_empty() {
            menu.append(&PredefinedMenuItem::separator(app)?)?;
        }
        let paused = v.icon == TrayIcon::Paused;
        menu.append(&MenuItem::with_id(
            app,
            MenuAction::TogglePause.id(),
            if paused {
                t!(lang, "tray.menu.resume")
            } else {
                t!(lang, "tray.menu.pause")
            },
            true,
            None::<&str>,
        )?)?;
        menu.append(&MenuItem::with_id(
            app,
            MenuAction::OpenConsole.id(),
            t!(lang, "tray.menu.open_console"),
            true,
            None::<&str>,
        )?)?;
        menu.append(&MenuItem::with_id(
            app,
            MenuAction::CopyBaseUrl.id(),
            t!(
                lang,
                "tray.menu.copy_base_url",
                url = format!("http://{}", self.addr)
            ),
            true,
            None::<&str>,
        )?)?;
        // One click points a tool at Fluxgate (its own config files, a token made for it); the
        // same use case as `fluxgate setup` and the console's Client setup page.
        let tools = Submenu::with_id(app, "setup-tool", t!(lang, "tray.menu.setup_tool"), true)?;
        for k in ClientKind::WRITABLE {
            tools.append(&MenuItem::with_id(
                app,
                MenuAction::SetUpTool(k).id(),
                t!(lang, "tray.menu.setup_named", tool = k.title()),
                true,
                None::<&str>,
            )?)?;
        }
        menu.append(&tools)?;
        let setup = Submenu::with_id(app, "setup", t!(lang, "tray.menu.copy_setup"), true)?;
        for k in ClientKind::ALL {
            setup.append(&MenuItem::with_id(
                app,
                MenuAction::CopySetup(k).id(),
                k.title(),
                true,
                None::<&str>,
            )?)?;
        }
        menu.append(&setup)?;
        let autostart = app.autolaunch().is_enabled().unwrap_or(false);
        menu.append(&CheckMenuItem::with_id(
            app,
            MenuAction::ToggleAutostart.id(),
            t!(lang, "tray.menu.start_at_login"),
            true,
            autostart,
            None::<&str>,
        )?)?;
        menu.append(&PredefinedMenuItem::separator(app)?)?;
        menu.append(&MenuItem::with_id(
            app,
            MenuAction::Quit.id(),
            t!(lang, "tray.menu.quit"),
            true,
            None::<&str>,
        )?)?;
        Ok(menu)
    }

    /// Redraws the tray when what it shows changed.
    pub(crate) fn refresh(&self, app: &AppHandle) {
        let v = self.view();
        {
            let mut shown = self.shown.lock();
            if shown.as_ref() == Some(&v) {
                return;
            }
            *shown = Some(v.clone());
        }
        let Some(tray) = self.tray.get() else {
            return;
        };
        match icon(v.icon) {
            Ok(i) => {
                let _ = tray.set_icon(Some(i));
            }
            Err(e) => tracing::warn!(error = %e, "cannot draw the tray icon"),
        }
        let _ = tray.set_tooltip(Some(&v.title));
        let _ = tray.set_title(Some(&v.title));
        match self.menu(app, &v) {
            Ok(m) => {
                let _ = tray.set_menu(Some(m));
            }
            Err(e) => tracing::warn!(error = %e, "cannot rebuild the tray menu"),
        }
        tracing::debug!(title = %v.title, icon = v.icon.name(), "tray updated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tray_icon_decodes() {
        for kind in [
            TrayIcon::Healthy,
            TrayIcon::Degraded,
            TrayIcon::Down,
            TrayIcon::Paused,
        ] {
            let i = icon(kind).expect("a valid PNG");
            assert!(i.width() > 0 && i.height() > 0, "{kind:?}");
        }
    }
}
