//! Rules that span more than one value: versions against the catalogue,
//! names across the application, and replication between groups. They run on
//! whatever the reader could build, so one run reports every problem.

use std::collections::{BTreeMap, HashMap};

use crate::catalogue::{self, VersionProblem};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::env_names;
use crate::keys::{CLOUD_VENDORS, SUPPORTED_VENDORS};
use crate::model::{DbType, Group, GroupRef, Manifest, ProviderKind};
use crate::source::Span;
use crate::suggest;

pub(crate) fn validate(manifest: &Manifest, out: &mut Diagnostics) {
    check_versions(manifest, out);
    check_servers(manifest, out);
    check_variable_names(manifest, out);
    check_primaries(manifest, out);
    check_references(manifest, out);
}

fn check_versions(manifest: &Manifest, out: &mut Diagnostics) {
    for group in &manifest.groups {
        let Some(written) = &group.configuration.version else {
            continue;
        };
        if group.configuration.engine_unrecognised {
            continue; // the engine error says it all; a version check would guess
        }
        let engine = group.engine();
        let known = known_versions(engine);
        match catalogue::lookup(engine, &written.value) {
            Ok(release) if release.end_of_life => {
                let current: Vec<&str> = catalogue::releases(engine)
                    .filter(|r| !r.end_of_life)
                    .map(|r| r.series)
                    .collect();
                out.push(
                    Diagnostic::warning(
                        Code::EndOfLifeVersion,
                        format!("{engine} {} is past its end of life", release.series),
                        written.span,
                    )
                    .with_help(format!(
                        "it is accepted, but no longer gets security fixes; supported series: {}",
                        current.join(", ")
                    )),
                );
            }
            Ok(_) => {}
            Err(VersionProblem::Unparseable) => out.push(
                Diagnostic::error(
                    Code::UnsupportedVersion,
                    format!("version \"{}\" is not a version number", written.value),
                    written.span,
                )
                .with_help(format!("write digits and dots; {known}")),
            ),
            Err(VersionProblem::NotInCatalogue { .. }) => {
                let help = known.clone();
                out.push(
                    Diagnostic::error(
                        Code::UnsupportedVersion,
                        format!("{engine} {} is not a supported version", written.value),
                        written.span,
                    )
                    .with_help(help),
                );
            }
        }
    }
}

/// "supported postgresql versions: 15, 16; past end of life (accepted with
/// a warning): 9.6, 10", for the help of a version the catalogue lacks.
fn known_versions(engine: crate::model::Engine) -> String {
    let series = |end_of_life: bool| {
        catalogue::releases(engine)
            .filter(|r| r.end_of_life == end_of_life)
            .map(|r| r.series)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (supported, past) = (series(false), series(true));
    if past.is_empty() {
        format!("supported {engine} versions: {supported}")
    } else {
        format!(
            "supported {engine} versions: {supported}; past end of life (accepted with a warning): {past}"
        )
    }
}

/// A MongoDB replica set has at most 50 members (manual, "Replica Set
/// Members"); of those at most 7 vote, which the engine sees to.
pub(crate) const MONGODB_MAX_MEMBERS: usize = 50;

fn check_servers(manifest: &Manifest, out: &mut Diagnostics) {
    for group in &manifest.groups {
        if group.db_type == DbType::Mongodb && group.servers.len() > MONGODB_MAX_MEMBERS {
            let first_extra = &group.servers[MONGODB_MAX_MEMBERS].unique_name;
            out.push(
                Diagnostic::error(
                    Code::TooManyMembers,
                    format!(
                        "group {} declares {} servers, but a MongoDB replica set has at most {MONGODB_MAX_MEMBERS} members",
                        group.address(),
                        group.servers.len()
                    ),
                    first_extra.span,
                )
                .with_caption("server 51")
                .with_label(group.name.span, "group declared here")
                .with_help("declare at most 50 servers; only 7 of them vote, the others join with votes: 0 and priority: 0"),
            );
        }
        if let Some(add) = &group.add_odd_member
            && group.db_type != DbType::Mongodb
        {
            out.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!(
                        "add_odd_member applies to MongoDB groups only, and {} is a {} group",
                        group.address(),
                        group.db_type
                    ),
                    add.span,
                )
                .with_help(
                    "remove add_odd_member: only a MongoDB replica set keeps an odd member count",
                ),
            );
        }
        if group.servers.is_empty() {
            out.push(
                Diagnostic::warning(
                    Code::NoServers,
                    format!("group {} declares no servers", group.address()),
                    group.name.span,
                )
                .with_help("it is valid, but nothing is built for it until it lists `servers:`"),
            );
        }
    }

    // Names are compared without case: they become hostnames and paths.
    let mut first_use: HashMap<String, Span> = HashMap::new();
    for (_, server) in manifest.servers() {
        check_vendor(server, out);
        check_local_ssh(server, out);
        let name = &server.unique_name;
        if name.value.is_empty() {
            continue; // reported as missing by the reader
        }
        match first_use.get(&name.value.to_lowercase()) {
            Some(&first) => out.push(
                Diagnostic::error(
                    Code::DuplicateServer,
                    format!("server name \"{}\" is already used", name.value),
                    name.span,
                )
                .with_caption("used again here")
                .with_label(first, "first used here")
                .with_help(
                    "unique_name must be unique across the application, in every group and type",
                ),
            ),
            None => {
                first_use.insert(name.value.to_lowercase(), name.span);
            }
        }
    }
}

