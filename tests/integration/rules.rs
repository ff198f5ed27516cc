//! One test per validation rule. Each snapshot is the compact form of the
//! diagnostics, `file:LINE:COLUMN: severity[code]: message` plus help, so
//! every test asserts both what is said and where it points.

use dbgroups_manifest::ParseOptions;
use insta::assert_snapshot;

use crate::common::{diagnose, diagnose_with};

#[test]
fn unknown_key_suggests_the_closest_known_one() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  groups:
    default:
      configuration:
        verison: "15"
      servers:
        - server: { unique_name: pg-main, regoin: eu }
"#), @r#"
    manifest.yml:7:9: error[unknown-key]: unknown key "verison", did you mean "version"?
        help: configuration accepts: engine, version, operating_system, root_disk_size, root_disk_type, encoding, tags
    manifest.yml:9:43: error[unknown-key]: unknown key "regoin", did you mean "region"?
        help: server accepts: unique_name, address, public_address, ssh, vendor, size, region, key_name, root_disk_size, root_disk_type, subnet_id, availability_zone
    "#);
}

#[test]
fn a_configuration_key_at_group_level_says_where_it_belongs() {
    assert_snapshot!(diagnose(r#"
application: shop
redis:
  version: "7.0"
  servers:
    - server: { unique_name: redis-main }
"#), @r#"
    manifest.yml:4:3: error[unknown-key]: unknown key "version"
        help: `version` belongs under `configuration:`
    "#);
}

#[test]
fn a_misspelt_database_section_is_an_error_not_an_ignored_section() {
    assert_snapshot!(diagnose(r#"
application: shop
postgressql:
  servers:
    - server: { unique_name: pg-main }
rails:
  configuration: { ruby_version: "3.3" }
"#), @r#"
    manifest.yml:3:1: error[unknown-key]: unknown key "postgressql", did you mean "postgresql"?
    manifest.yml:6:1: advice[ignored-section]: `rails` in the manifest is not a database section and is ignored
        help: dbgroups reads only application, ssh, mysql, postgresql, redis and mongodb
    "#);
}

#[test]
fn a_server_without_unique_name() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  servers:
    - server: { unique_name: pg-main }
    - server: { size: large }
"#), @"
    manifest.yml:6:7: error[missing-key]: the server has no `unique_name`
        help: add unique_name: NAME; it must be unique across the application
    ");
}

#[test]
fn a_server_entry_without_the_server_key() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  servers:
    - unique_name: pg-main
"#), @"
    manifest.yml:3:1: warning[no-servers]: group postgresql.default declares no servers
        help: it is valid, but nothing is built for it until it lists `servers:`
    manifest.yml:5:7: error[wrong-type]: a servers entry must be written `- server: { … }`
        help: nest the server's keys under `server:`, as in `- server: { unique_name: pg-main }`
    ");
}

#[test]
fn duplicate_server_names_across_types_and_case() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  servers:
    - server: { unique_name: main }
redis:
  servers:
    - server: { unique_name: Main }
"#), @r#"
    manifest.yml:8:30: error[duplicate-server]: server name "Main" is already used
        help: unique_name must be unique across the application, in every group and type
    "#);
}

#[test]
fn engine_on_a_type_other_than_mysql() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  configuration: { engine: postgresql, version: "15" }
  servers:
    - server: { unique_name: pg-main }
"#), @"
    manifest.yml:4:20: error[engine-mismatch]: `engine` applies only to mysql groups, not to postgresql
        help: postgresql groups always run postgresql: remove `engine: postgresql`
    ");
}

#[test]
fn unknown_mysql_engine() {
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  configuration: { engine: maria, version: "10.11" }
  servers:
    - server: { unique_name: db-main }
"#), @r#"
    manifest.yml:4:28: error[unknown-engine]: unknown engine "maria", did you mean "mariadb"?
        help: the mysql engines are mysql, percona and mariadb
    "#);
}

#[test]
fn versions_outside_the_catalogue() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  configuration: { version: "19" }
  servers:
    - server: { unique_name: pg-main }
mysql:
  configuration: { engine: mariadb, version: 10.x }
  servers:
    - server: { unique_name: db-main }
redis:
  configuration: { version: "7.3" }
  servers:
    - server: { unique_name: redis-main }
"#), @r#"
    manifest.yml:4:29: error[unsupported-version]: postgresql 19 is not a supported version
        help: supported postgresql versions: 15, 16, 17, 18; past end of life (accepted with a warning): 9.6, 10, 11, 12, 13, 14
    manifest.yml:8:46: error[unsupported-version]: version "10.x" is not a version number
        help: write digits and dots; supported mariadb versions: 10.11, 11.4, 11.8; past end of life (accepted with a warning): 10.3, 10.4, 10.5, 10.6
    manifest.yml:12:29: error[unsupported-version]: redis 7.3 is not a supported version
        help: supported redis versions: 7.0, 7.2, 7.4, 8.0, 8.2; past end of life (accepted with a warning): 5.0, 6.0, 6.2
    "#);
}

#[test]
fn an_unquoted_version_keeps_its_written_digits() {
    // 10.10 read as a float would be 10.1, a different MariaDB series.
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  configuration: { engine: mariadb, version: 10.10 }
  servers:
    - server: { unique_name: db-main }
"#), @"
    manifest.yml:4:46: error[unsupported-version]: mariadb 10.10 is not a supported version
        help: supported mariadb versions: 10.11, 11.4, 11.8; past end of life (accepted with a warning): 10.3, 10.4, 10.5, 10.6
    ");
}

