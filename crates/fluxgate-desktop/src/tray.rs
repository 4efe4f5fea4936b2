//! The tray's look and menu, computed from key health. The shell only draws what this says.

use fluxgate_core::health::{KeyHealth, KeyStatus};
use fluxgate_core::i18n::Lang;
use fluxgate_core::t;

/// Which icon the tray shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayIcon {
    /// Every enabled key is usable.
    Healthy,
    /// Some keys are cooling, probing or dead; at least one is usable.
    Degraded,
    /// No key can serve (or there are none).
    Down,
    /// Routing is paused by the user.
    Paused,
}

impl TrayIcon {
    pub fn name(self) -> &'static str {
        match self {
            TrayIcon::Healthy => "healthy",
            TrayIcon::Degraded => "degraded",
            TrayIcon::Down => "down",
            TrayIcon::Paused => "paused",
        }
    }
}

/// A provider's line in the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderItem {
    pub name: String,
    pub enabled: bool,
    /// `openai — 2/3 keys usable`
    pub label: String,
}

/// Everything the tray shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayView {
    pub icon: TrayIcon,
    /// The title/tooltip: `Fluxgate: 3/4 keys healthy`.
    pub title: String,
    /// The menu's first, disabled line: `3/4 keys healthy · 1 cooling` or `Paused`.
    pub status: String,
    pub providers: Vec<ProviderItem>,
}

/// Computes the view in `lang`. `providers` are the config's providers in order with their
/// `enabled`.
pub fn view(
    keys: &[KeyHealth],
    providers: &[(String, bool)],
    paused: bool,
    lang: Lang,
) -> TrayView {
    let enabled: Vec<&KeyHealth> = keys
        .iter()
        .filter(|k| k.status != KeyStatus::Disabled)
        .collect();
    let healthy = enabled
        .iter()
        .filter(|k| k.status == KeyStatus::Healthy)
        .count();
    let cooling = enabled
        .iter()
        .filter(|k| matches!(k.status, KeyStatus::Cooling | KeyStatus::Probing))
        .count();
    let dead = enabled
        .iter()
        .filter(|k| k.status == KeyStatus::Dead)
        .count();
    let total = enabled.len();
    let icon = if paused {
        TrayIcon::Paused
    } else if healthy == 0 {
        TrayIcon::Down
    } else if healthy < total {
        TrayIcon::Degraded
    } else {
        TrayIcon::Healthy
    };
    let counts = t!(lang, "tray.counts", healthy = healthy, total = total);
    let mut status = counts.clone();
    if cooling > 0 {
        status.push_str(&t!(lang, "tray.cooling", n = cooling));
    }
    if dead > 0 {
        status.push_str(&t!(lang, "tray.dead", n = dead));
    }
    if total == 0 {
        status = t!(lang, "tray.no_keys");
    }
    if paused {
        status = t!(lang, "tray.paused_status", status = status);
    }
    let low = enabled
        .iter()
        .filter(|k| k.balance.as_ref().is_some_and(|b| b.low))
        .count();
    let title = if paused {
        t!(lang, "tray.title_paused", counts = counts)
    } else if low > 0 {
        t!(lang, "tray.title_low", counts = counts, n = low)
    } else {
        t!(lang, "tray.title", counts = counts)
    };
    let providers = providers
        .iter()
        .map(|(name, on)| {
            let mine: Vec<&KeyHealth> = keys.iter().filter(|k| &k.provider == name).collect();
            let usable = mine
                .iter()
                .filter(|k| k.status == KeyStatus::Healthy)
                .count();
            ProviderItem {
                name: name.clone(),
                enabled: *on,
                label: if *on {
                    t!(
                        lang,
                        "tray.provider",
                        name = name,
                        usable = usable,
                        total = mine.len(),
                        credit = credit_left(&mine, lang)
                    )
                } else {
                    t!(lang, "tray.provider_disabled", name = name)
                },
            }
        })
        .collect();
    TrayView {
        icon,
        title,
        status,
        providers,
    }
}

