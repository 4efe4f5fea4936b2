//! The Fluxgate desktop app: a thin shell over the router. It starts the same server as
//! `fluxgate serve` in-process, draws the tray from `fluxgate_desktop::tray`, sends the
//! notifications `fluxgate_desktop::notes` decides on, and shows the console (served by the
//! router at `/admin/`) in a window that runs in its own process (`--console-window`), so
//! closing it frees the webview and every WebKit process; the router and the tray run on
//! until Quit, which drains in-flight requests first.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use fluxgate_core::events::Event;
use fluxgate_core::gateway::Gateway;
use fluxgate_core::setup::{snippet, ClientKind};
use fluxgate_desktop::tray::{self, TrayIcon};
use fluxgate_desktop::{NotePolicy, Notifier};
use fluxgate_server::launch::{Options, Started};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon as Tray, TrayIconBuilder};
use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_autostart::{MacosLauncher, ManagerExt as _};
use tauri_plugin_clipboard_manager::ClipboardExt;

/// The window's label and title.
const WINDOW: &str = "console";
const TITLE: &str = "Fluxgate";

/// Fluxgate: one local address for every AI tool (desktop app: tray, notifications, console).
#[derive(Parser, Debug)]
#[command(name = "fluxgate-app", version)]
struct Args {
    /// The config file [default: the platform config dir, e.g. ~/.config/fluxgate/config.toml]
    #[arg(long, env = "FLUXGATE_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory [default: the platform data dir, e.g. ~/.local/share/fluxgate]
    #[arg(long, env = "FLUXGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: `listen` from the config, else 127.0.0.1:8414]
    #[arg(long, env = "FLUXGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Start in the tray without opening the window (used for start at login).
    #[arg(long)]
    hidden: bool,
    /// Internal: run only the console window, for the URL given on stdin.
    #[arg(long, hide = true)]
    console_window: bool,
}

/// What the menu handlers and the event loop share.
struct Shell {
    gateway: Arc<Gateway>,
    addr: SocketAddr,
    /// Set once Tauri's setup has built the tray.
    tray: std::sync::OnceLock<Tray>,
    /// What the tray last showed, to redraw only on change.
    shown: parking_lot::Mutex<Option<tray::TrayView>>,
    /// The server's state: its config file (the tray edits it, serialised with the admin
    /// API's edits by the same lock) and the console login codes.
    state: Arc<fluxgate_server::AppState>,
    /// The console window's process and its stdin, while it runs.
    console: parking_lot::Mutex<Option<(std::process::Child, std::process::ChildStdin)>>,
}

