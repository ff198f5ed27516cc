//! The manifest's JSON Schema (draft-07, the dialect yaml-language-server
//! knows best), built from the same key lists and catalogue as the reader.
//! It guides editors; `dbgroups validate` remains the authority (cross-group
//! rules such as replication compatibility cannot be said in a schema).

use serde_json::{Map, Value, json};

use crate::catalogue;
use crate::hosts;
use crate::keys::{CONFIGURATION_KEYS, GROUP_KEYS, SERVER_KEYS, SSH_KEYS, SUPPORTED_VENDORS};
use crate::model::{DbType, Engine};

pub const SCHEMA_ID: &str = "https://dbgroups.dev/schema/manifest.json";

/// The schema as a JSON value.
pub fn manifest_schema() -> Value {
    let mut definitions = Map::new();
    definitions.insert("groupRef".into(), group_ref());
    definitions.insert("serverEntry".into(), server_entry());
    definitions.insert("ssh".into(), ssh_settings());
    definitions.insert("address".into(), address());
    let sections = top_level_sections();
    definitions.insert(
        "environment".into(),
        json!({
            "type": "object",
            "description": "An environment (production:, staging:, …): the same keys as the top level; choose it with --environment.",
            "properties": sections.clone(),
            "propertyNames": no_misspelt_keys(),
            "additionalProperties": true,
        }),
    );
    for db_type in DbType::ALL {
        definitions.insert(format!("{db_type}Group"), group(db_type));
        definitions.insert(format!("{db_type}Section"), type_section(db_type));
    }
    // A top-level mapping that holds an application or database section is
    // an environment, as the reader decides (`looks_like_environment`).
    let holds_our_keys: Vec<Value> = our_top_level_keys()
        .into_iter()
        .map(|key| json!({ "required": [key] }))
        .collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "dbgroups manifest.yml",
        "description": "Database groups, their servers and the replication between them. Other platform sections (rails, docker, …) are allowed and ignored; environment sections (production:, …) hold the same keys as the top level.",
        "type": "object",
        "properties": sections,
        "propertyNames": no_misspelt_keys(),
        "additionalProperties": {
            "if": { "type": "object", "anyOf": holds_our_keys },
            "then": { "$ref": "#/definitions/environment" },
        },
        "definitions": definitions,
    })
}

fn our_top_level_keys() -> Vec<&'static str> {
    std::iter::once("application")
        .chain(DbType::ALL.map(DbType::key))
        .collect()
}

/// The keys the top level (and an environment) reads.
fn top_level_sections() -> Map<String, Value> {
    let mut sections = Map::new();
    sections.insert(
        "application".into(),
        json!({ "type": "string", "description": "The application these groups belong to (or pass --app)." }),
    );
    sections.insert(
        "ssh".into(),
        json!({
            "$ref": "#/definitions/ssh",
            "description": "Defaults for reaching servers on existing hosts (those with `address`); a server's own `ssh:` keys win.",
        }),
    );
    for db_type in DbType::ALL {
        sections.insert(
            db_type.key().into(),
            json!({ "$ref": format!("#/definitions/{db_type}Section") }),
        );
    }
    sections
}

/// A key of ours, or one that is not a likely typo of one. The validator
/// refuses keys within a third of their letters of ours (suggest.rs); a
/// schema cannot compute that distance, so it refuses what lies one edit
/// away (a letter changed, added, dropped or two swapped, in any case) or
/// abbreviates a key, which covers the common slips such as `postgressql`.
fn no_misspelt_keys() -> Value {
    let ours = our_top_level_keys();
    let typos: Vec<String> = ours.iter().flat_map(|key| one_edit_patterns(key)).collect();
    // `ssh` is read, but as the reader does, its near misses (`ssl`) are
    // left to be platform sections.
    let accepted: Vec<&str> = ours.iter().copied().chain(["ssh"]).collect();
    json!({
        "anyOf": [
            { "enum": accepted },
            { "not": { "pattern": format!("^(?:{})$", typos.join("|")) } },
        ],
    })
}