/// ` · 110.00 CNY left` for the keys whose balance is known (summed per currency).
fn credit_left(keys: &[&KeyHealth], lang: Lang) -> String {
    let mut sums: Vec<(String, f64)> = Vec::new();
    for b in keys.iter().filter_map(|k| k.balance.as_ref()) {
        let (Some(left), Some(cur)) = (b.remaining, b.currency.as_ref()) else {
            continue;
        };
        match sums.iter_mut().find(|(c, _)| c == cur) {
            Some((_, sum)) => *sum += left,
            None => sums.push((cur.clone(), left)),
        }
    }
    sums.iter()
        .map(|(cur, sum)| {
            t!(
                lang,
                "tray.credit_left",
                sum = format!("{sum:.2}"),
                cur = cur
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(provider: &str, id: &str, status: KeyStatus) -> KeyHealth {
        KeyHealth {
            provider: provider.into(),
            key_id: id.into(),
            status,
            reason: None,
            last_status: None,
            last_message: None,
            last_error_ms: None,
            until_ms: None,
            retry_in_secs: None,
            in_flight: 0,
            secret_error: None,
            proxy: None,
            proxy_error: None,
            balance: None,
        }
    }

    #[test]
    fn balances_show_per_provider_and_a_low_key_in_the_title() {
        use fluxgate_core::health::KeyBalance;
        use fluxgate_core::vocab::BalanceSource;
        let with = |id: &str, left: f64, low: bool| KeyHealth {
            balance: Some(KeyBalance {
                source: BalanceSource::DeepSeek,
                remaining: Some(left),
                currency: Some("CNY".into()),
                limit: None,
                usage: None,
                checked_ms: Some(1),
                error: None,
                threshold: Some(5.0),
                low,
                out_of_rotation: false,
            }),
            ..key("deepseek", id, KeyStatus::Healthy)
        };
        let p = vec![("deepseek".to_string(), true)];
        let v = view(
            &[with("a", 100.0, false), with("b", 2.5, true)],
            &p,
            false,
            Lang::En,
        );
        assert_eq!(
            v.providers[0].label,
            "deepseek — 2/2 keys usable · 102.50 CNY left"
        );
        assert_eq!(v.title, "Fluxgate: 2/2 keys healthy · 1 low on credit");
    }

    #[test]
    fn the_icon_follows_health() {
        let p = vec![
            ("openai".to_string(), true),
            ("anthropic".to_string(), true),
        ];
        let all = [
            key("openai", "a", KeyStatus::Healthy),
            key("anthropic", "b", KeyStatus::Healthy),
        ];
        let v = view(&all, &p, false, Lang::En);
        assert_eq!(v.icon, TrayIcon::Healthy);
        assert_eq!(v.title, "Fluxgate: 2/2 keys healthy");
        let some = [
            key("openai", "a", KeyStatus::Cooling),
            key("anthropic", "b", KeyStatus::Healthy),
        ];
        let v = view(&some, &p, false, Lang::En);
        assert_eq!(v.icon, TrayIcon::Degraded);
        assert_eq!(v.status, "1/2 keys healthy · 1 cooling");
        assert_eq!(v.providers[0].label, "openai — 0/1 keys usable");
        let none = [
            key("openai", "a", KeyStatus::Cooling),
            key("anthropic", "b", KeyStatus::Dead),
        ];
        let v = view(&none, &p, false, Lang::En);
        assert_eq!(v.icon, TrayIcon::Down);
        assert_eq!(v.status, "0/2 keys healthy · 1 cooling · 1 dead");
        let v = view(&all, &p, true, Lang::En);
        assert_eq!(v.icon, TrayIcon::Paused);
        assert_eq!(v.title, "Fluxgate: paused (2/2 keys healthy)");
        let v = view(&none, &p, false, Lang::ZhCn);
        assert_eq!(v.status, "0/2 个密钥正常 · 1 个冷却中 · 1 个失效");
        assert_eq!(v.providers[0].label, "openai — 0/1 个密钥可用");
        let v = view(&all, &p, true, Lang::ZhCn);
        assert_eq!(v.title, "Fluxgate：已暂停（2/2 个密钥正常）");
    }

    #[test]
    fn disabled_keys_do_not_count_and_disabled_providers_say_so() {
        let p = vec![
            ("openai".to_string(), true),
            ("anthropic".to_string(), false),
        ];
        let keys = [
            key("openai", "a", KeyStatus::Healthy),
            key("anthropic", "b", KeyStatus::Disabled),
        ];
        let v = view(&keys, &p, false, Lang::En);
        assert_eq!(v.icon, TrayIcon::Healthy);
        assert_eq!(v.title, "Fluxgate: 1/1 keys healthy");
        assert_eq!(v.providers[1].label, "anthropic — disabled");
        let v = view(&[], &[], false, Lang::En);
        assert_eq!(v.icon, TrayIcon::Down);
        assert_eq!(v.status, "No keys yet: add one in the console");
    }
}
