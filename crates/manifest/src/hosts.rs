//! What the ssh provider's values may be: host addresses, ssh user names,
//! ports, key and known-hosts paths, and ProxyJump hosts.
//!
//! Each of these reaches the OpenSSH client's command line (and an address
//! reaches certificates and URLs), so the rules are strict: a value starting
//! with `-` would be read as an option, and shell or ssh-config
//! metacharacters are never needed in a host name or a user name. Each check
//! returns why a value is refused, as a clause for a message
//! (`it starts with "-", …`); the reader adds the key and the help.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest DNS name (RFC 1035 §2.3.4, without the root's dot).
pub const HOST_NAME_MAX_LEN: usize = 253;
/// The longest DNS label.
pub const LABEL_MAX_LEN: usize = 63;
/// The longest user name the shadow tools accept by default.
pub const USER_MAX_LEN: usize = 32;

/// What an address may be, for messages.
pub const ADDRESS_FORMS: &str =
    "an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address";
/// What a user name may be, for messages.
pub const USER_FORM: &str = "a user name has lowercase letters, digits, `_` and `-`, starts with a lowercase letter or `_`, may end with `$`, and has at most 32 characters";
/// What a port may be, for messages.
pub const PORT_FORM: &str = "a port is a whole number from 1 to 65535";
/// What a key or known-hosts path may be, for messages.
pub const PATH_FORM: &str = "a path is absolute, relative or starts with `~/`, and holds no spaces, control characters, quotes, `\\`, `%` or `$` and no leading `-`";
/// What a jump host may be, for messages.
pub const JUMP_FORM: &str =
    "a jump is one host, `[user@]host[:port]`, with an IPv6 host in brackets";

/// The kind of address that was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    HostName,
    Ipv4,
    Ipv6,
}

/// An address as dbgroups keeps it: IPv6 without brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub kind: AddressKind,
}

/// Reads an `address`/`public_address`: a host name, an IPv4 address, or an
/// IPv6 address bare (`fd00::11`) or in brackets (`[fd00::11]`); the
/// brackets are dropped. The error is why the text is refused.
pub fn parse_address(text: &str) -> Result<Address, String> {
    common_problem(text, "an address")?;
    if let Some(c) = text
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']')))
    {
        return Err(contains(c, "an address"));
    }
    if text.starts_with('[') || text.ends_with(']') || text.contains(':') {
        let inner = match text.strip_prefix('[') {
            Some(rest) => rest.strip_suffix(']').ok_or_else(|| {
                "its `[` has no matching `]` at the end (an IPv6 address in brackets is written `[fd00::11]`)".to_string()
            })?,
            None if text.contains(['[', ']']) => {
                return Err("it has a `]` without a `[` before it".to_string());
            }
            None if text.matches(':').count() == 1 => {
                return Err(
                    "it has a `:PORT`, which does not belong in an address (an IPv6 address has several `:`)"
                        .to_string(),
                );
            }
            None => text,
        };
        return match inner.parse::<Ipv6Addr>() {
            Ok(_) => Ok(Address {
                host: inner.to_string(),
                kind: AddressKind::Ipv6,
            }),
            Err(_) => Err(format!("\"{inner}\" is not an IPv6 address")),
        };
    }
    host_name_or_ipv4(text)
}

