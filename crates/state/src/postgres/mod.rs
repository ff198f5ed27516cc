//! The shared backend: state in a PostgreSQL database (docs/state.md,
//! "PostgreSQL"). Every version is kept; a write is a compare-and-swap on
//! (lineage, serial) in one transaction; the lock is a session-level
//! advisory lock on (schema, application), which the server releases when
//! the session ends, dbgroups' death included.

mod lock;
mod schema;
mod session;

use std::sync::Arc;
use std::time::Duration;

pub use session::redact_url;
use session::{Failure, Session};

use crate::directory::check_import;
use crate::error::StateError;
use crate::lock::{LockGuard, LockInfo};
use crate::model::{AppState, FORMAT_VERSION};
use crate::secrets::{self, Keyring, SecretPolicy};
use crate::store::{self, LockScope, StateStore, StoredVersion};

/// The schema used when `--state-schema` is not given.
pub const DEFAULT_SCHEMA: &str = "dbgroups";

#[derive(Debug, Clone)]
pub struct PostgresStore {
    session: Arc<Session>,
    schema: String,
    /// `schema`, quoted for SQL.
    s: String,
    policy: SecretPolicy,
}

impl PostgresStore {
    /// Connects (TLS as `sslmode` asks) and creates or migrates the tables.
    pub fn open(url: &str, schema: &str, policy: SecretPolicy) -> Result<Self, StateError> {
        let target = format!("{} (schema {schema})", redact_url(url));
        let s = schema::quoted(schema).map_err(|detail| StateError::DatabaseSetup {
            target: target.clone(),
            detail,
        })?;
        let session = Arc::new(Session::connect(url, target.clone())?);
        let (quoted, name) = (s.clone(), schema.to_string());
        session.run("create its tables", move |client| async move {
            let mut client = client.lock().await;
            schema::ensure(&mut client, &quoted, &name, &target).await
        })?;
        Ok(Self {
            session,
            schema: schema.to_string(),
            s,
            policy,
        })
    }

    fn target(&self) -> String {
        self.session.target.clone()
    }

    /// A document as stored, read like the directory reads a file: the
    /// format version first, then the shape, secrets as the policy says.
    fn decode(
        &self,
        application: &str,
        serial: u64,
        document: &str,
        policy: &SecretPolicy,
    ) -> Result<AppState, StateError> {
        let corrupt = |detail: String| StateError::CorruptRecord {
            application: application.to_string(),
            location: format!("{}, version {serial}", self.target()),
            detail,
        };
        let value: serde_json::Value =
            serde_json::from_str(document).map_err(|e| corrupt(e.to_string()))?;
        let found = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| corrupt("no format_version".into()))?;
        if found > u64::from(FORMAT_VERSION) {
            return Err(corrupt(format!(
                "format version {found} is newer than this dbgroups understands ({FORMAT_VERSION}); upgrade dbgroups"
            )));
        }
        secrets::decode(value, policy)?.map_err(|e| corrupt(e.to_string()))
    }

    /// Plain text is refused here unless the policy allows it.
    fn check_plaintext(&self, application: &str, plaintext: usize) -> Result<(), StateError> {
        if plaintext > 0 && !self.policy.allow_plaintext {
            return Err(StateError::PlaintextRefused {
                application: application.to_string(),
                backend: self.target(),
            });
        }
        Ok(())
    }

    fn current(&self, application: &str) -> Result<Option<(u64, String)>, StateError> {
        let (s, app) = (self.s.clone(), application.to_string());
        self.session.run("read the state", move |client| async move {
            let client = client.lock().await;
            let row = client
                .query_opt(
                    &format!(
                        "SELECT v.serial, v.document FROM {s}.applications a
                         JOIN {s}.versions v
                           ON v.application = a.name AND v.lineage = a.lineage AND v.serial = a.serial
                         WHERE a.name = $1 AND NOT a.retired"
                    ),
                    &[&app],
                )
                .await?;
            Ok(row.map(|row| (row.get::<_, i64>(0).unsigned_abs(), row.get(1))))
        })
    }
}

