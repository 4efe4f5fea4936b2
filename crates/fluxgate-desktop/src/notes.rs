//! Which router events become desktop notifications: one per state change that matters,
//! deduplicated per key and per route, and rate-limited overall so that a storm of failures
//! gives a handful of notifications and one summary, never one per request.
//!
//! Notifications name the provider and key id (and route); they never carry key material
//! (events hold none).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fluxgate_core::events::Event;
use fluxgate_core::health::{ErrorClass, KeyStatus};
use fluxgate_core::i18n::Lang;
use fluxgate_core::{t, tn};

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
    /// Critical notes (a dead key, no key for a route) stay until dismissed where the desktop
    /// supports it.
    pub critical: bool,
}

/// What the user was last told about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    Usable,
    Cooling,
    Dead,
}

/// The policy. Feed it every event with the time it was seen; it answers what to show.
pub struct NotePolicy {
    told: HashMap<String, Told>,
    routes: HashMap<String, Instant>,
    /// When each pool (provider) last had a key note shown.
    pools: HashMap<String, Instant>,
    window_start: Option<Instant>,
    sent_in_window: u32,
    suppressed: u32,
    /// At most this many notifications per `window`; the rest are counted and summarised.
    pub max_per_window: u32,
    pub window: Duration,
    /// A route's "no available key" is repeated at most this often.
    pub route_repeat: Duration,
    /// At most one key note per pool (provider) this often; the rest go into the summary.
    pub pool_repeat: Duration,
    /// The language notes are written in.
    pub lang: Lang,
}

impl Default for NotePolicy {
    fn default() -> Self {
        Self {
            told: HashMap::new(),
            routes: HashMap::new(),
            pools: HashMap::new(),
            window_start: None,
            sent_in_window: 0,
            suppressed: 0,
            max_per_window: 4,
            window: Duration::from_secs(60),
            route_repeat: Duration::from_secs(600),
            pool_repeat: Duration::from_secs(60),
            lang: Lang::En,
        }
    }
}

fn reason_text(reason: Option<ErrorClass>, lang: Lang) -> String {
    match reason {
        Some(ErrorClass::AuthFailed) => t!(lang, "notes.reason.auth_failed"),
        Some(ErrorClass::QuotaExhausted) => t!(lang, "notes.reason.quota_exhausted"),
        Some(ErrorClass::RateLimited) => t!(lang, "notes.reason.rate_limited"),
        Some(ErrorClass::UpstreamUnavailable) => t!(lang, "notes.reason.upstream_unavailable"),
        Some(ErrorClass::RequestInvalid) => t!(lang, "notes.reason.request_invalid"),
        None => t!(lang, "notes.reason.failures"),
    }
}

fn in_secs(until_ms: Option<i64>, now_ms: i64, lang: Lang) -> String {
    match until_ms {
        Some(u) if u > now_ms => {
            let s = ((u - now_ms) as f64 / 1000.0).ceil() as i64;
            if s >= 3600 {
                t!(lang, "notes.retry_h", h = s / 3600, min = (s % 3600) / 60)
            } else if s >= 60 {
                t!(lang, "notes.retry_min", min = s / 60, s = s % 60)
            } else {
                t!(lang, "notes.retry_s", s = s)
            }
        }
        _ => String::new(),
    }
}

impl NotePolicy {
    /// The note for `event`, if the user should hear about it now. `now_ms` is the wall
    /// clock (Unix milliseconds), for countdowns in the text.
    pub fn on_event(&mut self, event: &Event, now: Instant, now_ms: i64) -> Option<Note> {
        let note = self.candidate(event, now, now_ms)?;
        self.admit(note, now)
    }

    /// A summary of what the rate limit held back, once its window has passed; call it on a
    /// timer (every few seconds).
    pub fn flush(&mut self, now: Instant) -> Option<Note> {
        if self.suppressed == 0 {
            return None;
        }
        let start = self.window_start?;
        if now.duration_since(start) < self.window {
            return None;
        }
        let n = std::mem::take(&mut self.suppressed);
        self.window_start = Some(now);
        self.sent_in_window = 1;
        Some(Note {
            summary: tn!(self.lang, "notes.more_changes", n),
            body: t!(self.lang, "notes.more_changes_body"),
            critical: false,
        })
    }

    fn admit(&mut self, note: Note, now: Instant) -> Option<Note> {
        match self.window_start {
            Some(s) if now.duration_since(s) < self.window => {}
            _ => {
                self.window_start = Some(now);
                self.sent_in_window = 0;
            }
        }
        if self.sent_in_window >= self.max_per_window {
            self.suppressed += 1;
            return None;
        }
        self.sent_in_window += 1;
        Some(note)
    }

