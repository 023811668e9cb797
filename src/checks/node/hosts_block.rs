//! The `# BEGIN preflight` / `# END preflight` block of /etc/hosts: preflight's own lines,
//! placed first so they win (the first line naming a host is the one the resolver uses).
//! Everything outside the block is kept byte for byte: comments, CRLF, a missing final newline.

use std::net::IpAddr;

pub const BEGIN: &str = "# BEGIN preflight";
pub const END: &str = "# END preflight";

/// `content` with the block holding `pins` (added to, or replacing, what it held for them).
pub fn with_block(content: &[u8], pins: &[(String, IpAddr)]) -> Vec<u8> {
    let lines: Vec<&[u8]> = content.split_inclusive(|b| *b == b'\n').collect();
    let eol: &[u8] = if lines.iter().any(|l| l.ends_with(b"\r\n")) {
        b"\r\n"
    } else {
        b"\n"
    };
    let trimmed = |l: &[u8]| String::from_utf8_lossy(l).trim().to_string();
    let begin = lines.iter().position(|l| trimmed(l) == BEGIN);
    let end = begin.and_then(|b| lines[b..].iter().position(|l| trimmed(l) == END).map(|e| b + e));

    let mut entries: Vec<(String, String)> = Vec::new();
    if let (Some(b), Some(e)) = (begin, end) {
        for l in &lines[b + 1..e] {
            let text = trimmed(l);
            let mut f = text.split_whitespace();
            if let (Some(ip), Some(name)) = (f.next(), f.next()) {
                entries.push((name.to_string(), ip.to_string()));
            }
        }
    }
    for (name, ip) in pins {
        match entries.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(e) => e.1 = ip.to_string(),
            None => entries.push((name.clone(), ip.to_string())),
        }
    }
    let mut block = Vec::new();
    block.extend_from_slice(BEGIN.as_bytes());
    block.extend_from_slice(eol);
    for (name, ip) in &entries {
        block.extend_from_slice(format!("{ip} {name}").as_bytes());
        block.extend_from_slice(eol);
    }
    block.extend_from_slice(END.as_bytes());
    block.extend_from_slice(eol);

    let mut out = Vec::with_capacity(content.len() + block.len());
    match (begin, end) {
        (Some(b), Some(e)) => {
            lines[..b].iter().for_each(|l| out.extend_from_slice(l));
            out.extend_from_slice(&block);
            lines[e + 1..].iter().for_each(|l| out.extend_from_slice(l));
        }
        _ => {
            out.extend_from_slice(&block);
            out.extend_from_slice(content);
        }
    }
    out
}

/// The block's lines (`ip name`) once `pins` are written into `content`, and whether the
/// file already has a block (rewritten in place) or gets one at the top.
pub fn planned(content: &[u8], pins: &[(String, IpAddr)]) -> (bool, Vec<String>) {
    let after = with_block(content, pins);
    let text = String::from_utf8_lossy(&after);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| l.trim() != BEGIN)
        .skip(1)
        .take_while(|l| l.trim() != END)
        .map(String::from)
        .collect();
    let had_block = String::from_utf8_lossy(content)
        .lines()
        .any(|l| l.trim() == BEGIN);
    (had_block, lines)
}

/// The shell commands that do what `with_block` does to `path` (whose current content is
/// `current`, `None` when it does not exist): keep one backup of an existing file, then
/// replace the marked block in place, or insert it first.
pub fn shell(
    path: &str,
    backup: &str,
    had_block: bool,
    current: Option<&[u8]>,
    lines: &[String],
) -> Vec<String> {
    let body = std::iter::once(BEGIN.to_string())
        .chain(lines.iter().cloned())
        .chain(std::iter::once(END.to_string()))
        .collect::<Vec<_>>()
        .join("\\n");
    let write = if had_block {
        format!("sed -i '/^{BEGIN}$/,/^{END}$/c\\{body}' {path}")
    } else if current.is_none_or(|c| c.is_empty()) {
        // sed inserts nothing into an empty file.
        format!("printf '{body}\\n' > {path}")
    } else {
        format!("sed -i '1i {body}' {path}")
    };
    match current {
        Some(_) => vec![format!("[ -e {backup} ] || cp -p {path} {backup}"), write],
        None => vec![write],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(name: &str, ip: &str) -> (String, IpAddr) {
        (name.to_string(), ip.parse().unwrap())
    }

    #[test]
    fn the_shown_commands_follow_the_file() {
        let pins = [pin("hub.bktencent.com", "49.234.165.79")];
        let fresh = b"127.0.0.1 localhost\n";
        let (had, lines) = planned(fresh, &pins);
        assert_eq!(
            shell("/etc/hosts", "/etc/hosts.preflight.bak", had, Some(fresh), &lines),
            vec![
                "[ -e /etc/hosts.preflight.bak ] || cp -p /etc/hosts /etc/hosts.preflight.bak".to_string(),
                "sed -i '1i # BEGIN preflight\\n49.234.165.79 hub.bktencent.com\\n# END preflight' /etc/hosts".to_string(),
            ]
        );
        let once = with_block(fresh, &[pin("mirror.local", "10.0.0.9")]);
        let (had, lines) = planned(&once, &pins);
        assert!(had);
        assert_eq!(
            lines,
            vec!["10.0.0.9 mirror.local", "49.234.165.79 hub.bktencent.com"]
        );
        assert_eq!(
            shell("/etc/hosts", "/etc/hosts.preflight.bak", had, Some(&once), &lines)[1],
            "sed -i '/^# BEGIN preflight$/,/^# END preflight$/c\\# BEGIN preflight\\n10.0.0.9 mirror.local\\n49.234.165.79 hub.bktencent.com\\n# END preflight' /etc/hosts"
        );
    }

    #[test]
    fn inserted_first_then_rewritten_in_place() {
        let original = b"127.0.0.1 localhost\r\n# keep me\r\n43.135.100.7 hub.bktencent.com";
        let once = with_block(original, &[pin("hub.bktencent.com", "49.234.165.79")]);
        assert_eq!(
            once,
            b"# BEGIN preflight\r\n49.234.165.79 hub.bktencent.com\r\n# END preflight\r\n127.0.0.1 localhost\r\n# keep me\r\n43.135.100.7 hub.bktencent.com".to_vec()
        );
        assert_eq!(
            with_block(&once, &[pin("hub.bktencent.com", "49.234.165.79")]),
            once,
            "idempotent"
        );
        let twice = with_block(
            &once,
            &[
                pin("mirror.local", "10.0.0.9"),
                pin("hub.bktencent.com", "49.234.165.80"),
            ],
        );
        assert_eq!(
            twice,
            b"# BEGIN preflight\r\n49.234.165.80 hub.bktencent.com\r\n10.0.0.9 mirror.local\r\n# END preflight\r\n127.0.0.1 localhost\r\n# keep me\r\n43.135.100.7 hub.bktencent.com".to_vec()
        );
    }
}
