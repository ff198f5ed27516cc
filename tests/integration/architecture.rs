//! Architecture invariants from ARCHITECTURE.md, checked on the sources (in
//! the manner of rust-analyzer's tidy tests), so they cannot rot silently.

use crate::common::repo_path;

/// The Rust sources below `dir`; never none, so a mistyped path cannot make
/// a check pass by reading nothing.
fn sources(dir: &str) -> Vec<(String, String)> {
    let files: Vec<(String, String)> = crate::common::files_under(&repo_path(dir), &[])
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable source");
            (path.display().to_string(), text)
        })
        .collect();
    assert!(!files.is_empty(), "no Rust sources under {dir}");
    files
}

fn dependencies(crate_dir: &str) -> String {
    let manifest =
        std::fs::read_to_string(repo_path(&format!("{crate_dir}/Cargo.toml"))).expect("Cargo.toml");
    manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_plan_crate_does_no_io_and_reads_no_clock_or_randomness() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::time",
        "std::env",
        "tokio",
        "uuid",
        "rand::",
        "println!",
        "eprintln!",
    ];
    for (path, text) in sources("crates/plan/src") {
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{path} uses {word}: the plan crate must stay pure"
            );
        }
    }
    let deps = dependencies("crates/plan");
    for crate_name in ["tokio", "uuid", "humantime", "miette"] {
        assert!(
            !deps.contains(crate_name),
            "the plan crate depends on {crate_name}"
        );
    }
}

#[test]
fn only_the_cli_knows_miette_and_terminals() {
    for crate_dir in [
        "crates/manifest",
        "crates/state",
        "crates/plan",
        "crates/engines",
    ] {
        let deps = dependencies(crate_dir);
        for crate_name in ["miette", "clap", "indicatif"] {
            assert!(
                !deps.contains(crate_name),
                "{crate_dir} depends on {crate_name}"
            );
        }
        for (path, text) in sources(&format!("{crate_dir}/src")) {
            for word in [
                "println!",
                "eprintln!",
                "std::io::stdout",
                "std::io::stderr",
            ] {
                assert!(
                    !text.contains(word),
                    "{path} writes to the terminal ({word})"
                );
            }
        }
    }
}

#[test]
fn phases_depend_one_way() {
    assert!(
        !dependencies("crates/manifest").contains("dbgroups-"),
        "manifest depends on nothing of ours"
    );
    let state = dependencies("crates/state");
    assert!(
        !state.contains("dbgroups-plan"),
        "state does not depend on plan"
    );
}

