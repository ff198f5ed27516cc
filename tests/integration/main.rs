//! All integration tests, built as one binary (as ripgrep does): each module
//! covers one area, and `common` holds the helpers they share.

mod apply_live;
mod architecture;
mod cli;
mod cli_plan;
mod cli_render;
mod cli_state;
mod cli_usage;
mod common;
mod engine_mariadb;
mod engine_postgres;
mod engine_redis;
mod engine_urls;
mod examples;
mod file_readers;
mod hostile;
mod hosts_live;
mod mongodb_commands;
mod mongodb_reconfig;
mod mysql_dialect;
mod plan_lint;
mod plan_properties;
mod plans;
mod plans_mongodb;
mod plans_mysql;
mod properties;
mod rules;
mod rules_yaml;
mod schema;
mod self_contained;
mod ssh_host;
mod state;
mod test_hosts;
mod test_hosts_selftest;
mod transcripts;
mod validate_output;
