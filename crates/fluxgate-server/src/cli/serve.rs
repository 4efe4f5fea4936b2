//! `fluxgate serve`

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
            fluxgate_core::config::ConfigSource::Environment => format!(
                "environment variables (no config file; console edits create {})",
                started.config_file.display()
            ),
        };
        let data_dir = started.data_dir.clone();
        eprintln!("Fluxgate listening on http://{addr}");
        eprintln!("  config: {from}: {providers} provider(s), {keys} key(s), {routes} route(s)");
        eprintln!("  data:   {}", data_dir.display());
        eprintln!("  admin token (for /admin/api): {}", data_dir.join(fluxgate_core::tokens::ADMIN_TOKEN_FILE).display());
        eprintln!("  console: run `fluxgate console` for a login link to http://{addr}/admin/");
        if providers == 0 {
            eprintln!("  no providers yet: add one in the console, write a config file or set OPENAI_API_KEY / ANTHROPIC_API_KEY / ...");
        }
        if !gateway.tokens.any().unwrap_or(false) {
            eprintln!("  no client tokens yet: run `fluxgate token new NAME` and use the token as your tools' API key");
        }
        // Tests and scripts read this line to find the port.
        println!("listening on http://{addr}");
        signals.wait().await;
        eprintln!("shutting down: letting in-flight requests finish (up to 10 s)");
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
