//! The command line: argument definitions (clap), dispatch, and exit codes.
//!
//! Exit codes: 0 success, 1 a runtime failure (cannot bind, users file unwritable…),
//! 2 a usage or configuration error (bad arguments, invalid config file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{self, ConfigErrors};

#[derive(Debug, Parser)]
#[command(
    name = "lanshare",
    version,
    about = "Share folders over SMB2/SMB3 on a LAN",
    long_about = "Share folders over SMB2/SMB3 on a LAN.\n\n\
        Quick start: `lanshare serve ~/Public` shares that folder and prints how to connect.\n\
        For a permanent setup write /etc/lanshare/lanshare.toml (see `lanshare check-config --help`),\n\
        add users with `lanshare user add NAME`, and run `lanshare serve --config /etc/lanshare/lanshare.toml`."
)]
pub struct Cli {
    /// More log output on stderr: -v debug, -vv trace (RUST_LOG, when set, wins)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve folders: the PATHs given (default ./share) with a generated password, or
    /// everything a config file describes (--config)
    Serve(ServeArgs),
    /// Parse and validate a config file and print what it sets up
    #[command(after_long_help = config_reference_help())]
    CheckConfig {
        /// The config file
        #[arg(short, long, default_value = config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Manage the users file (NT hashes, mode 0600)
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The running server (like `net config server`): listeners, uptime, each limit with its
    /// live count and refusals, shares, counters
    Status(ControlArgs),
    /// Sessions of the running server (like `net session`): id, user, client, dialect,
    /// signing/encryption, opens, idle time
    Sessions(ControlArgs),
    /// Open files of the running server (like `net file`): id, session, user, share, access,
    /// path
    Files(ControlArgs),
    /// End a session (its open files are closed; the client's next request fails)
    CloseSession {
        /// The session id `lanshare sessions` shows (decimal, or 0x… hex)
        #[arg(value_parser = crate::admin::parse_id)]
        id: u64,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Close one open file
    CloseFile {
        /// The file id `lanshare files` shows
        #[arg(value_parser = crate::admin::parse_id)]
        id: u64,
        /// The session the file belongs to, when two sessions show the same file id
        #[arg(long, value_parser = crate::admin::parse_id)]
        session: Option<u64>,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Re-read the running server's config file (as SIGHUP does) and say what changed and
    /// what needs a restart
    Reload(ControlArgs),
}

/// How the administration commands find the running server.
#[derive(Debug, Args, Clone, Default)]
pub struct ControlArgs {
    /// The server's control socket. Default: server.control_socket of the config file, else
    /// /run/lanshare/control.sock (root), $XDG_RUNTIME_DIR/lanshare.sock, or
    /// /tmp/lanshare-UID/control.sock
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Config file to take server.control_socket from (default /etc/lanshare/lanshare.toml if
    /// it exists)
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the server's answer as JSON (for scripts)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folders to share under their own names (without --config). Default: ./share, created
    /// if missing
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Address to listen on, IP:PORT; repeat for several. Default 0.0.0.0:445 (port 0 picks a
    /// free port). Replaces the config's server.listen
    #[arg(short, long = "listen", value_name = "ADDR", value_parser = parse_listen_arg)]
    pub listen: Vec<SocketAddr>,

    /// Serve what this config file describes (see `lanshare check-config --help`)
    #[arg(short, long, value_name = "FILE", conflicts_with = "paths")]
    pub config: Option<PathBuf>,

    /// Server name (NetBIOS style, at most 15 letters, digits, - or _). Default: host name
    #[arg(short, long)]
    pub name: Option<String>,

    /// The control socket for `lanshare status` and friends. Replaces the config's
    /// server.control_socket
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct UsersFileArgs {
    /// The users file. Default: the config's server.users_file, else /etc/lanshare/users
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<PathBuf>,

    /// Config file to take server.users_file from (default /etc/lanshare/lanshare.toml if it
    /// exists)
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (asks for the password, or reads one line from stdin with --password-stdin)
    Add {
        name: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Delete a user
    #[command(alias = "rm")]
    Del {
        name: String,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// List the users
    #[command(alias = "ls")]
    List {
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Change a user's password
    Passwd {
        name: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        file: UsersFileArgs,
    },
}

fn parse_listen_arg(s: &str) -> Result<SocketAddr, String> {
    config::parse_listen(s).map_err(|why| {
        format!("listen address `{s}` {why}; write IP:PORT, e.g. 0.0.0.0:445 or 127.0.0.1:4445")
    })
}

fn config_reference_help() -> String {
    format!(
        "Config file reference (unknown keys are errors; relative paths are relative to the file):\n\n{}",
        config::reference()
    )
}

/// Every failure a command reports, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An invalid config file: every problem, one per line.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// Bad arguments that clap could not catch.
    #[error("{0}")]
    Usage(String),
    /// The command was valid but could not be carried out.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                CliError::Config(errs) => {
                    for err in &errs.0 {
                        eprintln!("error: {err}");
                    }
                    if errs.0.len() > 1 {
                        eprintln!("{} problems in the config file", errs.0.len());
                    }
                }
                other => eprintln!("error: {other}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => crate::serve::run(args, cli.verbose),
        Command::CheckConfig { config } => check_config(&config),
        Command::User { command } => crate::users::run(command),
        Command::Status(c) => crate::admin::status(&c),
        Command::Sessions(c) => crate::admin::sessions(&c),
        Command::Files(c) => crate::admin::files(&c),
        Command::CloseSession { id, control } => crate::admin::close_session(&control, id),
        Command::CloseFile {
            id,
            session,
            control,
        } => crate::admin::close_file(&control, id, session),
        Command::Reload(c) => crate::admin::reload(&c),
    }
}

fn check_config(path: &std::path::Path) -> Result<(), CliError> {
    let config = config::Config::load(path)?;
    // The users file is part of a working setup: a broken one stops `serve`, so it fails here
    // too; a missing one is only a warning (users may be added after the config is written).
    let users_file = &config.server.users_file;
    let users = match lanshare_auth::UserFile::load(users_file) {
        Ok(u) => format!("{} user(s)", u.users().count()),
        Err(lanshare_auth::UserFileError::NotFound { .. }) => {
            "missing: add users with `lanshare user add NAME`".to_string()
        }
        Err(e) => return Err(CliError::Usage(e.to_string())),
    };
    println!("{}: OK", path.display());
    print!("{}", config.summary());
    println!("users:         {users}");
    if let Some(why) = crate::serve::users_file_exposure(users_file) {
        println!("warning: {why}");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_arguments() {
        let cli = Cli::try_parse_from([
            "lanshare",
            "serve",
            "a",
            "b",
            "--listen",
            "127.0.0.1:0",
            "-l",
            "[::1]:4445",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 2);
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.paths, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(args.listen.len(), 2);

        let err = Cli::try_parse_from(["lanshare", "serve", "--listen", "localhost"]).unwrap_err();
        assert!(err.to_string().contains("IP:PORT"), "{err}");
        assert!(Cli::try_parse_from(["lanshare", "serve", "x", "--config", "c.toml"]).is_err());
    }

    #[test]
    fn user_arguments() {
        let cli = Cli::try_parse_from([
            "lanshare",
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--users-file",
            "/tmp/u",
        ])
        .unwrap();
        let Command::User {
            command:
                UserCommand::Add {
                    name,
                    password_stdin,
                    file,
                },
        } = cli.command
        else {
            panic!("not user add")
        };
        assert_eq!(name, "alice");
        assert!(password_stdin);
        assert_eq!(file.users_file, Some(PathBuf::from("/tmp/u")));
    }

    #[test]
    fn control_arguments() {
        let cli = Cli::try_parse_from([
            "lanshare",
            "close-file",
            "0x10",
            "--session",
            "77",
            "--socket",
            "/tmp/s",
            "--json",
        ])
        .unwrap();
        let Command::CloseFile {
            id,
            session,
            control,
        } = cli.command
        else {
            panic!("not close-file")
        };
        assert_eq!((id, session), (16, Some(77)));
        assert_eq!(control.socket, Some(PathBuf::from("/tmp/s")));
        assert!(control.json);
        assert!(Cli::try_parse_from(["lanshare", "close-session", "x"]).is_err());
        let cli = Cli::try_parse_from(["lanshare", "status", "-c", "l.toml"]).unwrap();
        assert!(
            matches!(cli.command, Command::Status(c) if c.config == Some(PathBuf::from("l.toml")) && !c.json)
        );
    }

    #[test]
    fn check_config_help_carries_the_reference() {
        let help = config_reference_help();
        assert!(help.contains("[security]"));
        assert!(help.contains("handshake_timeout"));
    }
}