/// Programs are run with argument vectors: no shell ever parses a value.
#[test]
fn no_command_is_built_as_a_shell_string() {
    let shell = [
        "\"sh\"",
        "\"bash\"",
        "\"/bin/sh\"",
        "\"/bin/bash\"",
        "\"-c\"",
    ];
    let mut offenders = Vec::new();
    for (path, text) in sources("crates") {
        // The ssh host's remote commands are shell text by nature (ssh
        // hands one string to the host's shell): every word in them is
        // quoted by `shlex`, and script.rs's tests run them through sh.
        if path.contains("crates/engines/src/ssh/") {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            if shell.iter().any(|needle| line.contains(needle)) {
                offenders.push(format!("{path}:{}: {line}", number + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "shell invocations:\n{}",
        offenders.join("\n")
    );
}

/// Every process dbgroups starts gets the environment that
/// `crates/engines/src/process.rs` builds from nothing, never the caller's
/// (`PGPASSWORD`, `MYSQL_HOST`, `~/.my.cnf` …): no other source may build a
/// command, and that one clears the environment.
#[test]
fn every_process_is_built_in_one_place() {
    const THE_PLACE: &str = "crates/engines/src/process.rs";
    let builders = [
        "Command::new(",
        "process::Command::new",
        "Command::spawn",
        "libc::exec",
        "nix::unistd::exec",
        "rustix::process::exec",
    ];
    let mut offenders = Vec::new();
    for (path, text) in sources("crates") {
        if path.ends_with(THE_PLACE) {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            if builders.iter().any(|needle| line.contains(needle)) {
                offenders.push(format!("{path}:{}: {line}", number + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "processes started outside {THE_PLACE}:\n{}",
        offenders.join("\n")
    );
    let place = std::fs::read_to_string(repo_path(THE_PLACE)).expect("the place exists");
    assert!(
        place.contains(".env_clear()"),
        "{THE_PLACE} builds the environment from nothing"
    );
}

/// Every function in `text` with its first line number and its length in
/// lines, found the way rustfmt lays code out: a line starting (after its
/// indentation) with `fn`, `pub fn`, `async fn` … and ending at the first
/// line that is its indentation followed by `}`.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ");
        let Some(rest) = signature.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let closing = format!("{indent}}}");
        // A declaration without a body (a trait's) ends with `;`.
        let end = lines[start..].iter().position(|l| {
            *l == closing
                || (l.trim_end().ends_with(';')
                    && !l.contains('{')
                    && l.starts_with(indent)
                    && l.trim_start().starts_with("fn "))
        });
        if let Some(length) = end.filter(|n| lines[start + n] == closing) {
            found.push((name, start + 1, length + 1));
        }
    }
    found
}

/// The executor and the CLI stay readable: each step, effect and command
/// is its own function, none longer than about a screen and a half.
#[test]
fn no_function_in_apply_or_the_cli_is_over_120_lines() {
    const LIMIT: usize = 120;
    let mut longest = (String::new(), 0);
    let mut offenders = Vec::new();
    for dir in ["crates/apply/src", "crates/cli/src"] {
        for (path, text) in sources(dir) {
            for (name, line, length) in functions(&text) {
                if length > longest.1 {
                    longest = (format!("{path}:{line} {name}"), length);
                }
                if length > LIMIT {
                    offenders.push(format!("{path}:{line}: {name} is {length} lines"));
                }
            }
        }
    }
    // The scanner must see functions at all, or the check proves nothing.
    assert!(longest.1 > 20, "no function found: the scanner is broken");
    assert!(
        offenders.is_empty(),
        "functions over {LIMIT} lines:\n{}",
        offenders.join("\n")
    );
}

/// Database knowledge lives in its engine: the executor and the CLI never
/// match on a database type nor name an engine's server type; they go
/// through `dbgroups_engines::engine_for` and the `DatabaseEngine` trait.
#[test]
fn apply_and_the_cli_know_no_engine_by_name() {
    let engine_specific = [
        "DbType::Postgresql",
        "DbType::Redis",
        "DbType::Mysql",
        "DbType::Mongodb",
        "PostgresServer",
        "RedisServer",
        "MysqlServer",
        "MongoServer",
        "dbgroups_engines::postgres",
        "dbgroups_engines::redis_engine",
        "dbgroups_engines::mysql",
        "dbgroups_engines::mongodb",
        "Engine::Mariadb",
        "Engine::Postgresql",
    ];
    let mut offenders = Vec::new();
    for dir in ["crates/apply/src", "crates/cli/src"] {
        for (path, text) in sources(dir) {
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if engine_specific.iter().any(|needle| code.contains(needle)) {
                    offenders.push(format!("{path}:{}: {line}", number + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "engine-specific code outside crates/engines:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_function_scanner_measures_what_it_is_shown() {
    let text = "fn short() {\n    one();\n}\n\n    pub async fn longer(\n        a: u8,\n    ) {\n        two();\n        three();\n    }\n";
    assert_eq!(
        functions(text),
        vec![("short".to_string(), 1, 3), ("longer".to_string(), 5, 6)]
    );
}

/// Machine access lives in its host: the engines read and write files,
/// start programs and name addresses only through `Host`, so the same
/// engine runs on this machine (`LocalHost`) and over ssh. Only the local
/// host's own implementation touches this machine.
#[test]
fn engines_reach_the_machine_only_through_their_host() {
    // This machine's host, and the ssh host's connection to a host (its
    // control socket, its ssh processes, the loopback ends of forwards and
    // of socket relays).
    const THE_HOSTS: [&str; 6] = [
        "crates/engines/src/local.rs",
        "crates/engines/src/process.rs",
        "crates/engines/src/disk.rs",
        "crates/engines/src/ssh/mux.rs",
        "crates/engines/src/ssh/mod.rs",
        "crates/engines/src/ssh/relay.rs",
    ];
    let machine_access = [
        "std::fs",
        "std::process",
        "tokio::process",
        "Command::",
        ".spawn(",
        ".is_file()",
        ".exists()",
        "read_dir(",
        "canonicalize(",
        "std::net::TcpListener",
        "local::find_program",
        "crate::find_program",
        "127.0.0.1",
        "Ipv4Addr::LOCALHOST",
    ];
    let mut offenders = Vec::new();
    for (path, text) in sources("crates/engines/src") {
        if THE_HOSTS.iter().any(|own| path.ends_with(own)) {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // A MySQL account's host part in SQL (`'root'@'127.0.0.1'`,
            // an account mariadb-install-db makes) names no address that
            // anyone dials.
            let code = code.replace("@'127.0.0.1'", "@'…'");
            if let Some(word) = machine_access.iter().find(|w| code.contains(*w)) {
                offenders.push(format!("{path}:{}: {word}: {line}", number + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "machine access in the engines outside the local host:\n{}",
        offenders.join("\n")
    );
}