fn serial_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl StateStore for PostgresStore {
    fn describe(&self) -> String {
        self.target()
    }

    fn applications(&self) -> Result<Vec<String>, StateError> {
        let s = self.s.clone();
        self.session
            .run("list applications", move |client| async move {
                let client = client.lock().await;
                let rows = client
                    .query(
                        &format!(
                            "SELECT name FROM {s}.applications WHERE NOT retired ORDER BY name"
                        ),
                        &[],
                    )
                    .await?;
                Ok(rows.iter().map(|row| row.get(0)).collect())
            })
    }

    fn load(&self, application: &str) -> Result<Option<AppState>, StateError> {
        self.current(application)?
            .map(|(serial, document)| self.decode(application, serial, &document, &self.policy))
            .transpose()
    }

    fn save(&self, lock: &LockGuard, state: &mut AppState) -> Result<(), StateError> {
        debug_assert_eq!(
            lock.owner,
            self.describe(),
            "the lock belongs to another store"
        );
        let mut next = state.clone();
        next.serial += 1;
        let (document, counts) = secrets::encode(&mut next, self.policy.keyring.as_deref())?;
        self.check_plaintext(&state.application, counts.plaintext)?;
        let document = String::from_utf8(document)
            .map_err(|e| StateError::Crypto(format!("a state document is not UTF-8: {e}")))?;
        let (s, app, lineage) = (
            self.s.clone(),
            state.application.clone(),
            state.lineage.clone(),
        );
        let (read_serial, command, writer, at) = (
            state.serial,
            lock.info().operation.clone(),
            store::writer(),
            store::now_rfc3339(),
        );
        self.session.run(
            &format!("write the state of \"{app}\""),
            move |client| async move {
                let mut client = client.lock().await;
                let tx = client.transaction().await?;
                let row = tx
                    .query_opt(
                        &format!(
                            "SELECT lineage, serial, retired FROM {s}.applications WHERE name = $1 FOR UPDATE"
                        ),
                        &[&app],
                    )
                    .await?;
                let conflict = |found: u64| StateError::Conflict {
                    application: app.clone(),
                    expected: read_serial,
                    found,
                };
                let stored = row.map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, i64>(1).unsigned_abs(),
                        r.get::<_, bool>(2),
                    )
                });
                match &stored {
                    None | Some((_, _, true)) if read_serial != 0 => {
                        return Err(conflict(0).into());
                    }
                    Some((stored_lineage, stored_serial, false))
                        if *stored_serial != read_serial || *stored_lineage != lineage =>
                    {
                        return Err(conflict(*stored_serial).into());
                    }
                    _ => {}
                }
                let new_serial = serial_of(read_serial + 1);
                tx.execute(
                    &format!(
                        "INSERT INTO {s}.applications (name, lineage, serial, retired)
                         VALUES ($1, $2, $3, false)
                         ON CONFLICT (name) DO UPDATE
                           SET lineage = EXCLUDED.lineage, serial = EXCLUDED.serial, retired = false"
                    ),
                    &[&app, &lineage, &new_serial],
                )
                .await?;
                tx.execute(
                    &format!(
                        "INSERT INTO {s}.versions
                           (application, lineage, serial, written_at, command, written_by, document)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ),
                    &[&app, &lineage, &new_serial, &at, &command, &writer, &document],
                )
                .await?;
                tx.commit().await?;
                Ok(())
            },
        )?;
        *state = next;
        Ok(())
    }

    fn lock(
        &self,
        scope: LockScope<'_>,
        operation: &str,
        timeout: Duration,
    ) -> Result<LockGuard, StateError> {
        let applications = match scope {
            LockScope::Application(application) => vec![application.to_string()],
            LockScope::Everything => self.applications()?,
        };
        lock::acquire(self, &applications, operation, timeout)
    }

    fn lock_holders(&self) -> Result<Vec<LockInfo>, StateError> {
        lock::holders(self)
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        lock::force_unlock(self, id)
    }

    fn retire(&self, lock: &LockGuard, state: &AppState) -> Result<(), StateError> {
        debug_assert_eq!(
            lock.owner,
            self.describe(),
            "the lock belongs to another store"
        );
        let (s, app, lineage, serial) = (
            self.s.clone(),
            state.application.clone(),
            state.lineage.clone(),
            serial_of(state.serial),
        );
        let retired = self
            .session
            .run("retire the state", move |client| async move {
                let client = client.lock().await;
                let changed = client
                    .execute(
                        &format!(
                            "UPDATE {s}.applications SET retired = true
                         WHERE name = $1 AND lineage = $2 AND serial = $3 AND NOT retired"
                        ),
                        &[&app, &lineage, &serial],
                    )
                    .await?;
                Ok(changed == 1)
            })?;
        if !retired {
            return Err(StateError::Conflict {
                application: state.application.clone(),
                expected: state.serial,
                found: self.current(&state.application)?.map_or(0, |(s, _)| s),
            });
        }
        Ok(())
    }

    fn versions(&self, application: &str) -> Result<Vec<StoredVersion>, StateError> {
        let (s, app) = (self.s.clone(), application.to_string());
        self.session.run("read the history", move |client| async move {
            let client = client.lock().await;
            let rows = client
                .query(
                    &format!(
                        "SELECT v.serial, v.lineage, v.written_at, v.command, v.written_by, v.document
                         FROM {s}.versions v JOIN {s}.applications a
                           ON a.name = v.application AND a.lineage = v.lineage
                         WHERE v.application = $1 ORDER BY v.serial"
                    ),
                    &[&app],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| StoredVersion {
                    serial: row.get::<_, i64>(0).unsigned_abs(),
                    lineage: row.get(1),
                    written_at: row.get(2),
                    command: row.get(3),
                    written_by: row.get(4),
                    document: row.get::<_, String>(5).into_bytes(),
                })
                .collect())
        })
    }

    fn load_version(&self, application: &str, serial: u64) -> Result<AppState, StateError> {
        let versions = self.versions(application)?;
        let Some(found) = versions.iter().find(|v| v.serial == serial) else {
            return Err(StateError::NoSuchVersion {
                application: application.to_string(),
                serial,
                kept: versions.iter().map(|v| v.serial).collect(),
            });
        };
        let document = String::from_utf8_lossy(&found.document);
        self.decode(application, serial, &document, &SecretPolicy::default())
    }

    fn import(
        &self,
        lock: &LockGuard,
        application: &str,
        versions: &[StoredVersion],
    ) -> Result<usize, StateError> {
        debug_assert_eq!(
            lock.owner,
            self.describe(),
            "the lock belongs to another store"
        );
        let Some(last) = versions.last() else {
            return Ok(0);
        };
        let mut documents = Vec::new();
        for version in versions {
            let text = String::from_utf8(version.document.clone())
                .map_err(|e| StateError::Crypto(format!("a state document is not UTF-8: {e}")))?;
            let state =
                self.decode(application, version.serial, &text, &SecretPolicy::default())?;
            self.check_plaintext(application, secrets::plaintext_secrets(&state))?;
            documents.push((version.clone(), text));
        }
        let here = self.current(application)?;
        let mut after = 0;
        if let Some((serial, document)) = &here {
            let state = self.decode(application, *serial, document, &SecretPolicy::default())?;
            check_import(
                application,
                &state.lineage,
                state.serial,
                last,
                &self.target(),
            )?;
            after = state.serial;
        }
        let fresh: Vec<_> = documents
            .into_iter()
            .filter(|(v, _)| v.serial > after)
            .collect();
        let count = fresh.len();
        if count == 0 {
            return Ok(0);
        }
        let (s, app) = (self.s.clone(), application.to_string());
        let (lineage, newest) = (last.lineage.clone(), serial_of(last.serial));
        self.session
            .run("copy the history in", move |client| async move {
                let mut client = client.lock().await;
                let tx = client.transaction().await?;
                for (version, text) in &fresh {
                    tx.execute(
                        &format!(
                            "INSERT INTO {s}.versions
                           (application, lineage, serial, written_at, command, written_by, document)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)"
                        ),
                        &[
                            &app,
                            &version.lineage,
                            &serial_of(version.serial),
                            &version.written_at,
                            &version.command,
                            &version.written_by,
                            text,
                        ],
                    )
                    .await?;
                }
                tx.execute(
                    &format!(
                        "INSERT INTO {s}.applications (name, lineage, serial, retired)
                     VALUES ($1, $2, $3, false)
                     ON CONFLICT (name) DO UPDATE
                       SET lineage = EXCLUDED.lineage, serial = EXCLUDED.serial, retired = false"
                    ),
                    &[&app, &lineage, &newest],
                )
                .await?;
                tx.commit().await?;
                Ok(())
            })?;
        Ok(count)
    }

    fn rekey(
        &self,
        lock: &LockGuard,
        from: Option<&Arc<Keyring>>,
        to: &Keyring,
    ) -> Result<usize, StateError> {
        debug_assert_eq!(
            lock.owner,
            self.describe(),
            "the lock belongs to another store"
        );
        let s = self.s.clone();
        let rows: Vec<(String, String, i64, String)> =
            self.session
                .run("read every version", move |client| async move {
                    let client = client.lock().await;
                    let rows = client
                        .query(
                            &format!(
                                "SELECT application, lineage, serial, document FROM {s}.versions
                             ORDER BY application, lineage, serial"
                            ),
                            &[],
                        )
                        .await?;
                    Ok(rows
                        .iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                        .collect())
                })?;
        // Resealed here, before the transaction: a wrong old passphrase
        // stops everything with nothing written.
        let mut resealed = Vec::with_capacity(rows.len());
        for (application, lineage, serial, document) in rows {
            let value: serde_json::Value =
                serde_json::from_str(&document).map_err(|e| StateError::CorruptRecord {
                    application: application.clone(),
                    location: format!("{}, version {serial}", self.target()),
                    detail: e.to_string(),
                })?;
            let text = String::from_utf8(secrets::reseal(value, from, Some(to))?)
                .map_err(|e| StateError::Crypto(e.to_string()))?;
            resealed.push((application, lineage, serial, text));
        }
        let count = resealed.len();
        let s = self.s.clone();
        self.session
            .run("rewrite every version", move |client| async move {
                let mut client = client.lock().await;
                let tx = client.transaction().await?;
                let total: i64 = tx
                    .query_one(&format!("SELECT count(*) FROM {s}.versions"), &[])
                    .await?
                    .get(0);
                if usize::try_from(total).unwrap_or(0) != resealed.len() {
                    return Err(StateError::Crypto(
                        "versions were written while rekey ran; nothing was changed; run it again"
                            .into(),
                    )
                    .into());
                }
                for (application, lineage, serial, text) in &resealed {
                    tx.execute(
                        &format!(
                            "UPDATE {s}.versions SET document = $4
                         WHERE application = $1 AND lineage = $2 AND serial = $3"
                        ),
                        &[application, lineage, serial, text],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            })?;
        Ok(count)
    }
}

impl From<Failure> for StateError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::State(err) => err,
            Failure::Database(source) => StateError::Database {
                action: "query".into(),
                target: String::new(),
                source,
            },
        }
    }
}
