//! Secrets kept in files (`--jwt-secret-file`, `--hook-secret-file`): the
//! file's bytes, one trailing newline (`\n` or `\r\n`) removed, as editors
//! and `echo` leave them.

use std::path::Path;

/// The secret in `file`, at least `min` bytes; `what` names it in errors.
pub(crate) fn read(file: &Path, what: &str, min: usize) -> Result<Vec<u8>, String> {
    let mut secret =
        std::fs::read(file).map_err(|e| format!("reading the {what} {}: {e}", file.display()))?;
    if secret.ends_with(b"\n") {
        secret.pop();
        if secret.ends_with(b"\r") {
            secret.pop();
        }
    }
    if secret.len() < min {
        return Err(format!(
            "the {what} in {} is {} bytes: it must be at least {min}",
            file.display(),
            secret.len()
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::read;

    #[test]
    fn one_trailing_newline_goes_and_the_rest_stays() {
        let dir = std::env::temp_dir().join(format!("diffcopy-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (text, want) in [
            (&b"abc\n"[..], &b"abc"[..]),
            (b"abc\r\n", b"abc"),
            (b"abc\n\n", b"abc\n"),
            (b"abc", b"abc"),
            (b" abc ", b" abc "),
        ] {
            let file = dir.join("s");
            std::fs::write(&file, text).unwrap();
            assert_eq!(read(&file, "secret", 3).unwrap(), want);
        }
        std::fs::write(dir.join("s"), "ab\n").unwrap();
        assert!(read(&dir.join("s"), "secret", 3).unwrap_err().contains("at least 3"));
        assert!(read(&dir.join("missing"), "secret", 3).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
