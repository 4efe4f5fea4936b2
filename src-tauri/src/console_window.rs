//! The console window, in its own process (see `open_console`).

use crate::shell::Shell;
use std::time::Instant;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

/// The window's label and title.
pub(crate) const WINDOW: &str = "console";
pub(crate) const TITLE: &str = "Fluxgate";

/// Shows the console window. The window lives in its own process (`--console-window`, the
/// same binary): closing it ends that process, so WebKit and all its helper processes are
/// freed, and the tray process never starts a webview (WebKitGTK keeps a network process for
/// as long as the process that made a webview lives). The one-time login URL is passed on the
/// child's stdin, never in its arguments; a line `focus` raises an open window.
pub(crate) fn open_console(_app: &AppHandle, shell: &Shell) {
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
pub(crate) fn reap_console(shell: &Shell) {
    let mut slot = shell.console.lock();
    if let Some((child, _)) = slot.as_mut() {
        if !matches!(child.try_wait(), Ok(None)) {
            *slot = None;
        }
    }
}

/// Ends the console window's process (at quit).
pub(crate) fn close_console(shell: &Shell) {
    if let Some((mut child, stdin)) = shell.console.lock().take() {
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `fluxgate-app --console-window`: only the window, showing the URL read from stdin. It
/// exits when the window is closed or the tray process goes away (stdin ends).
pub(crate) fn run_console_window() -> std::process::ExitCode {
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
