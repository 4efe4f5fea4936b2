//! The Fluxgate desktop app: a thin shell over the router. It starts the same server as
//! `fluxgate serve` in-process, draws the tray from `fluxgate_desktop::tray`, sends the
//! notifications `fluxgate_desktop::notes` decides on, and shows the console (served by the
//! router at `/admin/`) in a window that runs in its own process (`--console-window`), so
//! closing it frees the webview and every WebKit process; the router and the tray run on
//! until Quit, which drains in-flight requests first.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program: printing is its interface
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use fluxgate_server::launch::{Options, Started};
use tauri::tray::{TrayIcon as Tray, TrayIconBuilder};
use tauri::{Manager, RunEvent};
use tauri_plugin_autostart::MacosLauncher;

mod action;
mod console_window;
mod events;
mod menu;
mod shell;

use console_window::{close_console, open_console, run_console_window};
use events::spawn_event_loop;
use menu::on_menu;
use shell::{icon, Shell};

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
            .icon(icon(v.icon)?)
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
