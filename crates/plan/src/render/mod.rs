//! Renderings of a plan: text for terminals, JSON for machines, Markdown for
//! pull-request comments, DOT and Mermaid graphs. None of them shows a
//! secret: the plan they read holds none.

pub mod graph;
pub mod json;
pub mod markdown;
pub mod text;
