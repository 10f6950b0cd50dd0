//! Checks for text a person cannot read the way a model reads it: invisible
//! characters, bidirectional controls, tag characters, variation selectors,
//! control characters, and words that mix scripts (`pаypal` with a Cyrillic
//! `а`).
//!
//! These are how tool poisoning hides instructions in a description a user
//! approves by eye ("ASCII smuggling" with tag characters, Trojan Source with
//! bidi overrides). The checks are deliberately narrow where a character has
//! a legitimate use: a zero-width joiner between two non-ASCII characters
//! (emoji sequences, Indic and Arabic scripts) and one emoji presentation
//! selector after a non-ASCII symbol are accepted; the same characters next to
//! ASCII text, where they have no typographic purpose, are flagged.
//!
//! Mixed-script detection follows Unicode TR39 (resolved script sets, via the
//! `unicode-security` crate) per identifier-like word, so a description that
//! quotes Japanese next to English is fine while one word that mixes Latin and
//! Cyrillic is flagged.

use std::fmt;

use etdi_core::ToolDefinition;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use unicode_security::MixedScript;

/// The kind of suspicious text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnicodeIssueKind {
    /// Zero-width and other default-ignorable characters that render as nothing.
    Invisible,
    /// Bidirectional controls (U+202A-202E, U+2066-2069, marks U+200E/200F/061C).
    BidiControl,
    /// Tag characters (U+E0000-E007F): invisible ASCII look-alikes that models read.
    TagCharacter,
    /// Variation selectors outside an emoji presentation sequence.
    VariationSelector,
    /// C0/C1 control characters (other than tab, line feed, carriage return).
    ControlCharacter,
    /// One word mixing scripts that never mix in real text (UTS #39).
    MixedScript,
}

impl UnicodeIssueKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invisible => "invisible",
            Self::BidiControl => "bidi_control",
            Self::TagCharacter => "tag_character",
            Self::VariationSelector => "variation_selector",
            Self::ControlCharacter => "control_character",
            Self::MixedScript => "mixed_script",
        }
    }
}

/// One suspicious finding in one field of a definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnicodeFinding {
    /// The field (`description`, `title`, `inputSchema.properties.path.description`).
    pub field: String,
    /// What was found.
    pub kind: UnicodeIssueKind,
    /// How many characters (or words, for mixed scripts) of this kind.
    pub count: usize,
    /// The first offending code point, written `U+XXXX` (character kinds), or
    /// the first offending word with its non-ASCII characters escaped
    /// (mixed scripts), so a report never re-emits the hidden text itself.
    pub example: String,
}

impl fmt::Display for UnicodeFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in `{}` ({} found, first {})",
            self.kind.as_str().replace('_', " "),
            self.field,
            self.count,
            self.example
        )
    }
}

/// The class of one character, if it is suspicious on its own.
fn char_class(c: char) -> Option<UnicodeIssueKind> {
    use UnicodeIssueKind as K;
    let cp = c as u32;
    match cp {
        0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C => Some(K::BidiControl),
        0xE0000..=0xE007F => Some(K::TagCharacter),
        0xFE00..=0xFE0F | 0xE0100..=0xE01EF | 0x180B..=0x180D | 0x180F => {
            Some(K::VariationSelector)
        }
        0x09 | 0x0A | 0x0D => None,
        0x00..=0x1F | 0x7F..=0x9F => Some(K::ControlCharacter),
        // Zero-width and default-ignorable characters (DerivedCoreProperties
        // Default_Ignorable_Code_Point, minus the classes above) plus the
        // fillers that render blank.
        0x00AD
        | 0x034F
        | 0x115F
        | 0x1160
        | 0x17B4
        | 0x17B5
        | 0x180E
        | 0x200B..=0x200D
        | 0x2060..=0x2064
        | 0x206A..=0x206F
        | 0x3164
        | 0xFEFF
        | 0xFFA0
        | 0xFFF0..=0xFFFB
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0080..=0xE00FF
        | 0xE01F0..=0xE0FFF => Some(K::Invisible),
        _ => None,
    }
}

/// Whether a character that is suspicious in general is legitimate here.
fn excused(prev: Option<char>, c: char, next: Option<char>) -> bool {
    let non_ascii_visible = |x: Option<char>| {
        x.is_some_and(|x| !x.is_ascii() && !x.is_whitespace() && char_class(x).is_none())
    };
    match c {
        // ZWNJ / ZWJ shape Indic and Arabic text and join emoji sequences:
        // accepted only between two visible non-ASCII characters.
        '\u{200C}' | '\u{200D}' => non_ascii_visible(prev) && non_ascii_visible(next),
        // Text/emoji presentation selectors directly after a non-ASCII symbol
        // (`❤️`); after ASCII or repeated, they carry no meaning but can carry
        // data.
        '\u{FE0E}' | '\u{FE0F}' => non_ascii_visible(prev),
        _ => false,
    }
}

fn escape_word(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_graphic() {
                c.to_string()
            } else {
                format!("\\u{{{:04X}}}", c as u32)
            }
        })
        .collect()
}

