//! Client setup: what a tool needs to use Fluxgate (base URL and a client token), as text to
//! paste. The console and the tray menu both show these, so they live here once.

/// The tools Fluxgate writes setup for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    ClaudeCode,
    Codex,
    OpenaiSdk,
    AnthropicSdk,
}

impl ClientKind {
    pub const ALL: [ClientKind; 4] = [
        ClientKind::ClaudeCode,
        ClientKind::Codex,
        ClientKind::OpenaiSdk,
        ClientKind::AnthropicSdk,
    ];

    pub fn parse(s: &str) -> Option<ClientKind> {
        Self::ALL.into_iter().find(|k| k.id() == s)
    }

    /// The id in the API (`claude-code`, `codex`, `openai-sdk`, `anthropic-sdk`).
    pub fn id(self) -> &'static str {
        match self {
            ClientKind::ClaudeCode => "claude-code",
            ClientKind::Codex => "codex",
            ClientKind::OpenaiSdk => "openai-sdk",
            ClientKind::AnthropicSdk => "anthropic-sdk",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ClientKind::ClaudeCode => "Claude Code",
            ClientKind::Codex => "Codex CLI",
            ClientKind::OpenaiSdk => "OpenAI SDK (Python, Node, aider, Cline)",
            ClientKind::AnthropicSdk => "Anthropic SDK",
        }
    }
}

/// The setup text for `kind`. `base` is the router's address without a path
/// (`http://127.0.0.1:8414`); `token` a client token, or a placeholder.
pub fn snippet(kind: ClientKind, base: &str, token: &str) -> String {
    let base = base.trim_end_matches('/');
    match kind {
        ClientKind::ClaudeCode => format!(
            "# Claude Code: add to your shell profile, or to the \"env\" object of ~/.claude/settings.json\n\
             export ANTHROPIC_BASE_URL={base}\n\
             export ANTHROPIC_API_KEY={token}\n"
        ),
        ClientKind::Codex => format!(
            "# Codex CLI: add to ~/.codex/config.toml\n\
             model_provider = \"fluxgate\"\n\
             \n\
             [model_providers.fluxgate]\n\
             name = \"Fluxgate\"\n\
             base_url = \"{base}/v1\"\n\
             env_key = \"FLUXGATE_TOKEN\"\n\
             wire_api = \"responses\"\n\
             \n\
             # and to your shell profile:\n\
             # export FLUXGATE_TOKEN={token}\n"
        ),
        ClientKind::OpenaiSdk => format!(
            "# OpenAI SDKs and tools built on them (aider, Cline, Continue, scripts)\n\
             export OPENAI_BASE_URL={base}/v1\n\
             export OPENAI_API_KEY={token}\n"
        ),
        ClientKind::AnthropicSdk => format!(
            "# Anthropic SDKs\n\
             export ANTHROPIC_BASE_URL={base}\n\
             export ANTHROPIC_API_KEY={token}\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tool_gets_its_own_base_url_convention() {
        let b = "http://127.0.0.1:8414/";
        assert!(snippet(ClientKind::ClaudeCode, b, "fg-1")
            .contains("ANTHROPIC_BASE_URL=http://127.0.0.1:8414\nexport ANTHROPIC_API_KEY=fg-1\n"));
        assert!(snippet(ClientKind::Codex, b, "fg-1")
            .contains("base_url = \"http://127.0.0.1:8414/v1\""));
        assert!(snippet(ClientKind::OpenaiSdk, b, "fg-1")
            .contains("OPENAI_BASE_URL=http://127.0.0.1:8414/v1\n"));
        for k in ClientKind::ALL {
            assert_eq!(ClientKind::parse(k.id()), Some(k));
        }
        assert_eq!(ClientKind::parse("cursor"), None);
    }
}