/// Regular expressions for every text one edit from `key`, and for its
/// prefixes of three letters or more, letters matched in either case.
fn one_edit_patterns(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let class = |c: &char| {
        if c.is_ascii_alphabetic() {
            format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
        } else {
            regex_escape(*c)
        }
    };
    let run = |part: &[char]| part.iter().map(class).collect::<String>();
    let n = chars.len();
    let mut patterns = Vec::new();
    for i in 0..n {
        // A letter changed, or dropped.
        patterns.push(format!("{}.{}", run(&chars[..i]), run(&chars[i + 1..])));
        patterns.push(format!("{}{}", run(&chars[..i]), run(&chars[i + 1..])));
        if i + 1 < n {
            let swapped = [chars[i + 1], chars[i]];
            patterns.push(format!(
                "{}{}{}",
                run(&chars[..i]),
                run(&swapped),
                run(&chars[i + 2..])
            ));
        }
    }
    for i in 0..=n {
        patterns.push(format!("{}.{}", run(&chars[..i]), run(&chars[i..])));
    }
    for len in 3..n {
        patterns.push(run(&chars[..len]));
    }
    patterns
}

fn regex_escape(c: char) -> String {
    if "\\.^$|?*+()[]{}".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

fn type_section(db_type: DbType) -> Value {
    let group_ref = json!({ "$ref": format!("#/definitions/{db_type}Group") });
    json!({
        "description": format!("The {db_type} groups: either `groups:` by name, or the short form, which declares only the group named default."),
        "oneOf": [
            {
                "type": "object",
                "properties": { "groups": { "type": "object", "additionalProperties": group_ref } },
                "required": ["groups"],
                "additionalProperties": false,
            },
            group_ref,
        ],
    })
}

fn group(db_type: DbType) -> Value {
    let properties: Map<String, Value> = GROUP_KEYS
        .iter()
        .map(|&key| (key.to_string(), group_property(db_type, key)))
        .collect();
    json!({ "type": "object", "properties": properties, "additionalProperties": false })
}

fn group_property(db_type: DbType, key: &str) -> Value {
    match key {
        "configuration" => configuration(db_type),
        "servers" => json!({
            "type": "array",
            "description": "The first server is the master; the rest are slaves replicating from it.",
            "items": { "$ref": "#/definitions/serverEntry" },
        }),
        "primary" => {
            json!({ "type": "boolean", "description": "This group's values become the root variables (only one group per type)." })
        }
        "backups" => json!({
            "type": "object",
            "properties": {
                "managed": { "type": "boolean", "description": "Managed backups (`dbgroups backup run`); required to scale the group up." },
                "keep": { "type": "integer", "minimum": 0, "description": "How many verified managed backups to keep (default 7); the newest verified one is always kept." },
                "store": {
                    "description": "Where managed backups are written: a directory here, or { address, path } on an ssh host (default: the state directory's backups/managed).",
                    "oneOf": [
                        { "type": "string" },
                        {
                            "type": "object",
                            "properties": { "address": { "type": "string" }, "path": { "type": "string" } },
                            "required": ["path"],
                            "additionalProperties": false,
                        },
                    ],
                },
            },
            "additionalProperties": false,
        }),
        "replicate_from" => {
            json!({ "$ref": "#/definitions/groupRef", "description": "Make this single-server group a replica of another group. Replaces all its data." })
        }
        "import_from" => json!({
            "description": "Copy another group's data once, when this group is created (`backup: latest | ID` restores one of its managed backups).",
            "oneOf": [
                { "type": "string", "description": "A group of the same type in this application." },
                {
                    "type": "object",
                    "properties": {
                        "application": { "type": "string" },
                        "group": { "type": "string" },
                        "backup": { "type": "string", "description": "latest, or a backup id (`dbgroups backup list`)." },
                    },
                    "required": ["group"],
                    "additionalProperties": false,
                },
            ],
        }),
        "add_odd_member" => json!({
            "type": "boolean",
            "default": true,
            "description": "MongoDB only. With an even number of servers (fewer than seven), dbgroups adds a voting member, <group>-odd-member; false adds none and makes the last declared server non-voting (votes: 0, priority: 0) instead.",
        }),
        "allow_from" => json!({
            "type": "array",
            "description": "The client networks (CIDR, or one address) that may connect to the group's servers on existing hosts, besides loopback and the hosts of the groups it replicates with. Servers on this machine listen on loopback only.",
            "items": { "type": "string" },
        }),
        other => unreachable!("group key {other} has no schema"),
    }
}

fn configuration(db_type: DbType) -> Value {
    let properties: Map<String, Value> = CONFIGURATION_KEYS
        .iter()
        .filter(|&&key| key != "engine" || db_type == DbType::Mysql)
        .map(|&key| {
            let schema = match key {
                "engine" => json!({ "enum": Engine::MYSQL_FAMILY.map(Engine::key), "default": "mysql" }),
                // The mysql type's list depends on `engine:` (allOf below).
                "version" if db_type == DbType::Mysql => json!({
                    "type": ["string", "number"],
                    "description": "The release series of the group's engine; quote it.",
                }),
                "version" => version(db_type.default_engine()),
                "root_disk_size" => json!({ "type": "integer", "minimum": 1, "description": "Gigabytes." }),
                "tags" => json!({
                    "oneOf": [
                        { "type": "array", "items": { "type": ["string", "number", "boolean"] } },
                        { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } },
                    ],
                }),
                _ => json!({ "type": "string" }),
            };
            (key.to_string(), schema)
        })
        .collect();
    let mut schema =
        json!({ "type": "object", "properties": properties, "additionalProperties": false });
    if db_type == DbType::Mysql {
        // Each engine of the family has its own catalogue: the version list
        // follows `engine:` (mysql when it is absent).
        let per_engine: Vec<Value> = Engine::MYSQL_FAMILY
            .into_iter()
            .map(|engine| {
                // `properties` holds when the key is absent: an absent
                // engine is mysql's, the others must be written.
                let mut condition =
                    json!({ "properties": { "engine": { "const": engine.key() } } });
                if engine != Engine::Mysql {
                    condition["required"] = json!(["engine"]);
                }
                json!({
                    "if": condition,
                    "then": { "properties": { "version": version(engine) } },
                })
            })
            .collect();
        schema["allOf"] = Value::Array(per_engine);
    }
    schema
}

