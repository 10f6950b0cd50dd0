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
fn integers_beyond_2_pow_53_are_written_as_the_double_they_become() {
    // I-JSON / JCS: numbers are IEEE doubles, even when the parser kept an
    // exact u64. Two spellings of one double must canonicalise alike.
    assert_eq!(
        canonical_of_text("18446744073709551615"),
        "18446744073709552000"
    );
    assert_eq!(canonical_of_text("[-0, 0.0, 1E2, 100]"), "[0,0,100,100]");
    assert_eq!(canonical_of_text("9007199254740993"), "9007199254740992");
}

#[test]
fn nested_objects_sort_recursively_and_arrays_keep_order() {
    assert_eq!(
        canonical_of_text(r#"{"b":[3,{"z":1,"a":2}],"a":{"d":null,"c":true}}"#),
        r#"{"a":{"c":true,"d":null},"b":[3,{"a":2,"z":1}]}"#
    );
}