/// A host name or an IPv4 address (no IPv6: used where `:` separates a
/// port). `text` has passed [`parse_address`]'s character check.
fn host_name_or_ipv4(text: &str) -> Result<Address, String> {
    if text.parse::<Ipv4Addr>().is_ok() {
        return Ok(Address {
            host: text.to_string(),
            kind: AddressKind::Ipv4,
        });
    }
    let labels: Vec<&str> = text.split('.').collect();
    // `10.0.0.011`, `127.1`, `0x7f000001`: the resolver reads these as
    // numbers (inet_aton), so they would name a host nobody wrote.
    let numeric = |label: &str| {
        !label.is_empty()
            && (label.chars().all(|c| c.is_ascii_digit())
                || label
                    .strip_prefix("0x")
                    .or_else(|| label.strip_prefix("0X"))
                    .is_some_and(|hex| hex.chars().all(|c| c.is_ascii_hexdigit())))
    };
    if labels.iter().all(|l| numeric(l))
        || labels
            .last()
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
    {
        return Err(
            "it looks like an IPv4 address but is not one: write four decimal numbers from 0 to 255 without leading zeros, such as 10.0.0.11"
                .to_string(),
        );
    }
    if labels.iter().any(|l| l.is_empty()) {
        return Err(
            "it has an empty part (a dot at the start or the end, or two dots in a row)"
                .to_string(),
        );
    }
    if let Some(label) = labels.iter().find(|l| l.chars().count() > LABEL_MAX_LEN) {
        return Err(format!(
            "its part \"{label}\" is {} characters long, more than {LABEL_MAX_LEN}",
            label.chars().count()
        ));
    }
    if let Some(label) = labels
        .iter()
        .find(|l| l.starts_with('-') || l.ends_with('-'))
    {
        return Err(format!(
            "its part \"{label}\" starts or ends with `-`, which host names may not"
        ));
    }
    let length = text.chars().count();
    if length > HOST_NAME_MAX_LEN {
        return Err(format!(
            "it is {length} characters long, more than {HOST_NAME_MAX_LEN}"
        ));
    }
    Ok(Address {
        host: text.to_string(),
        kind: AddressKind::HostName,
    })
}

/// Why `text` is not a user name for ssh, if it is not.
pub fn user_problem(text: &str) -> Option<String> {
    if let Err(problem) = common_problem(text, "a user name") {
        return Some(problem);
    }
    let body = text.strip_suffix('$').unwrap_or(text);
    if let Some(c) = body
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
    {
        return Some(contains(c, "a user name"));
    }
    let Some(first) = body.chars().next() else {
        return Some("it has nothing before `$`".to_string());
    };
    if !(first.is_ascii_lowercase() || first == '_') {
        return Some(format!(
            "it starts with `{first}`, not a lowercase letter or `_`"
        ));
    }
    let length = text.chars().count();
    (length > USER_MAX_LEN)
        .then(|| format!("it is {length} characters long, more than {USER_MAX_LEN}"))
}

/// Reads a port: 1 to 65535, decimal digits only.
pub fn parse_port(text: &str) -> Result<u16, String> {
    let digits = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(port) if digits && (1..=65535).contains(&port) => Ok(port as u16),
        Ok(0) if digits => Err("port 0 is not a port a server listens on".to_string()),
        Ok(_) | Err(_) if digits => Err("it is larger than 65535".to_string()),
        _ => Err("it is not a whole number".to_string()),
    }
}

/// Why `text` is not a usable key or known-hosts path, if it is not.
pub fn path_problem(text: &str) -> Option<String> {
    if let Err(problem) = common_problem(text, "a path") {
        return Some(problem);
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '%' | '$'))
    {
        let why = match c {
            '%' | '$' => "which ssh expands as a token or a variable",
            '"' | '\'' | '\\' => "which ssh's option parser reads as quoting",
            _ => "which ssh's option parser reads as a separator",
        };
        return Some(format!("it contains {}, {why}", describe(c)));
    }
    if text.starts_with('~') && !text.starts_with("~/") {
        return Some(
            "it starts with `~` but not `~/`: only `~/` (the home directory of the user running dbgroups) is expanded"
                .to_string(),
        );
    }
    None
}

/// A ProxyJump host, `[user@]host[:port]`, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub user: Option<String>,
    /// IPv6 without brackets.
    pub host: Address,
    pub port: Option<u16>,
}

/// Reads a `jump`: `[user@]host[:port]`, an IPv6 host in brackets.
pub fn parse_jump(text: &str) -> Result<Jump, String> {
    common_problem(text, "a jump host")?;
    if text.contains(',') {
        return Err(
            "it contains `,`: dbgroups takes one jump host (chain hosts in your ssh configuration)"
                .to_string(),
        );
    }
    let (user, rest) = match text.split_once('@') {
        Some((user, rest)) => {
            if rest.contains('@') {
                return Err("it contains more than one `@`".to_string());
            }
            if let Some(problem) = user_problem(user) {
                return Err(format!("its user \"{user}\" is refused: {problem}"));
            }
            (Some(user.to_string()), rest)
        }
        None => (None, text),
    };
    let (host_text, port_text) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((inner, after)) = bracketed.split_once(']') else {
            return Err("its `[` has no matching `]`".to_string());
        };
        let port =
            match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    format!("after `]` comes \"{after}\"; only `:PORT` may follow")
                })?),
            };
        (format!("[{inner}]"), port)
    } else {
        match rest.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(
                    "it has several `:`: write an IPv6 jump host in brackets, as in `[fd00::1]:22`"
                        .to_string(),
                );
            }
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (rest.to_string(), None),
        }
    };
    let host = parse_address(&host_text)
        .map_err(|problem| format!("its host \"{host_text}\" is refused: {problem}"))?;
    let port = port_text
        .map(|p| parse_port(p).map_err(|problem| format!("its port \"{p}\" is refused: {problem}")))
        .transpose()?;
    Ok(Jump { user, host, port })
}

