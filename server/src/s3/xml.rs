//! The little XML S3 answers with: an element's text, and the repeated
//! blocks of a listing. S3's answers are flat and generated, so a search
//! for `<Name>` is enough; entities are decoded.

/// The text of the first `<name>` element in `xml`.
pub(crate) fn text(xml: &str, name: &str) -> Option<String> {
    blocks(xml, name).next().map(unescape)
}

/// The inner text of every `<name>...</name>` element, in order.
pub(crate) fn blocks<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> + 'a {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = start + rest[start..].find(&close)?;
        let inner = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(inner)
    })
}

fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` with `& < > " '` escaped, for a request body.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_elements_and_decodes_entities() {
        let xml = "<R><Contents><Key>a&amp;b</Key><Size>3</Size></Contents><Contents><Key>&quot;c&#x41;&#66;</Key></Contents></R>";
        let keys: Vec<String> = blocks(xml, "Contents").filter_map(|b| text(b, "Key")).collect();
        assert_eq!(keys, ["a&b", "\"cAB"]);
        assert_eq!(text(xml, "Size").as_deref(), Some("3"));
        assert_eq!(text(xml, "Missing"), None);
        assert_eq!(text("<K>x & y</K>", "K").as_deref(), Some("x & y"));
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }
}
