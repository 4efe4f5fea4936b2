//! The model catalogue: what each model can do, how much it takes and returns, and what it
//! costs. Routing reads it for capability routes, context-window checks, `least-cost` and
//! budgets; `GET /v1/models` reports it.
//!
//! A built-in table covers the common models of each provider kind, with the vendors'
//! published list prices (USD per million tokens, standard tier, as of late 2025); `[models]`
//! in the config overrides any field or adds a model. A model id matches a catalogue entry
//! exactly, or with a version suffix (`claude-sonnet-4-5-20250929`, `gpt-4o-2024-08-06`:
//! the longest entry followed by `-` wins), or after a vendor prefix (`openai/gpt-4o`,
//! `models/gemini-2.5-pro`).

use std::collections::HashMap;

use serde::Serialize;

/// One capability a model has or a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Chat,
    Tools,
    Vision,
    Reasoning,
    Embeddings,
    /// A context window of at least [`LONG_CONTEXT`] tokens.
    LongContext,
}

/// The context window from which a model counts as `long_context`.
pub const LONG_CONTEXT: u64 = 200_000;

impl Capability {
    pub const ALL: [Capability; 6] = [
        Capability::Chat,
        Capability::Tools,
        Capability::Vision,
        Capability::Reasoning,
        Capability::Embeddings,
        Capability::LongContext,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Chat => "chat",
            Capability::Tools => "tools",
            Capability::Vision => "vision",
            Capability::Reasoning => "reasoning",
            Capability::Embeddings => "embeddings",
            Capability::LongContext => "long_context",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Caps(u8);

impl Caps {
    pub const NONE: Caps = Caps(0);

    pub fn of(list: &[Capability]) -> Caps {
        Caps(list.iter().fold(0, |acc, c| acc | c.bit()))
    }

    pub fn has(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn with(self, c: Capability) -> Caps {
        Caps(self.0 | c.bit())
    }

    /// Whether every capability of `needed` is here.
    pub fn covers(self, needed: Caps) -> bool {
        self.0 & needed.0 == needed.0
    }

    /// The capabilities of `needed` that are missing here.
    pub fn missing(self, needed: Caps) -> Vec<Capability> {
        Capability::ALL
            .into_iter()
            .filter(|c| needed.has(*c) && !self.has(*c))
            .collect()
    }

    pub fn intersect(self, other: Caps) -> Caps {
        Caps(self.0 & other.0)
    }

    pub fn list(self) -> Vec<Capability> {
        Capability::ALL
            .into_iter()
            .filter(|c| self.has(*c))
            .collect()
    }
}

impl Serialize for Caps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.list().iter().map(|c| c.as_str()))
    }
}

/// List prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    /// Input read from the provider's prompt cache; `input` when the vendor has no discount.
    pub cached_input: f64,
}

impl Prices {
    /// The cost in USD of `input` (of which `cached` were cache reads) and `output` tokens.
    pub fn cost(&self, input: u64, cached: u64, output: u64) -> f64 {
        let cached = cached.min(input);
        ((input - cached) as f64 * self.input
            + cached as f64 * self.cached_input
            + output as f64 * self.output)
            / 1_000_000.0
    }
}

/// What the catalogue knows about one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The catalogue entry that matched (`gpt-4o` for `gpt-4o-2024-08-06`).
    pub entry: String,
    pub capabilities: Caps,
    pub context_window: u64,
    /// The most output tokens one response may have (0 for embedding models).
    pub max_output: u64,
    /// `None`: price unknown (a model added in the config without prices).
    pub prices: Option<Prices>,
    /// `builtin` or `config`.
    pub source: &'static str,
}

/// A config override (`[models."id"]`): every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelOverride {
    pub capabilities: Option<Caps>,
    pub context_window: Option<u64>,
    pub max_output: Option<u64>,
    pub input_price: Option<f64>,
    pub output_price: Option<f64>,
    pub cached_input_price: Option<f64>,
}