/// The rules every value here shares: not empty, no leading `-`, no
/// whitespace or control characters.
fn common_problem(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("it is empty".to_string());
    }
    if text.starts_with('-') {
        return Err("it starts with `-`, so ssh would read it as an option".to_string());
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() || crate::escape::is_unsafe_for_terminal(c))
    {
        return Err(contains(c, what));
    }
    Ok(())
}

fn contains(c: char, what: &str) -> String {
    format!("it contains {}, which {what} may not hold", describe(c))
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '`' => "a backtick".to_string(),
        c if crate::escape::is_unsafe_for_terminal(c) => crate::escape::describe_control(c),
        c if c.is_whitespace() => format!("the space character U+{:04X}", u32::from(c)),
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for good in [
            "db5.internal",
            "DB5.Internal",
            "localhost",
            "10.0.0.11",
            "fd00::11",
            "[fd00::11]",
            "::1",
            "a-b.c1",
            "1a.example",
        ] {
            assert!(parse_address(good).is_ok(), "{good}");
        }
        assert_eq!(parse_address("[fd00::11]").expect("valid").host, "fd00::11");
        for bad in [
            "",
            "-oProxyCommand=sh",
            "a b",
            "h;rm -rf /",
            "$(id)",
            "`id`",
            "a/b",
            "a_b.internal",
            "a..b",
            "a.",
            ".a",
            "-a.b",
            "a-.b",
            "10.0.0.011",
            "10.0.0.256",
            "127.1",
            "0x7f000001",
            "host:22",
            "[fd00::11",
            "fd00::11]",
            "[db5]",
            "fe80::1%eth0",
            "a\nb",
            "ünï.example",
            "a,b",
            "a*",
            "a~",
            "a#",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
        let long_label = "a".repeat(64);
        assert!(parse_address(&long_label).is_err());
        let long_name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        assert!(parse_address(&long_name).is_err());
    }

    #[test]
    fn users() {
        for good in ["deploy", "_svc", "a-b_c1", "machine$", &"a".repeat(32)] {
            assert_eq!(user_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "-x",
            "Deploy",
            "1abc",
            "a b",
            "a;b",
            "a$b",
            "$",
            "a@b",
            &"a".repeat(33),
        ] {
            assert!(user_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("22"), Ok(22));
        assert_eq!(parse_port("65535"), Ok(65535));
        for bad in [
            "0",
            "65536",
            "70000",
            "99999999999",
            "-1",
            "+22",
            "22a",
            "",
            " 22",
        ] {
            assert!(parse_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths() {
        for good in ["~/.ssh/id_ed25519", "/etc/ssh/key", "keys/deploy", "./k"] {
            assert_eq!(path_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "-i",
            "a\nb",
            "a b",
            "~root/.ssh/k",
            "%d/k",
            "${HOME}/k",
            "a\"b",
            "a\\b",
        ] {
            assert!(path_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn jumps() {
        let jump = parse_jump("ops@bastion.example:2200").expect("valid");
        assert_eq!(jump.user.as_deref(), Some("ops"));
        assert_eq!(jump.host.host, "bastion.example");
        assert_eq!(jump.port, Some(2200));
        let jump = parse_jump("[fd00::1]:22").expect("valid");
        assert_eq!(jump.host.host, "fd00::1");
        assert!(parse_jump("bastion").is_ok());
        assert!(parse_jump("10.0.0.1").is_ok());
        for bad in [
            "",
            "-J",
            "a@b@c",
            "-x@bastion",
            "bastion:0",
            "bastion:70000",
            "bastion:",
            "fd00::1",
            "[fd00::1]x",
            "a,b",
            "bastion;id",
            "@bastion",
        ] {
            assert!(parse_jump(bad).is_err(), "{bad:?}");
        }
    }
}
