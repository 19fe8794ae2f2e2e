//! The templates' notation (see the module's doc): flagged sections,
//! placeholders, insertion points.

/// `template`'s lines between `{{#flag}}` and `{{/flag}}` only if `flag` is
/// set in `flags`, those between `{{^flag}}` and `{{/flag}}` only if not, the
/// others always; the marker lines dropped. Sections do not nest.
pub(super) fn sections(template: &str, flags: &[(&str, bool)]) -> String {
    let mut kept = String::with_capacity(template.len());
    let mut keeping = true;
    for line in template.split_inclusive('\n') {
        let marker = line.trim();
        let section = flags.iter().find_map(|(flag, set)| {
            if marker == format!("{{{{#{flag}}}}}") {
                Some(*set)
            } else if marker == format!("{{{{^{flag}}}}}") {
                Some(!*set)
            } else if marker == format!("{{{{/{flag}}}}}") {
                Some(true)
            } else {
                None
            }
        });
        match section {
            Some(keep) => keeping = keep,
            None if keeping => kept.push_str(line),
            None => {}
        }
    }
    kept
}

/// `template` with each placeholder replaced by its value, in one pass: a
/// value's text is never taken for a placeholder.
pub(super) fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut filled = String::with_capacity(template.len());
    let mut rest = template.chars();
    while !rest.as_str().is_empty() {
        let text = rest.as_str();
        let placeholder = values
            .iter()
            .find_map(|(placeholder, value)| Some((text.strip_prefix(placeholder)?, value)));
        match placeholder {
            Some((after, value)) => {
                filled.push_str(value);
                rest = after.chars();
            }
            None => filled.extend(rest.next()),
        }
    }
    filled
}

/// `base` with its `marker` line replaced by the `generated` lines, each
/// indented as the marker was.
pub(super) fn insert(base: &str, marker: &str, generated: &str) -> String {
    let mut inserted = String::with_capacity(base.len() + generated.len());
    for line in base.split_inclusive('\n') {
        if line.trim() != marker {
            inserted.push_str(line);
            continue;
        }
        let indent = " ".repeat(line.len() - line.trim_start().len());
        for generated_line in generated.split_inclusive('\n') {
            if !generated_line.trim().is_empty() {
                inserted.push_str(&indent);
            }
            inserted.push_str(generated_line);
        }
    }
    inserted
}
