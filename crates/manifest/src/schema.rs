//! The manifest's JSON Schema (draft-07, the dialect yaml-language-server
//! knows best), built from the same key lists and catalogue as the reader.
//! It guides editors; `dbgroups validate` remains the authority (cross-group
//! rules such as replication compatibility cannot be said in a schema).

use serde_json::{Map, Value, json};

use crate::catalogue;
use crate::keys::{CONFIGURATION_KEYS, GROUP_KEYS, SERVER_KEYS, SUPPORTED_VENDORS};
use crate::model::{DbType, Engine};

pub const SCHEMA_ID: &str = "https://dbgroups.dev/schema/manifest.json";

/// The schema as a JSON value.
pub fn manifest_schema() -> Value {
    let mut definitions = Map::new();
    definitions.insert("groupRef".into(), group_ref());
    definitions.insert("serverEntry".into(), server_entry());
    let mut sections = Map::new();
    sections.insert(
        "application".into(),
        json!({ "type": "string", "description": "The application these groups belong to (or pass --app)." }),
    );
    for db_type in DbType::ALL {
        definitions.insert(format!("{db_type}Group"), group(db_type));
        definitions.insert(format!("{db_type}Section"), type_section(db_type));
        sections.insert(
            db_type.key().into(),
            json!({ "$ref": format!("#/definitions/{db_type}Section") }),
        );
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "dbgroups manifest.yml",
        "description": "Database groups, their servers and the replication between them. Other platform sections (rails, docker, …) and environment sections (production:, …) are allowed; environment sections hold the same keys as the top level.",
        "type": "object",
        "properties": sections,
        "additionalProperties": true,
        "definitions": definitions,
    })
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
            "properties": { "managed": { "type": "boolean", "description": "Managed backups; required to scale the group up." } },
            "additionalProperties": false,
        }),
        "replicate_from" => {
            json!({ "$ref": "#/definitions/groupRef", "description": "Make this single-server group a replica of another group. Replaces all its data." })
        }
        "import_from" => {
            json!({ "$ref": "#/definitions/groupRef", "description": "Copy another group's data once, when this group is created." })
        }
        other => unreachable!("group key {other} has no schema"),
    }
}

fn configuration(db_type: DbType) -> Value {
    let engines: Vec<Engine> = match db_type {
        DbType::Mysql => Engine::MYSQL_FAMILY.to_vec(),
        other => vec![other.default_engine()],
    };
    let versions: Vec<&str> = engines
        .iter()
        .flat_map(|&e| catalogue::releases(e).map(|r| r.series))
        .collect();
    let properties: Map<String, Value> = CONFIGURATION_KEYS
        .iter()
        .filter(|&&key| key != "engine" || db_type == DbType::Mysql)
        .map(|&key| {
            let schema = match key {
                "engine" => json!({ "enum": Engine::MYSQL_FAMILY.map(Engine::key), "default": "mysql" }),
                "version" => json!({
                    "type": ["string", "number"],
                    "description": format!("Release series; quote it (\"10.10\" unquoted reads as 10.1 in many tools). Supported: {}", versions.join(", ")),
                    "examples": versions,
                }),
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
    json!({ "type": "object", "properties": properties, "additionalProperties": false })
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
                "address" => json!({ "type": "string", "description": "An existing host, reached with the ssh provider." }),
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