/// The built-in table plus the config's overrides. Overrides are keyed by a model id (any
/// provider) or by `provider/model` (that provider only, applied after the model-wide one).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    overrides: HashMap<String, ModelOverride>,
}

use Capability::{Chat, Embeddings, Reasoning, Tools, Vision};

struct Builtin {
    id: &'static str,
    caps: &'static [Capability],
    context: u64,
    output: u64,
    /// input, output, cached input (USD per million tokens).
    price: (f64, f64, f64),
}

const fn m(
    id: &'static str,
    caps: &'static [Capability],
    context: u64,
    output: u64,
    price: (f64, f64, f64),
) -> Builtin {
    Builtin {
        id,
        caps,
        context,
        output,
        price,
    }
}

const CTVR: &[Capability] = &[Chat, Tools, Vision, Reasoning];
const CTV: &[Capability] = &[Chat, Tools, Vision];
const CTR: &[Capability] = &[Chat, Tools, Reasoning];
const CT: &[Capability] = &[Chat, Tools];
const EMB: &[Capability] = &[Embeddings];

/// Published list prices and limits, standard tier. Long-context surcharges (Gemini Pro and
/// Claude above 200K input) are not modelled: the lower price is used.
const BUILTIN: &[Builtin] = &[
    // OpenAI
    m("gpt-5", CTVR, 400_000, 128_000, (1.25, 10.0, 0.125)),
    m("gpt-5-mini", CTVR, 400_000, 128_000, (0.25, 2.0, 0.025)),
    m("gpt-5-nano", CTVR, 400_000, 128_000, (0.05, 0.40, 0.005)),
    m("gpt-5-codex", CTVR, 400_000, 128_000, (1.25, 10.0, 0.125)),
    m("gpt-4.1", CTV, 1_047_576, 32_768, (2.0, 8.0, 0.50)),
    m("gpt-4.1-mini", CTV, 1_047_576, 32_768, (0.40, 1.60, 0.10)),
    m("gpt-4.1-nano", CTV, 1_047_576, 32_768, (0.10, 0.40, 0.025)),
    m("gpt-4o", CTV, 128_000, 16_384, (2.50, 10.0, 1.25)),
    m("gpt-4o-mini", CTV, 128_000, 16_384, (0.15, 0.60, 0.075)),
    m("o3", CTVR, 200_000, 100_000, (2.0, 8.0, 0.50)),
    m("o3-mini", CTR, 200_000, 100_000, (1.10, 4.40, 0.55)),
    m("o4-mini", CTVR, 200_000, 100_000, (1.10, 4.40, 0.275)),
    m("text-embedding-3-small", EMB, 8_191, 0, (0.02, 0.0, 0.02)),
    m("text-embedding-3-large", EMB, 8_191, 0, (0.13, 0.0, 0.13)),
    // Anthropic (cached input: cache reads)
    m("claude-opus-4-5", CTVR, 200_000, 64_000, (5.0, 25.0, 0.50)),
    m("claude-opus-4-1", CTVR, 200_000, 32_000, (15.0, 75.0, 1.50)),
    m("claude-opus-4", CTVR, 200_000, 32_000, (15.0, 75.0, 1.50)),
    m(
        "claude-sonnet-4-5",
        CTVR,
        200_000,
        64_000,
        (3.0, 15.0, 0.30),
    ),
    m("claude-sonnet-4", CTVR, 200_000, 64_000, (3.0, 15.0, 0.30)),
    m(
        "claude-3-7-sonnet",
        CTVR,
        200_000,
        64_000,
        (3.0, 15.0, 0.30),
    ),
    m("claude-haiku-4-5", CTVR, 200_000, 64_000, (1.0, 5.0, 0.10)),
    m("claude-3-5-haiku", CTV, 200_000, 8_192, (0.80, 4.0, 0.08)),
    // Gemini
    m(
        "gemini-2.5-pro",
        CTVR,
        1_048_576,
        65_536,
        (1.25, 10.0, 0.31),
    ),
    m(
        "gemini-2.5-flash",
        CTVR,
        1_048_576,
        65_536,
        (0.30, 2.50, 0.075),
    ),
    m(
        "gemini-2.5-flash-lite",
        CTVR,
        1_048_576,
        65_536,
        (0.10, 0.40, 0.025),
    ),
    m(
        "gemini-2.0-flash",
        CTV,
        1_048_576,
        8_192,
        (0.10, 0.40, 0.025),
    ),
    m("gemini-embedding-001", EMB, 2_048, 0, (0.15, 0.0, 0.15)),
    // DeepSeek (V3.2 prices; the reasoner takes tools since V3.1)
    m("deepseek-chat", CT, 128_000, 8_192, (0.28, 0.42, 0.028)),
    m(
        "deepseek-reasoner",
        CTR,
        128_000,
        64_000,
        (0.28, 0.42, 0.028),
    ),
    // Mistral
    m("mistral-large-latest", CT, 128_000, 8_192, (2.0, 6.0, 2.0)),
    m(
        "mistral-medium-latest",
        CTV,
        128_000,
        8_192,
        (0.40, 2.0, 0.40),
    ),
    m(
        "mistral-small-latest",
        CTV,
        128_000,
        8_192,
        (0.10, 0.30, 0.10),
    ),
    m("codestral-latest", CT, 256_000, 8_192, (0.30, 0.90, 0.30)),
];

