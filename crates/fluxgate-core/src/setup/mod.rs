//! Client setup: what a tool needs to use Fluxgate (base URL and a client token), as text to
//! paste ([`snippet`]) and, for the tools with config files of their own, as edits of those
//! files ([`tools`]: plan, apply, undo). The CLI, the console and the tray all use these, so
//! they live here once.

mod diff;
pub mod first_run;
pub mod jsonc;
pub mod tools;

/// The tools Fluxgate writes setup for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    ClaudeCode,
    Codex,
    GeminiCli,
    Opencode,
    OpenaiSdk,
    AnthropicSdk,
}

impl ClientKind {
    pub const ALL: [ClientKind; 6] = [
        ClientKind::ClaudeCode,
        ClientKind::Codex,
        ClientKind::GeminiCli,
        ClientKind::Opencode,
        ClientKind::OpenaiSdk,
        ClientKind::AnthropicSdk,
    ];

    /// The tools whose own config files `fluxgate setup` writes.
    pub const WRITABLE: [ClientKind; 4] = [
        ClientKind::ClaudeCode,
        ClientKind::Codex,
        ClientKind::GeminiCli,
        ClientKind::Opencode,
    ];

    pub fn parse(s: &str) -> Option<ClientKind> {
        Self::ALL.into_iter().find(|k| k.id() == s)
    }

    /// The id in the API (`claude-code`, `codex`, `openai-sdk`, `anthropic-sdk`).
    pub fn id(self) -> &'static str {
        match self {
            ClientKind::ClaudeCode => "claude-code",
            ClientKind::Codex => "codex",
            ClientKind::GeminiCli => "gemini-cli",
            ClientKind::Opencode => "opencode",
            ClientKind::OpenaiSdk => "openai-sdk",
            ClientKind::AnthropicSdk => "anthropic-sdk",
        }
    }

    /// What a user must know after the tool's files are written, if anything.
    pub fn note(self) -> Option<&'static str> {
        match self {
            ClientKind::GeminiCli => Some(
                "Gemini CLI reads ~/.gemini/.env only in folders you trust (its folder trust); in \
                 other folders it finds no key and stops, so trust your project folders when it \
                 asks, or export GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY in your shell.",
            ),
            ClientKind::Opencode => Some(
                "In opencode, pick a model under the Fluxgate provider (`fluxgate/ROUTE`, one per \
                 route in your Fluxgate config).",
            ),
            _ => None,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ClientKind::ClaudeCode => "Claude Code",
            ClientKind::Codex => "Codex CLI",
            ClientKind::GeminiCli => "Gemini CLI",
            ClientKind::Opencode => "opencode",
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
            "# Claude Code: run `fluxgate setup claude-code`, or add to your shell profile\n\
             export ANTHROPIC_BASE_URL={base}\n\
             export ANTHROPIC_AUTH_TOKEN={token}\n"
        ),
        ClientKind::Codex => format!(
            "# Codex CLI: add to ~/.codex/config.toml (or run `fluxgate setup codex`)\n\
             model_provider = \"fluxgate\"\n\
             \n\
             [model_providers.fluxgate]\n\
             name = \"Fluxgate\"\n\
             base_url = \"{base}/v1\"\n\
             wire_api = \"responses\"\n\
             experimental_bearer_token = \"{token}\"\n"
        ),
        ClientKind::GeminiCli => format!(
            "# Gemini CLI: add to ~/.gemini/.env (or run `fluxgate setup gemini-cli`)\n\
             GOOGLE_GEMINI_BASE_URL={base}\n\
             GEMINI_API_KEY={token}\n\
             # and in ~/.gemini/settings.json choose the API key: \"security\": {{\"auth\": {{\"selectedType\": \"gemini-api-key\"}}}}\n"
        ),
        ClientKind::Opencode => format!(
            "// opencode: add to ~/.config/opencode/opencode.json (or run `fluxgate setup opencode`)\n\
             \"provider\": {{\n  \"fluxgate\": {{\n    \"npm\": \"@ai-sdk/openai-compatible\",\n    \"name\": \"Fluxgate\",\n    \
             \"options\": {{ \"baseURL\": \"{base}/v1\", \"apiKey\": \"{token}\" }},\n    \"models\": {{ \"ROUTE\": {{}} }}\n  }}\n}}\n"
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
        assert!(snippet(ClientKind::ClaudeCode, b, "fg-1").contains(
            "ANTHROPIC_BASE_URL=http://127.0.0.1:8414\nexport ANTHROPIC_AUTH_TOKEN=fg-1\n"
        ));
        assert!(snippet(ClientKind::GeminiCli, b, "fg-1")
            .contains("GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8414\nGEMINI_API_KEY=fg-1\n"));
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
