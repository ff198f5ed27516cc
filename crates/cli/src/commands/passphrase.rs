//! The state passphrase: from the environment or a file, never from the
//! command line (where `ps` and shell history would show it).

use std::sync::Arc;

use dbgroups_state::Keyring;

use super::CliError;

const PASSPHRASE: &str = "DBGROUPS_STATE_PASSPHRASE";
const OLD_PASSPHRASE: &str = "DBGROUPS_STATE_OLD_PASSPHRASE";

/// The passphrase the state is (to be) encrypted with, if one is given.
pub(crate) fn current() -> Result<Option<Arc<Keyring>>, CliError> {
    read(PASSPHRASE)
}

/// The passphrase `state rekey` opens the secrets with.
pub(crate) fn old() -> Result<Option<Arc<Keyring>>, CliError> {
    read(OLD_PASSPHRASE)
}

fn read(variable: &str) -> Result<Option<Arc<Keyring>>, CliError> {
    let file_variable = format!("{variable}_FILE");
    let text = match (
        std::env::var(variable),
        std::env::var_os(&file_variable).filter(|f| !f.is_empty()),
    ) {
        (Ok(_), Some(_)) => {
            return Err(CliError::Usage(format!(
                "{variable} and {file_variable} are both set; set one"
            )));
        }
        (Ok(text), None) => text,
        (Err(_), Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
                action: "read the passphrase file",
                path: std::path::Path::new(&path).display().to_string(),
                source,
            })?;
            // A file written by `echo` ends with a newline that is not
            // part of the passphrase.
            text.strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text)
                .to_string()
        }
        (Err(_), None) => return Ok(None),
    };
    Keyring::new(text)
        .map(|keyring| Some(Arc::new(keyring)))
        .map_err(|err| CliError::Usage(format!("{variable}: {err}")))
}
