//! The PostgreSQL lock: `pg_try_advisory_lock(hashtext(schema),
//! hashtext(application))` on the command's own session, so unrelated
//! applications and schemas never block each other, and the server
//! releases it when the session ends. Beside it, a note in
//! `lock_notes` says who holds it; a note whose session no longer holds
//! the advisory lock is stale and never shown.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::PostgresStore;
use super::session::Session;
use crate::error::{LockHolder, StateError};
use crate::lock::{Held, LockGuard, LockInfo};

/// The locks one guard holds, released when it is dropped.
#[derive(Debug)]
struct SessionHeld {
    session: Arc<Session>,
    s: String,
    schema: String,
    applications: Vec<String>,
    id: String,
}

impl Held for SessionHeld {}

impl Drop for SessionHeld {
    fn drop(&mut self) {
        let (s, schema, applications, id) = (
            self.s.clone(),
            self.schema.clone(),
            self.applications.clone(),
            self.id.clone(),
        );
        self.session.run_briefly(move |client| async move {
            let client = client.lock().await;
            for application in &applications {
                client
                    .execute(
                        &format!("DELETE FROM {s}.lock_notes WHERE application = $1 AND id = $2"),
                        &[application, &id],
                    )
                    .await?;
                client
                    .execute(
                        "SELECT pg_advisory_unlock(hashtext($1::text), hashtext($2::text))",
                        &[&schema, application],
                    )
                    .await?;
            }
            Ok(())
        });
    }
}

/// Whether this session holds the advisory lock of (schema, application)
/// for a note's backend: the SQL condition a live note meets.
const LIVE: &str = "EXISTS (SELECT 1 FROM pg_locks p
    WHERE p.locktype = 'advisory' AND p.granted AND p.pid = n.backend_pid
      AND p.objsubid = 2
      AND p.classid = hashtext($1::text)::oid AND p.objid = hashtext(n.application)::oid)";

pub(super) fn acquire(
    store: &PostgresStore,
    applications: &[String],
    operation: &str,
    timeout: Duration,
) -> Result<LockGuard, StateError> {
    let info = LockInfo {
        id: uuid::Uuid::new_v4().to_string(),
        application: (applications.len() == 1).then(|| applications[0].clone()),
        operation: operation.to_string(),
        pid: std::process::id(),
        host: crate::lock::hostname(),
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    };
    let held = SessionHeld {
        session: Arc::clone(&store.session),
        s: store.s.clone(),
        schema: store.schema.clone(),
        applications: Vec::new(),
        id: info.id.clone(),
    };
    let mut held = held;
    let started = Instant::now();
    for application in applications {
        loop {
            let (schema, app) = (store.schema.clone(), application.clone());
            let taken = store
                .session
                .run("take the lock", move |client| async move {
                    let client = client.lock().await;
                    let row = client
                        .query_one(
                            "SELECT pg_try_advisory_lock(hashtext($1::text), hashtext($2::text))",
                            &[&schema, &app],
                        )
                        .await?;
                    Ok(row.get::<_, bool>(0))
                })?;
            if taken {
                held.applications.push(application.clone());
                break;
            }
            if started.elapsed() >= timeout {
                // `held` drops here, releasing what was taken so far.
                return Err(StateError::Locked {
                    holder: Box::new(LockHolder(holder_of(store, application)?)),
                });
            }
            std::thread::sleep(
                Duration::from_millis(100)
                    .min(timeout.saturating_sub(started.elapsed()))
                    .max(Duration::from_millis(1)),
            );
        }
        write_note(store, application, &info)?;
    }
    Ok(LockGuard::new(info, store.target(), Box::new(held)))
}

fn write_note(store: &PostgresStore, application: &str, info: &LockInfo) -> Result<(), StateError> {
    let (s, app, info) = (store.s.clone(), application.to_string(), info.clone());
    store.session.run("note who holds the lock", move |client| async move {
        let client = client.lock().await;
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.lock_notes (application, id, operation, pid, host, since, backend_pid)
                     VALUES ($1, $2, $3, $4, $5, $6, pg_backend_pid())
                     ON CONFLICT (application) DO UPDATE SET
                       id = EXCLUDED.id, operation = EXCLUDED.operation, pid = EXCLUDED.pid,
                       host = EXCLUDED.host, since = EXCLUDED.since, backend_pid = EXCLUDED.backend_pid"
                ),
                &[
                    &app,
                    &info.id,
                    &info.operation,
                    &i32::try_from(info.pid).unwrap_or(i32::MAX),
                    &info.host,
                    &info.created,
                ],
            )
            .await?;
        Ok(())
    })
}

/// Live notes, by application (all when `application` is `None`).
fn live_notes(
    store: &PostgresStore,
    application: Option<&str>,
) -> Result<Vec<(LockInfo, i32)>, StateError> {
    let (s, schema, app) = (
        store.s.clone(),
        store.schema.clone(),
        application.map(str::to_string),
    );
    store
        .session
        .run("read the lock notes", move |client| async move {
            let client = client.lock().await;
            let rows = client
                .query(
                    &format!(
                    "SELECT n.application, n.id, n.operation, n.pid, n.host, n.since, n.backend_pid
                     FROM {s}.lock_notes n
                     WHERE {LIVE} AND ($2::text IS NULL OR n.application = $2)
                     ORDER BY n.application"
                ),
                    &[&schema, &app],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| {
                    (
                        LockInfo {
                            application: Some(row.get(0)),
                            id: row.get(1),
                            operation: row.get(2),
                            pid: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
                            host: row.get(4),
                            created: row.get(5),
                        },
                        row.get(6),
                    )
                })
                .collect())
        })
}

/// The holder of one application's lock. A holder writes its note just
/// after taking the lock: wait briefly for it rather than say "unknown".
fn holder_of(store: &PostgresStore, application: &str) -> Result<Option<LockInfo>, StateError> {
    let started = Instant::now();
    loop {
        let note = live_notes(store, Some(application))?.into_iter().next();
        if note.is_some() || started.elapsed() >= Duration::from_secs(2) {
            return Ok(note.map(|(info, _)| info));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn holders(store: &PostgresStore) -> Result<Vec<LockInfo>, StateError> {
    Ok(live_notes(store, None)?
        .into_iter()
        .map(|(info, _)| info)
        .collect())
}

/// `state unlock ID`: ends the holder's database session, which releases
/// its advisory lock; the holder's next write then fails, saying the lock
/// went with its connection.
pub(super) fn force_unlock(store: &PostgresStore, id: &str) -> Result<LockInfo, StateError> {
    let live = live_notes(store, None)?;
    let Some((info, backend)) = live.iter().find(|(info, _)| info.id == id).cloned() else {
        return Err(StateError::NoSuchLock {
            id: id.to_string(),
            current: (!live.is_empty()).then(|| {
                live.iter()
                    .map(|(info, _)| info.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        });
    };
    let (s, id) = (store.s.clone(), id.to_string());
    store
        .session
        .run("break the lock", move |client| async move {
            let client = client.lock().await;
            client
                .execute("SELECT pg_terminate_backend($1)", &[&backend])
                .await?;
            client
                .execute(&format!("DELETE FROM {s}.lock_notes WHERE id = $1"), &[&id])
                .await?;
            Ok(())
        })?;
    Ok(info)
}