#[test]
fn replicate_from_a_group_that_does_not_exist() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  groups:
    default:
      servers:
        - server: { unique_name: pg-main }
    reporting:
      replicate_from: defualt
      servers:
        - server: { unique_name: pg-report }
"#), @r#"
    manifest.yml:9:23: error[unknown-group]: no postgresql group named "defualt", did you mean "default"?
        help: postgresql groups here: default, reporting
    "#);
}

#[test]
fn replicate_from_a_group_of_another_type() {
    assert_snapshot!(diagnose(r#"
application: shop
redis:
  groups:
    cache:
      servers:
        - server: { unique_name: redis-cache }
postgresql:
  groups:
    default:
      replicate_from: cache
      servers:
        - server: { unique_name: pg-main }
"#), @r#"manifest.yml:11:23: error[group-type-mismatch]: replicate_from names "cache", a redis group; a postgresql group can only use another postgresql group"#);
}

#[test]
fn import_from_a_group_that_does_not_exist() {
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  groups:
    default:
      import_from: legacy
      servers:
        - server: { unique_name: db-main }
"#), @r#"
    manifest.yml:6:20: error[unknown-group]: no mysql group named "legacy"
        help: mysql groups here: default
    "#);
}

#[test]
fn postgresql_replication_needs_the_same_major_version() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  groups:
    default:
      configuration: { version: "16" }
      servers:
        - server: { unique_name: pg-main }
    reporting:
      configuration: { version: "15" }
      replicate_from: default
      servers:
        - server: { unique_name: pg-report }
"#), @"manifest.yml:11:23: error[incompatible-versions]: group postgresql.reporting cannot replicate from postgresql.default: PostgreSQL streaming replication needs the same major version on both sides (source postgresql 16, replica postgresql 15)");
}

#[test]
fn mysql_and_redis_replicas_may_not_be_older() {
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  groups:
    default:
      configuration: { engine: mysql, version: "8.4" }
      servers:
        - server: { unique_name: db-main }
    copy:
      configuration: { engine: percona, version: "8.0" }
      replicate_from: default
      servers:
        - server: { unique_name: db-copy }
    newer:
      configuration: { engine: mysql, version: "9.7" }
      replicate_from: default
      servers:
        - server: { unique_name: db-newer }
redis:
  groups:
    default:
      configuration: { version: "7.4" }
      servers:
        - server: { unique_name: redis-main }
    copy:
      configuration: { version: "7.2" }
      replicate_from: default
      servers:
        - server: { unique_name: redis-copy }
"#), @"
    manifest.yml:10:50: warning[end-of-life-version]: percona 8.0 is past its end of life
        help: it is accepted, but no longer gets security fixes; supported series: 8.4
    manifest.yml:11:23: error[incompatible-versions]: group mysql.copy cannot replicate from mysql.default: a replica must run the same version as its source or a newer one, never older (source mysql 8.4, replica percona 8.0)
    manifest.yml:27:23: error[incompatible-versions]: group redis.copy cannot replicate from redis.default: a replica must run the same version as its source or a newer one, never older (source redis 7.4, replica redis 7.2)
    ");
}

#[test]
fn mariadb_cannot_replicate_from_mysql() {
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  groups:
    default:
      configuration: { engine: mysql, version: "8.4" }
      servers:
        - server: { unique_name: db-main }
    maria:
      configuration: { engine: mariadb, version: "11.4" }
      replicate_from: default
      servers:
        - server: { unique_name: db-maria }
"#), @"manifest.yml:11:23: error[incompatible-versions]: group mysql.maria cannot replicate from mysql.default: MariaDB and MySQL/Percona Server use incompatible GTID formats, so MariaDB cannot replicate from MySQL");
}

#[test]
fn a_group_with_several_servers_cannot_replicate_from_another() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  groups:
    default:
      servers:
        - server: { unique_name: pg-main }
    reporting:
      replicate_from: default
      servers:
        - server: { unique_name: pg-report }
        - server: { unique_name: pg-report-2 }
"#), @"
    manifest.yml:9:23: error[replica-has-slaves]: group postgresql.reporting replicates from another group, so it can have only one server; it has 2
        help: a group with slaves of its own cannot be slaved to another group: keep one server, or remove replicate_from
    ");
}

