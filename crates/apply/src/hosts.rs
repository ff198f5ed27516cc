//! The hosts an apply works on, connected once, before its first step.

use std::collections::BTreeMap;

use dbgroups_engines::hosts::{Placement, connect};
use dbgroups_engines::{EngineError, HostRef, SshClient};
use dbgroups_state::{AppState, ServerState};

/// Each server's host. Connecting them all up front (at once) means an
/// unreachable host or an untrusted host key stops the apply before it
/// changes anything, naming the host.
#[derive(Debug, Clone)]
pub struct HostSet {
    local: HostRef,
    by_server: BTreeMap<String, HostRef>,
    /// Held while a server's access rules change ([`HostSet::changing_rules`]).
    rules: std::sync::Arc<tokio::sync::Mutex<()>>,
}

fn placement(server: &ServerState) -> Placement {
    Placement {
        provider: server.provider,
        address: server.address.clone(),
        provider_data: server.provider_data.clone(),
    }
}

impl HostSet {
    /// Only this machine's host.
    pub fn local(local: HostRef) -> Self {
        Self {
            local,
            by_server: BTreeMap::new(),
            rules: Default::default(),
        }
    }

    /// Connects the hosts of every server the states name (the first state
    /// naming a server wins: pass the plan's expected state first). The
    /// first host that cannot be reached is the error.
    pub async fn connect<'s>(
        local: HostRef,
        client: &SshClient,
        states: impl IntoIterator<Item = &'s AppState>,
    ) -> Result<Self, EngineError> {
        let (hosts, mut unreachable) = Self::connect_reachable(local, client, states).await;
        match unreachable.pop() {
            Some((_, err)) => Err(err),
            None => Ok(hosts),
        }
    }

    /// [`HostSet::connect`] that goes on without the hosts it cannot
    /// reach: their servers are left out, and each such host is returned
    /// with its error (refresh and `status` report them and carry on).
    pub async fn connect_reachable<'s>(
        local: HostRef,
        client: &SshClient,
        states: impl IntoIterator<Item = &'s AppState>,
    ) -> (Self, Vec<(String, EngineError)>) {
        Self::connect_reachable_with(local, client, states, &[]).await
    }

    /// [`HostSet::connect_reachable`] with the hosts of `declared` servers
    /// too (the manifest's, not built yet: refresh's preflight asks them).
    pub async fn connect_reachable_with<'s>(
        local: HostRef,
        client: &SshClient,
        states: impl IntoIterator<Item = &'s AppState>,
        declared: &[ServerState],
    ) -> (Self, Vec<(String, EngineError)>) {
        let mut wanted: BTreeMap<String, Placement> = BTreeMap::new();
        for state in states {
            for group in &state.groups {
                for server in &group.servers {
                    wanted
                        .entry(server.unique_name.clone())
                        .or_insert_with(|| placement(server));
                }
            }
            let pending = state.journal.iter().flat_map(|j| j.pending.iter());
            for (name, pending) in pending {
                wanted
                    .entry(name.clone())
                    .or_insert_with(|| placement(&pending.server));
            }
        }
        for server in declared {
            wanted
                .entry(server.unique_name.clone())
                .or_insert_with(|| placement(server));
        }
        let mut distinct: Vec<Placement> = wanted.values().cloned().collect();
        distinct.sort();
        distinct.dedup();
        let mut connecting = tokio::task::JoinSet::new();
        for (index, placement) in distinct.iter().enumerate() {
            let (placement, local, client) = (placement.clone(), local.clone(), client.clone());
            connecting.spawn(async move { (index, connect(&placement, &local, &client).await) });
        }
        let mut connected: BTreeMap<usize, HostRef> = BTreeMap::new();
        let mut unreachable = Vec::new();
        while let Some(joined) = connecting.join_next().await {
            match joined {
                Ok((index, Ok(host))) => {
                    connected.insert(index, host);
                }
                Ok((index, Err(err))) => {
                    let name = distinct[index].address.clone().unwrap_or_default();
                    unreachable.push((name, err));
                }
                Err(panicked) => unreachable.push((
                    "?".into(),
                    EngineError::Ssh {
                        host: "?".into(),
                        detail: format!("connecting panicked: {panicked}"),
                    },
                )),
            }
        }
        unreachable.sort_by(|a, b| b.0.cmp(&a.0));
        let by_server = wanted
            .into_iter()
            .filter_map(|(name, placement)| {
                let index = distinct.binary_search(&placement).ok()?;
                Some((name, connected.get(&index)?.clone()))
            })
            .collect();
        let rules = Default::default();
        (
            Self {
                local,
                by_server,
                rules,
            },
            unreachable,
        )
    }

    /// Whether `server`'s host was reached (a server on this machine
    /// always is).
    pub fn reaches(&self, server: &ServerState) -> bool {
        self.by_server.contains_key(&server.unique_name)
    }

    /// The host `server` is on (this machine's for a server it was not
    /// told of).
    pub fn of(&self, server: &str) -> HostRef {
        self.by_server
            .get(server)
            .cloned()
            .unwrap_or_else(|| self.local.clone())
    }

    /// The connected host a plan names (`BackupRef.host`: `local`, or a
    /// server's address).
    pub fn named(&self, name: &str) -> Option<HostRef> {
        self.distinct().into_iter().find(|host| host.name() == name)
    }

    /// One change of access rules at a time: an engine's rules are a
    /// read-modify-write of a file on the server's host (PostgreSQL's
    /// admitted peers), and two steps admitting two hosts to one master at
    /// once (two backups taken in parallel) would each drop the other's.
    pub async fn changing_rules(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.rules.lock().await
    }

    /// This machine's host.
    pub fn local_host(&self) -> &HostRef {
        &self.local
    }

    /// Every host once, this machine's first.
    pub fn distinct(&self) -> Vec<HostRef> {
        let mut hosts = vec![self.local.clone()];
        for host in self.by_server.values() {
            if !hosts.iter().any(|h| std::sync::Arc::ptr_eq(h, host)) {
                hosts.push(host.clone());
            }
        }
        hosts
    }
}
