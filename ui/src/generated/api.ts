// Generated from the Rust types by crates/fluxgate-core/src/typescript.rs; do not edit.
// Regenerate: FLUXGATE_WRITE_TS=1 cargo test -p fluxgate-core typescript

export type KeyStatus = "healthy" | "cooling" | "probing" | "dead" | "disabled";

export type ErrorClass = "auth_failed" | "quota_exhausted" | "rate_limited" | "upstream_unavailable" | "request_invalid";

export type ErrorCode = "unauthorized" | "forbidden" | "no_route" | "invalid_request" | "request_invalid" | "payload_too_large" | "request_timeout" | "all_keys_cooling" | "keychain_unavailable" | "upstream_unavailable" | "upstream_timeout" | "attempts_exhausted" | "stream_interrupted" | "budget_exceeded" | "budget_unavailable" | "shutting_down" | "routing_paused" | "not_found" | "internal_error" | "client_closed";

export type BalanceSource = "deepseek" | "openrouter" | "moonshot";

export type KeyBalance = { source: BalanceSource, 
/**
 * Credit left (`None`: not read yet, or a key without a limit).
 */
remaining: number | null, currency: string | null, limit: number | null, usage: number | null, 
/**
 * Unix milliseconds of the last successful reading.
 */
checked_ms: number | null, 
/**
 * Why the last check failed, when it did (the last good reading is kept).
 */
error: string | null, 
/**
 * The provider's `low_balance`, when set.
 */
threshold: number | null, 
/**
 * Below the threshold (or the vendor says the account cannot make calls).
 */
low: boolean, 
/**
 * Low, and the provider's `low_balance_action` takes such keys out of rotation.
 */
out_of_rotation: boolean, };

export type KeyHealth = { provider: string, key_id: string, status: KeyStatus, reason: ErrorClass | null, last_status: number | null, last_message: string | null, 
/**
 * Unix milliseconds when the key comes back or is retested.
 */
until_ms: number | null, retry_in_secs: number | null, in_flight: number, 
/**
 * Why the key's secret could not be read, when it could not.
 */
secret_error: string | null, 
/**
 * The outbound proxy its requests go through (`None`: direct).
 */
proxy: string | null, 
/**
 * What that proxy did wrong, while it is failing (the key itself is not blamed).
 */
proxy_error: string | null, 
/**
 * Its remaining credit, where the vendor tells it.
 */
balance: KeyBalance | null, };

export type ProxyHealth = { 
/**
 * Its label: the `[proxies]` name, or its address.
 */
proxy: string, 
/**
 * Whether its last use went through.
 */
ok: boolean, 
/**
 * What it did wrong last, while it fails.
 */
error: string | null, 
/**
 * Unix milliseconds since when it has been failing.
 */
failing_since_ms: number | null, 
/**
 * Failures in a row.
 */
failures: number, };

export type RequestRecord = { ts_ms: number, request_id: string, 
/**
 * The client token's name.
 */
client: string | null, endpoint: string, model: string | null, route: string | null, provider: string | null, key_id: string | null, attempts: number, 
/**
 * The status the client saw (200 for a stream that later broke; see `error_code`).
 */
status: number, 
/**
 * The class of the last upstream failure, when one failed.
 */
error_class: ErrorClass | null, 
/**
 * The error the client was told (or how its stream ended), when not a plain answer.
 */
error_code: ErrorCode | null, latency_ms: number, ttfb_ms: number | null, tokens_in: number | null, tokens_out: number | null, stream: boolean, 
/**
 * The model the upstream was asked for (the client's `model` may be a route name).
 */
upstream_model: string | null, 
/**
 * Input tokens read from the provider's prompt cache (part of `tokens_in`).
 */
tokens_cached: number | null, 
/**
 * The cost at the catalogue's prices, when the model's prices are known.
 */
cost_usd: number | null, };

export type Event = { "type": "key_state_changed", provider: string, key_id: string, from: KeyStatus, to: KeyStatus, reason: ErrorClass | null, 
/**
 * Unix milliseconds at which the key is expected back, when known.
 */
until_ms: number | null, } | { "type": "proxy_state_changed", proxy: string, ok: boolean, 
/**
 * What it did wrong, while it fails.
 */
error: string | null, } | { "type": "balance_low", provider: string, key_id: string, remaining: number | null, currency: string | null, threshold: number | null, 
/**
 * The provider's `low_balance_action` takes it out of rotation while low.
 */
out_of_rotation: boolean, } | { "type": "route_unavailable", route: string, retry_after_secs: number, } | { "type": "config_reloaded", path: string, } | { "type": "config_invalid", path: string, error: string, } | { "type": "routing_paused", paused: boolean, } | { "type": "budget_threshold", 
/**
 * `all traffic`, `provider openai`, `key openai/work`, `route coding`, `client ci`.
 */
scope: string, 
/**
 * `daily` or `monthly`.
 */
period: string, 
/**
 * `usd` or `tokens`.
 */
unit: string, percent: number, spent: number, limit: number, };

export type KeyTest = { key: string, ok: boolean, ms: number, class?: ErrorClass, 
/**
 * On a failure: the upstream's status, `null` when it gave none.
 */
status?: number | null, message?: string, };

/** The names of the events on `/admin/api/events` (besides `snapshot`). */
export type EventName = Event["type"];
