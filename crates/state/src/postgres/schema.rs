//! The tables, created on first use and migrated by number: each entry of
//! [`MIGRATIONS`] takes the schema from one version to the next, in one
//! transaction, under a transaction-level advisory lock so that two
//! commands starting at once do not both create them.

use tokio_postgres::Client;

use super::session::Failure;
use crate::error::StateError;

/// Version `i + 1` of the tables is what `MIGRATIONS[..=i]` make. A later
/// format change appends an entry; nothing here is ever edited.
const MIGRATIONS: &[&str] = &[
    // 1: applications, every version of their state, and the lock notes.
    "CREATE TABLE {s}.applications (
        name text PRIMARY KEY,
        lineage text NOT NULL,
        serial bigint NOT NULL,
        retired boolean NOT NULL DEFAULT false
    );
    CREATE TABLE {s}.versions (
        application text NOT NULL,
        lineage text NOT NULL,
        serial bigint NOT NULL,
        written_at text NOT NULL,
        command text NOT NULL,
        written_by text NOT NULL,
        document text NOT NULL,
        PRIMARY KEY (application, lineage, serial)
    );
    CREATE TABLE {s}.lock_notes (
        application text PRIMARY KEY,
        id text NOT NULL,
        operation text NOT NULL,
        pid integer NOT NULL,
        host text NOT NULL,
        since text NOT NULL,
        backend_pid integer NOT NULL
    );",
];

pub(crate) fn supported() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// A schema name as SQL takes it: checked, then double-quoted.
pub(crate) fn quoted(schema: &str) -> Result<String, String> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(format!("\"{schema}\""))
    } else {
        Err(format!(
            "schema name \"{schema}\" is not valid: lowercase letters, digits and _, at most 63"
        ))
    }
}

/// Creates or migrates the tables of schema `s` (quoted).
pub(crate) async fn ensure(
    client: &mut Client,
    s: &str,
    schema: &str,
    target: &str,
) -> Result<(), Failure> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('dbgroups schema ' || $1::text))",
        &[&schema],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL);"
    ))
    .await?;
    let found: i32 = tx
        .query_opt(&format!("SELECT version FROM {s}.schema_version"), &[])
        .await?
        .map_or(0, |row| row.get(0));
    if found > supported() {
        return Err(StateError::NewerSchema {
            target: target.to_string(),
            found,
            supported: supported(),
        }
        .into());
    }
    if found == supported() {
        tx.commit().await?;
        return Ok(());
    }
    for migration in &MIGRATIONS[usize::try_from(found).unwrap_or(0)..] {
        tx.batch_execute(&migration.replace("{s}", s)).await?;
    }
    tx.execute(&format!("DELETE FROM {s}.schema_version"), &[])
        .await?;
    tx.execute(
        &format!("INSERT INTO {s}.schema_version (version) VALUES ($1)"),
        &[&supported()],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
