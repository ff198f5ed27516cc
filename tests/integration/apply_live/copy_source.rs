//! A refreshed scale up takes its backup from a caught-up slave, and the
//! master does no copy work (issue 19): PostgreSQL's master is asked for no
//! checkpoint (pg_basebackup against it asks for one; against its standby,
//! the standby makes a restartpoint). The new slave follows the master and
//! holds its rows. (The MySQL family copies its master: the rules say why,
//! `plans_copy_source`.)

use super::*;

const PG: &str = "application: shop\npostgresql:\n  configuration: { version: \"15\" }\n  backups: { managed: true }\n  servers:\n    - server: { unique_name: pg-main }\n    - server: { unique_name: pg-replica-1 }\n";

/// Applies `manifest` with a refresh (the plan reads the slaves' health)
/// and says which backup step ran.
fn refreshed_scale_up(dir: &Path, manifest: &str) -> String {
    set_manifest(dir, manifest);
    let applied = dbgroups_in(dir, &["apply", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    applied.stdout
}

#[test]
fn a_postgresql_scale_up_copies_the_standby_and_asks_the_master_for_no_checkpoint() {
    let (dir, _servers) = quickstart();
    set_manifest(dir.path(), PG);
    apply_ok(dir.path(), &[]);
    let recorded = state(dir.path());
    let master_port = port(&recorded, "pg-main");
    let admin = admin_password(&recorded, "postgresql.default");
    let runtime = runtime();
    let before = runtime.block_on(async {
        let app = pg(master_port, &password(&recorded, "postgresql.default")).await;
        app.batch_execute(
            "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 1000)",
        )
        .await
        .expect("rows");
        let replica = pg(
            port(&recorded, "pg-replica-1"),
            &password(&recorded, "postgresql.default"),
        )
        .await;
        assert_eq!(wait_for_rows(&replica, 1000).await, 1000, "the standby caught up");
        checkpoints_requested(master_port, &admin).await
    });
    let stdout = refreshed_scale_up(
        dir.path(),
        &format!("{PG}    - server: {{ unique_name: pg-replica-2 }}\n"),
    );
    assert!(
        stdout.contains("backup:pg-replica-1") && !stdout.contains("backup:pg-main"),
        "{stdout}"
    );
    assert!(stdout.contains("the master does no copy work"), "{stdout}");
    let after = runtime.block_on(checkpoints_requested(master_port, &admin));
    assert_eq!(before, after, "no checkpoint was asked of the master");
    let recorded = state(dir.path());
    runtime.block_on(async {
        let app = pg(master_port, &password(&recorded, "postgresql.default")).await;
        app.batch_execute("INSERT INTO orders VALUES (1001)")
            .await
            .expect("a write after the scale up");
        let new = pg(
            port(&recorded, "pg-replica-2"),
            &password(&recorded, "postgresql.default"),
        )
        .await;
        assert_eq!(
            wait_for_rows(&new, 1001).await,
            1001,
            "the new slave follows the master"
        );
    });
    converged(dir.path(), "manifest.yml");
}
