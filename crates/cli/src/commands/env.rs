use std::process::ExitCode;

use dbgroups_manifest::env_names;
use dbgroups_state::{MASK, StateStore};

use super::{CliError, context};
use crate::args::{EnvArgs, EnvFormat, GlobalArgs};
use crate::terminal::{self, Style};

pub(crate) fn run(global: &GlobalArgs, args: &EnvArgs, style: Style) -> Result<ExitCode, CliError> {
    // The variables come from the state alone; the manifest is read only to
    // learn the application's name when --app does not give it.
    let application = context::application(global, style)?;
    let store = context::store(global, context::Secrets::needed_if(args.show_secrets))?;
    let state = store.load(&application)?.ok_or_else(|| {
        CliError::Usage(format!(
            "no recorded state for \"{application}\": run `dbgroups apply` first"
        ))
    })?;
    let shown: Vec<(String, String)> = state
        .environment
        .iter()
        .map(|(name, value)| {
            let value = if env_names::is_secret(name) && !args.show_secrets {
                MASK.to_string()
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect();
    match args.format {
        EnvFormat::Dotenv => {
            for (name, value) in &shown {
                terminal::print(&format!("{name}={}", dotenv_value(value)));
            }
        }
        EnvFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> = shown
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            terminal::print(&serde_json::to_string_pretty(&map).unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A value as a dotenv file must hold it to read back the same. Plain words
/// (and URLs, the mask `(sensitive)` and the empty value) stay bare. Anything else is single-quoted, which every dotenv
/// reader and a POSIX shell take literally, with no `$` expansion. A value
/// that holds a single quote or a control character is double-quoted, with
/// `\`, `"`, `$` and the backquote escaped and newlines written `\n`: a raw
/// newline would end the line and inject a variable of the value's choosing.
pub(crate) fn dotenv_value(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,:/@%+=?&~()".contains(c);
    // `&`, `?` and `~` are plain to dotenv readers, which is where URLs
    // need them; a shell that sources the file is the reader's concern.
    if value.chars().all(plain) {
        return value.to_string();
    }
    if !value.chars().any(|c| c == '\'' || c.is_control()) {
        return format!("'{value}'");
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '\\' | '"' | '$' | '`' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::dotenv_value;

    #[test]
    fn plain_values_stay_bare_and_others_are_quoted_so_they_read_back_the_same() {
        assert_eq!(dotenv_value("5432"), "5432");
        assert_eq!(
            dotenv_value("postgresql://shop:pw@127.0.0.1:5432/shop?sslmode=disable"),
            "postgresql://shop:pw@127.0.0.1:5432/shop?sslmode=disable"
        );
        assert_eq!(dotenv_value(""), "");
        assert_eq!(dotenv_value("(sensitive)"), "(sensitive)");
        assert_eq!(dotenv_value("a b"), "'a b'");
        assert_eq!(dotenv_value("a#b"), "'a#b'");
        assert_eq!(dotenv_value("$HOME"), "'$HOME'");
        assert_eq!(dotenv_value("a\"b"), "'a\"b'");
        assert_eq!(
            dotenv_value("x\nINJECTED=1"),
            "\"x\\nINJECTED=1\"",
            "a newline must not start a variable"
        );
        assert_eq!(dotenv_value("it's $5"), "\"it's \\$5\"");
        assert_eq!(dotenv_value("back\\slash'"), "\"back\\\\slash'\"");
    }
}
