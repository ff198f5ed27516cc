//! Colour choice and writing to the terminal.

use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
    /// Width reports are wrapped at.
    pub(crate) width: usize,
}

impl Style {
    /// Colour only on a terminal, and never with --no-color or NO_COLOR
    /// (any non-empty value, per no-color.org).
    pub(crate) fn detect(no_color_flag: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = !no_color_flag && !no_color_env && std::io::stderr().is_terminal();
        Self { color, width: 100 }
    }
}

/// Errors that are not manifest diagnostics are still reported by miette,
/// so they look alike.
pub(crate) fn install_miette_hook(style: Style) {
    let color = style.color;
    // Only fails if a hook is already set, which nothing else does.
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(true)
                .width(style.width)
                .build(),
        )
    }));
}

/// Writes to stdout; a closed pipe (`dbgroups schema | head`) is not an error.
pub(crate) fn print(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

pub(crate) fn eprint(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Colours a text plan by each line's marker: `!` red, `+` green, `~`
/// yellow, `-` red. The renderer stays plain; this is the terminal's part.
pub(crate) fn colour_plan(text: &str, style: Style) -> String {
    if !style.color {
        return text.to_string();
    }
    text.lines()
        .map(|line| {
            let code = match line.trim_start().chars().next() {
                Some('!') => "1;31",
                Some('+') => "32",
                Some('~') => "33",
                Some('-') => "31",
                _ => return line.to_string(),
            };
            format!("\x1b[{code}m{line}\x1b[0m")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asks a question on stderr and reads one line of answer from stdin.
/// Refuses when stdin is not a terminal: an unattended run must say
/// `--auto-approve` instead of being fed an answer by accident.
pub(crate) fn ask(question: &str, flag_hint: &str) -> Result<String, crate::commands::CliError> {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        return Err(crate::commands::CliError::Usage(format!(
            "refusing to {flag_hint} without confirmation: stdin is not a terminal; pass --auto-approve"
        )));
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} ");
    let _ = stderr.flush();
    drop(stderr);
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|source| crate::commands::CliError::Io {
            action: "read",
            path: "stdin".into(),
            source,
        })?;
    Ok(answer.trim().to_string())
}