fn builtin_info(b: &Builtin) -> ModelInfo {
    let mut caps = Caps::of(b.caps);
    if b.context >= LONG_CONTEXT {
        caps = caps.with(Capability::LongContext);
    }
    ModelInfo {
        entry: b.id.to_string(),
        capabilities: caps,
        context_window: b.context,
        max_output: b.output,
        prices: Some(Prices {
            input: b.price.0,
            output: b.price.1,
            cached_input: b.price.2,
        }),
        source: "builtin",
    }
}

/// The built-in entry for a model id: exact, else the longest entry that the id extends with
/// `-` (a dated or preview version), after dropping a vendor prefix (`openai/`, `models/`).
fn find_builtin(model: &str) -> Option<&'static Builtin> {
    let bare = model.rsplit('/').next().unwrap_or(model);
    BUILTIN
        .iter()
        .filter(|b| {
            bare == b.id
                || bare
                    .strip_prefix(b.id)
                    .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('@'))
        })
        .max_by_key(|b| b.id.len())
}

impl ModelOverride {
    fn apply(&self, base: Option<ModelInfo>, entry: &str) -> ModelInfo {
        let mut info = base.unwrap_or_else(|| ModelInfo {
            entry: entry.to_string(),
            capabilities: Caps::of(&[Chat]),
            context_window: 0,
            max_output: 0,
            prices: None,
            source: "config",
        });
        info.source = "config";
        if let Some(c) = self.capabilities {
            info.capabilities = c;
        }
        if let Some(n) = self.context_window {
            info.context_window = n;
            if self.capabilities.is_none() && n >= LONG_CONTEXT {
                info.capabilities = info.capabilities.with(Capability::LongContext);
            }
        }
        if let Some(n) = self.max_output {
            info.max_output = n;
        }
        if self.input_price.is_some() || self.output_price.is_some() {
            let old = info.prices.unwrap_or_default();
            let input = self.input_price.unwrap_or(old.input);
            info.prices = Some(Prices {
                input,
                output: self.output_price.unwrap_or(old.output),
                // Without its own figure, the cached price keeps the vendor's discount ratio.
                cached_input: self.cached_input_price.unwrap_or(if old.input > 0.0 {
                    input * old.cached_input / old.input
                } else {
                    input
                }),
            });
        } else if let (Some(c), Some(p)) = (self.cached_input_price, info.prices.as_mut()) {
            p.cached_input = c;
        }
        info
    }
}

impl Catalogue {
    pub fn new(overrides: HashMap<String, ModelOverride>) -> Self {
        Catalogue { overrides }
    }