/// Scans one text field. `field` names it in the findings.
pub fn scan(field: &str, text: &str) -> Vec<UnicodeFinding> {
    let mut out: Vec<UnicodeFinding> = Vec::new();
    let mut record = |kind: UnicodeIssueKind, example: String| {
        if let Some(f) = out.iter_mut().find(|f| f.kind == kind) {
            f.count += 1;
        } else {
            out.push(UnicodeFinding {
                field: field.to_owned(),
                kind,
                count: 1,
                example,
            });
        }
    };
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let Some(kind) = char_class(c) else { continue };
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        if !excused(prev, c, next) {
            record(kind, format!("U+{:04X}", c as u32));
        }
    }
    // Identifier-like words: letters, digits, marks and connectors. Common and
    // Inherited characters belong to every script in TR39's resolution, so
    // digits and combining marks never make a word mixed on their own.
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_' || is_mark(c))) {
        if word.is_ascii() {
            continue;
        }
        if !word.is_single_script() {
            record(UnicodeIssueKind::MixedScript, escape_word(word));
        }
    }
    out
}

/// Combining marks (general category M), approximated by the blocks that
/// hold them; enough to keep accented words in one piece.
fn is_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A
        | 0x064B..=0x065F | 0x0900..=0x0903 | 0x093A..=0x094F | 0x1AB0..=0x1AFF
        | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

fn scan_value(field: &str, v: &Value, out: &mut Vec<UnicodeFinding>, depth: usize) {
    // Definitions are depth-bounded by the parser; the bound here only keeps
    // this walk from trusting that.
    if depth > 64 {
        return;
    }
    match v {
        Value::String(s) => out.extend(scan(field, s)),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                scan_value(&format!("{field}[{i}]"), x, out, depth + 1);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let path = format!("{field}.{k}");
                out.extend(scan(&format!("{path} (key)"), k));
                scan_value(&path, x, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Scans every text of a definition a model or a person reads: name, title,
/// description, provider name, and every string (keys included) in the
/// schemas and annotations.
pub fn scan_definition(def: &ToolDefinition) -> Vec<UnicodeFinding> {
    let mut out = scan("name", def.name.as_str());
    if let Some(t) = &def.title {
        out.extend(scan("title", t));
    }
    out.extend(scan("description", &def.description));
    out.extend(scan("provider.name", &def.provider.name));
    for (k, v) in &def.input_schema {
        scan_value(&format!("inputSchema.{k}"), v, &mut out, 1);
    }
    if let Some(s) = &def.output_schema {
        for (k, v) in s {
            scan_value(&format!("outputSchema.{k}"), v, &mut out, 1);
        }
    }
    if let Some(a) = &def.annotations {
        for (k, v) in a {
            scan_value(&format!("annotations.{k}"), v, &mut out, 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<UnicodeIssueKind> {
        scan("description", text)
            .into_iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn plain_text_is_clean() {
        assert!(kinds("Read a file.\nReturns its text.\t(UTF-8)").is_empty());
        assert!(kinds("Liest eine Datei – gibt den Inhalt zurück. 日本語のテキスト").is_empty());
        assert!(kinds("Вернуть файл").is_empty());
    }

    #[test]
    fn legitimate_joiners_and_emoji_pass() {
        // Family emoji (ZWJ sequence) and a red heart with VS16.
        assert!(kinds("Family: 👨\u{200D}👩\u{200D}👧 and \u{2764}\u{FE0F}").is_empty());
        // Persian with ZWNJ.
        assert!(kinds("می\u{200C}خواهم").is_empty());
    }

    #[test]
    fn hidden_characters_are_flagged() {
        assert_eq!(kinds("Read\u{200B} a file"), [UnicodeIssueKind::Invisible]);
        assert_eq!(kinds("a\u{200D}b"), [UnicodeIssueKind::Invisible]);
        assert_eq!(kinds("x\u{202E}txt.exe"), [UnicodeIssueKind::BidiControl]);
        assert_eq!(kinds("x\u{2067}y\u{2069}"), [UnicodeIssueKind::BidiControl]);
        assert_eq!(
            kinds("Read a file\u{E0049}\u{E0067}\u{E006E}"),
            [UnicodeIssueKind::TagCharacter]
        );
        assert_eq!(kinds("a\u{FE0F}"), [UnicodeIssueKind::VariationSelector]);
        assert_eq!(kinds("a\u{E0100}"), [UnicodeIssueKind::VariationSelector]);
        assert_eq!(kinds("bell\u{7}"), [UnicodeIssueKind::ControlCharacter]);
        assert_eq!(kinds("soft\u{AD}hyphen"), [UnicodeIssueKind::Invisible]);
        let f = scan("title", "x\u{200B}\u{200B}y");
        assert_eq!(f[0].count, 2);
        assert_eq!(f[0].example, "U+200B");
        assert_eq!(f[0].field, "title");
    }

    #[test]
    fn mixed_script_words_are_flagged() {
        // Cyrillic `а` (U+0430) inside a Latin word.
        let f = scan("description", "Send to p\u{0430}ypal now");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, UnicodeIssueKind::MixedScript);
        assert_eq!(f[0].example, "p\\u{0430}ypal");
        // Greek omicron in a Latin word.
        assert_eq!(kinds("c\u{03BF}py"), [UnicodeIssueKind::MixedScript]);
        // Kanji with kana is one (Japanese) script set.
        assert!(kinds("漢字かな").is_empty());
        // Accented Latin stays Latin.
        assert!(kinds("café naïve").is_empty());
    }
}
