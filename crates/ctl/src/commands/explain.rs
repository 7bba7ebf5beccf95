//! `explain KIND[.field.path]`: a kind's or field's documentation, from the
//! API's own field docs (the comments in `proto/`, via [`berth_api::docs`]),
//! in kubectl's shape: KIND, VERSION, FIELD, DESCRIPTION, FIELDS (`--recursive`:
//! the whole tree of field names and types).

use anyhow::{Result, anyhow};
use berth_api::docs::{self, Explanation};
use berth_api::resource::{KINDS, find_kind};

use super::out;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// KIND or KIND.field.path (fields by their JSON names: pods.spec.containers.image).
    pub target: String,
    /// Print every field below, as an indented tree of names and types.
    #[arg(long)]
    pub recursive: bool,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    out(&explain(&args.target, args.recursive)?);
    Ok(())
}

/// The text `explain` prints for `target` (with every field below it when `recursive`).
pub fn explain(target: &str, recursive: bool) -> Result<String> {
    let mut parts = target.split('.');
    let kind_name = parts.next().unwrap_or_default();
    let path: Vec<&str> = parts.collect();
    let info = find_kind(kind_name).ok_or_else(|| {
        let kinds: Vec<&str> = KINDS.iter().map(|k| k.plural).collect();
        anyhow!("the server doesn't have a resource type {kind_name:?}; known types are: {}", kinds.join(", "))
    })?;
    if path.iter().any(|p| p.is_empty()) {
        return Err(anyhow!("{target:?} has an empty field name; write KIND.field.path, e.g. pods.spec.containers"));
    }
    let e = docs::explain(info, &path)?;
    Ok(render(info.kind, info.api_version, &e, recursive))
}

fn render(kind: &str, version: &str, e: &Explanation, recursive: bool) -> String {
    let mut s = format!("KIND:       {kind}\nVERSION:    {version}\n\n");
    if let Some(f) = &e.field {
        s.push_str(&format!("FIELD: {} {}\n\n", f.name, f.type_name));
    }
    s.push_str("DESCRIPTION:\n");
    s.push_str(&wrap(if e.description.is_empty() { "<empty>" } else { &e.description }, 4));
    if !e.fields.is_empty() && recursive {
        s.push_str("\nFIELDS:\n");
        tree(&mut s, &e.fields, 2, &mut Vec::new());
    } else if !e.fields.is_empty() {
        s.push_str("\nFIELDS:\n");
        let mut fields = e.fields.clone();
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                s.push('\n');
            }
            s.push_str(&format!("  {}\t{}\n", f.name, f.type_name));
            s.push_str(&wrap(&f.description, 4));
        }
    }
    s
}

/// `name<TAB><type>` per field, sorted, each message's fields two spaces
/// deeper; `seen` holds the messages on the way down (none is recursive
/// today, but a recursive one must not loop).
fn tree(s: &mut String, fields: &[docs::FieldDoc], indent: usize, seen: &mut Vec<String>) {
    let mut fields = fields.to_vec();
    fields.sort_by(|a, b| a.name.cmp(&b.name));
    for f in &fields {
        s.push_str(&format!("{:indent$}{}\t{}\n", "", f.name, f.type_name));
        let Some(m) = f.message.as_deref() else { continue };
        if seen.iter().any(|x| x == m) {
            continue;
        }
        if let Some(t) = docs::type_doc_of(m) {
            seen.push(m.to_string());
            tree(s, &t.fields, indent + 2, seen);
            seen.pop();
        }
    }
}

/// `text` wrapped at 80 columns, every line indented by `indent` spaces.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > 80 {
            out.push_str(&format!("{:indent$}{line}\n", ""));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{:indent$}{line}\n", ""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_wrap_descriptions_at_eighty_columns() {
        let text = "word ".repeat(30);
        let wrapped = wrap(&text, 4);
        assert!(wrapped.lines().all(|l| l.len() <= 80 && l.starts_with("    word")), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().count(), 30);
    }

    #[test]
    fn should_name_an_unknown_kind_and_list_the_known_ones() {
        let err = explain("pdos.spec", false).expect_err("unknown kind").to_string();
        assert!(err.contains("\"pdos\"") && err.contains("pods"), "{err}");
    }

    #[test]
    fn should_name_an_unknown_field_and_list_the_fields_that_exist() {
        let err = explain("pods.spec.nodename", false).expect_err("unknown field").to_string();
        assert!(err.contains("\"nodename\"") && err.contains("Pod.spec") && err.contains("nodeName"), "{err}");
    }

    #[test]
    fn should_print_a_field_with_its_type_and_the_fields_below_it() {
        let text = explain("po.spec.containers", false).expect("exists");
        assert!(text.starts_with("KIND:       Pod\nVERSION:    v1\n\nFIELD: containers <[]Container>\n\nDESCRIPTION:\n"), "{text}");
        assert!(text.contains("\n  image\t<string>\n"), "{text}");
    }

    #[test]
    fn should_print_the_field_tree_with_recursive() {
        let text = explain("rc.spec.template", true).expect("exists");
        assert!(text.contains("\nFIELDS:\n  metadata\t<ObjectMeta>\n    annotations\t<map[string]string>\n"), "{text}");
        assert!(text.contains("\n    containers\t<[]Container>\n      args\t<[]string>\n"), "{text}");
    }
}
