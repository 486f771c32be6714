//! Random input into the parser and evaluator never panics (a cheap stand-in for `cargo fuzz`,
//! deterministic so a failure reproduces).

use portcullis_blueprint::{Evaluator, parse};
use serde_json::Map;

use crate::common::FakeStore;

/// xorshift64*: small, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "version: 1\n",
    "entries:\n",
    "- model: a.b\n",
    "  attrs:\n",
    "    x: ",
    "!KeyOf ",
    "!Find ",
    "!FindObject ",
    "!Context ",
    "!Format ",
    "!Condition ",
    "!If ",
    "!Env ",
    "!File ",
    "!Enumerate ",
    "!Value ",
    "!Index ",
    "!AtIndex ",
    "!ParseJSON ",
    "!Unknown ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "\n",
    "  ",
    "- ",
    "&a ",
    "*a ",
    "<<: ",
    "\"%s\"",
    "'%d'",
    "0",
    "-1",
    "SEQ",
    "MAP",
    "AND",
    "XOR",
    "null",
    "true",
    "~",
    "#c",
    "|\n",
    ">\n",
    "\t",
    "\"",
    "'",
    "..",
    "/",
    "%",
    "é",
    "\u{0}",
    "---\n",
    "...\n",
    "? ",
    "!!str ",
    "1e400",
    "0x1F",
    ".nan",
];

#[tokio::test]
async fn random_yaml_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let store = FakeStore::default();
    let env = |_: &str| None;
    let mut parsed = 0;
    let seeds: Vec<String> = [
        "bootstrap.yaml",
        "flow-login.yaml",
        "tags.yaml",
        "merged-anchors.yaml",
    ]
    .iter()
    .map(|name| std::fs::read_to_string(crate::common::corpus_dir().join(name)).unwrap())
    .collect();
    for _ in 0..3000 {
        // Half from scratch, half mutations of a corpus blueprint.
        let mut text = if rng.below(2) == 0 {
            String::new()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..rng.below(6) + 1 {
            let piece = PIECES[rng.below(PIECES.len())];
            let at = floor_char_boundary(&text, rng.below(text.len() + 1));
            match rng.below(3) {
                0 if !text.is_empty() => {
                    let end = floor_char_boundary(&text, (at + rng.below(20)).min(text.len()));
                    text.replace_range(at..end, "");
                }
                _ => text.insert_str(at, piece),
            }
        }
        if let Ok(blueprint) = parse(&text, "fuzz.yaml") {
            parsed += 1;
            let evaluator = Evaluator::new(&blueprint, &Map::new(), &store, &env);
            for entry in &blueprint.entries {
                let _ = evaluator.entry_applies(entry).await;
                let _ = evaluator.evaluate_entry(entry).await;
            }
        }
    }
    // Some inputs must get through, or the test exercises nothing past the YAML parser.
    assert!(parsed > 100, "only {parsed} inputs parsed");
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text, "bytes.yaml");
    }
}
