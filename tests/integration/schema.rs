//! The JSON Schema from `dbgroups schema` agrees with the validator: every
//! example passes it, and shape mistakes fail it as they fail `validate`.

use marked_yaml::Node;
use serde_json::{Value, json};

use crate::common::repo_path;

/// Reads YAML the way yaml-language-server does: unquoted scalars become
/// booleans and numbers where they look like them.
fn yaml_to_json(node: &Node) -> Value {
    match node {
        Node::Scalar(scalar) => {
            let text = scalar.as_str();
            if !scalar.may_coerce() {
                return json!(text);
            }
            match text {
                "true" => json!(true),
                "false" => json!(false),
                "" | "~" | "null" => Value::Null,
                _ => text
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| text.parse::<f64>().map(Value::from))
                    .unwrap_or_else(|_| json!(text)),
            }
        }
        Node::Sequence(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.as_str().to_string(), yaml_to_json(value)))
                .collect(),
        ),
    }
}

fn schema_errors(yaml: &str) -> Vec<String> {
    let schema = dbgroups_manifest::schema::manifest_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let document = yaml_to_json(&marked_yaml::parse_yaml(0, yaml).expect("test YAML parses"));
    validator
        .iter_errors(&document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_valid_example_passes_the_schema() {
    for example in [
        "examples/quickstart/manifest.yml",
        "examples/published-mysql/manifest.yml",
        "examples/replication/manifest.yml",
        "examples/cross-app/shop.yml",
        "examples/cross-app/analytics.yml",
    ] {
        let text = std::fs::read_to_string(repo_path(example)).expect("example readable");
        let errors = schema_errors(&text);
        assert!(errors.is_empty(), "{example}: {errors:?}");
    }
}

#[test]
fn shape_mistakes_fail_the_schema() {
    let cases = [
        (
            "an unknown configuration key",
            "postgresql:\n  configuration: { verison: '15' }\n",
        ),
        (
            "engine on redis",
            "redis:\n  configuration: { engine: redis }\n",
        ),
        (
            "a server without unique_name",
            "redis:\n  servers:\n    - server: { size: large }\n",
        ),
        (
            "an unsupported vendor",
            "redis:\n  servers:\n    - server: { unique_name: r, vendor: aws }\n",
        ),
        (
            "a short form beside groups",
            "redis:\n  servers: []\n  groups: {}\n",
        ),
        ("primary as a string", "mysql:\n  primary: 'yes'\n"),
    ];
    for (what, yaml) in cases {
        assert!(
            !schema_errors(yaml).is_empty(),
            "the schema accepted {what}"
        );
    }
}

#[test]
fn the_schema_lists_exactly_the_keys_the_reader_accepts() {
    use dbgroups_manifest::keys::{CONFIGURATION_KEYS, GROUP_KEYS, SERVER_KEYS};
    let schema = dbgroups_manifest::schema::manifest_schema();
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let sorted = |list: &[&str]| -> Vec<String> {
        let mut list: Vec<String> = list.iter().map(|k| k.to_string()).collect();
        list.sort();
        list
    };
    let group = &schema["definitions"]["mysqlGroup"];
    assert_eq!(keys(group), sorted(GROUP_KEYS));
    assert_eq!(
        keys(&group["properties"]["configuration"]),
        sorted(CONFIGURATION_KEYS)
    );
    let server = &schema["definitions"]["serverEntry"]["properties"]["server"];
    assert_eq!(keys(server), sorted(SERVER_KEYS));
}