fn check_vendor(server: &crate::model::Server, out: &mut Diagnostics) {
    let Some(vendor) = &server.vendor else {
        return;
    };
    let providers = "vendors with a provider: local (this machine, the default) and ssh (an existing host named by `address`)";
    match vendor.value.as_str() {
        "local" => {
            if let Some(address) = &server.address {
                out.push(
                    Diagnostic::error(
                        Code::UnsupportedVendor,
                        "`address` names an existing host, which the local provider does not use",
                        address.span,
                    )
                    .with_label(vendor.span, "local provider chosen here")
                    .with_help("remove `address` to run the server on this machine, or remove `vendor: local`: a server with an `address` is reached over ssh"),
                );
            }
        }
        "ssh" => {
            if server.address.is_none() {
                out.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        "an ssh server needs an `address`",
                        vendor.span,
                    )
                    .with_help("add address: HOST, the existing host to use"),
                );
            }
        }
        cloud if CLOUD_VENDORS.contains(&cloud) => out.push(
            Diagnostic::error(
                Code::UnsupportedVendor,
                format!("vendor \"{cloud}\" has no provider in dbgroups"),
                vendor.span,
            )
            .with_help(providers),
        ),
        other => {
            let mut message = format!("unknown vendor \"{other}\"");
            if let Some(best) = suggest::did_you_mean(other, SUPPORTED_VENDORS.iter().copied()) {
                message.push_str(&format!(", did you mean \"{best}\"?"));
            }
            out.push(
                Diagnostic::error(Code::UnsupportedVendor, message, vendor.span)
                    .with_help(providers),
            );
        }
    }
}

/// `ssh:` and `public_address` describe a server on an existing host; a
/// server of the local provider runs on this machine and has no use for them.
fn check_local_ssh(server: &crate::model::Server, out: &mut Diagnostics) {
    if server.provider() != ProviderKind::Local {
        return;
    }
    let name = &server.unique_name.value;
    let mut misplaced = Vec::new();
    if let Some(ssh) = &server.ssh {
        misplaced.push(("ssh:", ssh.span));
    }
    if let Some(public) = &server.public_address {
        misplaced.push(("public_address", public.span));
    }
    for (key, span) in misplaced {
        let help = if server.vendor.is_some() {
            format!(
                "`vendor: local` runs the server on this machine: remove `{key}`, or replace `vendor: local` with `address: HOST` to put the server on an existing host"
            )
        } else {
            format!(
                "add `address: HOST` to put the server on an existing host reached over ssh, or remove `{key}` to run it on this machine"
            )
        };
        out.push(
            Diagnostic::error(
                Code::SshOnLocalServer,
                format!(
                    "`{key}` applies only to a server on an existing host (one with `address`), and server \"{name}\" runs on this machine (the local provider)"
                ),
                span,
            )
            .with_help(help),
        );
    }
}