fn icon(kind: TrayIcon) -> Image<'static> {
    let bytes: &'static [u8] = match kind {
        TrayIcon::Healthy => include_bytes!("../../icons/tray-healthy.png"),
        TrayIcon::Degraded => include_bytes!("../../icons/tray-degraded.png"),
        TrayIcon::Down => include_bytes!("../../icons/tray-down.png"),
        TrayIcon::Paused => include_bytes!("../../icons/tray-paused.png"),
    };
    Image::from_bytes(bytes).expect("the tray icons are valid PNGs (icons/, committed)")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Shell {
    fn view(&self) -> tray::TrayView {
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
        tray::view(&keys, &providers, paused)
    }

    fn menu(&self, app: &AppHandle, v: &tray::TrayView) -> tauri::Result<Menu<tauri::Wry>> {
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
                format!("provider:{}", p.name),
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
            "pause",
            if paused {
                "Resume routing"
            } else {
                "Pause routing"
            },
            true,
            None::<&str>,
        )?)?;
        menu.append(&MenuItem::with_id(
            app,
            "open",
            "Open console",
            true,
            None::<&str>,
        )?)?;
        menu.append(&MenuItem::with_id(
            app,
            "copy-url",
            format!("Copy base URL (http://{})", self.addr),
            true,
            None::<&str>,
        )?)?;
        // One click points a tool at Fluxgate (its own config files, a token made for it); the
        // same use case as `fluxgate setup` and the console's Client setup page.
        let tools = Submenu::with_id(app, "setup-tool", "Set up a tool", true)?;
        for k in ClientKind::WRITABLE {
            tools.append(&MenuItem::with_id(
                app,
                format!("setup-tool:{}", k.id()),
                format!("Set up {}", k.title()),
                true,
                None::<&str>,
            )?)?;
        }
        menu.append(&tools)?;
        let setup = Submenu::with_id(app, "setup", "Copy client setup", true)?;
        for k in ClientKind::ALL {
            setup.append(&MenuItem::with_id(
                app,
                format!("setup:{}", k.id()),
                k.title(),
                true,
                None::<&str>,
            )?)?;
        }
        menu.append(&setup)?;
        let autostart = app.autolaunch().is_enabled().unwrap_or(false);
        menu.append(&CheckMenuItem::with_id(
            app,
            "autostart",
            "Start at login",
            true,
            autostart,
            None::<&str>,
        )?)?;
        menu.append(&PredefinedMenuItem::separator(app)?)?;
        menu.append(&MenuItem::with_id(
            app,
            "quit",
            "Quit Fluxgate",
            true,
            None::<&str>,
        )?)?;
        Ok(menu)
    }

    /// Redraws the tray when what it shows changed.
    fn refresh(&self, app: &AppHandle) {
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
        let _ = tray.set_icon(Some(icon(v.icon)));
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

/// Shows the console window. The window lives in its own process (`--console-window`, the
/// same binary): closing it ends that process, so WebKit and all its helper processes are
/// freed, and the tray process never starts a webview (WebKitGTK keeps a network process for
/// as long as the process that made a webview lives). The one-time login URL is passed on the
/// child's stdin, never in its arguments; a line `focus` raises an open window.
fn open_console(_app: &AppHandle, shell: &Shell) {
    use std::io::Write;
    let mut slot = shell.console.lock();
    if let Some((child, stdin)) = slot.as_mut() {
        if matches!(child.try_wait(), Ok(None)) && writeln!(stdin, "focus").is_ok() {
            return;
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot find this program to open the console window");
            return;
        }
    };
    let started = Instant::now();
    let spawned = std::process::Command::new(exe)
        .arg("--console-window")
        .stdin(std::process::Stdio::piped())
        .spawn();
    match spawned {
        Ok(mut child) => {
            let Some(mut stdin) = child.stdin.take() else {
                return;
            };
            if writeln!(stdin, "{}", shell.state.login_url()).is_err() {
                tracing::error!("the console window process did not take its URL");
            }
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "console window process started"
            );
            *slot = Some((child, stdin));
        }
        Err(e) => tracing::error!(error = %e, "cannot open the console window"),
    }
}

/// Forgets (and reaps) a console window process that has exited.
fn reap_console(shell: &Shell) {
    let mut slot = shell.console.lock();
    if let Some((child, _)) = slot.as_mut() {
        if !matches!(child.try_wait(), Ok(None)) {
            *slot = None;
        }
    }
}

/// Ends the console window's process (at quit).
fn close_console(shell: &Shell) {
    if let Some((mut child, stdin)) = shell.console.lock().take() {
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `fluxgate-app --console-window`: only the window, showing the URL read from stdin. It
/// exits when the window is closed or the tray process goes away (stdin ends).
fn run_console_window() -> std::process::ExitCode {
    use std::io::BufRead;
    let mut lines = std::io::stdin().lock().lines();
    let url = match lines.next() {
        Some(Ok(u)) => u,
        _ => return std::process::ExitCode::from(2),
    };
    drop(lines);
    let result = tauri::Builder::default()
        .setup(move |app| {
            let url = url
                .parse()
                .map_err(|e| format!("the console URL is not a URL: {e}"))?;
            WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::External(url))
                .title(TITLE)
                .inner_size(1280.0, 800.0)
                .min_inner_size(720.0, 480.0)
                .build()?
                .set_focus()?;
            let handle = app.handle().clone();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if line.trim() == "focus" {
                        let h = handle.clone();
                        let _ = handle.run_on_main_thread(move || {
                            if let Some(w) = h.get_webview_window(WINDOW) {
                                let _ = w.unminimize();
                                let _ = w.show();
                                let _ = w.set_focus();
                            }
                        });
                    }
                }
                // The tray process is gone: so is its console.
                handle.exit(0);
            });
            Ok(())
        })
        .run(tauri::generate_context!());
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot open the console window: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

