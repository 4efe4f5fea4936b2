//! The tray menu's actions as values: the menu is built from [`MenuAction::id`] and a click
//! is read back with [`MenuAction::parse`], so the two cannot drift apart (tested below
//! without a display).

use fluxgate_core::setup::ClientKind;

/// What a tray menu item does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MenuAction {
    OpenConsole,
    Quit,
    TogglePause,
    CopyBaseUrl,
    ToggleAutostart,
    /// Switch a provider on or off in the config.
    ToggleProvider(String),
    /// Copy a tool's setup text with a new token.
    CopySetup(ClientKind),
    /// Write a tool's own config files.
    SetUpTool(ClientKind),
}

impl MenuAction {
    /// The menu item's id.
    pub(crate) fn id(&self) -> String {
        match self {
            MenuAction::OpenConsole => "open".into(),
            MenuAction::Quit => "quit".into(),
            MenuAction::TogglePause => "pause".into(),
            MenuAction::CopyBaseUrl => "copy-url".into(),
            MenuAction::ToggleAutostart => "autostart".into(),
            MenuAction::ToggleProvider(name) => format!("provider:{name}"),
            MenuAction::CopySetup(k) => format!("setup:{}", k.id()),
            MenuAction::SetUpTool(k) => format!("setup-tool:{}", k.id()),
        }
    }

    /// The action of a clicked item; `None` for items that do nothing (the status line,
    /// submenu headers).
    pub(crate) fn parse(id: &str) -> Option<MenuAction> {
        Some(match id {
            "open" => MenuAction::OpenConsole,
            "quit" => MenuAction::Quit,
            "pause" => MenuAction::TogglePause,
            "copy-url" => MenuAction::CopyBaseUrl,
            "autostart" => MenuAction::ToggleAutostart,
            other => {
                if let Some(name) = other.strip_prefix("provider:") {
                    MenuAction::ToggleProvider(name.to_string())
                } else if let Some(k) = other.strip_prefix("setup-tool:") {
                    MenuAction::SetUpTool(ClientKind::parse(k)?)
                } else if let Some(k) = other.strip_prefix("setup:") {
                    MenuAction::CopySetup(ClientKind::parse(k)?)
                } else {
                    return None;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_from_its_id() {
        let mut all = vec![
            MenuAction::OpenConsole,
            MenuAction::Quit,
            MenuAction::TogglePause,
            MenuAction::CopyBaseUrl,
            MenuAction::ToggleAutostart,
            MenuAction::ToggleProvider("openai".into()),
            MenuAction::ToggleProvider("a:b".into()),
        ];
        all.extend(ClientKind::ALL.iter().map(|k| MenuAction::CopySetup(*k)));
        all.extend(
            ClientKind::WRITABLE
                .iter()
                .map(|k| MenuAction::SetUpTool(*k)),
        );
        for a in all {
            assert_eq!(MenuAction::parse(&a.id()), Some(a.clone()), "{}", a.id());
        }
    }

    #[test]
    fn items_without_an_action_do_nothing() {
        for id in [
            "status",
            "setup",
            "setup-tool",
            "setup:nope",
            "setup-tool:",
            "x",
        ] {
            assert_eq!(MenuAction::parse(id), None, "{id}");
        }
    }
}