/// Two groups whose names differ only in punctuation or case would write the
/// same variables, and a group named like a root suffix could shadow one.
fn check_variable_names(manifest: &Manifest, out: &mut Diagnostics) {
    for db_type in DbType::ALL {
        let mut owners: HashMap<String, Option<&Group>> = env_names::root_names(db_type)
            .into_iter()
            .map(|name| (name, None))
            .collect();
        for group in manifest.groups_of(db_type) {
            let clash = env_names::group_names(db_type, &group.name.value)
                .into_iter()
                .find_map(|name| owners.get(&name).map(|owner| (name, *owner)));
            if let Some((name, owner)) = clash {
                let mut diagnostic = Diagnostic::error(
                    Code::EnvironmentVariableClash,
                    match owner {
                        Some(other) => format!(
                            "group \"{}\" would set {name}, which group \"{}\" already sets",
                            group.name.value, other.name.value
                        ),
                        None => format!(
                            "group \"{}\" would set {name}, which is a root variable of the primary group",
                            group.name.value
                        ),
                    },
                    group.name.span,
                )
                .with_help("rename the group: variable names upper-case it and turn other characters into `_`");
                if let Some(other) = owner {
                    diagnostic = diagnostic.with_label(other.name.span, "declared here");
                }
                out.push(diagnostic);
                continue;
            }
            for name in env_names::group_names(db_type, &group.name.value) {
                owners.insert(name, Some(group));
            }
        }
    }
}

fn check_primaries(manifest: &Manifest, out: &mut Diagnostics) {
    for group in &manifest.groups {
        let Some(primary) = group.primary.as_ref().filter(|p| p.value) else {
            continue;
        };
        let prefix = env_names::prefix(group.db_type);
        if group.servers.is_empty() {
            // The root variables would have no server to point at, and
            // quietly following another group instead is a surprise.
            out.push(
                Diagnostic::error(
                    Code::PrimaryWithoutServers,
                    format!(
                        "group {} is marked primary but declares no servers",
                        group.address()
                    ),
                    primary.span,
                )
                .with_label(group.name.span, "this group has no servers")
                .with_help(format!(
                    "the root {prefix} variables point at the primary group's master: add its servers, or move `primary: true` to a group that has some"
                )),
            );
        }
        if let Some(reference) = &group.replicate_from {
            out.push(
                Diagnostic::warning(
                    Code::ReplicaIsPrimary,
                    format!(
                        "group {} is marked primary but replicates from another group, so its server is read-only",
                        group.address()
                    ),
                    primary.span,
                )
                .with_label(reference.span, "replicates from here")
                .with_help(format!(
                    "the root {prefix} variables would point the application at a read-only replica: mark the source group primary instead, unless reads are all it does"
                )),
            );
        }
    }
    for db_type in DbType::ALL {
        let mut primaries = manifest
            .groups_of(db_type)
            .filter_map(|g| g.primary.as_ref().filter(|p| p.value).map(|p| (g, p.span)));
        let Some((first, first_span)) = primaries.next() else {
            continue;
        };
        for (group, span) in primaries {
            out.push(
                Diagnostic::error(
                    Code::MultiplePrimaries,
                    format!(
                        "more than one {db_type} group is primary: \"{}\" and \"{}\"",
                        first.name.value, group.name.value
                    ),
                    span,
                )
                .with_label(first_span, "first primary here")
                .with_help(format!(
                    "the root {} variables follow one group: keep `primary: true` on one",
                    env_names::prefix(db_type)
                )),
            );
        }
    }
}

/// Which edge of the group graph a reference is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Replicate,
    Import,
}

impl RefKind {
    fn key(self) -> &'static str {
        match self {
            RefKind::Replicate => "replicate_from",
            RefKind::Import => "import_from",
        }
    }

    fn of(self, group: &Group) -> Option<&GroupRef> {
        match self {
            RefKind::Replicate => group.replicate_from.as_ref(),
            RefKind::Import => group.import_from.as_ref(),
        }
    }
}

