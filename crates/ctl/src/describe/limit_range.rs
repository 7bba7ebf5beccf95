//! The limit range view, and its table of limits (which the namespace view shows too).

use berth_api::pb::core::{LimitRange, ObjectMeta};

use super::Doc;

pub(super) fn view(d: &mut Doc, l: &LimitRange) {
    let empty = ObjectMeta::default();
    let m = l.metadata.as_ref().unwrap_or(&empty);
    d.kv(0, "Name", &m.name);
    d.kv(0, "Namespace", &m.namespace);
    table(d, 0, l);
}

/// One line per object type and resource the limit range sets.
pub(super) fn table(d: &mut Doc, indent: usize, l: &LimitRange) {
    d.line(indent, "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio");
    d.line(indent, "----\t--------\t---\t---\t---------------\t-------------\t-----------------------");
    for item in l.spec.as_ref().map(|s| s.limits.as_slice()).unwrap_or_default() {
        let maps = [&item.min, &item.max, &item.default_request, &item.default, &item.max_limit_request_ratio];
        let resources: std::collections::BTreeSet<&String> = maps.iter().flat_map(|m| m.keys()).collect();
        for r in resources {
            let cells: Vec<&str> = maps.iter().map(|m| m.get(r).map(String::as_str).unwrap_or("-")).collect();
            d.line(indent, format!("{}\t{r}\t{}", item.r#type, cells.join("\t")));
        }
    }
}
