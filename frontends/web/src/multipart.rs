//! Just enough of `multipart/form-data` (RFC 7578) for the console's one file form, the
//! DSN upload: the whole body is in memory (under a size limit), each part has its name,
//! its file name when it is a file, and its bytes. No dependency; parts are found by
//! their boundary, never by guessing.

/// One part of a form.
pub struct Part<'a> {
    pub name: String,
    pub file_name: Option<String>,
    pub data: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A parameter of a `Content-Disposition` header (`name="…"`).
fn disposition_param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The parts of `body`; `None` when it is not a well-formed form with this boundary.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let next_delimiter = format!("\r\n--{boundary}");
    let next_delimiter = next_delimiter.as_bytes();
    let mut at = find(body, delimiter, 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Some(parts);
        }
        if !body[at..].starts_with(b"\r\n") {
            return None;
        }
        at += 2;
        let headers_end = find(body, b"\r\n\r\n", at)?;
        let headers = std::str::from_utf8(&body[at..headers_end]).ok()?;
        let content_start = headers_end + 4;
        let content_end = find(body, next_delimiter, content_start)?;
        let disposition = headers.split("\r\n").find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(v.trim())
        })?;
        parts.push(Part {
            name: disposition_param(disposition, "name")?,
            file_name: disposition_param(disposition, "filename"),
            data: &body[content_start..content_end],
        });
        at = content_end + next_delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_form_with_a_file_is_read() {
        let ct = "multipart/form-data; boundary=----WebKitFormBoundaryX1";
        let b = boundary(ct).unwrap();
        assert_eq!(b, "----WebKitFormBoundaryX1");
        let body = b"------WebKitFormBoundaryX1\r\n\
Content-Disposition: form-data; name=\"csrf\"\r\n\r\n\
abc\r\n\
------WebKitFormBoundaryX1\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"decembre.dsn\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\
S10.G00.00.001,'x'\r\nS10.G00.00.002,'y'\r\n\
------WebKitFormBoundaryX1--\r\n";
        let parts = parse(body, &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].file_name.as_deref(), Some("decembre.dsn"));
        assert_eq!(
            parts[1].data,
            b"S10.G00.00.001,'x'\r\nS10.G00.00.002,'y'".as_slice()
        );
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(boundary("application/x-www-form-urlencoded").is_none());
        assert!(boundary("multipart/form-data").is_none());
        assert!(parse(b"no boundary here", "b").is_none());
        // A part that never ends.
        assert!(
            parse(
                b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxyz",
                "b"
            )
            .is_none()
        );
        // A part without a name.
        assert!(parse(b"--b\r\nContent-Type: text/plain\r\n\r\nxyz\r\n--b--", "b").is_none());
    }
}
