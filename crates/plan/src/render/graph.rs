//! The step DAG as Graphviz DOT and as Mermaid, for `dbgroups graph`.

use std::fmt::Write;

use crate::Plan;

fn label(step: &crate::Step) -> String {
    match step.kind.server() {
        Some(server) => format!("{}\\n{server}", step.kind.verb()),
        None => step.kind.verb().to_string(),
    }
}

pub fn dot(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"dbgroups plan: {}\" {{", plan.application);
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [shape=box, fontname=\"monospace\"];");
    for step in &plan.steps {
        let destructive = matches!(
            step.kind,
            crate::StepKind::Remove { .. }
                | crate::StepKind::Restore {
                    replaces_data: true,
                    ..
                }
        );
        let style = if destructive {
            ", color=red, penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(out, "  \"{}\" [label=\"{}\"{style}];", step.id, label(step));
    }
    for step in &plan.steps {
        for dep in &step.depends_on {
            let _ = writeln!(out, "  \"{dep}\" -> \"{}\";", step.id);
        }
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    let node = |index: usize| format!("s{}", index + 1);
    let index_of = |id: &str| plan.steps.iter().position(|s| s.id == id).unwrap_or(0);
    for (index, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}[\"{}\"]",
            node(index),
            label(step).replace("\\n", "<br/>")
        );
    }
    for (index, step) in plan.steps.iter().enumerate() {
        for dep in &step.depends_on {
            let _ = writeln!(out, "  {} --> {}", node(index_of(dep)), node(index));
        }
    }
    out
}
