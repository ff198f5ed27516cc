//! The recorded state of one application (docs/state.md).

use std::collections::BTreeMap;

use dbgroups_manifest::{DbType, Engine, ProviderKind, env_names};
use serde::{Deserialize, Serialize};

/// The state format this build reads and writes. A file with a larger
/// number was written by a newer dbgroups and is refused, never rewritten.
pub const FORMAT_VERSION: u32 = 1;

/// Shown instead of a secret in every rendering.
pub const MASK: &str = "(sensitive)";

/// Everything dbgroups knows about one application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppState {
    pub format_version: u32,
    /// Identifies this state's history; set once when the state is created.
    /// A plan made against one lineage never applies to another.
    pub lineage: String,
    /// Grows by one with every write.
    pub serial: u64,
    pub application: String,
    /// How the secrets below are encrypted; absent when they are plain
    /// text (docs/state.md, "Encryption").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::secrets::EncryptionHeader>,
    #[serde(default)]
    pub groups: Vec<GroupState>,
    /// Per group address (`postgresql.default`).
    #[serde(default)]
    pub credentials: BTreeMap<String, Credentials>,
    #[serde(default)]
    pub backups: Vec<BackupRecord>,
    /// The variables last written to the environment file. The values of
    /// secret variables are sealed like every [`Secret`].
    #[serde(default, with = "crate::secrets::codec::environment")]
    pub environment: BTreeMap<String, String>,
    /// The apply in progress, if one was interrupted.
    #[serde(default)]
    pub journal: Option<Journal>,
    /// The application's certificate authority, made by the first apply
    /// that put a server on a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<Authority>,
}

/// An application's certificate authority: its certificate (public, given
/// to clients as `<P>_CA_CERT`) and its key (a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    pub certificate: String,
    pub key: Secret,
    /// Seconds since the Unix epoch.
    pub expires: u64,
}

impl AppState {
    /// An empty state with a fresh lineage, not yet written (serial 0).
    pub fn new(application: impl Into<String>) -> Self {
        Self::with_lineage(application, uuid::Uuid::new_v4().to_string())
    }

    /// An empty state with the given lineage. The planner uses this (with a
    /// placeholder) because it must not draw random numbers.
    pub fn with_lineage(application: impl Into<String>, lineage: impl Into<String>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            lineage: lineage.into(),
            serial: 0,
            application: application.into(),
            encryption: None,
            groups: Vec::new(),
            credentials: BTreeMap::new(),
            backups: Vec::new(),
            environment: BTreeMap::new(),
            journal: None,
            authority: None,
        }
    }

    pub fn group(&self, db_type: DbType, name: &str) -> Option<&GroupState> {
        self.groups
            .iter()
            .find(|g| g.db_type == db_type && g.name == name)
    }

    pub fn group_mut(&mut self, db_type: DbType, name: &str) -> Option<&mut GroupState> {
        self.groups
            .iter_mut()
            .find(|g| g.db_type == db_type && g.name == name)
    }

    /// The server and its group, by `unique_name`.
    pub fn server(&self, unique_name: &str) -> Option<(&GroupState, &ServerState)> {
        self.groups.iter().find_map(|g| {
            g.servers
                .iter()
                .find(|s| s.unique_name == unique_name)
                .map(|s| (g, s))
        })
    }

    /// Whether some secrets were read without the passphrase and stay
    /// sealed: what a command that uses secrets must refuse.
    pub fn has_sealed_secrets(&self) -> bool {
        crate::secrets::sealed_secrets(self) > 0
    }

    /// A copy safe to show: passwords and secret variables masked.
    pub fn redacted(&self) -> AppState {
        let mut copy = self.clone();
        for credentials in copy.credentials.values_mut() {
            for secret in [
                &mut credentials.password,
                &mut credentials.admin_password,
                &mut credentials.replication_password,
            ] {
                if secret.is_some() {
                    *secret = Some(Secret::new(MASK));
                }
            }
        }
        for (name, value) in copy.environment.iter_mut() {
            if env_names::is_secret(name) {
                *value = MASK.to_string();
            }
        }
        if let Some(authority) = &mut copy.authority {
            authority.key = Secret::new(MASK);
        }
        copy
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupState {
    #[serde(rename = "type")]
    pub db_type: DbType,
    pub name: String,
    pub engine: Engine,
    pub version: String,
    /// The root variables of the type follow this group.
    pub primary: bool,
    pub managed_backups: bool,
    pub replicate_from: Option<SourceRef>,
    /// Set once the one-time import has been done.
    pub imported_from: Option<SourceRef>,
    /// The master first, then its slaves, in the order they were added.
    pub servers: Vec<ServerState>,
    /// The client networks its servers on hosts let in (`allow_from`), as
    /// last applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<String>,
}

impl GroupState {
    pub fn address(&self) -> String {
        format!("{}.{}", self.db_type, self.name)
    }

    pub fn master(&self) -> Option<&ServerState> {
        self.servers.iter().find(|s| s.role == Role::Master)
    }

    pub fn slaves(&self) -> impl Iterator<Item = &ServerState> {
        self.servers.iter().filter(|s| s.role == Role::Slave)
    }
}

/// A group in some application (possibly this one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    pub application: String,
    pub group: String,
}

impl SourceRef {
    /// `application/type.group`, as plans show a source.
    pub fn label(&self, db_type: DbType) -> String {
        format!("{}/{db_type}.{}", self.application, self.group)
    }
}

