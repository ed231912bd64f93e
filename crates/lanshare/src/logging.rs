//! Logging: `tracing` events to stderr (stdout is reserved for what scripts parse, such as the
//! `lanshare listening on …` lines).

use tracing_subscriber::EnvFilter;

/// Where the effective filter came from, for the first log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterSource {
    RustLog,
    Verbose(u8),
    Config,
}

/// Picks the filter: `RUST_LOG` when set and valid, else `-v` (debug) / `-vv` (trace), else the
/// config's `server.log`.
pub fn choose_filter(
    rust_log: Option<&str>,
    verbose: u8,
    config_log: &str,
) -> (EnvFilter, FilterSource) {
    if let Some(env) = rust_log.filter(|s| !s.trim().is_empty())
        && let Ok(f) = EnvFilter::try_new(env)
    {
        return (f, FilterSource::RustLog);
    }
    let level = match verbose {
        0 => None,
        1 => Some("debug"),
        _ => Some("trace"),
    };
    if let Some(level) = level {
        return (EnvFilter::new(level), FilterSource::Verbose(verbose));
    }
    // The config was validated, so this only falls back for hand-built configs.
    let f = EnvFilter::try_new(config_log).unwrap_or_else(|_| EnvFilter::new("info"));
    (f, FilterSource::Config)
}

/// Installs the stderr subscriber. Safe to call twice (the second call does nothing), which
/// tests rely on.
pub fn init(verbose: u8, config_log: &str) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, source) = choose_filter(rust_log.as_deref(), verbose, config_log);
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init()
        .is_ok();
    if installed {
        tracing::debug!(?source, "logging initialised");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        assert_eq!(
            choose_filter(Some("warn"), 2, "info").1,
            FilterSource::RustLog
        );
        assert_eq!(
            choose_filter(Some("=bad=filter=["), 1, "info").1,
            FilterSource::Verbose(1)
        );
        assert_eq!(choose_filter(None, 0, "debug").1, FilterSource::Config);
        assert_eq!(choose_filter(Some(""), 0, "debug").1, FilterSource::Config);
        let (f, _) = choose_filter(None, 3, "info");
        assert!(f.to_string().contains("trace"));
    }
}
