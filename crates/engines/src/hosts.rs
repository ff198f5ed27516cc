//! Which host a recorded server is on: the one place a provider is told
//! apart from another, so the executor and the CLI hold hosts without
//! knowing what reaches them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dbgroups_manifest::ProviderKind;

use crate::error::EngineError;
use crate::host::HostRef;
use crate::ssh::{SshClient, SshHost, SshTarget};

/// The `provider_data` keys a server of the ssh provider records, so that
/// a later apply (a destroy with an empty manifest too) reaches it again.
pub const SSH_USER: &str = "ssh_user";
pub const SSH_PORT: &str = "ssh_port";
pub const SSH_IDENTITY_FILE: &str = "ssh_identity_file";
pub const SSH_KNOWN_HOSTS_FILE: &str = "ssh_known_hosts_file";
pub const SSH_JUMP: &str = "ssh_jump";

/// How to reach a server's host, as its state records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Placement {
    pub provider: ProviderKind,
    pub address: Option<String>,
    pub provider_data: BTreeMap<String, String>,
}

/// The ssh target of a placement on an existing host.
fn ssh_target(placement: &Placement) -> Result<SshTarget, EngineError> {
    let address = placement.address.clone().ok_or_else(|| {
        EngineError::StateMismatch("a server on an ssh host has no address".into())
    })?;
    let data = &placement.provider_data;
    let port = match data.get(SSH_PORT) {
        Some(port) => Some(port.parse().map_err(|_| EngineError::Ssh {
            host: address.clone(),
            detail: format!("the recorded ssh port {port:?} is not a port"),
        })?),
        None => None,
    };
    Ok(SshTarget {
        address,
        user: data.get(SSH_USER).cloned(),
        port,
        identity_file: data.get(SSH_IDENTITY_FILE).map(PathBuf::from),
        known_hosts_file: data.get(SSH_KNOWN_HOSTS_FILE).map(PathBuf::from),
        jump: data.get(SSH_JUMP).cloned(),
    })
}

/// The host a placement names: `local` itself, or an ssh host connected
/// (and made ready for servers) now.
pub async fn connect(
    placement: &Placement,
    local: &HostRef,
    client: &SshClient,
) -> Result<HostRef, EngineError> {
    match placement.provider {
        ProviderKind::Local => Ok(local.clone()),
        ProviderKind::Ssh => {
            let target = ssh_target(placement)?;
            Ok(std::sync::Arc::new(
                SshHost::connect(target, client.clone()).await?,
            ))
        }
    }
}
