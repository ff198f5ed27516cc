//! Refresh: what the servers say about themselves, gathered before planning
//! so that the planner stays a pure function of its inputs.
//!
//! Today this asks each local server whether it accepts connections on its
//! recorded port. Replication health (broken, lagging) needs the engines'
//! clients, which come with `apply`; until then a broken slave is re-synced
//! with `--resync NAME`.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use dbgroups_manifest::ProviderKind;
use dbgroups_plan::{ObservedFacts, ServerHealth};
use dbgroups_state::AppState;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

pub(crate) fn observe(state: Option<&AppState>, refresh: bool) -> ObservedFacts {
    let mut facts = ObservedFacts::offline();
    let Some(state) = state.filter(|_| refresh) else {
        return facts;
    };
    facts.refreshed = true;
    for group in &state.groups {
        for server in &group.servers {
            // ssh hosts may be out of reach from where plan runs; only
            // servers on this machine are judged by a failed connection.
            if server.provider != ProviderKind::Local {
                continue;
            }
            let (Some(address), Some(port)) = (&server.address, server.port) else {
                continue;
            };
            let up = (address.as_str(), port)
                .to_socket_addrs()
                .ok()
                .into_iter()
                .flatten()
                .any(|addr: SocketAddr| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok());
            facts.servers.insert(
                server.unique_name.clone(),
                ServerHealth {
                    up,
                    replication: None,
                },
            );
        }
    }
    facts
}
