//! Physical lines with their terminators (`\n`, `\r\n` or `\r`), so a file
//! is rendered back byte for byte.

/// One physical line: content and terminator (empty on a last line without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PhysicalLine<'a> {
    pub content: &'a str,
    pub ending: &'a str,
}

/// Split `text` into physical lines; concatenating content and ending of
/// every line gives `text` back.
pub(crate) fn split(text: &str) -> Vec<PhysicalLine<'_>> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(PhysicalLine {
                    content: &text[start..i],
                    ending: &text[i..i + 1],
                });
                i += 1;
                start = i;
            }
            b'\r' => {
                let end = if bytes.get(i + 1) == Some(&b'\n') {
                    i + 2
                } else {
                    i + 1
                };
                lines.push(PhysicalLine {
                    content: &text[start..i],
                    ending: &text[i..end],
                });
                i = end;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < text.len() {
        lines.push(PhysicalLine {
            content: &text[start..],
            ending: "",
        });
    }
    lines
}

/// The line terminator most used in `text` (`\n` when there is none).
pub(crate) fn dominant_ending(text: &str) -> &'static str {
    let crlf = text.matches("\r\n").count();
    let lf = text.matches('\n').count() - crlf;
    if crlf > lf { "\r\n" } else { "\n" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_kind_of_terminator_losslessly() {
        let text = "a\nb\r\nc\rd";
        let lines = split(text);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].ending, "\r\n");
        assert_eq!(lines[2].ending, "\r");
        assert_eq!(lines[3].ending, "");
        let joined: String = lines
            .iter()
            .map(|l| [l.content, l.ending].concat())
            .collect();
        assert_eq!(joined, text);
    }
}
