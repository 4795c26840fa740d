//! A query string's text: the part after '?', its `key=value` pairs, `%XX` escapes, and user
//! input cut short for echoing in a message. What the keys mean is `mod.rs`'s table.

use std::collections::HashMap;

use super::{ECHO_CHARS, MAX_INPUT_BYTES};

/// At most `max` characters of `text`, control characters shown as '?', an ellipsis when cut.
pub(super) fn shorten(text: &str, max: usize) -> String {
    let visible = |c: char| if c.is_control() { '?' } else { c };
    if text.chars().count() <= max {
        return text.chars().map(visible).collect();
    }
    text.chars().take(max - 1).map(visible).chain(['…']).collect()
}

/// Decodes `%XX` escapes and `+` as space. Broken escapes, bytes that are not UTF-8 and
/// control characters (`%00` included) make the whole text malformed.
pub(super) fn percent_decode(raw: &str) -> Result<String, &'static str> {
    let hex = |byte: u8| (byte as char).to_digit(16);
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        index += 1;
        match byte {
            b'%' => {
                let escaped = bytes.get(index..index + 2).and_then(|pair| Some(hex(pair[0])? * 16 + hex(pair[1])?));
                decoded.push(escaped.ok_or("broken %-escape")? as u8);
                index += 2;
            }
            b'+' => decoded.push(b' '),
            other => decoded.push(other),
        }
    }
    let text = String::from_utf8(decoded).map_err(|_| "not valid UTF-8")?;
    match text.chars().any(char::is_control) {
        true => Err("contains control characters"),
        false => Ok(text),
    }
}

/// The query part of a query string, `?query` or a full URL: after the first '?', before any
/// '#'. A URL without '?' has an empty query.
pub(super) fn query_part(input: &str) -> &str {
    let input = input.trim();
    let before_fragment = input.split_once('#').map_or(input, |(before, _)| before);
    match before_fragment.split_once('?') {
        Some((_, query)) => query,
        None if before_fragment.contains("://") => "",
        None => before_fragment,
    }
}

/// Splits a query into `(decoded key, times given, last raw value)` in order of first
/// appearance, so that the last value wins and a repeat is reported once. Pairs without '='
/// and undecodable keys are reported and skipped; empty pairs (`&&`) are skipped silently.
pub(super) fn group_pairs<'a>(query: &'a str, report: &mut impl FnMut(&str, String)) -> Vec<(String, usize, &'a str)> {
    let mut groups: Vec<(String, usize, &str)> = Vec::new();
    let mut group_of_key: HashMap<String, usize> = HashMap::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let Some((raw_key, raw_value)) = pair.split_once('=') else {
            report(pair, format!("{}: no '=', ignored", shorten(pair, ECHO_CHARS)));
            continue;
        };
        let key = match percent_decode(raw_key).map(|key| key.trim().to_string()) {
            Ok(key) if !key.is_empty() => key,
            failed => {
                let why = failed.err().unwrap_or("empty");
                report(raw_key, format!("key {}: {why}, ignored", shorten(raw_key, ECHO_CHARS)));
                continue;
            }
        };
        match group_of_key.get(&key) {
            Some(&index) => {
                groups[index].1 += 1;
                groups[index].2 = raw_value;
            }
            None => {
                group_of_key.insert(key.clone(), groups.len());
                groups.push((key, 1, raw_value));
            }
        }
    }
    groups
}

/// The decoded value of every occurrence of `key` in a query string or URL, in order; a value
/// that cannot be decoded is `Err(why)`.
pub fn query_values(input: &str, key: &str) -> Vec<Result<String, &'static str>> {
    let input = &input[..input.floor_char_boundary(MAX_INPUT_BYTES)];
    query_part(input)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(raw_key, _)| percent_decode(raw_key).is_ok_and(|k| k.trim() == key))
        .map(|(_, raw_value)| percent_decode(raw_value).map(|v| v.trim().to_string()))
        .collect()
}

/// At most `max` characters of user input, for echoing it in a message.
pub fn echo(text: &str) -> String {
    shorten(text, ECHO_CHARS)
}