    fn candidate(&mut self, event: &Event, now: Instant, now_ms: i64) -> Option<Note> {
        let lang = self.lang;
        match event {
            Event::KeyStateChanged {
                provider,
                key_id,
                to,
                reason,
                until_ms,
                ..
            } => {
                let account = format!("{provider}/{key_id}");
                let told = match to {
                    KeyStatus::Healthy => Told::Usable,
                    KeyStatus::Cooling => Told::Cooling,
                    KeyStatus::Dead => Told::Dead,
                    // A retest in progress changes nothing the user needs to know; a key the
                    // user disabled was the user's own doing.
                    KeyStatus::Probing => return None,
                    KeyStatus::Disabled => {
                        self.told.remove(&account);
                        return None;
                    }
                };
                let before = self.told.insert(account.clone(), told);
                if before == Some(told) {
                    return None;
                }
                if told == Told::Usable && !matches!(before, Some(Told::Cooling) | Some(Told::Dead))
                {
                    return None;
                }
                if let Some(last) = self.pools.get(provider) {
                    if now.duration_since(*last) < self.pool_repeat {
                        self.suppressed += 1;
                        self.window_start.get_or_insert(now);
                        return None;
                    }
                }
                self.pools.insert(provider.clone(), now);
                match told {
                    // "Back" only for a key the user was told had left.
                    Told::Usable => match before {
                        Some(Told::Cooling) | Some(Told::Dead) => Some(Note {
                            summary: t!(lang, "notes.back", account = account),
                            body: t!(lang, "notes.back_body", key = key_id, provider = provider),
                            critical: false,
                        }),
                        _ => None,
                    },
                    Told::Cooling => Some(Note {
                        summary: t!(lang, "notes.cooling", account = account),
                        body: t!(
                            lang,
                            "notes.cooling_body",
                            key = key_id,
                            provider = provider,
                            reason = reason_text(*reason, lang),
                            retry = in_secs(*until_ms, now_ms, lang)
                        ),
                        critical: false,
                    }),
                    Told::Dead => Some(Note {
                        summary: t!(lang, "notes.dead", account = account),
                        body: t!(
                            lang,
                            "notes.dead_body",
                            key = key_id,
                            provider = provider,
                            reason = reason_text(*reason, lang)
                        ),
                        critical: true,
                    }),
                }
            }
            Event::RouteUnavailable {
                route,
                retry_after_secs,
            } => {
                if let Some(last) = self.routes.get(route) {
                    if now.duration_since(*last) < self.route_repeat {
                        return None;
                    }
                }
                self.routes.insert(route.clone(), now);
                Some(Note {
                    summary: t!(lang, "notes.no_key", route = route),
                    body: t!(
                        lang,
                        "notes.no_key_body",
                        route = route,
                        secs = retry_after_secs
                    ),
                    critical: true,
                })
            }
            Event::BudgetThreshold {
                scope,
                period,
                unit,
                percent,
                spent,
                limit,
            } => {
                let amount = |v: f64| {
                    if *unit == "usd" {
                        format!("${v:.2}")
                    } else {
                        t!(lang, "notes.tokens", n = format!("{v:.0}"))
                    }
                };
                Some(Note {
                    summary: t!(lang, "notes.budget", percent = percent, scope = scope),
                    body: {
                        let period = match *period {
                            "daily" => t!(lang, "notes.period.day"),
                            "monthly" => t!(lang, "notes.period.month"),
                            other => other.to_string(),
                        };
                        let mut body = t!(
                            lang,
                            "notes.budget_body",
                            spent = amount(*spent),
                            period = period,
                            limit = amount(*limit)
                        );
                        if *percent >= 100 {
                            body.push(' ');
                            body.push_str(&t!(lang, "notes.budget_over"));
                        }
                        body
                    },
                    critical: *percent >= 100,
                })
            }
            Event::ProxyStateChanged { proxy, ok, error } => {
                // Keyed like a pool: a proxy that flaps is told about once per pool interval.
                let key = format!("proxy {proxy}");
                if let Some(last) = self.pools.get(&key) {
                    if now.duration_since(*last) < self.pool_repeat {
                        self.suppressed += 1;
                        return None;
                    }
                }
                self.pools.insert(key, now);
                Some(if *ok {
                    Note {
                        summary: t!(lang, "notes.proxy_ok", proxy = proxy),
                        body: t!(lang, "notes.proxy_ok_body", proxy = proxy),
                        critical: false,
                    }
                } else {
                    Note {
                        summary: t!(lang, "notes.proxy_failing", proxy = proxy),
                        body: t!(
                            lang,
                            "notes.proxy_failing_body",
                            error = error
                                .clone()
                                .unwrap_or_else(|| t!(lang, "notes.proxy_no_tunnel"))
                        ),
                        critical: false,
                    }
                })
            }
            Event::BalanceLow {
                provider,
                key_id,
                remaining,
                currency,
                threshold,
                out_of_rotation,
            } => {
                let cur = currency.as_deref().unwrap_or("");
                let left = match (remaining, threshold) {
                    (Some(r), Some(th)) => t!(
                        lang,
                        "notes.low_left_below",
                        left = format!("{r:.2}"),
                        threshold = format!("{th:.2}"),
                        cur = cur
                    ),
                    (Some(r), None) => {
                        t!(lang, "notes.low_left", left = format!("{r:.2}"), cur = cur)
                    }
                    _ => t!(lang, "notes.low_cannot_call"),
                };
                Some(Note {
                    summary: t!(lang, "notes.low", account = format!("{provider}/{key_id}")),
                    body: if *out_of_rotation {
                        t!(lang, "notes.low_out", left = left)
                    } else {
                        t!(lang, "notes.low_warn", left = left)
                    },
                    critical: *out_of_rotation,
                })
            }
            Event::ConfigInvalid { path, error } => Some(Note {
                summary: t!(lang, "notes.config_invalid"),
                body: t!(
                    lang,
                    "notes.config_invalid_body",
                    path = path,
                    error = error
                ),
                critical: false,
            }),
            Event::ConfigReloaded { .. } | Event::RoutingPaused { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, from: KeyStatus, to: KeyStatus, reason: Option<ErrorClass>) -> Event {
        Event::KeyStateChanged {
            provider: "openai".into(),
            key_id: key.into(),
            from,
            to,
            reason,
            until_ms: Some(61_000),
        }
    }

    #[test]
    fn a_low_balance_is_told_with_what_is_left_and_what_happens() {
        let mut p = NotePolicy::default();
        let low = |out| Event::BalanceLow {
            provider: "deepseek".into(),
            key_id: "main".into(),
            remaining: Some(0.42),
            currency: Some("CNY".into()),
            threshold: Some(1.0),
            out_of_rotation: out,
        };
        let n = p.on_event(&low(true), Instant::now(), 0).expect("a note");
        assert_eq!(n.summary, "deepseek/main is low on credit");
        assert_eq!(
            n.body,
            "0.42 CNY left, below 1.00 CNY. It is out of rotation until it is topped up."
        );
        assert!(n.critical);
        let n = p.on_event(&low(false), Instant::now(), 0).expect("a note");
        assert!(n.body.ends_with("Top it up before it starts failing.") && !n.critical);
    }

    #[test]
    fn a_failing_proxy_is_told_once_per_interval_and_its_return_after() {
        let mut p = NotePolicy::default();
        let t = Instant::now();
        let proxy = |ok: bool| Event::ProxyStateChanged {
            proxy: "corp".into(),
            ok,
            error: (!ok).then(|| "proxy corp: refused the user name and password".into()),
        };
        let n = p.on_event(&proxy(false), t, 0).expect("a note");
        assert_eq!(n.summary, "Proxy corp is failing");
        assert!(n.body.contains("refused the user name") && n.body.contains("not blamed"));
        // Flapping within the interval is not told again.
        assert_eq!(
            p.on_event(&proxy(true), t + Duration::from_secs(1), 0),
            None
        );
        assert_eq!(
            p.on_event(&proxy(false), t + Duration::from_secs(2), 0),
            None
        );
        let later = t + Duration::from_secs(3600);
        assert_eq!(
            p.on_event(&proxy(true), later, 0).map(|n| n.summary),
            Some("Proxy corp works again".to_string())
        );
    }

    #[test]
    fn notes_speak_the_policy_language() {
        let mut p = NotePolicy {
            lang: Lang::ZhCn,
            ..NotePolicy::default()
        };
        let cool = change(
            "a",
            KeyStatus::Healthy,
            KeyStatus::Cooling,
            Some(ErrorClass::RateLimited),
        );
        let n = p.on_event(&cool, Instant::now(), 1_000).expect("a note");
        assert_eq!(n.summary, "openai/a 正在冷却");
        assert!(
            n.body.contains("被限流") && n.body.contains("其他密钥"),
            "{}",
            n.body
        );
    }

    #[test]
    fn a_cooldown_and_its_end_give_one_note_each() {
        let mut p = NotePolicy::default();
        let t = Instant::now();
        let cool = change(
            "a",
            KeyStatus::Healthy,
            KeyStatus::Cooling,
            Some(ErrorClass::RateLimited),
        );
        let n = p.on_event(&cool, t, 1_000).expect("a note");
        assert_eq!(n.summary, "openai/a is cooling down");
        assert!(
            n.body.contains("rate limited; retried in 1 min 0 s"),
            "{}",
            n.body
        );
        // The same state again (a second 429 extends the cooldown): nothing new to say.
        assert_eq!(p.on_event(&cool, t, 2_000), None);
        // A retest starting is not news.
        let probe = change("a", KeyStatus::Cooling, KeyStatus::Probing, None);
        assert_eq!(p.on_event(&probe, t, 3_000), None);
        let back = change("a", KeyStatus::Probing, KeyStatus::Healthy, None);
        let later = t + Duration::from_secs(61);
        assert_eq!(
            p.on_event(&back, later, 4_000).map(|n| n.summary),
            Some("openai/a is back".to_string())
        );
        assert_eq!(p.on_event(&back, later, 5_000), None);
    }

    #[test]
    fn one_note_per_pool_per_minute() {
        let mut p = NotePolicy::default();
        let t = Instant::now();
        let cool = |k: &str| {
            change(
                k,
                KeyStatus::Healthy,
                KeyStatus::Cooling,
                Some(ErrorClass::RateLimited),
            )
        };
        assert!(p.on_event(&cool("a"), t, 0).is_some());
        assert!(p
            .on_event(&cool("b"), t + Duration::from_secs(10), 0)
            .is_none());
        let back = change("a", KeyStatus::Cooling, KeyStatus::Healthy, None);
        assert!(p.on_event(&back, t + Duration::from_secs(20), 0).is_none());
        assert_eq!(
            p.flush(t + Duration::from_secs(61)).map(|n| n.summary),
            Some("Fluxgate: 2 more key changes".to_string())
        );
        assert!(p
            .on_event(&cool("c"), t + Duration::from_secs(70), 0)
            .is_some());
    }

    #[test]
    fn a_healthy_key_that_was_never_reported_gets_no_back_note() {
        let mut p = NotePolicy::default();
        let e = change("a", KeyStatus::Disabled, KeyStatus::Healthy, None);
        assert_eq!(p.on_event(&e, Instant::now(), 0), None);
    }

    #[test]
    fn a_dead_key_is_critical_and_says_what_to_do() {
        let mut p = NotePolicy::default();
        let e = change(
            "a",
            KeyStatus::Healthy,
            KeyStatus::Dead,
            Some(ErrorClass::AuthFailed),
        );
        let n = p.on_event(&e, Instant::now(), 0).expect("note");
        assert!(n.critical);
        assert!(n.body.contains("authentication failed"));
        assert!(n.body.contains("Replace it"));
    }

    #[test]
    fn a_storm_is_rate_limited_and_summarised_once() {
        let mut p = NotePolicy::default();
        let t = Instant::now();
        let mut shown = 0;
        // 20 keys over 10 pools: one note per pool per minute, four a minute in all.
        for i in 0..20 {
            let e = Event::KeyStateChanged {
                provider: format!("p{}", i % 10),
                key_id: format!("k{i}"),
                from: KeyStatus::Healthy,
                to: KeyStatus::Cooling,
                reason: Some(ErrorClass::RateLimited),
                until_ms: None,
            };
            if p.on_event(&e, t, 0).is_some() {
                shown += 1;
            }
        }
        assert_eq!(shown, 4);
        assert_eq!(
            p.flush(t + Duration::from_secs(10)),
            None,
            "not before the window ends"
        );
        let s = p.flush(t + Duration::from_secs(61)).expect("summary");
        assert_eq!(s.summary, "Fluxgate: 16 more key changes");
        assert_eq!(p.flush(t + Duration::from_secs(200)), None, "only once");
    }

    #[test]
    fn a_route_without_keys_is_repeated_at_most_every_ten_minutes() {
        let mut p = NotePolicy::default();
        let t = Instant::now();
        let e = Event::RouteUnavailable {
            route: "coding".into(),
            retry_after_secs: 30,
        };
        assert!(p.on_event(&e, t, 0).is_some());
        assert!(p.on_event(&e, t + Duration::from_secs(60), 0).is_none());
        assert!(p.on_event(&e, t + Duration::from_secs(601), 0).is_some());
    }

    #[test]
    fn budget_notes_name_the_scope_and_amounts() {
        let mut p = NotePolicy::default();
        let e = Event::BudgetThreshold {
            scope: "provider deepseek".into(),
            period: "daily",
            unit: "usd",
            percent: 80,
            spent: 0.84,
            limit: 1.0,
        };
        let n = p.on_event(&e, Instant::now(), 0).expect("note");
        assert_eq!(n.summary, "Budget 80% used: provider deepseek");
        assert_eq!(n.body, "$0.84 of the daily $1.00 spent.");
    }
}
