//! Go `os.FileMode` bits (what `FileInfo.mode` carries) written as Go writes them:
//! type letters for each set high bit, then `rwxrwxrwx`, e.g. `drwxr-xr-x`, `Lrwxrwxrwx`.

/// Letters of the high mode bits, from bit 31 (directory) down to bit 19 (irregular):
/// dir, append-only, exclusive, temporary, symlink, device, named pipe, socket, setuid, setgid,
/// character device, sticky, irregular.
const TYPE_LETTERS: &str = "dalTLDpSugct?";

/// `mode` as Go's `FileMode.String()`: `-rw-r--r--`, `drwxr-xr-x`, `Lrwxrwxrwx`, `Dcrw-rw-rw-`.
pub fn go_mode_string(mode: u32) -> String {
    let mut text: String = TYPE_LETTERS
        .chars()
        .enumerate()
        .filter(|(i, _)| mode & (1 << (31 - i)) != 0)
        .map(|(_, letter)| letter)
        .collect();
    if text.is_empty() {
        text.push('-');
    }
    for (i, letter) in "rwxrwxrwx".chars().enumerate() {
        text.push(if mode & (1 << (8 - i)) != 0 {
            letter
        } else {
            '-'
        });
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const CHAR_DEVICE: u32 = 1 << 21;
    const SETUID: u32 = 1 << 23;
    const STICKY: u32 = 1 << 20;

    #[test]
    fn plain_files_and_directories() {
        assert_eq!(go_mode_string(0o644), "-rw-r--r--");
        assert_eq!(go_mode_string(DIR | 0o755), "drwxr-xr-x");
        assert_eq!(go_mode_string(0), "----------");
    }

    #[test]
    fn type_bits_become_letters_in_go_order() {
        assert_eq!(go_mode_string(SYMLINK | 0o777), "Lrwxrwxrwx");
        assert_eq!(go_mode_string(DEVICE | CHAR_DEVICE | 0o666), "Dcrw-rw-rw-");
        assert_eq!(go_mode_string(SETUID | 0o755), "urwxr-xr-x");
        assert_eq!(go_mode_string(DIR | STICKY | 0o777), "dtrwxrwxrwx");
        assert_eq!(go_mode_string(1 << 25 | 0o600), "prw-------");
        assert_eq!(go_mode_string(1 << 24 | 0o755), "Srwxr-xr-x");
    }
}
