//! The CSV loader reads no record longer than [`MAX_LINE`] bytes, plain or inside a `.csv.gz`, so
//! a small gzip bomb or an endless stream ends with an error naming the file, the line and the
//! limit, instead of taking memory without end.

use std::io::{Read, Write};

use vectura_data::{load_csv_path, load_csv_reader, LoadError, LoadOptions, MAX_LINE};

const HEADER: &str = "timestamp,open,high,low,close,volume\n";
const ROW: &str = "2024-01-02T14:30:00Z,10,11,9,10.5,100\n";

fn too_long(r: Result<vectura_data::Loaded, LoadError>, file: &str, line: u64) -> String {
    match r {
        Err(e @ LoadError::LineTooLong { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("{file} line {line}:")),
                "{msg:?} should name {file} line {line}"
            );
            assert!(
                msg.contains(&MAX_LINE.to_string()),
                "{msg:?} should give the limit"
            );
            assert!(!msg.contains('\n'), "{msg}");
            msg
        }
        other => panic!("expected a line-length error, got {other:?}"),
    }
}

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for p in parts {
        e.write_all(p).unwrap();
    }
    e.finish().unwrap()
}

#[test]
fn a_small_gzip_inflating_to_a_gigabyte_line_fails_at_the_limit() {
    // One gzip member of 1 MiB of `9`s, repeated 1024 times: a ~1 MB file that inflates to one
    // 1 GiB line (a gzip stream may hold many members, and the loader reads them all).
    let member = gzip(&[HEADER.as_bytes(), ROW.as_bytes(), &vec![b'9'; 1 << 20]]);
    let tail = gzip(&[&vec![b'9'; 1 << 20]]);
    let mut bomb = member.clone();
    for _ in 0..1023 {
        bomb.extend_from_slice(&tail);
    }
    assert!(
        bomb.len() < 4 << 20,
        "the test file is small ({} bytes)",
        bomb.len()
    );
    too_long(
        load_csv_reader("bomb.csv.gz", &bomb[..], &LoadOptions::default()),
        "bomb.csv.gz",
        3,
    );
    // The same from a file on disk.
    let p = std::env::temp_dir().join(format!("vectura-bomb-{}.csv.gz", std::process::id()));
    std::fs::write(&p, &bomb).unwrap();
    too_long(
        load_csv_path(&p, &LoadOptions::default()),
        &p.display().to_string(),
        3,
    );
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn an_endless_stream_of_zeros_ends_with_the_error() {
    // What `--data /dev/zero` reads: NUL bytes without a line end, for ever.
    too_long(
        load_csv_reader("zeros", std::io::repeat(0), &LoadOptions::default()),
        "zeros",
        1,
    );
    // An endless first line after a header, and endless text digits.
    let endless = HEADER.as_bytes().chain(std::io::repeat(b'1'));
    too_long(
        load_csv_reader("digits", endless, &LoadOptions::default()),
        "digits",
        2,
    );
}

#[cfg(target_os = "linux")]
#[test]
fn dev_zero_ends_with_the_error() {
    too_long(
        load_csv_path(std::path::Path::new("/dev/zero"), &LoadOptions::default()),
        "/dev/zero",
        1,
    );
}

#[test]
fn a_quoted_field_cannot_grow_across_lines_without_end() {
    // A quote opening a field, then short lines for ever: one record, however many lines.
    let text = format!("{HEADER}{}\"", &ROW[..ROW.len() - 4]);
    let endless = text.as_bytes().chain(std::io::repeat(b'\n'));
    too_long(
        load_csv_reader("quoted", endless, &LoadOptions::default()),
        "quoted",
        2,
    );
}

#[test]
fn lines_up_to_the_limit_load_and_quotes_keep_working() {
    // A row of exactly MAX_LINE bytes (its line end not counted), padded in an ignored column.
    let header = "timestamp,open,high,low,close,volume,note\n";
    let start = "2024-01-02T14:30:00Z,10,11,9,10.5,100,";
    let pad = MAX_LINE - start.len();
    let text = format!("{header}{start}{}\n", "x".repeat(pad));
    let l = load_csv_reader("edge", text.as_bytes(), &LoadOptions::default()).unwrap();
    assert_eq!(l.series.len(), 1);
    let over = format!("{header}{start}{}\n", "x".repeat(pad + 1));
    too_long(
        load_csv_reader("edge", over.as_bytes(), &LoadOptions::default()),
        "edge",
        2,
    );

    // Quoted cells (with commas, doubled quotes and a line break inside), a stray quote inside an
    // unquoted cell, CRLF line ends: all still read, with the right line numbers after them.
    let text = "timestamp,open,high,low,close,volume,note\r\n\
        \"2024-01-02T14:30:00Z\",\"10\",11,9,10.5,100,\"a, \"\"b\"\"\r\nc\"\r\n\
        2024-01-02T14:31:00Z,10,11,9,10.5,100,5\" pipe\r\n\
        2024-01-02T14:32:00Z,10,11,9,-1,100,x\r\n";
    let e = load_csv_reader("quotes", text.as_bytes(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("quotes line 5, column 5 \"close\""), "{e}");
    let ok = text.replace(",-1,", ",10.5,");
    let l = load_csv_reader("quotes", ok.as_bytes(), &LoadOptions::default()).unwrap();
    assert_eq!(l.series.len(), 3);
}
