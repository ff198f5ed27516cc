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
