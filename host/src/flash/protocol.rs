//! The board protocol: the lines the check firmware prints and how the host reads them into a
//! [`BoardResult`].

use super::{BoardResult, LayerCount};

/// A board line that does not say what the protocol requires.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("board protocol: {line:?} lacks a valid `{key}`")]
pub struct ProtocolError {
    pub line: String,
    pub key: &'static str,
}

/// The board protocol: each line the check firmware prints (`boards/check`) and the keys the
/// host reads from it. defmt needs literal format strings, so the firmware cannot import these;
/// a test holds its format strings to them instead.
pub const PROTOCOL: [(&str, &[&str]); 3] = [
    ("PARE-START", &["per_count"]),
    ("PARE-LAYER", &["counts"]),
    ("PARE-RESULT", &["samples", "correct", "agree", "exact", "counts_per_inference", "unit"]),
];

/// The value of `key=value` in a line.
fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')).map(str::to_string))
}

/// Reads the decoded lines into a result. Every key the protocol defines must be present and
/// numeric where it is a count: a renamed or garbled key is an error, not a silent 0.
pub fn parse_lines(lines: &[String]) -> Result<BoardResult, ProtocolError> {
    let mut r = BoardResult::default();
    let mut per_count = 1u64;
    for l in lines {
        let num = |key: &'static str| -> Result<u64, ProtocolError> {
            field(l, key).and_then(|v| v.parse().ok()).ok_or(ProtocolError { line: l.clone(), key })
        };
        if let Some(rest) = l.strip_prefix("PARE-ERROR ") {
            r.errors.push(rest.to_string());
        } else if l.starts_with("PARE-START") {
            per_count = num("per_count")?;
        } else if let Some(rest) = l.strip_prefix("PARE-LAYER ") {
            let mut it = rest.split_whitespace();
            let idx: u32 =
                it.next().and_then(|v| v.parse().ok()).ok_or(ProtocolError { line: l.clone(), key: "index" })?;
            let kind = it.next().ok_or(ProtocolError { line: l.clone(), key: "kind" })?.to_string();
            let op = (idx != pare_device::LayerTrace::INPUT).then_some(idx);
            r.layers.push(LayerCount { op, kind, count: num("counts")? * per_count, macs: 0 });
        } else if l.starts_with("PARE-RESULT") {
            r.samples = num("samples")?;
            r.correct = num("correct")?;
            r.agree = num("agree")?;
            r.exact = num("exact")?;
            r.per_inference = num("counts_per_inference")? * per_count;
            r.unit = field(l, "unit").ok_or(ProtocolError { line: l.clone(), key: "unit" })?;
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firmware_prints_every_key_the_host_reads() {
        let src = std::fs::read_to_string(crate::boards::boards_dir().join("check/src/lib.rs")).unwrap();
        for (line, keys) in PROTOCOL {
            let fmt =
                src.lines().find(|l| l.contains(&format!("\"{line} "))).unwrap_or_else(|| panic!("no {line} line"));
            for k in keys {
                assert!(fmt.contains(&format!(" {k}=")), "{line} lacks `{k}=`: {fmt}");
            }
        }
        // And the host reads nothing else: a line with only these keys parses.
        let lines: Vec<String> = PROTOCOL
            .iter()
            .map(|(line, keys)| {
                let idx = if *line == "PARE-LAYER" { " 0 conv2d" } else { "" };
                let kv: Vec<String> =
                    keys.iter().map(|k| format!("{k}={}", if *k == "unit" { "x" } else { "1" })).collect();
                format!("{line}{idx} {}", kv.join(" "))
            })
            .collect();
        assert!(parse_lines(&lines).is_ok(), "{lines:?}");
    }

    #[test]
    fn board_lines_parse_into_steps_with_the_input_apart() {
        let lines: Vec<String> = [
            "PARE-START samples=2 model_bytes=10 arena=64 unit=instructions per_count=40",
            "PARE-LAYER 4294967295 input counts=3",
            "PARE-LAYER 0 conv2d counts=100",
            "PARE-LAYER 1 add counts=7",
            "PARE-RESULT samples=2 correct=1 agree=2 exact=2 counts_per_inference=110 unit=instructions per_count=40",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = parse_lines(&lines).unwrap();
        let steps: Vec<(Option<u32>, &str, u64)> = r.layers.iter().map(|l| (l.op, l.kind.as_str(), l.count)).collect();
        // Counts are scaled by per_count (40 instructions per SysTick count).
        assert_eq!(steps, vec![(None, "input", 120), (Some(0), "conv2d", 4000), (Some(1), "add", 280)]);
        assert_eq!((r.samples, r.agree, r.exact, r.per_inference), (2, 2, 2, 4400));
        // A renamed key used to read as 0.
        let renamed: Vec<String> = lines.iter().map(|l| l.replace("agree=", "agreed=")).collect();
        assert_eq!(parse_lines(&renamed).unwrap_err().key, "agree");
        // One pass rule: predictions and raw bytes all equal, no board error. `flash` used to
        // pass a run whose raw outputs differed while predictions agreed.
        assert!(r.passed());
        assert!(!BoardResult { exact: 1, ..r.clone() }.passed());
        assert!(!BoardResult { errors: vec!["x".into()], ..r.clone() }.passed());
        assert!(!BoardResult { samples: 0, agree: 0, exact: 0, ..r.clone() }.passed());
    }
}