fn copy(app: &AppHandle, text: String, what: &str) {
    match app.clipboard().write_text(text) {
        Ok(()) => tracing::info!("{what} copied to the clipboard"),
        Err(e) => tracing::warn!(error = %e, "cannot write to the clipboard"),
    }
}

fn on_menu(app: &AppHandle, shell: &Arc<Shell>, id: &str) {
    tracing::info!(item = id, "tray menu");
    match id {
        "open" => open_console(app, shell),
        "quit" => app.exit(0),
        "pause" => {
            let paused = shell
                .gateway
                .paused
                .load(std::sync::atomic::Ordering::Relaxed);
            shell.gateway.set_paused(!paused);
            shell.refresh(app);
        }
        "copy-url" => copy(app, format!("http://{}", shell.addr), "the base URL"),
        "autostart" => {
            let al = app.autolaunch();
            let on = al.is_enabled().unwrap_or(false);
            let r = if on { al.disable() } else { al.enable() };
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot change start at login");
            }
            *shell.shown.lock() = None;
            shell.refresh(app);
        }
        other => {
            if let Some(name) = other.strip_prefix("provider:") {
                toggle_provider(app, shell.clone(), name.to_string());
            } else if let Some(kind) = other.strip_prefix("setup:").and_then(ClientKind::parse) {
                copy_setup(app, shell, kind);
            } else if let Some(kind) = other
                .strip_prefix("setup-tool:")
                .and_then(ClientKind::parse)
            {
                set_up_tool(shell.clone(), kind);
            }
        }
    }
}

/// Enables or disables a provider: written to the config file (comments kept), applied now.
fn toggle_provider(app: &AppHandle, shell: Arc<Shell>, name: String) {
    let app = app.clone();
    std::thread::spawn(move || {
        let config = shell.gateway.config();
        let Some(enabled) = config.provider(&name).map(|p| p.enabled) else {
            return;
        };
        let Some(path) = shell.state.config_file.clone() else {
            return;
        };
        // Serialised with the admin API's edits.
        let _one_at_a_time = shell.state.edit_lock.blocking_lock();
        let result =
            fluxgate_core::config::edit::ConfigDoc::edit_file(&path, Some(&config), |doc| {
                doc.set_provider_enabled(&name, !enabled)
            });
        match result {
            Ok(((), c)) => {
                shell.gateway.apply(c);
                tracing::info!(provider = %name, enabled = !enabled, "provider toggled from the tray");
            }
            Err(e) => tracing::error!(error = %e, "cannot change the provider"),
        }
        shell.refresh(&app);
    });
}

/// Writes a tool's own config so it uses this Fluxgate, and says how it went in a notification.
fn set_up_tool(shell: Arc<Shell>, kind: ClientKind) {
    std::thread::spawn(move || {
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
                summary: format!("{} already uses Fluxgate", kind.title()),
                body: "Nothing to change.".into(),
                critical: false,
            },
            Ok(out) => fluxgate_desktop::Note {
                summary: format!("{} now uses Fluxgate", kind.title()),
                body: format!(
                    "Wrote {}. `fluxgate setup --undo {}` restores the originals.{}",
                    out.written
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    kind.id(),
                    kind.note().map(|n| format!(" {n}")).unwrap_or_default()
                ),
                critical: false,
            },
            Err(e) => fluxgate_desktop::Note {
                summary: format!("Could not set up {}", kind.title()),
                body: e,
                critical: true,
            },
        };
        tracing::info!(tool = kind.id(), summary = %note.summary, "tool setup from the tray");
        Notifier::new(TITLE).show(&note);
    });
}

