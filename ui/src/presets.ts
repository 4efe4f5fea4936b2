// Provider presets for the "Add a provider" form: the kind, base URL and a few models of the
// common vendors and local servers (the models are ones the catalogue prices; a local
// server's are whatever it has loaded, so none are filled in).

import { Key, t } from "./i18n";

export interface Preset {
  id: string;
  title: string;
  kind: string;
  base_url: string;
  models: string[];
  /** What the user still has to do, when there is something (a catalogue key). */
  note?: Key;
  /** A server on this machine (its title says so). */
  local?: boolean;
}

/** The preset's name as the picker shows it. */
export function presetTitle(p: Preset): string {
  return p.local ? t("preset.this_machine", { name: p.title }) : p.title;
}

export const PRESETS: Preset[] = [
  {
    id: "openai",
    title: "OpenAI",
    kind: "openai",
    base_url: "",
    models: ["gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini"],
  },
  {
    id: "anthropic",
    title: "Anthropic",
    kind: "anthropic",
    base_url: "",
    models: ["claude-sonnet-4-5", "claude-haiku-4-5"],
  },
  {
    id: "gemini",
    title: "Google Gemini",
    kind: "gemini",
    base_url: "",
    models: ["gemini-2.5-pro", "gemini-2.5-flash"],
  },
  {
    id: "deepseek",
    title: "DeepSeek",
    kind: "openai-compatible",
    base_url: "https://api.deepseek.com/v1",
    models: ["deepseek-chat", "deepseek-reasoner"],
  },
  {
    id: "mistral",
    title: "Mistral",
    kind: "openai-compatible",
    base_url: "https://api.mistral.ai/v1",
    models: ["mistral-large-latest", "mistral-small-latest", "codestral-latest"],
  },
  {
    id: "openrouter",
    title: "OpenRouter",
    kind: "openai-compatible",
    base_url: "https://openrouter.ai/api/v1",
    models: [],
    note: "preset.note.openrouter",
  },
  {
    id: "groq",
    title: "Groq",
    kind: "openai-compatible",
    base_url: "https://api.groq.com/openai/v1",
    models: [],
    note: "preset.note.groq",
  },
  {
    id: "ollama",
    title: "Ollama",
    local: true,
    kind: "openai-compatible",
    base_url: "http://127.0.0.1:11434/v1",
    models: [],
    note: "preset.note.ollama",
  },
  {
    id: "lmstudio",
    title: "LM Studio",
    local: true,
    kind: "openai-compatible",
    base_url: "http://127.0.0.1:1234/v1",
    models: [],
    note: "preset.note.lmstudio",
  },
];