fn check_references(manifest: &Manifest, out: &mut Diagnostics) {
    let own_app = manifest.application.as_ref().map(|a| a.value.as_str());
    // Resolved same-application edges, by index into manifest.groups.
    let mut replicate: BTreeMap<usize, usize> = BTreeMap::new();
    let mut import: BTreeMap<usize, usize> = BTreeMap::new();
    for (index, group) in manifest.groups.iter().enumerate() {
        if let (Some(_), Some(import)) = (&group.replicate_from, &group.import_from) {
            out.push(
                Diagnostic::error(
                    Code::ImportAndReplicate,
                    format!("group {} both imports and replicates", group.address()),
                    import.span,
                )
                .with_help(
                    "replication already starts from a full copy of the source: remove import_from",
                ),
            );
        }
        for kind in [RefKind::Replicate, RefKind::Import] {
            let Some(reference) = kind.of(group) else {
                continue;
            };
            if reference.is_cross_application(own_app) {
                if kind == RefKind::Replicate && group.db_type == DbType::Mongodb {
                    out.push(
                        Diagnostic::error(
                            Code::CrossApplicationMongodb,
                            "MongoDB replication between applications is not supported",
                            reference.span,
                        )
                        .with_help("a replica set lives inside one application; use import_from for a one-time copy"),
                    );
                }
                // The other application's groups are in recorded state, which
                // the planner checks.
                continue;
            }
            if kind == RefKind::Replicate && group.db_type == DbType::Mongodb {
                out.push(
                    Diagnostic::error(
                        Code::MongodbGroupReplication,
                        "replication between MongoDB groups is not supported: each MongoDB group is its own replica set, and a mongod belongs to one set",
                        reference.span,
                    )
                    .with_help("add the server to the source group's `servers` (a scale up), or use import_from for a one-time copy"),
                );
                continue;
            }
            let Some(source_index) = resolve(manifest, group, reference, kind, out) else {
                continue;
            };
            match kind {
                RefKind::Replicate => replicate.insert(index, source_index),
                RefKind::Import => import.insert(index, source_index),
            };
            if source_index != index {
                check_compatible(&manifest.groups[source_index], group, reference, kind, out);
            }
        }
        if let Some(reference) = &group.replicate_from
            && group.servers.len() > 1
        {
            let mut diagnostic = Diagnostic::error(
                Code::ReplicaHasSlaves,
                format!(
                    "group {} replicates from another group, so it can have only one server; it has {}",
                    group.address(),
                    group.servers.len()
                ),
                reference.span,
            )
            .with_help("a group with slaves of its own cannot be slaved to another group: keep one server, or remove replicate_from");
            if let Some(servers) = group.servers_key {
                diagnostic =
                    diagnostic.with_label(servers, format!("{} servers", group.servers.len()));
            }
            out.push(diagnostic);
        }
    }
    let in_cycle = report_cycles(manifest, &replicate, RefKind::Replicate, out);
    report_cycles(manifest, &import, RefKind::Import, out);
    check_chains(manifest, &replicate, &in_cycle, out);
}

/// The index of the group a same-application reference names, or a
/// diagnostic saying why there is none.
fn resolve(
    manifest: &Manifest,
    group: &Group,
    reference: &GroupRef,
    kind: RefKind,
    out: &mut Diagnostics,
) -> Option<usize> {
    let name = &reference.group.value;
    if let Some(found) = manifest
        .groups
        .iter()
        .position(|g| g.db_type == group.db_type && &g.name.value == name)
    {
        return Some(found);
    }
    if let Some(other) = manifest.groups.iter().find(|g| &g.name.value == name) {
        out.push(
            Diagnostic::error(
                Code::GroupTypeMismatch,
                format!(
                    "{} names \"{name}\", a {} group; a {} group can only use another {} group",
                    kind.key(),
                    other.db_type,
                    group.db_type,
                    group.db_type
                ),
                reference.group.span,
            )
            .with_label(
                other.name.span,
                format!("{} group declared here", other.db_type),
            ),
        );
        return None;
    }
    let same_type: Vec<&str> = manifest
        .groups_of(group.db_type)
        .map(|g| g.name.value.as_str())
        .collect();
    let mut message = format!("no {} group named \"{name}\"", group.db_type);
    if let Some(best) = suggest::did_you_mean(name, same_type.iter().copied()) {
        message.push_str(&format!(", did you mean \"{best}\"?"));
    }
    let help = if same_type.is_empty() {
        format!("this manifest declares no {} groups", group.db_type)
    } else {
        format!("{} groups here: {}", group.db_type, same_type.join(", "))
    };
    out.push(Diagnostic::error(Code::UnknownGroup, message, reference.group.span).with_help(help));
    None
}

