//! `lanshare user add|del|list|passwd`: edits the users file through `lanshare_auth::UserFile`
//! (which owns the format, the name rules and the atomic 0600 save).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use lanshare_auth::{UserFile, UserFileError};

use crate::cli::{CliError, UserCommand, UsersFileArgs};
use crate::config;

/// Longest password line read from stdin; NTLM has no real limit, a runaway pipe does.
const MAX_PASSWORD_BYTES: u64 = 1024;

pub fn run(command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Add {
            name,
            password_stdin,
            file,
        } => {
            let path = users_file(&file)?;
            lanshare_auth::validate_user_name(&name).map_err(users_err)?;
            let mut users = UserFile::load_or_empty(&path).map_err(users_err)?;
            if users.users().any(|u| u.name.eq_ignore_ascii_case(&name)) {
                return Err(CliError::Failed(format!(
                    "user {name} already exists in {}; use `lanshare user passwd {name}` to change the password",
                    path.display()
                )));
            }
            let password = read_password(&name, password_stdin)?;
            users.add(&name, &password).map_err(users_err)?;
            create_parent(&path)?;
            users.save(&path).map_err(users_err)?;
            eprintln!("added user {name} to {}", path.display());
            Ok(())
        }
        UserCommand::Del { name, file } => {
            let path = users_file(&file)?;
            let mut users = UserFile::load(&path).map_err(|e| missing_file(e, &path))?;
            users.remove(&name).map_err(users_err)?;
            users.save(&path).map_err(users_err)?;
            eprintln!("deleted user {name} from {}", path.display());
            Ok(())
        }
        UserCommand::List { file } => {
            let path = users_file(&file)?;
            let users = UserFile::load(&path).map_err(|e| missing_file(e, &path))?;
            for u in users.users() {
                if u.disabled {
                    println!("{} (disabled)", u.name);
                } else {
                    println!("{}", u.name);
                }
            }
            Ok(())
        }
        UserCommand::Passwd {
            name,
            password_stdin,
            file,
        } => {
            let path = users_file(&file)?;
            let mut users = UserFile::load(&path).map_err(|e| missing_file(e, &path))?;
            if !users.users().any(|u| u.name.eq_ignore_ascii_case(&name)) {
                return Err(CliError::Failed(format!(
                    "no user {name} in {}; add it with `lanshare user add {name}`",
                    path.display()
                )));
            }
            let password = read_password(&name, password_stdin)?;
            users.set_password(&name, &password).map_err(users_err)?;
            users.save(&path).map_err(users_err)?;
            eprintln!("changed the password of {name} in {}", path.display());
            Ok(())
        }
    }
}

/// `--users-file`, else the config's `server.users_file` (`--config`, or the default config
/// file when it exists), else `/etc/lanshare/users`.
pub fn users_file(args: &UsersFileArgs) -> Result<PathBuf, CliError> {
    if let Some(f) = &args.users_file {
        return Ok(f.clone());
    }
    if let Some(c) = &args.config {
        return Ok(config::users_file_from(c)?);
    }
    let default_config = Path::new(config::DEFAULT_CONFIG_PATH);
    if default_config.exists() {
        return Ok(config::users_file_from(default_config)?);
    }
    Ok(PathBuf::from(config::DEFAULT_USERS_FILE))
}

fn users_err(e: UserFileError) -> CliError {
    CliError::Failed(e.to_string())
}

fn missing_file(e: UserFileError, path: &Path) -> CliError {
    match e {
        UserFileError::NotFound { .. } => CliError::Failed(format!(
            "users file {} does not exist; create it with `lanshare user add NAME --users-file {}`",
            path.display(),
            path.display()
        )),
        other => users_err(other),
    }
}

fn create_parent(path: &Path) -> Result<(), CliError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

/// The new password: one line of stdin, or typed twice at a no-echo prompt on the terminal.
fn read_password(name: &str, from_stdin: bool) -> Result<String, CliError> {
    let password = if from_stdin {
        password_from(std::io::stdin().lock())?
    } else {
        let first = rpassword::prompt_password(format!("New password for {name}: ")).map_err(
            |e| {
                CliError::Failed(format!(
                    "cannot read a password from the terminal ({e}); pipe it in with --password-stdin"
                ))
            },
        )?;
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| CliError::Failed(format!("cannot read the password: {e}")))?;
        if first != again {
            return Err(CliError::Failed(
                "the two passwords differ; nothing was changed".into(),
            ));
        }
        first
    };
    if password.is_empty() {
        return Err(CliError::Usage(
            "the password is empty; NTLM accepts it but anyone could log in".into(),
        ));
    }
    Ok(password)
}

/// The first line of `input`, without its line ending.
pub fn password_from(input: impl Read) -> Result<String, CliError> {
    let mut line = String::new();
    std::io::BufReader::new(input.take(MAX_PASSWORD_BYTES + 1))
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read the password from stdin: {e}")))?;
    if line.len() as u64 > MAX_PASSWORD_BYTES {
        return Err(CliError::Usage(format!(
            "the password on stdin is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_line() {
        assert_eq!(password_from(&b"s3cret\nrest"[..]).unwrap(), "s3cret");
        assert_eq!(password_from(&b"s3cret\r\n"[..]).unwrap(), "s3cret");
        assert_eq!(password_from(&b" spaced \n"[..]).unwrap(), " spaced ");
        assert_eq!(password_from(&b""[..]).unwrap(), "");
        assert!(password_from(&vec![b'a'; 2000][..]).is_err());
    }

    #[test]
    fn users_file_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("l.toml");
        std::fs::write(&cfg, "[server]\nusers_file = \"db\"\n").unwrap();
        let explicit = UsersFileArgs {
            users_file: Some("/x/u".into()),
            config: Some(cfg.clone()),
        };
        assert_eq!(users_file(&explicit).unwrap(), PathBuf::from("/x/u"));
        let from_config = UsersFileArgs {
            users_file: None,
            config: Some(cfg),
        };
        assert_eq!(users_file(&from_config).unwrap(), dir.path().join("db"));
    }
}
