//! RFC 8785 (JCS) published examples as data-driven tests: number
//! serialisation (Appendix B), string escaping and values (§3.2.2), and
//! member sorting by UTF-16 code units (§3.2.3). Expected outputs were
//! cross-checked against V8's `JSON.stringify`, the ECMAScript reference.

// Tests assert by unwrapping: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use etdi_core::canonical::{canonical_json, parse_json};
use serde_json::Value;

const NUMBERS: &str = include_str!("vectors/rfc8785_numbers.txt");

#[test]
fn appendix_b_numbers() {
    let mut checked = 0;
    for line in NUMBERS.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (hex, expected) = line.split_once(' ').unwrap();
        let bits = u64::from_str_radix(hex, 16).unwrap();
        let f = f64::from_bits(bits);
        match serde_json::Number::from_f64(f) {
            Some(n) => {
                let got = String::from_utf8(canonical_json(&Value::Number(n)).unwrap()).unwrap();
                assert_eq!(got, expected, "IEEE {hex}");
            }
            // serde_json cannot even hold NaN/Infinity: JCS refuses them too.
            None => assert_eq!(expected, "error", "IEEE {hex}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 26);
}

fn canonical_of_text(input: &str) -> String {
    let v = parse_json(input).unwrap();
    String::from_utf8(canonical_json(&v).unwrap()).unwrap()
}

#[test]
fn section_3_2_2_values_and_escaping() {
    assert_eq!(
        canonical_of_text(include_str!("vectors/rfc8785_values.input.json")),
        include_str!("vectors/rfc8785_values.expected.json")
    );
}

#[test]
fn section_3_2_3_sorting_by_utf16_code_units() {
    assert_eq!(
        canonical_of_text(include_str!("vectors/rfc8785_sorting.input.json")),
        include_str!("vectors/rfc8785_sorting.expected.json")
    );
}

#[test]
fn numbers_whose_canonical_text_is_another_number_are_refused() {
    // JCS writes numbers as IEEE doubles in ECMAScript's shortest form. An
    // integer the parser kept exactly but whose canonical text is another
    // number (u64::MAX, 2^53 + 1, 2^60) would share its canonical form with
    // that number, so it is refused (docs/PROTOCOL.md §3); a number whose
    // canonical text reads back as itself, however spelled, is accepted.
    let refused = |text: &str| canonical_json(&parse_json(text).unwrap()).is_err();
    assert!(refused("18446744073709551615"));
    assert!(refused("9007199254740993"));
    assert!(refused("1152921504606846976"));
    assert!(refused("90071992547409930.1"));
    assert!(refused("[1, {\"a\": -9007199254740993}]"));
    assert_eq!(
        canonical_of_text("18446744073709552000"),
        "18446744073709552000"
    );
    assert_eq!(
        canonical_of_text("1152921504606847000"),
        "1152921504606847000"
    );
    assert_eq!(canonical_of_text("9007199254740992"), "9007199254740992");
    assert_eq!(canonical_of_text("[-0, 0.0, 1E2, 100]"), "[0,0,100,100]");
}

#[test]
fn nested_objects_sort_recursively_and_arrays_keep_order() {
    assert_eq!(
        canonical_of_text(r#"{"b":[3,{"z":1,"a":2}],"a":{"d":null,"c":true}}"#),
        r#"{"a":{"c":true,"d":null},"b":[3,{"a":2,"z":1}]}"#
    );
}