#[test]
fn a_replication_source_cannot_itself_replicate() {
    assert_snapshot!(diagnose(r#"
application: shop
redis:
  groups:
    default:
      servers:
        - server: { unique_name: redis-main }
    middle:
      replicate_from: default
      servers:
        - server: { unique_name: redis-middle }
    leaf:
      replicate_from: middle
      servers:
        - server: { unique_name: redis-leaf }
"#), @"
    manifest.yml:9:23: error[chained-replication]: group redis.middle replicates from another group and is itself the replication source of redis.leaf
        help: a replication master in one group cannot be a slave of another group: point the replicas at the original source, or remove this replicate_from
    ");
}

#[test]
fn replication_cycles_are_reported_once() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  groups:
    a:
      replicate_from: b
      servers:
        - server: { unique_name: pg-a }
    b:
      replicate_from: c
      servers:
        - server: { unique_name: pg-b }
    c:
      replicate_from: a
      servers:
        - server: { unique_name: pg-c }
    self:
      replicate_from: self
      servers:
        - server: { unique_name: pg-self }
"#), @"
    manifest.yml:6:23: error[replication-cycle]: replicate_from forms a cycle: postgresql.a → postgresql.b → postgresql.c → postgresql.a
        help: every copy needs a source that is not itself waiting on a copy: break the cycle
    manifest.yml:18:23: error[replication-cycle]: group postgresql.self names itself in replicate_from
        help: every copy needs a source that is not itself waiting on a copy: break the cycle
    ");
}

#[test]
fn import_cycles_are_reported() {
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  groups:
    a:
      import_from: b
      servers:
        - server: { unique_name: db-a }
    b:
      import_from: a
      servers:
        - server: { unique_name: db-b }
"#), @"
    manifest.yml:6:20: error[replication-cycle]: import_from forms a cycle: mysql.a → mysql.b → mysql.a
        help: every copy needs a source that is not itself waiting on a copy: break the cycle
    ");
}

#[test]
fn mongodb_cannot_replicate_from_another_application() {
    assert_snapshot!(diagnose(r#"
application: shop
mongodb:
  groups:
    default:
      replicate_from: { application: billing, group: default }
      servers:
        - server: { unique_name: mongo-main }
    copy:
      import_from: { application: billing, group: default }
      servers:
        - server: { unique_name: mongo-copy }
"#), @"
    manifest.yml:6:25: error[cross-application-mongodb]: MongoDB replication between applications is not supported
        help: a replica set lives inside one application; use import_from for a one-time copy
    ");
}

#[test]
fn more_than_one_primary_per_type() {
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  groups:
    default:
      primary: true
      servers:
        - server: { unique_name: db-main }
    venus:
      primary: true
      servers:
        - server: { unique_name: db-venus }
    mars:
      primary: true
      servers:
        - server: { unique_name: db-mars }
redis:
  primary: true
  servers:
    - server: { unique_name: redis-main }
"#), @r#"
    manifest.yml:10:16: error[multiple-primaries]: more than one mysql group is primary: "default" and "venus"
        help: the root MYSQL variables follow one group: keep `primary: true` on one
    manifest.yml:14:16: error[multiple-primaries]: more than one mysql group is primary: "default" and "mars"
        help: the root MYSQL variables follow one group: keep `primary: true` on one
    "#);
}

#[test]
fn unsupported_vendors() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  servers:
    - server: { unique_name: pg-a, vendor: aws, region: us-east-1 }
    - server: { unique_name: pg-b, vendor: lcoal }
    - server: { unique_name: pg-c, vendor: ssh }
    - server: { unique_name: pg-d, vendor: local, address: 10.0.0.4 }
    - server: { unique_name: pg-e, address: db5.internal }
    - server: { vendor: aws }
"#), @r#"
    manifest.yml:5:44: error[unsupported-vendor]: vendor "aws" has no provider in dbgroups
        help: vendors with a provider: local (this machine, the default) and ssh (an existing host named by `address`)
    manifest.yml:6:44: error[unsupported-vendor]: unknown vendor "lcoal", did you mean "local"?
        help: vendors with a provider: local (this machine, the default) and ssh (an existing host named by `address`)
    manifest.yml:7:44: error[missing-key]: an ssh server needs an `address`
        help: add address: HOST, the existing host to use
    manifest.yml:8:60: error[unsupported-vendor]: `address` names an existing host, which the local provider does not use
        help: remove `address` to run the server on this machine, or remove `vendor: local`: a server with an `address` is reached over ssh
    manifest.yml:10:7: error[missing-key]: the server has no `unique_name`
        help: add unique_name: NAME; it must be unique across the application
    manifest.yml:10:25: error[unsupported-vendor]: vendor "aws" has no provider in dbgroups
        help: vendors with a provider: local (this machine, the default) and ssh (an existing host named by `address`)
    "#);
}

#[test]
fn importing_and_replicating_at_once() {
    assert_snapshot!(diagnose(r#"
application: shop
redis:
  groups:
    default:
      servers:
        - server: { unique_name: redis-main }
    copy:
      replicate_from: default
      import_from: default
      servers:
        - server: { unique_name: redis-copy }
"#), @"
    manifest.yml:10:20: error[import-and-replicate]: group redis.copy both imports and replicates
        help: replication already starts from a full copy of the source: remove import_from
    ");
}

#[test]
fn short_form_beside_groups() {
    assert_snapshot!(diagnose(r#"
application: shop
redis:
  configuration: { version: "7.0" }
  groups:
    default:
      servers:
        - server: { unique_name: redis-main }
"#), @"
    manifest.yml:4:3: error[mixed-group-forms]: `configuration` sits beside `groups:` in the redis section
        help: the short form applies only to the group named `default`: with `groups:`, move it under the group it belongs to
    ");
}

#[test]
fn group_names_whose_variables_would_collide() {
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  groups:
    my-db:
      servers:
        - server: { unique_name: db-1 }
    my_db:
      servers:
        - server: { unique_name: db-2 }
mongodb:
  groups:
    default:
      servers:
        - server: { unique_name: mongo-main }
    slave:
      servers:
        - server: { unique_name: mongo-slave }
"#), @r#"
    manifest.yml:8:5: error[environment-variable-clash]: group "my_db" would set MYSQL_MY_DB_ADDRESS, which group "my-db" already sets
        help: rename the group: variable names upper-case it and turn other characters into `_`
    manifest.yml:16:5: error[environment-variable-clash]: group "slave" would set MONGODB_SLAVE_ADDRESSES, which is a root variable of the primary group
        help: rename the group: variable names upper-case it and turn other characters into `_`
    "#);
}

#[test]
fn names_that_cannot_be_used() {
    assert_snapshot!(diagnose(r#"
application: "my shop"
postgresql:
  groups:
    "reporting.eu":
      servers:
        - server: { unique_name: "-pg" }
        - server: { unique_name: "pg/1" }
"#), @r#"
    manifest.yml:2:14: error[invalid-name]: invalid application name "my shop": it contains a space, which names may not hold
        help: names are used in paths, hostnames and variable names: use at most 63 characters: letters, digits, `_` and `-`, starting with a letter or digit
    manifest.yml:5:5: error[invalid-name]: invalid group name "reporting.eu": it contains `.`, which names may not hold
        help: names are used in paths, hostnames and variable names: use at most 63 characters: letters, digits, `_` and `-`, starting with a letter or digit
    manifest.yml:7:34: error[invalid-name]: invalid unique_name "-pg": it starts with `-`, not a letter or digit
        help: names are used in paths, hostnames and variable names: use at most 63 characters: letters, digits, `_`, `-` and `.`, starting with a letter or digit
    manifest.yml:8:34: error[invalid-name]: invalid unique_name "pg/1": it contains `/`, which names may not hold
        help: names are used in paths, hostnames and variable names: use at most 63 characters: letters, digits, `_`, `-` and `.`, starting with a letter or digit
    "#);
}

#[test]
fn values_of_the_wrong_kind() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  primary: yes
  backups: { managed: maybe }
  configuration:
    root_disk_size: 100GB
    tags: { team: [a, b] }
  servers:
    server: { unique_name: pg-main }
"#), @r#"
    manifest.yml:3:1: warning[no-servers]: group postgresql.default declares no servers
        help: it is valid, but nothing is built for it until it lists `servers:`
    manifest.yml:4:12: error[invalid-value]: expected true or false, found "yes"
        help: YAML 1.2 reads only true and false as booleans
    manifest.yml:5:23: error[invalid-value]: expected true or false, found "maybe"
    manifest.yml:7:21: error[invalid-value]: expected a whole number of gigabytes, found "100GB"
        help: write the size in GB without a unit, such as 100
    manifest.yml:8:19: error[wrong-type]: expected a value (tag value), found a list
    manifest.yml:10:5: error[wrong-type]: expected a list of `- server: {…}` entries, found a mapping
    "#);
}

#[test]
fn yaml_duplicate_keys_anchors_and_syntax() {
    assert_snapshot!(diagnose("application: shop\napplication: shop2\n"), @r#"
    manifest.yml:2:1: error[duplicate-key]: duplicate key "application"
        help: a mapping holds each key once: merge the two entries or remove one
    "#);
    assert_snapshot!(diagnose("application: shop\nredis: &r\n  servers: []\n"), @"
    manifest.yml:2:1: warning[no-servers]: group redis.default declares no servers
        help: it is valid, but nothing is built for it until it lists `servers:`
    manifest.yml:2:8: error[yaml-anchor]: YAML anchors and aliases are not supported in a manifest
        help: write the values out in full, so that each group reads on its own
    ");
    assert_snapshot!(diagnose("application: shop\nredis: { servers: [\n"), @"manifest.yml:3:1: error[yaml-syntax]: invalid YAML: while parsing a node, did not find expected node content");
    assert_snapshot!(diagnose("- just\n- a list\n"), @"manifest.yml:1:1: error[wrong-type]: the manifest must be a mapping of keys such as `application:` and `postgresql:`");
}

#[test]
fn text_that_is_not_utf8() {
    let source = dbgroups_manifest::SourceFile::from_bytes(
        "manifest.yml",
        b"application: shop\nredis: \xff\n",
    );
    let parsed = dbgroups_manifest::parse(&source, &ParseOptions::default());
    let found: Vec<String> = parsed
        .diagnostics
        .iter()
        .map(|d| d.to_compact_string(&source))
        .collect();
    assert_snapshot!(found.join("\n"), @"
    manifest.yml:2:8: error[invalid-utf8]: the manifest is not valid UTF-8
        help: save the file as UTF-8
    ");
}

#[test]
fn environments_must_be_chosen_and_must_exist() {
    let manifest = r#"
production:
  application: shop
  postgresql:
    servers:
      - server: { unique_name: pg-main }
staging:
  application: shop-staging
  postgresql:
    servers:
      - server: { unique_name: pg-staging }
rails:
  configuration: { ruby_version: "3.3" }
"#;
    assert_snapshot!(diagnose(manifest), @"
    manifest.yml:2:1: error[environment-required]: the manifest declares its groups per environment (production, staging); choose one
        help: pass --environment production
    manifest.yml:12:1: advice[ignored-section]: `rails` in the manifest is not a database section and is ignored
        help: dbgroups reads only application, ssh, mysql, postgresql, redis and mongodb
    ");
    let options = |env: &str| ParseOptions {
        environment: Some(env.to_string()),
        application: None,
    };
    assert_snapshot!(diagnose_with(manifest, &options("prodution")), @r#"
    manifest.yml:1:1: error[unknown-environment]: the manifest has no environment `prodution`
        help: did you mean "production"? environments in this manifest: production, staging
    manifest.yml:12:1: advice[ignored-section]: `rails` in the manifest is not a database section and is ignored
        help: dbgroups reads only application, ssh, mysql, postgresql, redis and mongodb
    "#);
    assert_snapshot!(diagnose_with(manifest, &options("staging")), @"
    manifest.yml:12:1: advice[ignored-section]: `rails` in the manifest is not a database section and is ignored
        help: dbgroups reads only application, ssh, mysql, postgresql, redis and mongodb
    ");
}

#[test]
fn a_chosen_environment_reads_its_own_groups() {
    let (_, parsed) = crate::common::parse_text(
        r#"
application: shop
production:
  postgresql:
    servers:
      - server: { unique_name: pg-prod }
staging:
  application: shop-staging
  postgresql:
    servers:
      - server: { unique_name: pg-staging }
"#,
        &ParseOptions {
            environment: Some("staging".into()),
            application: None,
        },
    );
    let manifest = parsed.manifest.expect("valid");
    assert_eq!(manifest.environment.as_deref(), Some("staging"));
    assert_eq!(
        manifest.application.as_ref().map(|a| a.as_str()),
        Some("shop-staging")
    );
    let servers: Vec<&str> = manifest
        .servers()
        .map(|(_, s)| s.unique_name.as_str())
        .collect();
    assert_eq!(servers, ["pg-staging"]);
}

#[test]
fn five_mistakes_are_all_reported_in_one_run() {
    let report = diagnose(
        r#"
application: shop
postgresql:
  groups:
    default:
      configuration: { verison: "15" }
      servers:
        - server: { unique_name: pg-main }
    reporting:
      replicate_from: defualt
      servers:
        - server: { unique_name: pg-main }
redis:
  configuration: { engine: redis }
  servers:
    - server: { size: large }
"#,
    );
    let errors = report.lines().filter(|l| l.contains(": error[")).count();
    assert_eq!(errors, 5, "{report}");
    assert_snapshot!(report, @r#"
    manifest.yml:6:24: error[unknown-key]: unknown key "verison", did you mean "version"?
        help: configuration accepts: engine, version, operating_system, root_disk_size, root_disk_type, encoding, tags
    manifest.yml:10:23: error[unknown-group]: no postgresql group named "defualt", did you mean "default"?
        help: postgresql groups here: default, reporting
    manifest.yml:12:34: error[duplicate-server]: server name "pg-main" is already used
        help: unique_name must be unique across the application, in every group and type
    manifest.yml:14:20: error[engine-mismatch]: `engine` applies only to mysql groups, not to redis
        help: redis groups always run redis: remove `engine: redis`
    manifest.yml:16:7: error[missing-key]: the server has no `unique_name`
        help: add unique_name: NAME; it must be unique across the application
    "#);
}

#[test]
fn an_import_across_the_mysql_family_is_refused_with_the_engines_named() {
    // The migration off MariaDB cannot be a dbgroups import: the message
    // names both products and compares no version numbers across them.
    assert_snapshot!(diagnose(r#"
application: shop
mysql:
  groups:
    legacy:
      configuration: { engine: mariadb, version: "10.11" }
      servers:
        - server: { unique_name: db-legacy }
    modern:
      configuration: { engine: mysql, version: "8.4" }
      import_from: legacy
      servers:
        - server: { unique_name: db-modern }
    percona:
      configuration: { engine: percona, version: "8.4" }
      import_from: modern
      servers:
        - server: { unique_name: db-percona }
"#), @"manifest.yml:11:20: error[incompatible-versions]: group mysql.modern cannot import from mysql.legacy: MariaDB 10.11 data cannot be imported into MySQL 8.4: a backup is restored only into the engine it was taken from (MySQL and Percona Server count as one); move the data with your own dump and load");
}

#[test]
fn a_primary_group_without_servers_and_a_primary_replica() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  groups:
    default:
      servers:
        - server: { unique_name: pg-main }
    reporting:
      primary: true
"#), @"
    manifest.yml:8:5: warning[no-servers]: group postgresql.reporting declares no servers
        help: it is valid, but nothing is built for it until it lists `servers:`
    manifest.yml:9:16: error[primary-without-servers]: group postgresql.reporting is marked primary but declares no servers
        help: the root POSTGRESQL variables point at the primary group's master: add its servers, or move `primary: true` to a group that has some
    ");
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  groups:
    default:
      servers:
        - server: { unique_name: pg-main }
    reporting:
      primary: true
      replicate_from: default
      servers:
        - server: { unique_name: pg-report }
"#), @"
    manifest.yml:9:16: warning[replica-is-primary]: group postgresql.reporting is marked primary but replicates from another group, so its server is read-only
        help: the root POSTGRESQL variables would point the application at a read-only replica: mark the source group primary instead, unless reads are all it does
    ");
}

// ----- Servers on existing hosts: addresses and ssh settings -----

/// `(user, port, identity_file, known_hosts_file, jump)` of a server's
/// effective ssh settings, each with its `line:column`.
fn effective_ssh(
    source: &dbgroups_manifest::SourceFile,
    server: &dbgroups_manifest::Server,
) -> Vec<String> {
    let ssh = server.effective_ssh();
    let at = |span: dbgroups_manifest::Span| source.location(span.start).to_string();
    let text = |key: &str, value: &Option<dbgroups_manifest::Spanned<String>>| {
        value
            .as_ref()
            .map(|v| format!("{key}={} at {}", v.value, at(v.span)))
    };
    [
        text("user", &ssh.user),
        ssh.port
            .as_ref()
            .map(|p| format!("port={} at {}", p.value, at(p.span))),
        text("identity_file", &ssh.identity_file),
        text("known_hosts_file", &ssh.known_hosts_file),
        text("jump", &ssh.jump),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn ssh_settings_merge_a_servers_keys_over_the_applications() {
    let (source, parsed) = crate::common::parse_text(
        r#"
application: shop
ssh: { user: deploy, identity_file: ~/.ssh/id_ed25519, jump: "ops@bastion.example:2200" }
postgresql:
  groups:
    default:
      configuration: { version: "15" }
      servers:
        - server: { unique_name: pg-main, address: 10.0.0.11 }
        - server: { unique_name: pg-replica-1, address: 10.0.0.12, ssh: { port: 2222 } }
        - server:
            unique_name: pg-replica-2
            address: "[fd00::13]"
            public_address: db3.example.com
            ssh:
              user: postgres-admin
              known_hosts_file: /etc/dbgroups/known_hosts
              jump: "[fd00::1]:22"
        - server: { unique_name: pg-local }
"#,
        &ParseOptions::default(),
    );
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let manifest = parsed.manifest.expect("valid");
    let servers: Vec<_> = manifest.servers().map(|(_, s)| s).collect();
    assert_eq!(
        effective_ssh(&source, servers[0]),
        [
            "user=deploy at 3:14",
            "identity_file=~/.ssh/id_ed25519 at 3:37",
            "jump=ops@bastion.example:2200 at 3:62",
        ]
    );
    assert_eq!(
        effective_ssh(&source, servers[1]),
        [
            "user=deploy at 3:14",
            "port=2222 at 10:81",
            "identity_file=~/.ssh/id_ed25519 at 3:37",
            "jump=ops@bastion.example:2200 at 3:62",
        ]
    );
    assert_eq!(
        effective_ssh(&source, servers[2]),
        [
            "user=postgres-admin at 16:21",
            "identity_file=~/.ssh/id_ed25519 at 3:37",
            "known_hosts_file=/etc/dbgroups/known_hosts at 17:33",
            "jump=[fd00::1]:22 at 18:21",
        ]
    );
    // IPv6 is kept without brackets; the span is what was written.
    let address = servers[2].address.as_ref().expect("address");
    assert_eq!(address.value, "fd00::13");
    assert_eq!(source.location(address.span.start).to_string(), "13:22");
    assert_eq!(
        servers[2].public_address.as_ref().map(|a| a.as_str()),
        Some("db3.example.com")
    );
    assert_eq!(
        servers[2].effective_ssh().entries(),
        [
            ("user", "postgres-admin".to_string()),
            ("identity_file", "~/.ssh/id_ed25519".to_string()),
            ("known_hosts_file", "/etc/dbgroups/known_hosts".to_string()),
            ("jump", "[fd00::1]:22".to_string()),
        ]
    );
    // A local server has no ssh of its own; it still sees the defaults.
    assert_eq!(
        servers[3].provider(),
        dbgroups_manifest::ProviderKind::Local
    );
    assert!(servers[3].ssh.is_none());
}

#[test]
fn a_chosen_environments_ssh_keys_win_over_the_top_levels() {
    let (source, parsed) = crate::common::parse_text(
        r#"
application: shop
ssh: { user: deploy, port: 22 }
production:
  ssh: { port: 2200, jump: bastion.prod }
  redis:
    servers:
      - server: { unique_name: redis-main, address: redis1.prod }
staging:
  ssh: { user: "-oops" }
  redis:
    servers:
      - server: { unique_name: redis-main, address: redis1.staging }
"#,
        &ParseOptions {
            environment: Some("production".into()),
            application: None,
        },
    );
    // The staging section is not read, so its bad user is not reported.
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let manifest = parsed.manifest.expect("valid");
    let (_, server) = manifest.servers().next().expect("a server");
    assert_eq!(
        effective_ssh(&source, server),
        [
            "user=deploy at 3:14",
            "port=2200 at 5:16",
            "jump=bastion.prod at 5:28",
        ]
    );
}

#[test]
fn several_servers_may_share_one_host() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  servers:
    - server: { unique_name: pg-main, address: db1.internal }
redis:
  servers:
    - server: { unique_name: redis-main, address: db1.internal }
"#), @"");
}

#[test]
fn hostile_addresses_are_refused_where_they_are_written() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  servers:
    - server: { unique_name: pg-a, address: -oProxyCommand=sh }
    - server: { unique_name: pg-b, address: "a b" }
    - server: { unique_name: pg-c, address: "h;rm -rf /" }
    - server: { unique_name: pg-d, address: "$(id)" }
    - server: { unique_name: pg-e, address: "" }
    - server: { unique_name: pg-f, address: "db\u001b.internal" }
    - server: { unique_name: pg-g, address: db_1.internal }
    - server: { unique_name: pg-h, address: "db1.internal:5432" }
    - server: { unique_name: pg-i, address: 10.0.0.256 }
    - server: { unique_name: pg-j, address: -db.internal, public_address: "`id`" }
    - server: { unique_name: pg-k, address: "[fd00::1" }
    - server: { unique_name: pg-l, address: db-.internal }
    - server: { unique_name: pg-m, address: "a/b" }
"#), @r#"
    manifest.yml:5:45: error[invalid-address]: invalid address "-oProxyCommand=sh": it starts with `-`, so ssh would read it as an option; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:6:45: error[invalid-address]: invalid address "a b": it contains a space, which an address may not hold; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:7:45: error[invalid-address]: invalid address "h;rm -rf /": it contains `;`, which an address may not hold; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:8:45: error[invalid-address]: invalid address "$(id)": it contains `$`, which an address may not hold; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:9:45: error[invalid-address]: invalid address "": it is empty; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:10:45: error[invalid-address]: invalid address "db\u{1b}.internal": it contains U+001B (ESC), which an address may not hold; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:11:45: error[invalid-address]: invalid address "db_1.internal": it contains `_`, which an address may not hold; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:12:45: error[invalid-address]: invalid address "db1.internal:5432": it has a `:PORT`, which does not belong in an address (an IPv6 address has several `:`); an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:13:45: error[invalid-address]: invalid address "10.0.0.256": it looks like an IPv4 address but is not one: write four decimal numbers from 0 to 255 without leading zeros, such as 10.0.0.11; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:14:45: error[invalid-address]: invalid address "-db.internal": it starts with `-`, so ssh would read it as an option; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:14:75: error[invalid-address]: invalid public_address "`id`": it contains a backtick, which an address may not hold; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the DNS name or IP address clients outside reach the host at, such as db5.example.com, 203.0.113.5 or 2001:db8::5
    manifest.yml:15:45: error[invalid-address]: invalid address "[fd00::1": its `[` has no matching `]` at the end (an IPv6 address in brackets is written `[fd00::11]`); an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:16:45: error[invalid-address]: invalid address "db-.internal": its part "db-" starts or ends with `-`, which host names may not; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    manifest.yml:17:45: error[invalid-address]: invalid address "a/b": it contains `/`, which an address may not hold; an address is a host name (letters, digits, `-` and `.`), an IPv4 address or an IPv6 address
        help: write the host's DNS name or IP address, such as db5.internal, 10.0.0.11 or fd00::11
    "#);
}

/// `allow_from` takes networks in CIDR form or single addresses; anything
/// else is refused at its item, and a network with host bits set names the
/// network meant. A valid list gives no diagnostic.
#[test]
fn allow_from_networks_are_checked_where_they_are_written() {
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  allow_from: [10.0.1.0/24, 10.0.2.5/24, nonsense, 192.0.2.7, "2001:db8::/64", 10.0.0.0/33, "-oX"]
  servers:
    - server: { unique_name: pg-main, address: 10.0.0.11 }
redis:
  allow_from: 10.0.1.0/24
  servers:
    - server: { unique_name: redis-main, address: 10.0.0.11 }
"#), @r#"
    manifest.yml:4:29: error[invalid-address]: invalid network "10.0.2.5/24" in allow_from: it has host bits set (the network is 10.0.2.0/24)
        help: write 10.0.2.0/24 for the whole network, or 10.0.2.5/32 for the one address
    manifest.yml:4:42: error[invalid-address]: invalid network "nonsense" in allow_from: not an IP network
        help: write a network as ADDRESS/PREFIX (10.0.1.0/24, 2001:db8::/64) or one address (192.0.2.7)
    manifest.yml:4:80: error[invalid-address]: invalid network "10.0.0.0/33" in allow_from: not an IP network
        help: write a network as ADDRESS/PREFIX (10.0.1.0/24, 2001:db8::/64) or one address (192.0.2.7)
    manifest.yml:4:93: error[invalid-address]: invalid network "-oX" in allow_from: not an IP network
        help: write a network as ADDRESS/PREFIX (10.0.1.0/24, 2001:db8::/64) or one address (192.0.2.7)
    manifest.yml:8:15: error[wrong-type]: expected a list of networks (CIDR, such as 10.0.1.0/24), found a single value
    "#);
    assert_snapshot!(diagnose(r#"
application: shop
postgresql:
  allow_from: [10.0.1.0/24, 192.0.2.7, "2001:db8::/64"]
  servers:
    - server: { unique_name: pg-main, address: 10.0.0.11 }
"#), @"");
}

#[test]
fn hostile_ssh_settings_are_refused_where_they_are_written() {
    assert_snapshot!(diagnose(r#"
application: shop
ssh:
  user: -x
  port: 0
  identity_file: "~/.ssh/id\n-oProxyCommand=sh"
  known_hosts_file: -F
  jump: -J
postgresql:
  servers:
    - server: { unique_name: pg-a, address: db1.internal, ssh: { port: 70000, user: "a;b", jump: "ops@bastion:0" } }
    - server: { unique_name: pg-b, address: db2.internal, ssh: { user: Deploy, port: ssh, jump: "fd00::1", identity_file: "%d/key" } }
    - server: { unique_name: pg-c, address: db3.internal, ssh: { jump: "a@b,c", known_hosts_file: "a b" } }
"#), @r#"
    manifest.yml:4:9: error[invalid-ssh-setting]: invalid ssh.user "-x": it starts with `-`, so ssh would read it as an option; a user name has lowercase letters, digits, `_` and `-`, starts with a lowercase letter or `_`, may end with `$`, and has at most 32 characters
        help: write the login name on the host, such as `user: deploy`
    manifest.yml:5:9: error[invalid-ssh-setting]: invalid ssh.port "0": port 0 is not a port a server listens on; a port is a whole number from 1 to 65535
        help: write the port the host's sshd listens on, such as `port: 2222`
    manifest.yml:6:18: error[invalid-ssh-setting]: invalid ssh.identity_file "~/.ssh/id\u{a}-oProxyCommand=sh": it contains U+000A, which a path may not hold; a path is absolute, relative or starts with `~/`, and holds no spaces, control characters, quotes, `\`, `%` or `$` and no leading `-`
        help: write the private key's path, such as `identity_file: ~/.ssh/id_ed25519`
    manifest.yml:7:21: error[invalid-ssh-setting]: invalid ssh.known_hosts_file "-F": it starts with `-`, so ssh would read it as an option; a path is absolute, relative or starts with `~/`, and holds no spaces, control characters, quotes, `\`, `%` or `$` and no leading `-`
        help: write the known-hosts file's path, such as `known_hosts_file: ~/.ssh/known_hosts`
    manifest.yml:8:9: error[invalid-ssh-setting]: invalid ssh.jump "-J": it starts with `-`, so ssh would read it as an option; a jump is one host, `[user@]host[:port]`, with an IPv6 host in brackets
        help: write the bastion host, such as `jump: ops@bastion.example:22`; chain several hosts in your ssh configuration
    manifest.yml:11:72: error[invalid-ssh-setting]: invalid ssh.port "70000": it is larger than 65535; a port is a whole number from 1 to 65535
        help: write the port the host's sshd listens on, such as `port: 2222`
    manifest.yml:11:85: error[invalid-ssh-setting]: invalid ssh.user "a;b": it contains `;`, which a user name may not hold; a user name has lowercase letters, digits, `_` and `-`, starts with a lowercase letter or `_`, may end with `$`, and has at most 32 characters
        help: write the login name on the host, such as `user: deploy`
    manifest.yml:11:98: error[invalid-ssh-setting]: invalid ssh.jump "ops@bastion:0": its port "0" is refused: port 0 is not a port a server listens on; a jump is one host, `[user@]host[:port]`, with an IPv6 host in brackets
        help: write the bastion host, such as `jump: ops@bastion.example:22`; chain several hosts in your ssh configuration
    manifest.yml:12:72: error[invalid-ssh-setting]: invalid ssh.user "Deploy": it contains `D`, which a user name may not hold; a user name has lowercase letters, digits, `_` and `-`, starts with a lowercase letter or `_`, may end with `$`, and has at most 32 characters
        help: write the login name on the host, such as `user: deploy`
    manifest.yml:12:86: error[invalid-ssh-setting]: invalid ssh.port "ssh": it is not a whole number; a port is a whole number from 1 to 65535
        help: write the port the host's sshd listens on, such as `port: 2222`
    manifest.yml:12:97: error[invalid-ssh-setting]: invalid ssh.jump "fd00::1": it has several `:`: write an IPv6 jump host in brackets, as in `[fd00::1]:22`; a jump is one host, `[user@]host[:port]`, with an IPv6 host in brackets
        help: write the bastion host, such as `jump: ops@bastion.example:22`; chain several hosts in your ssh configuration
    manifest.yml:12:123: error[invalid-ssh-setting]: invalid ssh.identity_file "%d/key": it contains `%`, which ssh expands as a token or a variable; a path is absolute, relative or starts with `~/`, and holds no spaces, control characters, quotes, `\`, `%` or `$` and no leading `-`
        help: write the private key's path, such as `identity_file: ~/.ssh/id_ed25519`
    manifest.yml:13:72: error[invalid-ssh-setting]: invalid ssh.jump "a@b,c": it contains `,`: dbgroups takes one jump host (chain hosts in your ssh configuration); a jump is one host, `[user@]host[:port]`, with an IPv6 host in brackets
        help: write the bastion host, such as `jump: ops@bastion.example:22`; chain several hosts in your ssh configuration
    manifest.yml:13:99: error[invalid-ssh-setting]: invalid ssh.known_hosts_file "a b": it contains a space, which ssh's option parser reads as a separator; a path is absolute, relative or starts with `~/`, and holds no spaces, control characters, quotes, `\`, `%` or `$` and no leading `-`
        help: write the known-hosts file's path, such as `known_hosts_file: ~/.ssh/known_hosts`
    "#);
}

#[test]
fn ssh_settings_on_a_server_of_the_local_provider_are_refused() {
    assert_snapshot!(diagnose(r#"
application: shop
redis:
  servers:
    - server: { unique_name: redis-a, ssh: { port: 2222 } }
    - server: { unique_name: redis-b, public_address: redis.example.com }
    - server: { unique_name: redis-c, vendor: local, ssh: {} }
    - server: { unique_name: redis-d, vendor: ssh, ssh: { user: deploy } }
"#), @r#"
    manifest.yml:5:39: error[ssh-on-local-server]: `ssh:` applies only to a server on an existing host (one with `address`), and server "redis-a" runs on this machine (the local provider)
        help: add `address: HOST` to put the server on an existing host reached over ssh, or remove `ssh:` to run it on this machine
    manifest.yml:6:55: error[ssh-on-local-server]: `public_address` applies only to a server on an existing host (one with `address`), and server "redis-b" runs on this machine (the local provider)
        help: add `address: HOST` to put the server on an existing host reached over ssh, or remove `public_address` to run it on this machine
    manifest.yml:7:54: error[ssh-on-local-server]: `ssh:` applies only to a server on an existing host (one with `address`), and server "redis-c" runs on this machine (the local provider)
        help: `vendor: local` runs the server on this machine: remove `ssh:`, or replace `vendor: local` with `address: HOST` to put the server on an existing host
    manifest.yml:8:47: error[missing-key]: an ssh server needs an `address`
        help: add address: HOST, the existing host to use
    "#);
}

#[test]
fn an_unknown_ssh_key_suggests_the_closest_known_one() {
    assert_snapshot!(diagnose(r#"
application: shop
ssh: { usr: deploy }
redis:
  servers:
    - server: { unique_name: redis-a, address: redis1.internal, ssh: { identity: ~/.ssh/k, prot: 22 } }
    - server: { unique_name: redis-b, address: redis2.internal, ssh: deploy@redis2 }
"#), @r#"
    manifest.yml:3:8: error[unknown-key]: unknown key "usr", did you mean "user"?
        help: ssh accepts: user, port, identity_file, known_hosts_file, jump
    manifest.yml:6:72: error[unknown-key]: unknown key "identity", did you mean "identity_file"?
        help: ssh accepts: user, port, identity_file, known_hosts_file, jump
    manifest.yml:6:92: error[unknown-key]: unknown key "prot", did you mean "port"?
        help: ssh accepts: user, port, identity_file, known_hosts_file, jump
    manifest.yml:7:70: error[wrong-type]: expected a mapping (ssh settings), found a single value
    "#);
}
