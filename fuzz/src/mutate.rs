//! A small deterministic mutator for the stable smoke run: no coverage
//! feedback (that is libFuzzer's job on nightly), but mutations that get
//! past the first layer of each format: bit and byte edits, insertions of
//! dictionary tokens and boundary numbers, chunk copies and splices, and
//! edits *inside* base64url segments (decode, mutate, re-encode), so that a
//! mutated JWS still reaches the JSON and signature checks behind its
//! base64 layer.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Largest input the mutator produces.
pub const MAX_LEN: usize = 64 * 1024;

/// xorshift64*: fast, deterministic, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A random element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Bytes that often sit on a parser's decision points.
const INTERESTING_BYTES: &[u8] = b"\x00\xff\x7f\x80\"\\.{}[],:=\n\r\t 0-e#'";

/// Numbers on type and range boundaries.
const INTERESTING_NUMBERS: &[&[u8]] = &[
    b"0",
    b"-0",
    b"1",
    b"-1",
    b"32",
    b"33",
    b"255",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1e308",
    b"1e999",
    b"-1e999",
    b"1.5",
    b"1e-7",
    b"0.000001",
    b"1700000000",
    b"1700000300",
    b"1699999999",
];

/// Applies 1 to 8 stacked random mutations to `data`; `other` is a second
/// input to splice from, `dictionary` the target's tokens.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dictionary: &[&[u8]]) {
    let most = if rng.one_in(4) { 8 } else { 3 };
    let rounds = 1 + rng.below(most);
    for _ in 0..rounds {
        mutate_once(rng, data, other, dictionary, true);
    }
    data.truncate(MAX_LEN);
}

fn mutate_once(
    rng: &mut Rng,
    data: &mut Vec<u8>,
    other: &[u8],
    dictionary: &[&[u8]],
    nested: bool,
) {
    let len = data.len();
    match rng.below(14) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len);
            if let Some(b) = data.get_mut(i) {
                *b ^= 1 << rng.below(8);
            }
        }
        // Set a byte to a random or an interesting value.
        1 if len > 0 => {
            let i = rng.below(len);
            let v = if rng.one_in(2) {
                rng.next_u64() as u8
            } else {
                INTERESTING_BYTES
                    .get(rng.below(INTERESTING_BYTES.len()))
                    .copied()
                    .unwrap_or(0)
            };
            if let Some(b) = data.get_mut(i) {
                *b = v;
            }
        }
        // Insert random bytes.
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, bytes);
        }
        // Delete a range.
        3 if len > 0 => {
            let at = rng.below(len);
            let most = if rng.one_in(4) { len } else { 16 };
            let n = 1 + rng.below((len - at).min(most));
            data.drain(at..at + n);
        }
        // Insert a dictionary token.
        4 | 5 => {
            if let Some(token) = rng.pick(dictionary) {
                let at = rng.below(len + 1);
                data.splice(at..at, token.iter().copied());
            }
        }
        // Replace a short span with a dictionary token.
        6 if len > 0 => {
            if let Some(token) = rng.pick(dictionary) {
                let at = rng.below(len);
                let n = rng.below((len - at).min(12) + 1);
                data.splice(at..at + n, token.iter().copied());
            }
        }
        // Copy a chunk of the input elsewhere in it.
        7 if len > 1 => {
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(64));
            let chunk: Vec<u8> = data
                .get(from..from + n)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        // Splice: our head, the other input's tail (or a chunk of it).
        8 if !other.is_empty() => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            data.truncate(cut);
            let n = if rng.one_in(2) {
                other.len() - from
            } else {
                1 + rng.below((other.len() - from).min(64))
            };
            data.extend_from_slice(other.get(from..from + n).unwrap_or_default());
        }
        // Replace a run of digits with a boundary number.
        9 => replace_number(rng, data),
        // Truncate.
        10 if len > 0 => data.truncate(rng.below(len)),
        // Mutate inside a base64url segment.
        11 | 12 if nested => mutate_base64(rng, data, other, dictionary),
        // Swap two bytes.
        13 if len > 1 => {
            let (i, j) = (rng.below(len), rng.below(len));
            data.swap(i, j);
        }
        _ => {
            let at = rng.below(len + 1);
            let b = rng.next_u64() as u8;
            data.insert(at, b);
        }
    }
}

fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|&(i, b)| {
            b.is_ascii_digit() && (i == 0 || !data.get(i - 1).is_some_and(u8::is_ascii_digit))
        })
        .map(|(i, _)| i)
        .collect();
    let (Some(&start), Some(number)) = (rng.pick(&starts), rng.pick(INTERESTING_NUMBERS)) else {
        return;
    };
    let end = data
        .iter()
        .skip(start)
        .position(|b| !b.is_ascii_digit())
        .map_or(data.len(), |n| start + n);
    data.splice(start..end, number.iter().copied());
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Finds a base64url run of at least 8 characters, decodes it, mutates the
/// decoded bytes once or twice and writes it back encoded.
fn mutate_base64(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dictionary: &[&[u8]]) {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data.get(i).copied().is_some_and(is_b64url) {
            let start = i;
            while data.get(i).copied().is_some_and(is_b64url) {
                i += 1;
            }
            if i - start >= 8 {
                runs.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    let Some(&(start, end)) = rng.pick(&runs) else {
        return;
    };
    let Some(Ok(mut decoded)) = data.get(start..end).map(|s| URL_SAFE_NO_PAD.decode(s)) else {
        return;
    };
    for _ in 0..1 + rng.below(2) {
        mutate_once(rng, &mut decoded, other, dictionary, false);
    }
    let encoded = URL_SAFE_NO_PAD.encode(&decoded);
    data.splice(start..end, encoded.into_bytes());
}

/// A random input: random bytes, or a random sequence of dictionary tokens
/// and bytes (which stays closer to the format).
pub fn random_input(rng: &mut Rng, dictionary: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.one_in(2) || dictionary.is_empty() {
        let n = rng.below(256);
        out.extend((0..n).map(|_| rng.next_u64() as u8));
    } else {
        for _ in 0..rng.below(32) {
            if rng.one_in(3) {
                out.push(rng.next_u64() as u8);
            } else if let Some(t) = rng.pick(dictionary) {
                out.extend_from_slice(t);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutations() {
        let run = || {
            let mut rng = Rng::new(7);
            let mut data = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJmdXp6In0.c2ln".to_vec();
            let mut all = Vec::new();
            for _ in 0..200 {
                mutate(&mut rng, &mut data, b"{\"x\":1}", &[b"alg"]);
                all.push(data.clone());
            }
            all
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn base64_segments_are_mutated_inside() {
        let original = URL_SAFE_NO_PAD.encode(b"{\"alg\":\"ES256\",\"kid\":\"k\"}");
        let mut rng = Rng::new(1);
        let mut seen_decodable_change = false;
        for _ in 0..500 {
            let mut data = original.clone().into_bytes();
            mutate_base64(&mut rng, &mut data, b"", &[b"none"]);
            if data != original.as_bytes() && URL_SAFE_NO_PAD.decode(&data).is_ok() {
                seen_decodable_change = true;
                break;
            }
        }
        assert!(seen_decodable_change);
    }
}