fn check_compatible(
    source: &Group,
    target: &Group,
    reference: &GroupRef,
    kind: RefKind,
    out: &mut Diagnostics,
) {
    let (Some(source_version), Some(target_version)) = (source.version(), target.version()) else {
        return; // an unparseable version was reported already
    };
    let verdict = match kind {
        RefKind::Replicate => catalogue::check_replication(
            (source.engine(), &source_version),
            (target.engine(), &target_version),
        ),
        RefKind::Import => catalogue::check_import(
            (source.engine(), &source_version),
            (target.engine(), &target_version),
        ),
    };
    if let Err(reason) = verdict {
        let version_span = |g: &Group| {
            g.configuration
                .version
                .as_ref()
                .map_or(g.name.span, |v| v.span)
        };
        out.push(
            Diagnostic::error(
                Code::IncompatibleVersions,
                format!(
                    "group {} cannot {} {}: {reason}",
                    target.address(),
                    match kind {
                        RefKind::Replicate => "replicate from",
                        RefKind::Import => "import from",
                    },
                    source.address()
                ),
                reference.span,
            )
            .with_label(version_span(target), "this group's version")
            .with_label(version_span(source), "source version"),
        );
    }
}

/// Reports each cycle of `edges` once, at its first group in declaration
/// order, and returns every group that lies on a cycle.
fn report_cycles(
    manifest: &Manifest,
    edges: &BTreeMap<usize, usize>,
    kind: RefKind,
    out: &mut Diagnostics,
) -> Vec<usize> {
    let mut on_cycle = Vec::new();
    for &start in edges.keys() {
        if on_cycle.contains(&start) {
            continue;
        }
        // Each group has at most one outgoing edge, so walking from a group
        // either ends or comes back to a group seen on this walk.
        let mut path = vec![start];
        let mut current = start;
        while let Some(&next) = edges.get(&current) {
            if let Some(at) = path.iter().position(|&seen| seen == next) {
                let cycle = &path[at..];
                if cycle.contains(&start) {
                    on_cycle.extend_from_slice(cycle);
                    let first = *cycle.iter().min().expect("a cycle has a group");
                    report_cycle(manifest, cycle, first, kind, out);
                }
                break;
            }
            path.push(next);
            current = next;
        }
    }
    on_cycle
}

fn report_cycle(
    manifest: &Manifest,
    cycle: &[usize],
    first: usize,
    kind: RefKind,
    out: &mut Diagnostics,
) {
    let rotate = cycle.iter().position(|&g| g == first).unwrap_or(0);
    let ordered: Vec<usize> = cycle[rotate..]
        .iter()
        .chain(&cycle[..rotate])
        .copied()
        .collect();
    let mut names: Vec<String> = ordered
        .iter()
        .map(|&g| manifest.groups[g].address())
        .collect();
    names.push(manifest.groups[first].address());
    let group = &manifest.groups[first];
    let span = kind.of(group).map_or(group.name.span, |r| r.span);
    let message = if cycle.len() == 1 {
        format!("group {} names itself in {}", group.address(), kind.key())
    } else {
        format!("{} forms a cycle: {}", kind.key(), names.join(" → "))
    };
    let mut diagnostic = Diagnostic::error(Code::ReplicationCycle, message, span).with_help(
        "every copy needs a source that is not itself waiting on a copy: break the cycle",
    );
    for &other in ordered.iter().skip(1) {
        if let Some(reference) = kind.of(&manifest.groups[other]) {
            diagnostic = diagnostic.with_label(reference.span, "part of the cycle");
        }
    }
    out.push(diagnostic);
}

/// A group that replicates from another group cannot itself be a source.
fn check_chains(
    manifest: &Manifest,
    replicate: &BTreeMap<usize, usize>,
    in_cycle: &[usize],
    out: &mut Diagnostics,
) {
    for (index, group) in manifest.groups.iter().enumerate() {
        if in_cycle.contains(&index) {
            continue;
        }
        let Some(own_reference) = &group.replicate_from else {
            continue;
        };
        let replicas: Vec<usize> = replicate
            .iter()
            .filter(|&(&replica, &source)| source == index && replica != index)
            .map(|(&replica, _)| replica)
            .collect();
        if replicas.is_empty() {
            continue;
        }
        let names: Vec<String> = replicas
            .iter()
            .map(|&r| manifest.groups[r].address())
            .collect();
        let mut diagnostic = Diagnostic::error(
            Code::ChainedReplication,
            format!(
                "group {} replicates from another group and is itself the replication source of {}",
                group.address(),
                names.join(", ")
            ),
            own_reference.span,
        )
        .with_help("a replication master in one group cannot be a slave of another group: point the replicas at the original source, or remove this replicate_from");
        for &replica in &replicas {
            if let Some(reference) = &manifest.groups[replica].replicate_from {
                diagnostic = diagnostic.with_label(reference.span, "replicates from it here");
            }
        }
        out.push(diagnostic);
    }
}
