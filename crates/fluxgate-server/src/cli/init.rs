//! `fluxgate init`: the first run in a terminal. Finds the keys already on this machine (the
//! environment, Codex's `auth.json`, Claude Code's settings, Gemini CLI's `.env`), shows each
//! as provider + last four characters + where it was found, stores the ones the user picks in
//! the OS keychain, writes the config, then offers `fluxgate setup` for the tools it found.
//! Nothing is stored or written without an answer; `--yes` answers yes to everything (scripts).

use super::lang;
use fluxgate_core::t;
use std::io::{BufRead, Write};

use clap::Args;
use fluxgate_core::config::edit::ConfigDoc;
use fluxgate_core::setup::first_run;
use fluxgate_core::setup::tools::{self, Homes};
use fluxgate_core::store::Store;
use fluxgate_core::tokens::ClientTokens;

use super::Common;

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    common: Common,
    /// Store every key found and set up every tool found, without asking.
    #[arg(long)]
    yes: bool,
}

/// One line of the user's answer (empty at the end of input).
fn ask(question: &str) -> Result<String, String> {
    print!("{question} ");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim().to_string())
}

/// The numbers (1-based) an answer picks out of `n`: `all`, `1 3`, `1,2`; empty is none.
fn picked(answer: &str, n: usize) -> Result<Vec<usize>, String> {
    let a = answer.trim().to_ascii_lowercase();
    if a.is_empty() || a == "none" || a == "n" || a == "no" {
        return Ok(Vec::new());
    }
    if a == "all" || a == "a" || a == "y" || a == "yes" {
        return Ok((0..n).collect());
    }
    let mut out = Vec::new();
    for part in a
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        match part.parse::<usize>() {
            Ok(i) if (1..=n).contains(&i) => {
                if !out.contains(&(i - 1)) {
                    out.push(i - 1)
                }
            }
            _ => {
                return Err(format!(
                    "`{part}` is not one of 1..{n}; answer like `1 3`, `all`, or nothing"
                ))
            }
        }
    }
    Ok(out)
}

fn yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

pub fn run(args: InitArgs) -> Result<(), String> {
    let homes = Homes::from_env(|k| std::env::var(k).ok())
        .ok_or("HOME is not set; cannot look for keys in the tools' files")?;
    let config_path = args.common.config_path()?;
    let data = args.common.data_dir()?;
    let l = lang();
    println!("{}", t!(l, "cli.init.looking"));
    let found = first_run::discover(|k| std::env::var(k).ok(), &homes);
    if found.is_empty() {
        println!("{}", t!(l, "cli.init.none"));
        println!("{}", t!(l, "cli.init.add_key"));
    } else {
        for (i, f) in found.iter().enumerate() {
            println!(
                "{}",
                t!(
                    l,
                    "cli.init.found",
                    n = i + 1,
                    provider = format!("{:<11}", f.provider),
                    hint = f.hint(),
                    source = f.source
                )
            );
        }
        let chosen = loop {
            let answer = if args.yes {
                "all".to_string()
            } else {
                ask(&t!(l, "cli.init.ask"))?
            };
            match picked(&answer, found.len()) {
                Ok(p) => break p,
                Err(e) => println!("{e}"),
            }
        };
        if chosen.is_empty() {
            println!("{}", t!(l, "cli.init.nothing"));
        } else {
            let picked: Vec<first_run::Found> = chosen.iter().map(|&i| found[i].clone()).collect();
            let secrets = fluxgate_core::secrets::Secrets::system();
            let store = secrets.keychain().map_err(|e| e.to_string())?;
            let running = args.common.load_config().ok();
            let (kept, _) = ConfigDoc::edit_file(&config_path, running.as_ref(), |doc| {
                first_run::adopt(&picked, store.as_ref(), doc).map_err(|e| match e {
                    first_run::AdoptError::Config(c) => c,
                    other => fluxgate_core::config::edit::EditError::Write {
                        path: config_path.display().to_string(),
                        reason: other.to_string(),
                    },
                })
            })
            .map_err(|e| e.to_string())?;
            for account in &kept {
                println!("{}", t!(l, "cli.init.stored", account = account));
            }
            println!("{}", t!(l, "cli.wrote", path = config_path.display()));
        }
    }

    let tools_found = first_run::installed_tools(&homes, std::env::var("PATH").ok().as_deref());
    if tools_found.is_empty() {
        return Ok(());
    }
    let base = super::setup::base_url(&args.common)?;
    let tokens = ClientTokens::in_store(Store::open(&data).map_err(|e| e.to_string())?);
    let keychain = fluxgate_core::secrets::Secrets::system().keychain();
    let keychain = || keychain.as_deref().map_err(|e| e.to_string());
    let routes: Vec<String> = args
        .common
        .load_config()
        .map(|c| c.route_names())
        .unwrap_or_default();
    for kind in tools_found {
        let preview = tools::set_up(
            kind,
            &homes,
            &data,
            &tokens,
            keychain(),
            &base,
            &routes,
            true,
        )
        .map_err(|e| e.to_string())?;
        if !preview.plan.changes() {
            println!("{}", t!(l, "cli.init.already", tool = kind.title()));
            continue;
        }
        println!(
            "\n{}",
            t!(l, "cli.init.on_machine", tool = kind.title(), base = base)
        );
        print!("{}", preview.diff);
        let go = args.yes
            || yes(&ask(&t!(
                l,
                "cli.init.ask_setup",
                tool = kind.title(),
                id = kind.id()
            ))?);
        if !go {
            println!(
                "{}",
                t!(l, "cli.init.left", tool = kind.title(), id = kind.id())
            );
            continue;
        }
        let done = tools::set_up(
            kind,
            &homes,
            &data,
            &tokens,
            keychain(),
            &base,
            &routes,
            false,
        )
        .map_err(|e| e.to_string())?;
        for p in &done.written {
            println!("{}", t!(l, "cli.wrote", path = p.display()));
        }
        if let Some(note) = kind.note() {
            println!("{}", t!(l, "cli.note", note = note));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_pick_keys_by_number() {
        assert_eq!(picked("", 3), Ok(vec![]));
        assert_eq!(picked("all", 3), Ok(vec![0, 1, 2]));
        assert_eq!(picked("1 3", 3), Ok(vec![0, 2]));
        assert_eq!(picked("2,2, 1", 3), Ok(vec![1, 0]));
        assert!(picked("4", 3).is_err());
        assert!(picked("one", 3).is_err());
        assert!(yes("Y") && yes("yes") && !yes("") && !yes("n"));
    }
}
