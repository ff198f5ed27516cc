//! nftables rules for a server port on an ssh host, for the engines that
//! have no per-source rules of their own (Redis, MongoDB). dbgroups keeps
//! them in its own table, `inet dbgroups`, one base chain per server port
//! (`port_<P>`, on the input hook, policy accept): loopback and the listed
//! sources reach the port, everything else sent to it is dropped. The
//! host's other tables and rules are never touched, so ssh and whatever
//! else the host serves stay as they were; deleting a server's chain
//! leaves the rest. Each change is one `nft -f` transaction: the rules are
//! replaced at once, never half-written.

use std::net::IpAddr;

use crate::error::EngineError;

fn chain(port: u16) -> String {
    format!("port_{port}")
}

/// A source as nft reads it: an address or a network in CIDR form,
/// checked to be one (it reaches a root shell's script).
fn source(text: &str) -> Result<(String, bool), EngineError> {
    let refused = || EngineError::Command {
        command: "nft".into(),
        status: "refused".into(),
        stderr: format!("\"{text}\" is not an address or a network"),
    };
    let (address, prefix) = text.split_once('/').unwrap_or((text, ""));
    let address: IpAddr = address.parse().map_err(|_| refused())?;
    if !prefix.is_empty() {
        let bits: u8 = prefix.parse().map_err(|_| refused())?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        if bits > most {
            return Err(refused());
        }
        return Ok((format!("{address}/{bits}"), address.is_ipv4()));
    }
    Ok((address.to_string(), address.is_ipv4()))
}

/// The script that lets exactly `sources` (and loopback) reach TCP `port`
/// (for `server`, named in the chain's comment).
pub(super) fn restrict(server: &str, port: u16, sources: &[String]) -> Result<String, EngineError> {
    let chain = chain(port);
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for text in sources {
        let (source, is_v4) = source(text)?;
        if is_v4 { &mut v4 } else { &mut v6 }.push(source);
    }
    let comment = server
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect::<String>();
    let mut rules = format!(
        "table inet dbgroups {{}}\n\
         add chain inet dbgroups {chain} {{ type filter hook input priority 0; policy accept; comment \"dbgroups server {comment}\"; }}\n\
         flush chain inet dbgroups {chain}\n\
         add rule inet dbgroups {chain} tcp dport {port} iif lo accept\n"
    );
    if !v4.is_empty() {
        rules.push_str(&format!(
            "add rule inet dbgroups {chain} tcp dport {port} ip saddr {{ {} }} accept\n",
            v4.join(", ")
        ));
    }
    if !v6.is_empty() {
        rules.push_str(&format!(
            "add rule inet dbgroups {chain} tcp dport {port} ip6 saddr {{ {} }} accept\n",
            v6.join(", ")
        ));
    }
    rules.push_str(&format!(
        "add rule inet dbgroups {chain} tcp dport {port} drop\n"
    ));
    Ok(format!(
        "nft -f - <<'DBGROUPS_RULES'\n{rules}DBGROUPS_RULES\n"
    ))
}

/// The script that removes the rules of `port`, if there are any.
pub(super) fn unrestrict(port: u16) -> String {
    let chain = chain(port);
    format!(
        "if nft list chain inet dbgroups {chain} >/dev/null 2>&1; then \
         nft -f - <<'DBGROUPS_RULES'\nflush chain inet dbgroups {chain}\ndelete chain inet dbgroups {chain}\nDBGROUPS_RULES\nfi\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_let_in_loopback_and_the_sources_and_drop_the_rest_of_the_port() {
        let script = restrict(
            "cache-main",
            6379,
            &[
                "198.18.0.2".into(),
                "10.0.1.0/24".into(),
                "2001:db8::7".into(),
            ],
        )
        .expect("script");
        assert!(script.contains("add rule inet dbgroups port_6379 tcp dport 6379 iif lo accept\n"));
        assert!(script.contains("ip saddr { 198.18.0.2, 10.0.1.0/24 } accept\n"));
        assert!(script.contains("ip6 saddr { 2001:db8::7 } accept\n"));
        assert!(
            script.ends_with(
                "add rule inet dbgroups port_6379 tcp dport 6379 drop\nDBGROUPS_RULES\n"
            )
        );
        assert!(script.contains("flush chain inet dbgroups port_6379\n"));
    }

    #[test]
    fn anything_that_is_not_an_address_is_refused() {
        for bad in ["10.0.0.0/33", "x; reboot", "10.0.0.1 } accept", "::1/129"] {
            assert!(restrict("s", 6379, &[bad.into()]).is_err(), "{bad}");
        }
    }
}
