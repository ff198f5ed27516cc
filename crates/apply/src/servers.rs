//! Recorded servers as the engine interface addresses them: the one place
//! state's records become [`ServerRef`]s and [`GroupAccess`]es, shared by
//! the executor and the CLI's `status` and refresh.

use std::sync::Arc;

use dbgroups_engines::engine::{
    Exposure, GroupAccess, Observation, ObserveRequest, Operation, Peer, ServerRef,
};
use dbgroups_engines::{EngineError, HostRef, engine_for};
use dbgroups_state::{AppState, Authority, Credentials, GroupState, Role, ServerState};

/// A recorded server with a port, on `host`, in an application whose
/// authority is `authority`.
pub fn server_ref(
    host: &HostRef,
    group: &GroupState,
    server: &ServerState,
    authority: Option<&Authority>,
) -> Option<ServerRef> {
    Some(ServerRef {
        host: host.clone(),
        name: server.unique_name.clone(),
        engine: group.engine,
        version: group.version.clone(),
        port: server.port?,
        exposure: exposure(host, &group.allow_from, authority),
    })
}

/// How a server on `host` letting in `allow_from` is reached beyond loopback: on a host
/// others reach over the network, with its application's authority.
pub fn exposure(
    host: &HostRef,
    allow_from: &[String],
    authority: Option<&Authority>,
) -> Option<Arc<Exposure>> {
    let authority = authority.filter(|_| host.reached_over_network())?;
    Some(Arc::new(Exposure {
        authority: authority.certificate.clone(),
        allow_from: allow_from.to_vec(),
    }))
}

/// A group's accounts, all its secrets included (an operation is handed
/// `only` the ones its engine asks for).
pub fn group_access(application: &str, group: &str, credentials: &Credentials) -> GroupAccess {
    let expose =
        |secret: &Option<dbgroups_state::Secret>| secret.as_ref().map(|s| s.expose().to_string());
    GroupAccess {
        username: credentials.username.clone(),
        database: credentials.database.clone(),
        account_database: credentials.auth_database.clone(),
        set_name: dbgroups_plan::env::replica_set_name(application, group),
        admin: expose(&credentials.admin_password),
        replication: expose(&credentials.replication_password),
        app: expose(&credentials.password),
    }
}

/// Whether a server replicates: a slave, or the master of a group that
/// replicates from another.
pub fn is_replica(group: &GroupState, server: &ServerState) -> bool {
    server.role == Role::Slave || group.replicate_from.is_some()
}

/// The server `server` streams from: its group's master for a slave; for
/// the master of a group that replicates from another group (of this
/// application or another, found by `application_state`), that group's
/// master. Returns the upstream's application, group and server.
pub fn upstream_of<'a>(
    application: &str,
    group: &'a GroupState,
    server: &str,
    application_state: impl Fn(&str) -> Option<&'a AppState>,
) -> Option<(String, &'a GroupState, &'a ServerState)> {
    let within = group
        .master()
        .filter(|m| m.unique_name != server)
        .map(|m| (application.to_string(), group, m));
    within.or_else(|| {
        let source = group.replicate_from.as_ref()?;
        let state = application_state(&source.application)?;
        let source_group = state
            .group(group.db_type, &source.group)
            .or_else(|| state.server(&source.group).map(|(g, _)| g))?;
        Some((
            source.application.clone(),
            source_group,
            source_group.master()?,
        ))
    })
}

/// Asks a recorded server of `state` how it is, through its engine: the one
/// path of `status` and refresh. `known_servers` names replicas by server
/// rather than by slot. An error when it cannot even be asked (no port or
/// credentials recorded, its programs missing).
pub async fn observe(
    hosts: &crate::hosts::HostSet,
    state: &AppState,
    group: &GroupState,
    server: &ServerState,
    known_servers: &[String],
) -> Result<Observation, EngineError> {
    let engine = engine_for(group.db_type);
    let authority = state.authority.as_ref();
    let target =
        server_ref(&hosts.of(&server.unique_name), group, server, authority).ok_or_else(|| {
            EngineError::StateMismatch(format!("{} has no recorded port", server.unique_name))
        })?;
    let access_of = |group: &GroupState| {
        state
            .credentials
            .get(&group.address())
            .map(|c| {
                group_access(&state.application, &group.name, c)
                    .only(engine.secrets_for(Operation::Observe))
            })
            .ok_or_else(|| {
                EngineError::StateMismatch(format!(
                    "no credentials recorded for {}",
                    group.address()
                ))
            })
    };
    let access = access_of(group)?;
    // Only an upstream in this application is asked (another
    // application's servers are its own business).
    let upstream = upstream_of(
        &state.application,
        group,
        &server.unique_name,
        |application| (application == state.application).then_some(state),
    )
    .and_then(|(_, group, master)| {
        Some(Peer {
            server: server_ref(&hosts.of(&master.unique_name), group, master, authority)?,
            access: access_of(group).ok()?,
        })
    });
    engine
        .observe(ObserveRequest {
            server: &target,
            access: &access,
            replica: is_replica(group, server),
            upstream: upstream.as_ref(),
            known_servers,
        })
        .await
}