impl std::fmt::Display for SourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.application, self.group)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Master,
    Slave,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerState {
    pub unique_name: String,
    pub role: Role,
    pub provider: ProviderKind,
    /// Learnt at apply: `None` only in a plan's expected state.
    pub address: Option<String>,
    pub port: Option<u16>,
    /// Whatever the provider needs to find the server again (data directory,
    /// system user, …).
    #[serde(default)]
    pub provider_data: BTreeMap<String, String>,
    /// When its TLS certificate expires (seconds since the Unix epoch): a
    /// server on a host has one, signed by the application's authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    /// Generated at apply: `None` only in a plan's expected state.
    pub password: Option<Secret>,
    pub database: String,
    /// The engine's superuser (PostgreSQL's `postgres`), for dbgroups only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<Secret>,
    /// The role replicas stream with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_password: Option<Secret>,
    /// Where the account lives when that is not `database`: MongoDB
    /// groups made since issue 21 keep their user in `admin`, so it still
    /// authenticates after an import renames `database`. `None` for the
    /// other engines, and for MongoDB groups made before, whose user lives
    /// in `database` (their URL stays as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_database: Option<String>,
}

impl Credentials {
    /// The database the account authenticates against.
    pub fn account_database(&self) -> &str {
        self.auth_database.as_deref().unwrap_or(&self.database)
    }
}

/// A secret value. Debug output never shows it. It is written in plain
/// text, or sealed when the state has a passphrase (secrets/codec.rs does
/// both, for every `Secret` wherever it sits in the state).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(SecretValue);

type SecretValue = crate::secrets::codec::Value;

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretValue::Plain(value.into()))
    }

    pub(crate) fn from_value(value: SecretValue) -> Self {
        Self(value)
    }

    pub(crate) fn value(&self) -> &SecretValue {
        &self.0
    }

    /// The value. A secret read without the passphrase exposes the mask:
    /// commands that use secrets load the state with
    /// `SecretPolicy::secrets_needed`, which refuses such a state first.
    pub fn expose(&self) -> &str {
        match &self.0 {
            SecretValue::Plain(text) => text,
            SecretValue::Sealed(_) => MASK,
        }
    }

    /// Whether the value was read without the passphrase and is unknown.
    pub fn is_sealed(&self) -> bool {
        matches!(self.0, SecretValue::Sealed(_))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRecord {
    pub id: String,
    /// The group address it was taken of.
    pub group: String,
    pub server: String,
    pub path: String,
    pub size_bytes: u64,
    pub taken_at: String,
    /// The rest is recorded for managed backups (`dbgroups backup run`),
    /// which are the only backups recorded; older states have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedBackup>,
}

/// What a managed backup is, beyond where it lives: enough to check it,
/// restore it by hand and judge it. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedBackup {
    pub engine: Engine,
    pub version: String,
    /// Whether the server it was taken from was the group's master.
    pub from_master: bool,
    /// Why that server (a caught-up slave, or why not one).
    pub source_reason: String,
    pub started_at: String,
    pub finished_at: String,
    /// SHA-256 of the backup file, hex.
    pub sha256: String,
    /// The replication position the backup holds (LSN, GTID, offset),
    /// as the engine words it.
    pub position: Option<String>,
    /// The store's host: `None` is this machine; else how to reach it.
    pub store_address: Option<String>,
    #[serde(default)]
    pub store_ssh: BTreeMap<String, String>,
    /// The data's own account at backup time (tables and their rows, or
    /// keys), which a verify restore must show again.
    pub summary: BTreeMap<String, u64>,
    /// The source did not change while it was taken (the summary read
    /// before and after agree), so a verify compares counts too.
    pub summary_exact: bool,
    pub verification: Verification,
}

/// Whether a managed backup was shown to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Verification {
    Unverified,
    Passed { at: String },
    Failed { at: String, reason: String },
}

/// Progress of the apply in progress, so that a re-run resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub plan_id: String,
    pub started_at: String,
    pub steps: BTreeMap<String, StepStatus>,
    /// The interrupted apply was creating a new application: the next plan
    /// still builds every declared group, as the first one did.
    #[serde(default)]
    pub new_application: bool,
    /// Groups (`type.name`) the interrupted apply was creating: the next
    /// plan finishes them without --add-group.
    #[serde(default)]
    pub creating: std::collections::BTreeSet<String>,
    /// Servers provisioned but not yet ready (a slave before it follows its
    /// master), with their group: not recorded as members until they are.
    #[serde(default)]
    pub pending: BTreeMap<String, PendingServer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingServer {
    /// The group address, `type.name`.
    pub group: String,
    pub server: ServerState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Started,
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_masks_passwords_and_secret_variables() {
        let mut state = AppState::new("shop");
        state.credentials.insert(
            "postgresql.default".into(),
            Credentials {
                username: "shop".into(),
                password: Some(Secret::new("hunter2")),
                database: "shop".into(),
                admin_password: Some(Secret::new("hunter3")),
                replication_password: None,
                auth_database: None,
            },
        );
        state
            .environment
            .insert("POSTGRESQL_PASSWORD".into(), "hunter2".into());
        state.environment.insert(
            "POSTGRESQL_URL".into(),
            "postgresql://shop:hunter2@127.0.0.1/shop".into(),
        );
        state
            .environment
            .insert("POSTGRESQL_USERNAME".into(), "shop".into());
        let shown = serde_json::to_string(&state.redacted()).expect("serialises");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
        assert!(shown.contains("\"POSTGRESQL_USERNAME\":\"shop\""));
        assert_eq!(format!("{:?}", Secret::new("hunter2")), MASK);
    }
}