    /// What is known about `model` served by `provider`, or `None` for an unknown model.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<ModelInfo> {
        let mut info = find_builtin(model).map(builtin_info);
        if let Some(o) = self.overrides.get(model) {
            info = Some(o.apply(info, model));
        }
        if !self.overrides.is_empty() {
            if let Some(o) = self.overrides.get(&format!("{provider}/{model}")) {
                info = Some(o.apply(info, model));
            }
        }
        info
    }

    /// Every built-in entry (for `fluxgate check` and the docs).
    pub fn builtin_ids() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|b| b.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_vendor_prefixes_find_their_entry() {
        let c = Catalogue::default();
        let get = |m: &str| c.lookup("p", m).map(|i| i.entry);
        assert_eq!(get("gpt-4o").as_deref(), Some("gpt-4o"));
        assert_eq!(get("gpt-4o-2024-08-06").as_deref(), Some("gpt-4o"));
        assert_eq!(
            get("gpt-4o-mini-2024-07-18").as_deref(),
            Some("gpt-4o-mini")
        );
        assert_eq!(
            get("claude-sonnet-4-5-20250929").as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(get("openai/gpt-4.1").as_deref(), Some("gpt-4.1"));
        assert_eq!(
            get("models/gemini-2.5-flash").as_deref(),
            Some("gemini-2.5-flash")
        );
        assert_eq!(get("o3-mini").as_deref(), Some("o3-mini"));
        // A longer name that is not a version of an entry does not match it.
        assert_eq!(get("gpt-4ox"), None);
        assert_eq!(get("my-local-model"), None);
    }

    #[test]
    fn capabilities_and_long_context_follow_the_table() {
        let c = Catalogue::default();
        let g = c.lookup("p", "gemini-2.5-pro").expect("a value");
        assert!(g.capabilities.has(Capability::Vision));
        assert!(g.capabilities.has(Capability::LongContext));
        let d = c.lookup("p", "deepseek-chat").expect("a value");
        assert!(!d.capabilities.has(Capability::Vision));
        assert!(!d.capabilities.has(Capability::LongContext));
        assert!(c
            .lookup("p", "text-embedding-3-small")
            .expect("a value")
            .capabilities
            .has(Capability::Embeddings));
    }

    #[test]
    fn overrides_merge_model_wide_then_per_provider() {
        let mut o = HashMap::new();
        o.insert(
            "deepseek-chat".to_string(),
            ModelOverride {
                input_price: Some(0.5),
                ..Default::default()
            },
        );
        o.insert(
            "local/deepseek-chat".to_string(),
            ModelOverride {
                input_price: Some(0.0),
                output_price: Some(0.0),
                ..Default::default()
            },
        );
        o.insert(
            "my-model".to_string(),
            ModelOverride {
                context_window: Some(300_000),
                ..Default::default()
            },
        );
        let c = Catalogue::new(o);
        let p = c.lookup("cloud", "deepseek-chat").expect("a value");
        assert_eq!(p.prices.expect("a value").input, 0.5);
        assert_eq!(p.prices.expect("a value").output, 0.42);
        assert_eq!(p.context_window, 128_000);
        assert_eq!(p.source, "config");
        let l = c.lookup("local", "deepseek-chat").expect("a value");
        assert_eq!(l.prices.expect("a value").cost(1000, 0, 1000), 0.0);
        let mine = c.lookup("x", "my-model").expect("a value");
        assert!(mine.capabilities.has(Capability::Chat));
        assert!(mine.capabilities.has(Capability::LongContext));
        assert_eq!(mine.prices, None);
    }

    #[test]
    fn cost_charges_cached_input_at_its_own_price() {
        let p = Prices {
            input: 3.0,
            output: 15.0,
            cached_input: 0.30,
        };
        let full = p.cost(1_000_000, 0, 0);
        let cached = p.cost(1_000_000, 1_000_000, 0);
        assert!((full - 3.0).abs() < 1e-9);
        assert!((cached - 0.30).abs() < 1e-9);
        assert!((p.cost(0, 0, 1_000_000) - 15.0).abs() < 1e-9);
    }
}
