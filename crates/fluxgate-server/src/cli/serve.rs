//! `fluxgate serve`

use super::lang;
use fluxgate_core::t;
use std::net::SocketAddr;

use clap::Args;

use super::Common;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on [default: `listen` from the config, else 127.0.0.1:8414]
    #[arg(long, env = "FLUXGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    json_logs: bool,
}

pub fn run(args: ServeArgs) -> Result<(), String> {
    fluxgate_server::logging::init(args.json_logs);
    fluxgate_server::panics::install_hook();
    let mut options = args.common.options();
    options.listen = args.listen;
    // Check the config before starting a runtime: a bad file is reported at once.
    options.load_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let signals = Signals::install();
        let started = options.start().await?;
        let gateway = started.gateway.clone();
        let config = gateway.config();
        let providers = config.providers.len();
        let keys: usize = config.providers.iter().map(|p| p.keys.len()).sum();
        let routes = config.routes.len();
        let addr = started.handle.addr;
        let from = match &config.source {
            fluxgate_core::config::ConfigSource::File(p) => p.display().to_string(),
            fluxgate_core::config::ConfigSource::Environment => t!(
                lang(),
                "cli.serve.env_source",
                path = started.config_file.display()
            ),
        };
        let data_dir = started.data_dir.clone();
        let l = lang();
        eprintln!("{}", t!(l, "cli.serve.listening", addr = addr));
        eprintln!(
            "{}",
            t!(
                l,
                "cli.serve.config",
                from = from,
                providers = providers,
                keys = keys,
                routes = routes
            )
        );
        eprintln!("{}", t!(l, "cli.serve.data", path = data_dir.display()));
        eprintln!(
            "{}",
            t!(
                l,
                "cli.serve.admin_token",
                path = data_dir
                    .join(fluxgate_core::tokens::ADMIN_TOKEN_FILE)
                    .display()
            )
        );
        eprintln!("{}", t!(l, "cli.serve.console", addr = addr));
        if providers == 0 {
            eprintln!("{}", t!(l, "cli.serve.no_providers"));
        }
        if !gateway.tokens.any().unwrap_or(false) {
            eprintln!("{}", t!(l, "cli.serve.no_tokens"));
        }
        // Tests and scripts read this line to find the port.
        println!("listening on http://{addr}");
        signals.wait().await;
        eprintln!("{}", t!(lang(), "cli.shutting_down"));
        started.handle.shutdown().await;
        Ok::<(), String>(())
    })
}

/// SIGTERM and SIGINT, registered when made: a signal that arrives before anything awaits it
/// (right after the "listening on" line, say) still ends the process gracefully.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.term) => {}
                _ = recv(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
