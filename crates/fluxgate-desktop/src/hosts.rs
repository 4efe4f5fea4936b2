//! Whether this session has the desktop services the app relies on: a D-Bus session bus, a
//! tray host (a `StatusNotifierWatcher` with a host registered: GNOME needs the AppIndicator
//! extension) and a notification daemon. `fluxgate doctor` reports them; the app itself runs
//! on without either (the console and the tray's absence are said plainly there).

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// `Err`: no session bus (why).
    pub session_bus: Result<(), String>,
    /// A StatusNotifierWatcher owns its name and says a host is registered.
    pub tray_host: bool,
    /// `org.freedesktop.Notifications` is owned.
    pub notifications: bool,
}

/// Looks at the session bus (about a millisecond; two seconds at most when it hangs).
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn probe() -> Hosts {
    use std::time::Duration;
    let look = async {
        let conn = zbus::Connection::session()
            .await
            .map_err(|e| format!("no D-Bus session bus ({e}); is this a desktop session?"))?;
        let dbus = zbus::fdo::DBusProxy::new(&conn)
            .await
            .map_err(|e| e.to_string())?;
        let owned = |name: &'static str| {
            let dbus = &dbus;
            async move {
                match zbus::names::BusName::try_from(name) {
                    Ok(n) => dbus.name_has_owner(n).await.unwrap_or(false),
                    Err(_) => false,
                }
            }
        };
        let notifications = owned("org.freedesktop.Notifications").await;
        let mut tray_host = false;
        if owned("org.kde.StatusNotifierWatcher").await {
            let watcher = zbus::Proxy::new(
                &conn,
                "org.kde.StatusNotifierWatcher",
                "/StatusNotifierWatcher",
                "org.kde.StatusNotifierWatcher",
            )
            .await
            .map_err(|e| e.to_string())?;
            tray_host = watcher
                .get_property::<bool>("IsStatusNotifierHostRegistered")
                .await
                .unwrap_or(false);
        }
        Ok::<_, String>((tray_host, notifications))
    };
    match tokio::time::timeout(Duration::from_secs(2), look).await {
        Ok(Ok((tray_host, notifications))) => Hosts {
            session_bus: Ok(()),
            tray_host,
            notifications,
        },
        Ok(Err(e)) => Hosts {
            session_bus: Err(e),
            tray_host: false,
            notifications: false,
        },
        Err(_) => Hosts {
            session_bus: Err("the D-Bus session bus did not answer within 2 s".into()),
            tray_host: false,
            notifications: false,
        },
    }
}

/// On macOS and Windows the tray and notifications are the system's own.
#[cfg(not(all(unix, not(target_os = "macos"))))]
pub async fn probe() -> Hosts {
    Hosts {
        session_bus: Ok(()),
        tray_host: true,
        notifications: true,
    }
}
