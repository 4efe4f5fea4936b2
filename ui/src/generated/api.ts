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

export type KeyHealth = { provider: string, key_id: string, status: KeyStatus, 
/**
 * Why it is out of rotation: none while it is usable or disabled (its last failure is
 * then history: `last_status`, `last_message`, `last_error_ms`).
 */
reason: ErrorClass | null, last_status: number | null, last_message: string | null, 
/**
 * When this Fluxgate last saw the key fail (Unix milliseconds; none since it started).
 */
last_error_ms: number | null, 
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

export type AttemptOutcome = "pending" | "served" | "failed" | "rejected" | "not_translatable" | "proxy_failed" | "broke";

export type AttemptRecord = { provider: string, key_id: string, 
/**
 * The model the upstream was asked for.
 */
model: string, 
/**
 * The outbound proxy it went through, when not direct.
 */
proxy?: string | null, 
/**
 * When it went out, in milliseconds after the request arrived.
 */
at_ms: number, 
/**
 * How long it took: until it failed, answered, or (a stream) ended.
 */
ms: number, 
/**
 * Until the answer, or a stream's first content; none when it failed first.
 */
first_byte_ms: number | null, outcome: AttemptOutcome, 
/**
 * The upstream's status, when it answered.
 */
status: number | null, error_class: ErrorClass | null, 
/**
 * What went wrong, scrubbed of the key and shortened ([`ERROR_TEXT_MAX`] bytes).
 */
error: string | null, };

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
cost_usd: number | null, 
/**
 * For an answer whose upstream reported no usage: the tokens estimated before sending,
 * which budgets count instead of nothing (`tokens_in`/`tokens_out` stay unknown).
 */
est_tokens: number | null, 
/**
 * The estimate's cost, when the model's prices are known.
 */
est_cost_usd: number | null, 
/**
 * Each attempt, in order (the last one is the record's `provider`/`key_id`).
 */
attempt_log: Array<AttemptRecord>, 
/**
 * The store's row number, on a record read back: the cursor of `after` (newer rows have
 * larger numbers).
 */
seq: number | null, };

export type Bucket = { 
/**
 * Where the bucket starts (Unix milliseconds).
 */
t_ms: number, ok: number, failed: number, tokens_in: number, tokens_out: number, cost_usd: number, };

export type Segment = { from_ms: number, 
/**
 * When it ended (`now` for one still going).
 */
to_ms: number, status: KeyStatus, reason: ErrorClass | null, };

export type KeyStrip = { provider: string, key_id: string, segments: Array<Segment>, };

export type KeptBodies = { request: string, request_bytes: number, 
/**
 * Whether `request` is only the start of it.
 */
request_cut: boolean, response: string, response_bytes: number, response_cut: boolean, 
/**
 * When they are deleted (Unix milliseconds).
 */
expires_ms: number, };

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
