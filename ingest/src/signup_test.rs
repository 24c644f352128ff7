use super::*;

fn named(name: &str) -> Result<(), IngestError> {
    check_fields(&SignupRequest {
        referrer_id: None,
        external_ref: None,
        display_name: Some(name.into()),
    })
}

#[test]
fn display_names_refuse_invisible_and_reordering_characters() {
    // Bidi override, embedding, isolate and mark; zero-width space, joiner, word joiner;
    // byte-order mark, soft hyphen, a tag character: each inside an otherwise fine name.
    for c in [
        '\u{202E}',
        '\u{202A}',
        '\u{2066}',
        '\u{2069}',
        '\u{200E}',
        '\u{200F}',
        '\u{200B}',
        '\u{200D}',
        '\u{2060}',
        '\u{FEFF}',
        '\u{AD}',
        '\u{61C}',
        '\u{E0041}',
        '\u{1343F}',
    ] {
        let name = format!("Lucky{c}Otter");
        let refused = named(&name).expect_err("refused").problem().code;
        assert_eq!(refused, "invalid_display_name", "U+{:04X}", u32::from(c));
    }
    // The neighbours of those ranges are letters, marks and symbols people use.
    for ok in [
        "Lucky Otter",
        "Zoë",
        "陈小明",
        "محمد",
        "🦦 otter",
        "\u{2010}hyphen",
    ] {
        assert!(named(ok).is_ok(), "{ok:?}");
    }
}

#[test]
fn display_names_refuse_blank_looking_and_mark_only_text() {
    // Hangul fillers, a Braille blank, separators, no-break and ideographic spaces.
    for c in [
        '\u{3164}', '\u{115F}', '\u{FFA0}', '\u{2800}', '\u{2028}', '\u{2029}', '\u{A0}',
        '\u{3000}',
    ] {
        for name in [c.to_string(), format!("Lucky{c}Otter")] {
            let refused = named(&name).expect_err("refused").problem().code;
            assert_eq!(refused, "invalid_display_name", "U+{:04X}", u32::from(c));
        }
    }
    assert!(named("\u{301}\u{301}").is_err(), "combining marks alone");
    assert!(named("e\u{301}").is_ok(), "a mark on a letter");
}