/// The versions of one engine: its catalogue's series as an enumeration
/// (what editors complete), or a more precise release of one of them
/// (`"15.4"`, `"8.4.2"`), which the validator reads as its series.
fn version(engine: Engine) -> Value {
    let series: Vec<&str> = catalogue::releases(engine).map(|r| r.series).collect();
    let mut choices: Vec<Value> = series.iter().map(|&s| json!(s)).collect();
    // Unquoted in YAML, a series reads as a number in editors.
    choices.extend(
        series
            .iter()
            .filter_map(|s| s.parse::<f64>().ok())
            .map(|n| json!(n)),
    );
    let precise: Vec<String> = series
        .iter()
        .map(|s| {
            let escaped = s.replace('.', "\\.");
            if let Some(major) = s.strip_suffix(".0") {
                // `8` reads as 8.0, as in Version::series.
                format!("{escaped}\\.[0-9]+|{major}")
            } else if s.contains('.') {
                format!("{escaped}\\.[0-9]+")
            } else {
                format!("{escaped}(\\.[0-9]+){{1,2}}")
            }
        })
        .collect();
    let supported: Vec<&str> = catalogue::releases(engine)
        .filter(|r| !r.end_of_life)
        .map(|r| r.series)
        .collect();
    json!({
        "description": format!(
            "The {} release series; quote it (\"10.10\" unquoted reads as 10.1). Supported: {}; older series are accepted with an end-of-life warning.",
            engine.product_name(),
            supported.join(", ")
        ),
        "anyOf": [
            { "enum": choices },
            { "type": "string", "pattern": format!("^(?:{})$", precise.join("|")) },
        ],
    })
}