/// Copies a tool's setup with a new client token named after it.
fn copy_setup(app: &AppHandle, shell: &Shell, kind: ClientKind) {
    match shell.gateway.tokens.create_numbered(kind.id()) {
        Ok((_, token)) => copy(
            app,
            snippet(kind, &format!("http://{}", shell.addr), &token),
            "the client setup",
        ),
        Err(e) => tracing::error!(error = %e, "cannot make a client token"),
    }
}

/// Follows the router's events: notifications (deduplicated, rate-limited) and the tray.
fn spawn_event_loop(
    rt: &tokio::runtime::Runtime,
    app: AppHandle,
    shell: Arc<Shell>,
    mut events: tokio::sync::broadcast::Receiver<Event>,
) {
    rt.spawn(async move {
        let notifier = Arc::new(Notifier::new(TITLE));
        let mut policy = NotePolicy::default();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            let note = tokio::select! {
                e = events.recv() => match e {
                    Ok(e) => {
                        if matches!(e, Event::KeyStateChanged { .. } | Event::ConfigReloaded { .. } | Event::RoutingPaused { .. }) {
                            shell.refresh(&app);
                        }
                        policy.on_event(&e, Instant::now(), now_ms())
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

fn init_logging() {
    fluxgate_server::logging::init(false);
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logging();
    if args.console_window {
        return run_console_window();
    }
    fluxgate_server::panics::install_hook();
    let options = Options {
        config: args.config.clone(),
        data_dir: args.data_dir.clone(),
        listen: args.listen,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };

    // One instance: the shell is built first, so a second start finds the first one (over
    // D-Bus), asks it to open its window and exits, before it would bind the port and fail
    // with a confusing "address in use".
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            if let Some(shell) = app.try_state::<Arc<Shell>>() {
                open_console(app, &shell);
            }
        }))
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .plugin(tauri_plugin_clipboard_manager::init())
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot start the desktop shell: {e} (is a display available? `fluxgate serve` runs without one)");
            return std::process::ExitCode::from(1);
        }
    };
    let started: Started = match rt.block_on(options.start()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    // Subscribed before the address is announced: no key change is missed while the window
    // and tray are still being set up (they are queued for the event loop).
    let events = started.gateway.events.subscribe();
    let addr = started.handle.addr;
    let state = started.handle.state.clone();
    println!("listening on http://{addr}");
    eprintln!("Fluxgate listening on http://{addr} (tray app)");
    let shell = Arc::new(Shell {
        gateway: started.gateway.clone(),
        addr,
        tray: std::sync::OnceLock::new(),
        shown: parking_lot::Mutex::new(None),
        console: parking_lot::Mutex::new(None),
        state: state.clone(),
    });
    let handle = parking_lot::Mutex::new(Some(started.handle));
    app.manage(shell.clone());
    let tray = (|| -> tauri::Result<Tray> {
        let v = shell.view();
        let menu = shell.menu(app.handle(), &v)?;
        let menu_shell = shell.clone();
        let tray = TrayIconBuilder::with_id("fluxgate")
            .icon(icon(v.icon))
            .tooltip(&v.title)
            .title(&v.title)
            .menu(&menu)
            .show_menu_on_left_click(true)
            .on_menu_event(move |app, event| on_menu(app, &menu_shell, event.id().as_ref()))
            .build(&app)?;
        *shell.shown.lock() = Some(v);
        Ok(tray)
    })();
    match tray {
        Ok(t) => {
            let _ = shell.tray.set(t);
        }
        // No tray host (some desktops): the window and notifications still work.
        Err(e) => tracing::error!(error = %e, "cannot show the tray icon; use the console window"),
    }
    if !args.hidden {
        open_console(app.handle(), &shell);
    }
    spawn_event_loop(&rt, app.handle().clone(), shell.clone(), events);
    let exit_shell = shell.clone();
    app.run(move |_app, event| match event {
        // The last window closed: keep running in the tray. Quit passes an exit code.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::Exit => {
            close_console(&exit_shell);
            eprintln!("shutting down: letting in-flight requests finish (up to 10 s)");
            let h = handle.lock().take();
            if let Some(h) = h {
                rt.block_on(h.shutdown());
            }
        }
        _ => {}
    });
    std::process::ExitCode::SUCCESS
}