fn server_entry() -> Value {
    let properties: Map<String, Value> = SERVER_KEYS
        .iter()
        .map(|&key| {
            let schema = match key {
                "unique_name" => json!({
                    "type": "string",
                    "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
                    "description": "Unique across the application.",
                }),
                "vendor" => json!({ "enum": SUPPORTED_VENDORS, "default": "local" }),
                "address" => json!({
                    "allOf": [{ "$ref": "#/definitions/address" }],
                    "description": "An existing host, reached with the ssh provider: the host name or IP that dbgroups and the other hosts reach it at.",
                }),
                "public_address" => json!({
                    "allOf": [{ "$ref": "#/definitions/address" }],
                    "description": "The address clients outside reach the host at, for the _EXT variables. Only with `address`.",
                }),
                "ssh" => json!({
                    "$ref": "#/definitions/ssh",
                    "description": "This server's ssh settings, over the application's `ssh:`. Only with `address`.",
                }),
                "root_disk_size" => json!({ "type": "integer", "minimum": 1, "description": "Gigabytes." }),
                _ => json!({ "type": "string" }),
            };
            (key.to_string(), schema)
        })
        .collect();
    json!({
        "type": "object",
        "properties": {
            "server": {
                "type": "object",
                "properties": properties,
                "required": ["unique_name"],
                "additionalProperties": false,
            },
        },
        "required": ["server"],
        "additionalProperties": false,
    })
}

fn group_ref() -> Value {
    json!({
        "oneOf": [
            { "type": "string", "description": "A group of the same type in this application." },
            {
                "type": "object",
                "properties": {
                    "application": { "type": "string" },
                    "group": { "type": "string" },
                },
                "required": ["group"],
                "additionalProperties": false,
            },
        ],
    })
}

/// An `address`: what [`hosts::parse_address`] accepts, as near as a
/// pattern gets (the validator also checks labels, lengths and IPv6).
fn address() -> Value {
    json!({
        "type": "string",
        "pattern": r"^[A-Za-z0-9\[:][A-Za-z0-9.:\[\]-]*$",
        "maxLength": hosts::HOST_NAME_MAX_LEN + 2,
        "description": hosts::ADDRESS_FORMS,
    })
}

fn ssh_settings() -> Value {
    let path = json!({
        "type": "string",
        "pattern": r#"^[^-\s"'\\%$][^\s"'\\%$]*$"#,
        "description": hosts::PATH_FORM,
    });
    let properties: Map<String, Value> = SSH_KEYS
        .iter()
        .map(|&key| {
            let schema = match key {
                "user" => json!({
                    "type": "string",
                    "pattern": r"^[a-z_][a-z0-9_-]*\$?$",
                    "maxLength": hosts::USER_MAX_LEN,
                    "description": hosts::USER_FORM,
                }),
                "port" => json!({ "type": "integer", "minimum": 1, "maximum": 65535, "description": hosts::PORT_FORM }),
                "identity_file" | "known_hosts_file" => path.clone(),
                "jump" => json!({
                    "type": "string",
                    "pattern": r"^([a-z_][a-z0-9_-]*\$?@)?([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$",
                    "description": hosts::JUMP_FORM,
                }),
                other => unreachable!("ssh key {other} has no schema"),
            };
            (key.to_string(), schema)
        })
        .collect();
    json!({
        "type": "object",
        "description": "How dbgroups reaches a host with the OpenSSH client; unset keys come from your ssh configuration and agent.",
        "properties": properties,
        "additionalProperties": false,
    })
}
